"""The whole backtest and validate paths, warm (JIT compile and policy cache outside the
timing). CI runs these once with tiny sizes (pytest's --benchmark-disable default)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.pipeline import RunConfig, run_backtest, run_validate
from workloads import make_validate_workload

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "data" / "bars"
TINY = os.environ.get("FOLDGATE_BENCH_TINY", "") not in ("", "0")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "policy-cache"))


@pytest.mark.benchmark(group="backtest")
def test_backtest_180_days_5_folds(benchmark):
    """`foldgate backtest --days 180 --walk-forward 5` of one model, in-process."""
    cfg = RunConfig(days=60 if TINY else 180, walk_forward=5, store=str(STORE))
    model = [ROOT / "data" / "policies" / "UNIUSD_1Hour.pt"]
    run_backtest(model, cfg)  # warm-up
    report = benchmark(run_backtest, model, cfg)
    assert len(report["models"][0]["folds"]) == 5


@pytest.mark.benchmark(group="validate")
def test_validate_50_symbols(benchmark, tmp_path):
    """`foldgate validate` of an archive of 50 symbols: 180 days x 5 folds + 30-day backtest."""
    n = 4 if TINY else 50
    archive, store = make_validate_workload(tmp_path, n_symbols=n)
    cfg = RunConfig(days=180, walk_forward=5, quick_days=30, store=str(store))
    dest = tmp_path / "extracts"
    run_validate(archive, cfg, dest_root=dest)  # warm-up: extract, policy cache, JIT
    report, jobs = benchmark(run_validate, archive, cfg, dest_root=dest)
    assert sum(1 for j in jobs if j.folds) == n
