"""Coverage-guided fuzzing of one entry point with atheris (libFuzzer): ``make fuzz`` runs each.

    python -m tests.fuzz.run record --runs 1000000 [--work .stream_app/fuzz]

The seeds (``seeds.py``) are written to ``<work>/<target>/corpus`` and the corpus grows there; an
input that breaks the target's promise (an exception, a hang past ``--timeout`` s, memory
2 GiB above its start) stops the run with exit code 1 and is saved as
``<work>/<target>/crash-*``: fix the cause, then keep the input in
``tests/fuzz/regressions/<target>/`` (the suite replays it).
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["stream_app", "models"]):
    from tests.fuzz.seeds import seeds
    from tests.fuzz.targets import TARGETS, kit


def rss_limit_mb(allowed: int = 2048) -> int:
    """``allowed`` MB above this process's peak at start. libFuzzer compares the peak RSS
    (``ru_maxrss``) with its limit, and Linux carries a parent's peak into a child across fork and
    exec: started from a test process of 3 GB, a run was stopped as out of memory at its first
    input with its own 0.3 GB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 + allowed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--runs", type=int, default=1_000_000, help="executions (default 1e6)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--work", type=Path, default=Path(".stream_app/fuzz"))
    args = parser.parse_args()
    work = args.work / args.target
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    kit()  # built once, before the clock of the first input starts
    for seed in seeds(args.target):
        (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)  # noqa: S324  # a file name
    libfuzzer = [
        sys.argv[0],
        f"-runs={args.runs}",
        f"-timeout={args.timeout}",
        f"-rss_limit_mb={rss_limit_mb()}",
        "-print_final_stats=1",
        f"-artifact_prefix={work}/",
        str(corpus),
    ]
    atheris.Setup(libfuzzer, TARGETS[args.target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
