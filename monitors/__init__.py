"""Online drift detectors (River) over the error stream, the scores and the input features.

One River-shaped interface (``monitors.base.Monitor``): ``update(value)``, ``drift_detected``,
``reset()``, and a JSON-able state (``save`` / ``from_state``, never pickle). Implementations:
``errors`` (ADWIN, HDDM_A), ``scores`` (Page-Hinkley on the log-odds), ``features`` (PSI per
window). Their defaults, in ``calibrated``, are set for a stated number of events between false
alarms by ``stream-app bench calibrate-drift``; ``stream-app bench drift`` measures them.
"""
