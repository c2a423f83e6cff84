"""Whole-pipeline workloads: a store and a training archive of N symbols, made from the
shipped sample data (each sample series is reused under several symbol names)."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "data"))

from engine.data.bars import Bars  # noqa: E402
from engine.data.store import BarStore


def _store_symbols(workdir: Path, symbols: list[str], days: float | None) -> list[str]:
    """workdir/bars: each symbol the shipped crypto series in turn (the last `days` days
    of it when given: a 1,000-symbol store stays small)."""
    src = BarStore(ROOT / "data" / "bars")
    sources = [e for e in src.list() if e.asset_class == "crypto"]
    store = BarStore(workdir / "bars")
    for i, symbol in enumerate(symbols):
        base = src.read(sources[i % len(sources)].symbol, "1Hour")
        if days is not None:
            first = base.timestamp[-1] - int(days * 86_400e9)
            base = base.slice(int(base.timestamp.searchsorted(first)), len(base))
        store.write(Bars(symbol, "1Hour", base.asset_class, base.timestamp, base.open, base.high, base.low,
                         base.close, base.volume, base.trade_count, base.vwap), mode="replace")
    return symbols


def make_validate_workload(workdir: Path, n_symbols: int = 50, stamp: str = "20261101_000000",
                           days: float | None = None, recipe: str | None = None):
    """(archive path, store dir): n_symbols symbols, each with a year of hourly bars (the
    last `days` days of them when given: a 1,000-symbol store stays small), a sample
    policy and training metrics that pass gating (APPROVED), so every model is
    backtested and walked forward. `recipe` gives every model that sample recipe
    (`"reference_random"`: docs/design.md 10's 2x64 tanh MLP on 16 inputs)."""
    from make_sample_policies import build_sample_policies

    symbols = _store_symbols(workdir, [f"S{i:03d}USD" for i in range(n_symbols)], days)
    models = workdir / "models"
    paths = build_sample_policies(models, symbols=symbols, recipe=recipe)
    hist = lambda final: [round(final * k / 10, 4) for k in range(1, 11)]  # noqa: E731
    summary = {"timeframe": "1Hour", "symbols": {
        s: {"model": f"models/rl_symbols/{s}_1Hour.pt",
            "metrics": {"fitness_score": hist(0.8), "profit_factor": hist(2.0),
                        "consistency": hist(0.9), "max_drawdown": [0.05] * 10}}
        for s in symbols}}
    archive = workdir / f"Alpaca_trading_trained_{stamp}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"training_summary_{stamp}.json", json.dumps(summary))
        for p in paths:
            zf.write(p, f"models/rl_symbols/{p.name}")
    return archive, workdir / "bars"


def make_checkpoint_workload(workdir: Path, n_symbols: int, per_symbol: int, stamp: str = "20261101_000000",
                             days: float | None = None, recipe: str | None = None):
    """(archive path, store dir): the overnight job of docs/design.md 11, every checkpoint of
    every symbol: n_symbols symbols (hourly bars as in make_validate_workload), each with
    `per_symbol` checkpoint files listed in the summary (the last is the final model), all
    gated APPROVED; `validate --checkpoints all` validates n_symbols * per_symbol models,
    each symbol's checkpoints its variants. Checkpoint k of a symbol is the sample recipe
    (or `recipe`) with weights drawn for k."""
    from make_sample_policies import SEED, build_sample_policies

    symbols = _store_symbols(workdir, [f"C{i:03d}USD" for i in range(n_symbols)], days)
    steps = [f"ck{k:03d}" for k in range(per_symbol)]
    paths = {step: build_sample_policies(workdir / "models" / step, symbols=symbols, seed=SEED + k, recipe=recipe)
             for k, step in enumerate(steps)}
    hist = lambda final: [round(final * (k + 1) / per_symbol, 4) for k in range(per_symbol)]  # noqa: E731
    summary = {"timeframe": "1Hour", "symbols": {
        s: {"model": f"models/rl_symbols/{steps[-1]}/{s}_1Hour.pt",
            "checkpoints": [f"models/rl_symbols/{step}/{s}_1Hour.pt" for step in steps],
            "metrics": {"fitness_score": hist(0.8), "profit_factor": hist(2.0),
                        "consistency": hist(0.9), "max_drawdown": [0.05] * per_symbol}}
        for s in symbols}}
    archive = workdir / f"Alpaca_trading_trained_{stamp}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"training_summary_{stamp}.json", json.dumps(summary))
        for step in steps:
            for p in paths[step]:
                zf.write(p, f"models/rl_symbols/{step}/{p.name}")
    return archive, workdir / "bars"
