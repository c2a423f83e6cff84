"""Start-up stays light (docs/design.md 10: a warm backtest under a second, whole process):
a warm `foldgate backtest` never imports torch, pandas, scipy.stats or scipy.linalg
(numba's import-time BLAS probe would pull in scipy.linalg: half a second)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import sys
from cli.main import app
args = ["backtest", "--store", sys.argv[1], "--model", sys.argv[2], "--days", "30", "--capital", "100000"]
try:
    app.main(args, standalone_mode=False)
except SystemExit:
    pass
heavy = ["torch", "pandas", "scipy.stats", "scipy.linalg", "stockstats"]
print("MODULES", __import__("json").dumps({m: m in sys.modules for m in heavy}))
"""


def test_warm_backtest_imports_nothing_heavy(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "FOLDGATE_CACHE_DIR": str(tmp_path / "cache"),
           "HOME": str(tmp_path)}
    args = [sys.executable, "-c", CHILD, str(ROOT / "data" / "bars"), str(ROOT / "data" / "policies" / "BTCUSD_1Hour.pt")]
    first = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    # the first run fills the policy cache (it may import torch to validate the checkpoint)
    warm = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert warm.returncode == 0, warm.stderr
    line = [ln for ln in warm.stdout.splitlines() if ln.startswith("MODULES ")][-1]
    loaded = json.loads(line.split(" ", 1)[1])
    assert not any(loaded.values()), loaded
