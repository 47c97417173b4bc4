"""``stream-app report``: one self-contained HTML page of the warehouse (docs/report.md)."""
