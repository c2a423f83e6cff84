"""benchmarks/phases.py keeps working: it times the steps of a real command."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_phases_times_the_steps_of_a_backtest():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "phases.py"), "backtest", "--model",
                          str(ROOT / "data" / "policies" / "UNIUSD_1Hour.pt"), "--days", "20",
                          "--walk-forward", "2"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    steps = dict((name, float(s)) for s, name in re.findall(r"^\s*([0-9.]+)\s+(\S+)$", out.stderr, re.M))
    wall = float(re.search(r"^wall ([0-9.]+) s", out.stderr, re.M).group(1))
    for name in ("run_backtest", "simulate_jobs", "run_chunked", "Batch.simulate_packed", "summarize_jobs"):
        assert name in steps, (name, out.stderr[-1000:])
    # steps nest: a step never takes longer than the one that calls it, nor the process
    assert steps["Batch.simulate_packed"] <= steps["run_chunked"] <= steps["simulate_jobs"] \
        <= steps["run_backtest"] <= wall
