"""Evidence statistics of docs/design.md 6.1, per model, on the out-of-sample folds stitched.

Every formula of 6.1 lives here once. The formula functions (`bartlett_q`,
`sharpe_se`, `psr`, `min_trl_bars`, `cochran`, `expected_max_sharpe_61`) take scalars
or numpy arrays alike, so the operating-characteristic benchmark
(benchmarks/decision_oc.py) runs millions of simulated models through the very same
arithmetic that `evidence_summary` applies to one model.

Conventions where a statistic has no value (NaN here, None in the returned dicts):
- fewer than 2 bars, a non-finite return (a ruined curve) or a model that never
  traded: SR is NaN and so is everything derived from it;
- zero variance: SR 0 (as docs/design.md 6), skewness and kurtosis undefined (None); the
  autocorrelations are undefined too, so q = 1 (no serial correlation measured), and
  the variance factor 1 - g3 SR + (g4-1)/4 SR^2 is 1 at SR 0;
- a variance factor <= 0 (only a two-point distribution at SR = 2/g3 reaches it) has
  no standard error: se, PSR, the interval and the DSR are NaN.

The three distribution functions 6.1 needs (the normal CDF and quantile, the chi-square
survival function) are written here from the standard library (math.erfc,
statistics.NormalDist, and the closed forms of the chi-square tail for whole degrees of
freedom) rather than taken from scipy.special: importing scipy.special costs 0.24 s, a
quarter of a warm `foldgate backtest`'s budget (docs/design.md 10: < 1 s), for three
functions. tests/test_evidence.py holds them to scipy's on random and extreme inputs.
"""

from __future__ import annotations

import functools
import math
from statistics import NormalDist

import numpy as np

from kernels.metrics import (
    FM_CONSTANT,
    FM_MEAN,
    FM_SD,
    N_FOLD_MOMENTS,
    N_SERIES_MOMENTS,
    SM_CONSTANT,
    SM_FINITE,
    SM_MEAN,
    SM_S3,
    SM_S4,
    SM_SS,
    evidence_moments_nb,
)

from ..gating import LIVE_LEVEL_RANGE

EULER_GAMMA = 0.5772156649015329
MAX_LAGS = 24          # docs/design.md 6.1: longer lags make q noisy enough to inflate false LIVEs
Q_FLOOR = 0.05
CI_LEVEL = 0.90        # the reported Sharpe interval is two-sided 90%: SR +- PhiInv(0.95) se

# BUY_AND_HOLD_LIKE (docs/design.md 6.1): bar-weighted exposure at least this, and at most
# this many trades in every fold.
BH_LIKE_MIN_EXPOSURE = 0.95
BH_LIKE_MAX_TRADES_PER_FOLD = 1

EVIDENCE_KEYS = (
    "oos_folds", "lags", "q", "sr", "sr_annual", "sr_ci90", "psr0", "psr_hurdle",
    "hurdle_sharpe", "min_trl_bars", "min_trl_days", "cochran_q", "cochran_p", "bh_q",
    "bh_pass", "n_variants", "dsr", "buy_and_hold", "excess_sharpe",
)
EXTRA_KEYS = (
    "n_bars", "bars_per_year", "level", "se", "g3", "g4", "min_trl_reason", "never_traded",
    "fold_sharpe", "fold_sharpe_ci90",
)


_SQRT2 = math.sqrt(2.0)
_NORMAL = NormalDist()


def norm_cdf(x: float) -> float:
    """Standard normal CDF of one float: erfc keeps precision in the lower tail, where
    0.5 * (1 + erf) cancels to 0."""
    return 0.5 * math.erfc(-x / _SQRT2)


def _norm_ppf(p: float) -> float:
    if not 0.0 < p < 1.0:  # NaN falls through to the last case
        return -math.inf if p == 0.0 else math.inf if p == 1.0 else math.nan
    return _NORMAL.inv_cdf(p)


def _chi2_sf(k, x) -> float:
    """P(chi2 with k degrees of freedom > x), k a whole number >= 1: the regularised upper
    incomplete gamma Q(k/2, x/2) in closed form, exp(-h) sum_{i<k/2} h^i / i! for even k
    and erfc(sqrt h) + exp(-h) sum_{i=1..(k-1)/2} h^(i-1/2) / Gamma(i+1/2) for odd k (h =
    x/2); every term is positive, so the far tail keeps its relative precision."""
    k = int(k)
    if x != x or k < 1:
        return math.nan
    if x <= 0.0:
        return 1.0
    h = x / 2.0
    if k % 2 == 0:
        term = total = math.exp(-h)
        for i in range(1, k // 2):
            term *= h / i
            total += term
    else:
        total = math.erfc(math.sqrt(h))
        term = math.exp(-h) * math.sqrt(h) / math.gamma(1.5)
        for i in range(1, (k - 1) // 2 + 1):
            if i > 1:
                term *= h / (i - 0.5)
            total += term
    return min(1.0, total)


_PHI = np.frompyfunc(norm_cdf, 1, 1)
_PHI_INV = np.frompyfunc(_norm_ppf, 1, 1)
_CHI2_SF = np.frompyfunc(_chi2_sf, 2, 1)


def _floats_of(f, *args):
    """f (a frompyfunc) over float arrays, as float64; NaN results are values here, not
    numpy's "invalid value" warnings."""
    with np.errstate(invalid="ignore"):
        a = np.asarray(f(*args), dtype=np.float64)
    return a if a.ndim else float(a)


# ---------------------------------------------------------------------------------
# formulas (scalars or arrays)


def phi(x):
    """Standard normal CDF."""
    return _floats_of(_PHI, np.asarray(x, dtype=np.float64))


def phi_inv(p):
    """Standard normal quantile (-inf at 0, inf at 1, NaN outside)."""
    return _floats_of(_PHI_INV, np.asarray(p, dtype=np.float64))


def chi2_sf(k, x):
    """Chi-square survival function, k whole degrees of freedom >= 1 (NaN otherwise)."""
    return _floats_of(_CHI2_SF, np.asarray(k), np.asarray(x, dtype=np.float64))


@functools.lru_cache(maxsize=64)
def _z(p: float) -> float:
    # every model asks for the same two quantiles
    return float(phi_inv(p))


def n_lags(n: int) -> int:
    """L = min(24, floor(n / 4))."""
    return max(0, min(MAX_LAGS, int(n) // 4))


def bartlett_weights(lags: int) -> np.ndarray:
    """(1 - j / (L + 1)) for j = 1..L."""
    j = np.arange(1, lags + 1, dtype=np.float64)
    return 1.0 - j / (lags + 1.0)


def bartlett_q(acov, lags):
    """q = 1 + 2 sum_{j=1..L} (1 - j/(L+1)) rho_j, floored at Q_FLOOR; acov[..., 0..L]
    are the autocovariances (1/n). q = 1 where the variance is 0 (no rho to measure).
    lags is one L, or one per row of acov (entries past a row's L are then ignored)."""
    acov = np.asarray(acov, dtype=np.float64)
    g0 = acov[..., 0]
    lags = np.asarray(lags, dtype=np.int64)
    if lags.ndim == 0:
        w = bartlett_weights(int(lags))
        part = acov[..., 1:int(lags) + 1]
    else:
        j = np.arange(1, acov.shape[-1], dtype=np.float64)
        ell = lags[..., None].astype(np.float64)
        w = np.where(j <= ell, 1.0 - j / (ell + 1.0), 0.0)
        part = acov[..., 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (part * w).sum(axis=-1) / g0
    q = np.where(g0 > 0.0, np.maximum(1.0 + 2.0 * s, Q_FLOOR), 1.0)
    return q if q.ndim else float(q)


def variance_factor(sr, g3, g4):
    """1 - g3 SR + (g4 - 1)/4 SR^2 (g4 raw kurtosis); exactly 1 at SR 0 whatever the
    moments, so a zero-variance series (moments undefined) still has one."""
    sr = np.asarray(sr, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        f = np.where(sr == 0.0, 1.0, 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr)
    return f if f.ndim else float(f)


def sharpe_se(sr, g3, g4, q, n):
    """se = sqrt(q (1 - g3 SR + (g4-1)/4 SR^2) / (n - 1)); NaN where the factor <= 0 or
    n < 2."""
    v = np.asarray(q * variance_factor(sr, g3, g4), dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.where((v > 0.0) & (n >= 2), np.sqrt(v / (n - 1.0)), np.nan)
    return se if se.ndim else float(se)


def psr(sr, se, h=0.0):
    """PSR(h) = Phi((SR - h) / se), h per bar."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return phi((np.asarray(sr, dtype=np.float64) - h) / se)


def min_trl_bars(sr, g3, g4, q, h, z):
    """MinTRL = 1 + q (1 - g3 SR + (g4-1)/4 SR^2) (z / (SR - h))^2 bars; NaN where
    SR <= h (no length of this track record reaches the level); inf where SR is above h
    by so little that the square overflows."""
    sr = np.asarray(sr, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        m = 1.0 + q * variance_factor(sr, g3, g4) * (z / (sr - h)) ** 2
        m = np.where(sr > h, m, np.nan)
    return m if m.ndim else float(m)


def cochran(fold_sr, fold_n, qf):
    """Cochran's Q over folds along the last axis: se_k^2 = qf / (n_k - 1) with qf =
    q (1 - g3 SR + (g4-1)/4 SR^2) of the stitched series; w_k = 1/se_k^2; pooled =
    the inverse-variance mean; Q = sum w_k (SR_k - pooled)^2; p = chi2 sf(Q, K' - 1).
    Folds with NaN SR_k (fewer than 2 bars) are left out of K'. (Q, p), NaN when K' < 2
    or qf is not > 0."""
    fold_sr = np.asarray(fold_sr, dtype=np.float64)
    fold_n = np.asarray(fold_n, dtype=np.float64)
    qf = np.asarray(qf, dtype=np.float64)[..., None]
    ok = np.isfinite(fold_sr) & (fold_n >= 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(ok, (fold_n - 1.0) / qf, 0.0)
        x = np.where(ok, fold_sr, 0.0)
        sw = w.sum(axis=-1)
        pooled = (w * x).sum(axis=-1) / sw
        stat = (w * (x - pooled[..., None]) ** 2).sum(axis=-1)
    k = ok.sum(axis=-1)
    valid = (k >= 2) & (qf[..., 0] > 0.0)
    stat = np.where(valid, stat, np.nan)
    p = np.where(valid, chi2_sf(np.maximum(k - 1, 1), stat), np.nan)
    if stat.ndim == 0:
        return float(stat), float(p)
    return stat, p


def expected_max_z(n_variants: int) -> float:
    """(1 - gamma) PhiInv(1 - 1/N) + gamma PhiInv(1 - 1/(N e)): the expected maximum of N
    standard normals (Bailey and Lopez de Prado); N >= 2."""
    inv = NormalDist().inv_cdf
    n = n_variants
    return (1.0 - EULER_GAMMA) * inv(1.0 - 1.0 / n) + EULER_GAMMA * inv(1.0 - 1.0 / (n * math.e))


def expected_max_sharpe_61(n_variants: int, v: float, h: float = 0.0) -> float:
    """SR* = h + sqrt(V) ((1 - gamma) PhiInv(1 - 1/N) + gamma PhiInv(1 - 1/(N e)))."""
    return h + math.sqrt(v) * expected_max_z(n_variants)


# ---------------------------------------------------------------------------------
# per model


def _f(x) -> float | None:
    """Python float, NaN/inf -> None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _series_moments(pieces, lags):
    """evidence_moments_nb over [(returns, fold_lengths)]: (stats, acov, fold_stats,
    fold_off), the returns as float64."""
    sizes = np.array([r.size for r, _ in pieces], dtype=np.int64)
    n_folds = np.array([lens.size for _, lens in pieces], dtype=np.int64)
    r_off = np.zeros(sizes.size + 1, dtype=np.int64)
    np.cumsum(sizes, out=r_off[1:])
    fold_off = np.zeros(n_folds.size + 1, dtype=np.int64)
    np.cumsum(n_folds, out=fold_off[1:])
    flat = np.concatenate([r for r, _ in pieces]) if pieces else np.zeros(0)
    fold_len = np.concatenate([lens for _, lens in pieces]) if pieces else np.zeros(0, np.int64)
    lags = np.asarray(lags, dtype=np.int64)
    if lags.size and (lags.min() < 0 or lags.max() > MAX_LAGS):  # the kernel writes acov[i, :lags[i] + 1]
        raise ValueError(f"lags must be in 0..{MAX_LAGS}, got {lags.min()}..{lags.max()}")
    stats = np.empty((sizes.size, N_SERIES_MOMENTS))
    acov = np.zeros((sizes.size, MAX_LAGS + 1))
    fold_stats = np.empty((int(fold_off[-1]), N_FOLD_MOMENTS))
    evidence_moments_nb(np.ascontiguousarray(flat, dtype=np.float64), r_off,
                        np.ascontiguousarray(fold_len, dtype=np.int64), fold_off,
                        lags, stats, acov, fold_stats)
    return stats, acov, fold_stats, fold_off


def shape_moments(r: np.ndarray) -> tuple[float, float, float]:
    """(SR per bar = mean / std ddof 1, g3 skewness, g4 raw kurtosis) of a series with
    at least 2 values and nonzero variance, from the same kernel as the evidence
    statistics: the one place both sections' skewness and kurtosis are computed
    (docs/design.md 6 and 6.1)."""
    r = np.asarray(r, dtype=np.float64)
    stats, _, _, _ = _series_moments([(r, np.zeros(0, np.int64))], [0])
    sr, g3, g4 = _shape(stats[0], r.size)
    return float(sr), float(g3), float(g4)


def _shape(stats, n):
    """(SR per bar, g3, g4) from evidence_moments_nb's per-series columns (arrays or
    one row); zero variance: SR 0, g3 and g4 NaN."""
    ss, mean = stats[..., SM_SS], stats[..., SM_MEAN]
    constant = stats[..., SM_CONSTANT] > 0
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        m2 = ss / n
        g3 = np.where(constant, np.nan, stats[..., SM_S3] / n / m2 ** 1.5)
        g4 = np.where(constant, np.nan, stats[..., SM_S4] / n / (m2 * m2))
        sr = np.where(constant, 0.0, mean / np.sqrt(ss / (n - 1.0)))
    return sr, g3, g4


def _check_inputs(returns, fold_lengths, bars_per_year, level):
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"returns must be 1-D, got shape {r.shape}")
    lens = np.asarray(list(fold_lengths), dtype=np.int64) if len(fold_lengths) else np.zeros(0, np.int64)
    if lens.size and lens.min() < 0:
        raise ValueError(f"fold_lengths must be >= 0, got {lens.tolist()}")
    if int(lens.sum()) != r.size:
        raise ValueError(f"fold_lengths sum to {int(lens.sum())} but there are {r.size} returns")
    bpy = float(bars_per_year)
    if not (math.isfinite(bpy) and bpy > 0):
        raise ValueError(f"bars_per_year must be finite and > 0, got {bars_per_year!r}")
    lo, hi = LIVE_LEVEL_RANGE
    if not lo < float(level) < hi:
        raise ValueError(f"level must be in ({lo:g}, {hi:g}), got {level!r}")
    return r, lens, bpy


def evidence_summary(returns, fold_lengths, bars_per_year, *, hurdle_sharpe: float = 0.0,
                     level: float = 0.95, traded: bool = True) -> dict:
    """docs/design.md 6.1's `summary.evidence` of one model, plus EXTRA_KEYS.

    returns: per-bar returns of the out-of-sample folds stitched in order (the excess
    over buy-and-hold when the benchmark is "buy_and_hold": the caller passes the
    difference); fold_lengths: each out-of-sample fold's bar count (they sum to
    len(returns)); hurdle_sharpe: ANNUAL hurdle; level: the LIVE PSR level, whose
    quantile MinTRL uses; traded=False: the model never traded, so SR is NaN.
    bh_q, bh_pass, buy_and_hold and excess_sharpe are None (the run fills them);
    n_variants 1 and dsr = psr_hurdle until `apply_variants` says otherwise."""
    return evidence_summaries([(returns, fold_lengths, bars_per_year, traded)],
                              hurdle_sharpe=hurdle_sharpe, level=level)[0]


EVIDENCE_BATCH = 1024
"""Models per kernel call of `evidence_summaries`: their returns are copied into one
array, which this bounds (~35 MB for 180 days of hourly bars)."""


def evidence_summaries(models, *, hurdle_sharpe: float = 0.0, level: float = 0.95) -> list[dict]:
    """`evidence_summary` of many models at once: models is [(returns, fold_lengths,
    bars_per_year, traded)]. One kernel call for the moments of up to EVIDENCE_BATCH of
    them, then each formula once over arrays, so a run of thousands of (model, scenario)
    pairs pays numpy's per-call cost a few dozen times instead of a few dozen times per
    pair."""
    if not math.isfinite(float(hurdle_sharpe)):
        raise ValueError(f"hurdle_sharpe must be finite, got {hurdle_sharpe!r}")
    models = list(models)
    out = []
    for at in range(0, len(models), EVIDENCE_BATCH):
        out += _evidence_batch(models[at:at + EVIDENCE_BATCH], float(hurdle_sharpe), level)
    return out


def _evidence_batch(models, hurdle_sharpe: float, level: float) -> list[dict]:
    checked = [_check_inputs(r, lens, bpy, level) for r, lens, bpy, _ in models]
    if not checked:
        return []
    traded = np.array([bool(m[3]) for m in models])
    n = np.array([r.size for r, _, _ in checked], dtype=np.int64)
    bpy = np.array([b for _, _, b in checked])
    lags = np.array([n_lags(k) for k in n], dtype=np.int64)
    stats, acov, fold_stats, fold_off = _series_moments([(r, lens) for r, lens, _ in checked], lags)

    ann = np.sqrt(bpy)
    h = float(hurdle_sharpe) / ann
    ok = traded & (n >= 2) & (stats[:, SM_FINITE] > 0)  # a Sharpe ratio exists
    sr, g3, g4 = _shape(stats, n)
    sr, g3, g4 = (np.where(ok, x, np.nan) for x in (sr, g3, g4))
    # all returns equal: no autocorrelation to measure (rounding would invent one)
    q = np.where(ok, np.where(stats[:, SM_CONSTANT] > 0, 1.0, bartlett_q(acov, lags)), np.nan)
    se = np.where(ok, sharpe_se(sr, g3, g4, q, n), np.nan)
    z_level = _z(float(level))
    z90 = _z(0.5 + CI_LEVEL / 2.0)
    qf = np.where(np.isfinite(sr), q * variance_factor(sr, g3, g4), np.nan)
    has_se = np.isfinite(se)
    psr0 = np.where(has_se, psr(sr, se, 0.0), np.nan)
    psr_h = np.where(has_se, psr(sr, se, h), np.nan)
    mtrl = np.where(has_se, min_trl_bars(sr, g3, g4, q, h, z_level), np.nan)

    # folds as a (models, most folds) table, NaN-padded: Cochran's Q leaves those out
    k_max = int(np.diff(fold_off).max())
    fold_n = np.zeros((n.size, k_max))
    fold_sr = np.full((n.size, k_max), np.nan)
    rows = np.repeat(np.arange(n.size), np.diff(fold_off))
    cols = np.arange(fold_off[-1]) - fold_off[rows]
    lens_flat = np.concatenate([lens for _, lens, _ in checked]).astype(np.float64)
    fold_n[rows, cols] = lens_flat
    with np.errstate(invalid="ignore", divide="ignore"):
        one = np.where(fold_stats[:, FM_CONSTANT] > 0, 0.0, fold_stats[:, FM_MEAN] / fold_stats[:, FM_SD])
        fold_sr[rows, cols] = np.where((lens_flat >= 2) & np.isfinite(sr[rows]), one, np.nan)
        fse = np.where((fold_n >= 2) & (qf[:, None] > 0), np.sqrt(qf[:, None] / (fold_n - 1.0)), np.nan)
    if k_max:
        cq, cp = cochran(fold_sr, fold_n, qf)
    else:
        cq = cp = np.full(n.size, np.nan)

    lo90, hi90 = (sr - z90 * se) * ann, (sr + z90 * se) * ann
    f_lo, f_hi = (fold_sr - z90 * fse) * ann[:, None], (fold_sr + z90 * fse) * ann[:, None]
    columns = {name: _floats(x) for name, x in (
        ("q", q), ("sr", sr), ("sr_annual", sr * ann), ("lo90", lo90), ("hi90", hi90), ("psr0", psr0),
        ("psr_hurdle", psr_h), ("min_trl_bars", mtrl), ("min_trl_days", mtrl * 365.25 / bpy),
        ("cochran_q", cq), ("cochran_p", cp), ("se", se), ("g3", g3), ("g4", g4))}
    fold_sharpe, fold_lo, fold_hi = _floats(fold_sr * ann[:, None]), _floats(f_lo), _floats(f_hi)
    out = []
    for i, (r, lens, b) in enumerate(checked):
        c = {name: col[i] for name, col in columns.items()}
        k = int(lens.size)
        out.append({
            "oos_folds": k,
            "lags": int(lags[i]),
            "q": c["q"],
            "sr": c["sr"],
            "sr_annual": c["sr_annual"],
            "sr_ci90": [c["lo90"], c["hi90"]],
            "psr0": c["psr0"],
            "psr_hurdle": c["psr_hurdle"],
            "hurdle_sharpe": float(hurdle_sharpe),
            "min_trl_bars": c["min_trl_bars"],
            "min_trl_days": c["min_trl_days"],
            "cochran_q": c["cochran_q"],
            "cochran_p": c["cochran_p"],
            "bh_q": None,
            "bh_pass": None,
            "n_variants": 1,
            "dsr": c["psr_hurdle"],
            "buy_and_hold": None,
            "excess_sharpe": None,
            "n_bars": int(n[i]),
            "bars_per_year": b,
            "level": float(level),
            "se": c["se"],
            "g3": c["g3"],
            "g4": c["g4"],
            "min_trl_reason": None if c["min_trl_bars"] is not None else _no_min_trl(
                bool(traded[i]), int(n[i]), bool(stats[i, SM_FINITE] > 0), c["se"], float(sr[i]),
                float(h[i]), float(ann[i]), float(hurdle_sharpe), level),
            "never_traded": not traded[i],
            "fold_sharpe": fold_sharpe[i][:k],
            "fold_sharpe_ci90": [list(p) for p in zip(fold_lo[i][:k], fold_hi[i][:k])],
        })
    return out


def _floats(x: np.ndarray) -> list:
    """Python floats, NaN/inf -> None, in one pass (rows of a 2-D array as lists)."""
    x = np.asarray(x, dtype=np.float64)
    values = np.where(np.isfinite(x), x, np.nan).tolist()
    if x.ndim == 1:
        return [None if v != v else v for v in values]
    return [[None if v != v else v for v in row] for row in values]


def _no_min_trl(traded: bool, n: int, finite: bool, se, sr: float, h: float, ann: float,
                hurdle_sharpe: float, level: float) -> str:
    """Why a model has no MinTRL, in words."""
    if not traded:
        return "the model never traded in the out-of-sample folds"
    if n < 2:
        return f"{n} out-of-sample bar{'s' if n != 1 else ''}: a Sharpe ratio needs at least 2"
    if not finite:
        return "a return is not finite (the equity curve was ruined): no Sharpe ratio"
    if se is None:
        return "the Sharpe ratio has no standard error (variance factor <= 0)"
    if sr > h:  # by so little that (z / (SR - h))^2 is past the float range
        return (f"Sharpe {sr * ann:.2g} is so close to the hurdle {hurdle_sharpe:g} that the track "
                f"record it needs overflows")
    return (f"Sharpe {sr * ann:.2f} <= hurdle {hurdle_sharpe:g}: no track record "
            f"length reaches PSR {level:g}")


# ---------------------------------------------------------------------------------
# across models


def _num(x) -> float:
    return math.nan if x is None else float(x)


def apply_variants(evidences: list[dict]) -> None:
    """Fill `dsr` and `n_variants` of the variants of ONE (symbol, timeframe), in place
    (docs/design.md 6.1): N counts every variant; V_noise = median q/(n-1) and V = max(var
    ddof 1 of the SRs, V_noise) for N >= 3, V_noise for N = 2, over the variants with a
    Sharpe ratio (a never-traded one counts in N, not in V); DSR = Phi((SR - SR*)/se).
    One variant: dsr = psr_hurdle."""
    n = len(evidences)
    if n == 0:
        return
    for e in evidences:
        e["n_variants"] = n
    if n == 1:
        evidences[0]["dsr"] = evidences[0].get("psr_hurdle")
        return
    live = [e for e in evidences if e.get("sr") is not None and e.get("q") is not None
            and (e.get("n_bars") or 0) >= 2]
    if not live:
        for e in evidences:
            e["dsr"] = None
        return
    srs = np.array([float(e["sr"]) for e in live])
    v_noise = float(np.median([float(e["q"]) / (e["n_bars"] - 1) for e in live]))
    v = max(float(np.var(srs, ddof=1)), v_noise) if n >= 3 and srs.size >= 2 else v_noise
    for e in evidences:
        sr, se = _num(e.get("sr")), _num(e.get("se"))
        if not (math.isfinite(sr) and math.isfinite(se)):
            e["dsr"] = None
            continue
        hurdle = _num(e.get("hurdle_sharpe") or 0.0)
        h = hurdle / math.sqrt(float(e["bars_per_year"])) if hurdle else 0.0
        e["dsr"] = _f(psr(sr, se, expected_max_sharpe_61(n, v, h)))


def benjamini_hochberg(pvalues, q_fdr: float = 0.10) -> tuple[list[float], list[bool]]:
    """BH q-values (adjusted p-values: min over j >= i of p_(j) m / j, at most 1) and
    pass = q-value <= q_fdr, over the p-values that are finite; a missing (None/NaN)
    one gets NaN and False and does not count in m."""
    p = np.array([_num(x) for x in pvalues], dtype=np.float64)
    qv = np.full(p.size, math.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m:
        order = ok[np.argsort(p[ok], kind="stable")]
        adj = p[order] * m / np.arange(1, m + 1)
        adj = np.minimum.accumulate(adj[::-1])[::-1]
        qv[order] = np.minimum(adj, 1.0)
    return [float(x) for x in qv], [bool(np.isfinite(x) and x <= q_fdr) for x in qv]


def symbol_pvalue(evidence: dict) -> float:
    """1 - DSR (the DSR is PSR(hurdle) for a single variant); 1.0 when SR is NaN."""
    if evidence.get("sr") is None or evidence.get("dsr") is None:
        return 1.0
    return 1.0 - float(evidence["dsr"])


def best_variant(evidences: list[dict]) -> int:
    """Index of the variant with the highest DSR (the first on ties; a missing DSR
    ranks last; 0 when none has one)."""
    if not evidences:
        raise ValueError("best_variant needs at least one variant")
    best, best_i = -math.inf, 0
    for i, e in enumerate(evidences):
        d = _num(e.get("dsr"))
        if math.isfinite(d) and d > best:
            best, best_i = d, i
    return best_i


def is_buy_and_hold_like(exposure_bar_weighted: float, trades_per_fold: list[int]) -> bool:
    """BUY_AND_HOLD_LIKE: exposure >= 0.95 and at most one trade in every fold."""
    if exposure_bar_weighted is None or not math.isfinite(float(exposure_bar_weighted)):
        return False
    return (float(exposure_bar_weighted) >= BH_LIKE_MIN_EXPOSURE
            and all(int(t) <= BH_LIKE_MAX_TRADES_PER_FOLD for t in trades_per_fold))


__all__ = [
    "EVIDENCE_KEYS", "EXTRA_KEYS", "MAX_LAGS", "Q_FLOOR", "CI_LEVEL", "BH_LIKE_MIN_EXPOSURE",
    "BH_LIKE_MAX_TRADES_PER_FOLD", "evidence_summary", "apply_variants", "benjamini_hochberg",
    "symbol_pvalue", "best_variant", "evidence_summaries", "shape_moments", "norm_cdf", "chi2_sf", "is_buy_and_hold_like", "bartlett_q", "bartlett_weights",
    "n_lags", "variance_factor", "sharpe_se", "psr", "min_trl_bars", "cochran",
    "expected_max_sharpe_61", "expected_max_z", "phi", "phi_inv",
]
