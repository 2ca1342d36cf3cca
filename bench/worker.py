"""Run one round of one variant in this (fresh) process and print its figures.

    python -m bench.worker MODULE:FUNCTION '{"url": ..., ...}'

The last line of output is ``BENCH-RESULT {json}``; the harness reads it.
Peak resident memory of the whole process (``ru_maxrss``) is added as
``rss_mb`` so every variant reports it.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys

from bench.harness import RESULT_MARK


def main(argv: list[str]) -> int:
    target, raw = argv
    module, _, name = target.partition(":")
    func = getattr(importlib.import_module(module), name)
    result = dict(func(**json.loads(raw)))
    result.setdefault("rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
