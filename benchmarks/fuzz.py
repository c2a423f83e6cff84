"""Run the property-based fuzz suites (tests/test_fuzz_*.py) long.

    python benchmarks/fuzz.py --examples 100000 [-k summary]

Each suite asserts only what must always hold for a user's file: a result, or a
foldgate user error with a one-line message; never another exception, never a write
outside its target. CI runs the same suites with a fixed seed and few examples."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=100_000, help="examples per property")
    ap.add_argument("-k", default=None, help="pytest -k expression to pick suites")
    args = ap.parse_args()
    env = dict(os.environ, FOLDGATE_FUZZ_PROFILE="long", FOLDGATE_FUZZ_EXAMPLES=str(args.examples))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           *sorted(str(p) for p in (ROOT / "tests").glob("test_fuzz_*.py"))]
    if args.k:
        cmd += ["-k", args.k]
    t0 = time.perf_counter()
    rc = subprocess.call(cmd, cwd=ROOT, env=env)
    print(f"fuzz: {args.examples} examples per property, {time.perf_counter() - t0:.0f} s, "
          f"{'no failures' if rc == 0 else 'FAILURES (see above)'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
