import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
for p in (str(TESTS), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)


# Property-based fuzzing (tests/test_fuzz_*.py): a fixed seed and a bounded number of
# examples in CI; `python benchmarks/fuzz.py --examples N` runs the same suites long.
import os  # noqa: E402

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", derandomize=True, max_examples=int(os.environ.get("FOLDGATE_FUZZ_EXAMPLES", "60")),
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)
settings.register_profile(
    "long", derandomize=False, max_examples=int(os.environ.get("FOLDGATE_FUZZ_EXAMPLES", "100000")),
    deadline=None, suppress_health_check=list(HealthCheck), database=None,
)
settings.load_profile(os.environ.get("FOLDGATE_FUZZ_PROFILE", "ci"))
