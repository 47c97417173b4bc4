"""Developer tooling shipped with the package: synthetic events, the demo and the benchmark.

Nothing in the service (worker, sink, control) imports from here; these are commands a user
runs against the service (``stream-app produce``, ``stream-app demo``, ``stream-app bench``).
"""
