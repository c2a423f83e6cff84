"""The shipped sample data, and a sample training archive built from it for `foldgate
demo` (`data/make_sample_archive.py` is the same builder as a script).

The archive holds the sample policies of `data/policies/` and a training summary whose
metrics are chosen so that gating meets every class and flag: APPROVED, REVIEW and DROP
models, percent units, the inflated proxy drawdown of reward_scale 0.1, a checkpoint that
beat the final model, and one malformed entry that fails alone."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_open
from .errors import FoldgateError

STAMP = "20261101_120000"
TRAIN_END = "2026-05-01T00:00:00Z"


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def sample_store_dir() -> Path:
    d = repo_root() / "data" / "bars"
    if not d.is_dir():
        raise FoldgateError(f"no sample data at {d}: it ships with the source checkout; install it "
                            "with `pip install -e .` from a clone, or pass --store")
    return d


def sample_policies_dir() -> Path:
    return repo_root() / "data" / "policies"


def _history(final: float, start: float, n: int, peak: float | None = None) -> list[float]:
    """A plausible training curve from `start` to `final`, optionally peaking earlier."""
    x = np.linspace(0.0, 1.0, n)
    curve = start + (final - start) * (1 - np.exp(-4 * x)) / (1 - np.exp(-4))
    if peak is not None:
        k = int(0.6 * n)
        curve[k] = peak
    curve[-1] = final
    return [round(float(v), 4) for v in curve]


# symbol -> (fitness, profit factor, consistency, max_dd, fitness peak) as trained
SAMPLE_METRICS: dict[str, tuple] = {
    "BTCUSD": (0.78, 2.10, 0.90, 0.06, None),          # APPROVED
    "ETHUSD": (0.74, 1.95, 0.88, 0.07, None),          # APPROVED
    "SOLUSD": (0.62, 1.50, 0.70, 0.12, None),          # REVIEW (random weights: should not pass)
    "UNIUSD": (0.72, 1.90, 86.0, 0.05, 0.86),          # APPROVED, consistency in percent, checkpoint
    "LINKUSD": (0.71, 1.85, 0.87, 0.075, None),        # APPROVED
    "AVAXUSD": (0.45, 1.10, 0.50, 0.45, None),         # DROP, inflated proxy drawdown
    "AAPL": (0.76, 2.00, 0.91, 0.05, None),            # APPROVED
    "MSFT": (0.55, 1.40, 0.68, 0.14, None),            # REVIEW
    "SPY": (0.73, 1.82, 0.86, 0.08, None),             # APPROVED, exactly at the max_dd bound
    "NVDA": (0.69, 1.81, 0.86, 0.07, 0.80),            # REVIEW (fitness just under), checkpoint
    "AMZN": (0.30, 0.90, 0.40, 0.35, None),            # DROP
    "TSLA": (0.80, 2.40, 0.92, 0.04, None),            # APPROVED, trained into the window
    "PAXGUSD": (0.82, 2.30, 0.93, 0.05, None),         # APPROVED: a steady mover, should go LIVE
    "GLD": (0.64, 1.60, 0.80, 0.10, None),             # REVIEW: LIVE-grade folds, capped at PAPER
}
# Symbols whose training ran into the validation window: their early folds are in-sample.
LATE_TRAIN_END = {"TSLA": "2026-07-15T00:00:00Z"}


def build_sample_archive(workdir: str | Path, store: str | Path | None = None, stamp: str = STAMP) -> Path:
    """Write `Alpaca_trading_trained_<stamp>.zip` into `workdir` and return its path."""
    policies = sample_policies_dir()
    files = {p.stem.split("_")[0]: p for p in sorted(policies.glob("*_1Hour.pt"))}
    if not files:
        raise FoldgateError(f"{policies}: no sample policies; run python data/make_sample_policies.py")
    symbols = {}
    for symbol, (fit, pf, cons, dd, peak) in SAMPLE_METRICS.items():
        if symbol not in files:
            continue
        n = 40
        symbols[symbol] = {
            "model": f"models/rl_symbols/{symbol}_1Hour.pt",
            "metrics": {
                "fitness_score": _history(fit, 0.1, n, peak),
                "profit_factor": _history(pf, 0.8, n),
                "consistency": _history(cons, cons * 0.5, n),
                "max_drawdown": _history(dd, dd * 2.5, n),
            },
            "checkpoints": [f"checkpoints/{symbol}_1Hour_step{(i + 1) * 5000}.pt" for i in range(n)],
            "train_start": "2025-05-01T00:00:00Z",
            "train_end": LATE_TRAIN_END.get(symbol, TRAIN_END),
        }
    # One malformed entry (a metric that is text, not a number): it must fail alone.
    # Its histories differ in length too, which is normal (docs/design.md 7) and not the fault.
    symbols["DOGEUSD"] = {
        "model": "models/rl_symbols/DOGEUSD_1Hour.pt",
        "metrics": {"fitness_score": [0.5, 0.6], "profit_factor": ["n/a"], "consistency": [0.7, 0.7],
                    "max_drawdown": [0.1, 0.1]},
    }
    summary = {"timeframe": "1Hour", "created": stamp, "symbols": symbols}
    archive = Path(workdir) / f"Alpaca_trading_trained_{stamp}.zip"
    # Fixed entry times: the same inputs give the same bytes, so a rerun finds its extract.
    def entry(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=(2026, 11, 1, 12, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        return info

    with atomic_open(archive, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
        zf.writestr(entry(f"Alpaca_trading/training_summary_{stamp}.json"), json.dumps(summary, indent=1))
        for symbol in symbols:
            if symbol in files:
                zf.writestr(entry(f"Alpaca_trading/models/rl_symbols/{symbol}_1Hour.pt"), files[symbol].read_bytes())
    return archive
