"""``stream-app bench``: throughput, decision latency, warehouse visibility and memory, measured.

Each phase runs on processes the benchmark starts itself (a local broker, a scoring worker and the
warehouse sink) with its own topics, consumer groups and database; a bare single-thread loop on
the same broker and model is the yardstick. ``runner.run_bench`` is the entry point.
"""
