"""Detector defaults for 200,000 events between false alarms (placeholder values)."""

ADWIN_DELTA = 0.002
HDDM_CONFIDENCE = 0.001
PAGE_HINKLEY_DELTA = 0.125
PAGE_HINKLEY_THRESHOLD = 40.0
PSI_THRESHOLD = 0.03
PSI_WINDOW = 1000
