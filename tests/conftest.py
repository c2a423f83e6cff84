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


import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _sb3_logs_in_tmp_path(tmp_path_factory):
    """stable-baselines3's learn() makes a log folder, $SB3_LOGDIR or else a new
    $TMPDIR/SB3-<time> per call: the SB3 tests left hundreds behind. Session-wide (the
    models of module fixtures learn too), in pytest's own temp root, which it cleans."""
    old = os.environ.get("SB3_LOGDIR")
    os.environ["SB3_LOGDIR"] = str(tmp_path_factory.mktemp("sb3-logs"))
    yield
    if old is None:
        os.environ.pop("SB3_LOGDIR", None)
    else:
        os.environ["SB3_LOGDIR"] = old
