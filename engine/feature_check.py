"""`foldgate check-features`: the lookahead and start-dependence check
(engine/lookahead.py) run on features by name, as engine.features computes them
(built-ins, stockstats' and installed plugins' alike)."""

from __future__ import annotations

from typing import Sequence

from .feature_plugins import unverified
from .lookahead import (DEFAULT_CUTS, DEFAULT_STARTS, FeatureVerdict, Move,  # noqa: F401 - this module's API
                        check_values, synthetic_bars)
from .lookahead import default_length as _length_for

# Built-in features the check covers when no names are given: every kind, several
# windows, and stockstats' names as FinRL uses them.
BUILTIN_CHECK_NAMES = (
    "ret_1", "ret_4", "vol_2", "vol_24", "sma_ratio_1", "sma_ratio_12", "rsi_1", "rsi_14",
    "hl_range", "volume_z_1", "volume_z_24", "hour_sin", "hour_cos", "dow_sin", "dow_cos",
    "stockstats:macd", "stockstats:macds", "stockstats:macdh", "stockstats:boll",
    "stockstats:boll_ub", "stockstats:boll_lb", "stockstats:rsi_30", "stockstats:rsi_1",
    "stockstats:cci_30", "stockstats:dx_30", "stockstats:dx_1", "stockstats:close_30_sma",
    "stockstats:close_60_sma", "stockstats:close_10_ema", "stockstats:atr_14",
    "stockstats:wr_14",
)


def check_feature(bars, name: str, *, cuts: int = DEFAULT_CUTS, starts: int = DEFAULT_STARTS,
                  seed: int = 0, rtol: float = 0.0) -> FeatureVerdict:
    """Compute `name` on `bars` and on truncated and late-started copies; every value
    that moves (beyond rtol, relative; 0 = bit for bit) is a Move. Naming a plugin
    feature here does not trigger its gate: this is the check."""
    # `foldgate --help` imports every command's module, and needs no Numba kernels:
    # lazy: engine.features loads the Numba feature kernels (~0.4 s)
    from .features import compute_features, feature_lookback

    with unverified([name]):
        look = feature_lookback(name)
        return check_values(bars, name, look, lambda b: compute_features(b, [name], verify_plugins=False)[:, 0],
                            cuts=cuts, starts=starts, seed=seed, rtol=rtol)


def default_length(names: Sequence[str]) -> int:
    """Bars of the synthetic series: room for the longest lookback three times over.
    Parsing the names here does not trigger a plugin's check (this is the check)."""
    from .features import feature_lookback  # lazy: as in check_feature

    with unverified(names):
        return _length_for(feature_lookback(x) for x in names)


def check_features(names: Sequence[str] | None = None, bars=None, *, cuts: int = DEFAULT_CUTS,
                   starts: int = DEFAULT_STARTS, seed: int = 0, rtol: float = 0.0) -> list[FeatureVerdict]:
    """check_feature for each name (every built-in when None) on `bars` (a synthetic
    series long enough for the longest lookback when None)."""
    names = list(BUILTIN_CHECK_NAMES if not names else names)
    if bars is None:
        bars = synthetic_bars(default_length(names), seed=seed)
    return [check_feature(bars, x, cuts=cuts, starts=starts, seed=seed, rtol=rtol) for x in names]
