"""The ClickHouse warehouse: tables, the only writer (the sink) and read-only SQL."""
