"""Walk-forward summary, probabilistic and deflated Sharpe ratios (docs/design.md 6); the
evidence statistics of docs/design.md 6.1 are in `engine.metrics.evidence`, re-exported here.

Per-fold metrics come from `kernels.metrics.trajectory_metrics` (re-exported here).
The statistics below and the evidence module use numpy and the standard library only
(the normal CDF is `evidence.norm_cdf`, math.erfc; the evidence module says why not scipy).

Sharpe ratios inside PSR and DSR are per bar, not annualised: SR = mean(r) / std(r,
ddof 1) over the stitched fold returns, as in Bailey and Lopez de Prado, with the
sample skewness and RAW kurtosis (normal = 3) from population moments (scipy's
`skew(r)` and `kurtosis(r, fisher=False)` with their default bias=True).

Conventions where the statistics have no value (returned as NaN, written as null):
- PSR and DSR are NaN with fewer than 2 returns, any non-finite return (a ruined
  curve) or all returns equal (std 0: no Sharpe ratio to test);
- PSR is NaN when 1 - skew*SR + (kurt-1)/4*SR^2 <= 0, which only a two-point return
  distribution at SR = 2/skew can reach (its estimate has no asymptotic variance);
- DSR with one model in the run (N = 1) or trial Sharpe ratios that do not vary
  (V = 0) has SR* = 0, i.e. DSR = PSR against 0: with nothing to choose among there
  is no selection bias to deflate. The formula's Phi^-1(1 - 1/N) is -inf at N = 1,
  so this is a definition, not a limit.
"""

from __future__ import annotations

import math

import numpy as np

from kernels.metrics import (
    METRIC_NAMES,
    trajectory_metrics,
    trajectory_returns,
    trajectory_returns_flat,
)

from .evidence import (  # docs/design.md 6.1: one home for its formulas
    EULER_GAMMA,
    apply_variants,
    benjamini_hochberg,
    best_variant,
    evidence_summaries,
    norm_cdf,
    evidence_summary,
    expected_max_z,
    shape_moments,
    is_buy_and_hold_like,
    symbol_pvalue,
)

SUMMARY_KEYS = (
    "folds",
    "positive_folds",
    "sharpe_min",
    "sharpe_max",
    "sharpe_mean",
    "sharpe_std",
    "return_min",
    "return_max",
    "return_mean",
    "psr",
    "in_sample_folds",
)

_INT_METRICS = frozenset({"n_trades", "clipped_shorts", "bars"})


def _clean_returns(returns) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        r = r.ravel()
    return r


def per_bar_sharpe(returns) -> float:
    """mean(r) / std(r, ddof 1), not annualised; NaN with fewer than 2 returns, a
    non-finite return or all returns equal."""
    r = _clean_returns(returns)
    if r.size < 2 or not np.all(np.isfinite(r)) or r.min() == r.max():
        return math.nan
    return float(r.mean() / r.std(ddof=1))


def _moments(r: np.ndarray) -> tuple[float, float, float]:
    """(per-bar SR, skewness, raw kurtosis); NaN SR for degenerate series."""
    sr = per_bar_sharpe(r)
    if math.isnan(sr):
        return math.nan, math.nan, math.nan
    _, skew, kurt = shape_moments(r)
    return sr, skew, kurt


def probabilistic_sharpe_ratio(returns, sr_benchmark: float = 0.0) -> float:
    """P(true per-bar SR > sr_benchmark) given these returns (Bailey and Lopez de
    Prado): Phi((SR - SR*) sqrt(n-1) / sqrt(1 - skew SR + (kurt-1)/4 SR^2)), kurt raw.
    NaN for degenerate input (see the module docstring)."""
    r = _clean_returns(returns)
    sr, skew, kurt = _moments(r)
    if math.isnan(sr) or not math.isfinite(sr_benchmark):
        return math.nan
    denom = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    if not denom > 0.0:
        return math.nan
    z = (sr - sr_benchmark) * math.sqrt(r.size - 1) / math.sqrt(denom)
    return norm_cdf(z)


def expected_max_sharpe(trial_sharpes) -> float:
    """SR* = sqrt(V) ((1-gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e))): the
    expected best per-bar SR among N unskilled trials. N counts every trial; V is the
    population variance (ddof 0) of the finite trial SRs (a model whose SR is
    undefined was still tried). 0 when N = 1 or V = 0 (fewer than 2 finite SRs
    count as V = 0)."""
    t = np.asarray(trial_sharpes, dtype=np.float64).ravel()
    n = t.size
    if n == 0:
        raise ValueError("deflated Sharpe ratio needs at least one trial Sharpe ratio "
                         "(the model's own)")
    finite = t[np.isfinite(t)]
    v = float(np.var(finite)) if finite.size >= 2 else 0.0
    if n == 1 or v == 0.0:
        return 0.0
    return math.sqrt(v) * expected_max_z(n)


def deflated_sharpe_ratio(returns, trial_sharpes) -> float:
    """Section 6's run-wide DSR, kept for the API; docs/design.md 6.1's DSR across the
    variants of one symbol is `apply_variants`.

    PSR of `returns` against SR* = expected_max_sharpe(trial_sharpes), where
    trial_sharpes holds the per-bar SR (per_bar_sharpe of the stitched fold returns)
    of every model in the run, this one included: N = len(trial_sharpes)."""
    return probabilistic_sharpe_ratio(returns, expected_max_sharpe(trial_sharpes))


def _value(metrics: dict, name: str, j: int) -> float:
    try:
        v = metrics[name]
    except KeyError:
        raise ValueError(f"fold {j} metrics have no {name!r}") from None
    return math.nan if v is None else float(v)


def walk_forward_summary(fold_metrics: list[dict], fold_returns: list[np.ndarray],
                         in_sample: list[bool] | None = None) -> dict:
    """Summary of K folds (docs/design.md 6), keys SUMMARY_KEYS:
    folds K; positive_folds (total_return > 0); sharpe_min/max/mean/std (ddof 1, NaN
    with one fold); return_min/max/mean of total_return; psr of all fold returns
    stitched in order; in_sample_folds (how many folds are flagged in-sample).

    fold_metrics: one dict per fold with at least sharpe and total_return (None is
    read as NaN, so dicts already cleaned for JSON work). A NaN fold Sharpe (ruined
    fold) makes the Sharpe statistics NaN rather than hiding the fold."""
    k = len(fold_metrics)
    if k == 0:
        raise ValueError("walk-forward summary needs at least one fold")
    if len(fold_returns) != k:
        raise ValueError(f"{k} folds of metrics but {len(fold_returns)} return series")
    if in_sample is None:
        in_sample = [False] * k
    if len(in_sample) != k:
        raise ValueError(f"{k} folds but {len(in_sample)} in-sample flags")
    sharpe = np.array([_value(m, "sharpe", j) for j, m in enumerate(fold_metrics)])
    ret = np.array([_value(m, "total_return", j) for j, m in enumerate(fold_metrics)])
    stitched = np.concatenate([_clean_returns(r) for r in fold_returns])
    return {
        "folds": k,
        "positive_folds": int(np.count_nonzero(ret > 0.0)),
        "sharpe_min": float(np.min(sharpe)),
        "sharpe_max": float(np.max(sharpe)),
        "sharpe_mean": float(np.mean(sharpe)),
        "sharpe_std": float(np.std(sharpe, ddof=1)) if k >= 2 else math.nan,
        "return_min": float(np.min(ret)),
        "return_max": float(np.max(ret)),
        "return_mean": float(np.mean(ret)),
        "psr": probabilistic_sharpe_ratio(stitched),
        "in_sample_folds": int(sum(bool(x) for x in in_sample)),
    }


def metrics_rows(metrics: dict[str, np.ndarray]) -> list[dict]:
    """trajectory_metrics' {name: array} -> one {name: value} dict per trajectory,
    counts as int, the rest as float (NaN kept: the report writes it as null)."""
    names = [n for n in METRIC_NAMES if n in metrics]
    # a column at a time to Python numbers (one tolist each), not a numpy scalar per value
    columns = [np.asarray(metrics[n]).astype(np.int64 if n in _INT_METRICS else np.float64).tolist()
               for n in names]
    return [dict(zip(names, row)) for row in zip(*columns)]


__all__ = [
    "METRIC_NAMES", "SUMMARY_KEYS", "EULER_GAMMA", "trajectory_metrics",
    "trajectory_returns", "trajectory_returns_flat", "walk_forward_summary",
    "probabilistic_sharpe_ratio", "deflated_sharpe_ratio", "expected_max_sharpe",
    "per_bar_sharpe", "norm_cdf", "metrics_rows", "evidence_summary", "evidence_summaries", "apply_variants",
    "benjamini_hochberg", "symbol_pvalue", "best_variant", "is_buy_and_hold_like",
]
