"""Per-trajectory metrics (docs/design.md 6) from the simulation kernel's flat outputs.

Inputs are the arrays `kernels.simulate.simulate` returns: one equity slot per
trajectory, `[C, E_s0, ..., E_{e-1}]` at `traj_eq_off[i] : traj_eq_off[i+1]`, trade
rows `(entry_price, exit_price, pnl, commission)` from `traj_trade_off[i]`, `n_trades[i]`
of them, and `stats` rows `(exposure_bars, traded_notional, clipped_shorts, n_fills)`.

Returns are r_t = E_t / E_{t-1} - 1 over consecutive values of the slot, so the first
return is measured against C. Conventions where a formula has no value:
- sharpe is 0 with fewer than 2 returns or when all returns are equal (std 0);
- sortino is 0 with no returns or no negative return (denominator 0);
- win_rate is NaN with no trades; profit_factor is NaN when gross_loss is 0
  (all losers give profit_factor 0, not NaN);
- a return after an equity value <= 0 is undefined (NaN): a ruined curve has NaN
  sharpe and sortino, while total_return and max_drawdown (which may exceed 1) stay
  finite;
- exposure is 0 for a trajectory of 0 bars (never produced by the simulator).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

METRIC_NAMES = (
    "total_return",
    "max_drawdown",
    "sharpe",
    "sortino",
    "n_trades",
    "win_rate",
    "gross_profit",
    "gross_loss",
    "profit_factor",
    "exposure",
    "turnover",
    "clipped_shorts",
    "bars",
)
N_METRICS = len(METRIC_NAMES)

# Row indices into the kernel's (N_METRICS, n_traj) output, in METRIC_NAMES order.
_TOTAL_RETURN, _MAX_DD, _SHARPE, _SORTINO, _N_TRADES, _WIN_RATE = 0, 1, 2, 3, 4, 5
_GROSS_PROFIT, _GROSS_LOSS, _PROFIT_FACTOR, _EXPOSURE, _TURNOVER = 6, 7, 8, 9, 10
_CLIPPED, _BARS = 11, 12


@njit(cache=True)
def _return_nb(prev, cur):
    # Equity at or below zero means the account is ruined; a ratio of two such values
    # would read as a gain, so the return is undefined instead.
    if prev <= 0.0:
        return np.nan
    return cur / prev - 1.0


@njit(cache=True, parallel=True)
def _returns_nb(equity, traj_eq_off, out):
    """Flat returns: trajectory i's slot of n+1 equity values gives n returns at
    out[traj_eq_off[i] - i : traj_eq_off[i+1] - i - 1]."""
    n_traj = traj_eq_off.shape[0] - 1
    for i in prange(n_traj):
        a = traj_eq_off[i]
        b = traj_eq_off[i + 1]
        o = a - i
        for t in range(a + 1, b):
            out[o + t - a - 1] = _return_nb(equity[t - 1], equity[t])


@njit(cache=True)
def _one_trajectory_nb(equity, a, b, trade_float, t0, nt, stats_row, capital, bpy, out, i):
    bars = b - a - 1
    c0 = equity[a]

    # Equity path: total return and drawdown against max(C, running peak).
    peak = capital
    max_dd = 0.0
    for t in range(a + 1, b):
        e = equity[t]
        if e > peak:
            peak = e
        dd = 1.0 - e / peak
        if dd > max_dd:
            max_dd = dd
    end_equity = equity[b - 1] if bars > 0 else c0
    out[_TOTAL_RETURN, i] = end_equity / capital - 1.0
    out[_MAX_DD, i] = max_dd

    # Two passes over the returns (mean, then squared deviations) keep the std
    # accurate when returns are tiny next to their mean.
    n = bars
    total = 0.0
    downside = 0.0
    rmin = np.inf
    rmax = -np.inf
    undefined = False
    for t in range(a + 1, b):
        r = _return_nb(equity[t - 1], equity[t])
        if np.isnan(r):
            undefined = True
            break
        total += r
        if r < 0.0:
            downside += r * r
        if r < rmin:
            rmin = r
        if r > rmax:
            rmax = r
    ann = np.sqrt(bpy)
    if undefined:
        sharpe = np.nan
        sortino = np.nan
    else:
        mean = total / n if n > 0 else 0.0
        # All-equal returns have std exactly 0; testing that directly avoids a
        # rounding-noise std (and a huge Sharpe) for a constant-growth curve.
        if n < 2 or rmin == rmax:
            sharpe = 0.0
        else:
            ss = 0.0
            for t in range(a + 1, b):
                d = _return_nb(equity[t - 1], equity[t]) - mean
                ss += d * d
            sd = np.sqrt(ss / (n - 1))
            sharpe = mean / sd * ann if sd > 0.0 else 0.0
        if n == 0 or downside == 0.0:
            sortino = 0.0
        else:
            sortino = mean / np.sqrt(downside / n) * ann
    out[_SHARPE, i] = sharpe
    out[_SORTINO, i] = sortino

    wins = 0
    gp = 0.0
    gl = 0.0
    for k in range(t0, t0 + nt):
        pnl = trade_float[k, 2]
        if pnl > 0.0:
            wins += 1
            gp += pnl
        elif pnl < 0.0:
            gl -= pnl
    out[_N_TRADES, i] = nt
    out[_WIN_RATE, i] = wins / nt if nt > 0 else np.nan
    out[_GROSS_PROFIT, i] = gp
    out[_GROSS_LOSS, i] = gl
    out[_PROFIT_FACTOR, i] = gp / gl if gl > 0.0 else np.nan

    out[_EXPOSURE, i] = stats_row[0] / bars if bars > 0 else 0.0
    out[_TURNOVER, i] = stats_row[1] / capital
    out[_CLIPPED, i] = stats_row[2]
    out[_BARS, i] = bars


@njit(cache=True, parallel=True)
def _trajectory_metrics_nb(equity, traj_eq_off, n_trades, trade_float, traj_trade_off,
                           stats, capital, bars_per_year, out):
    """out: float64 (N_METRICS, n_traj), rows in METRIC_NAMES order. capital and
    bars_per_year are per trajectory."""
    n_traj = traj_eq_off.shape[0] - 1
    for i in prange(n_traj):
        _one_trajectory_nb(equity, traj_eq_off[i], traj_eq_off[i + 1], trade_float,
                           traj_trade_off[i], n_trades[i], stats[i], capital[i],
                           bars_per_year[i], out, i)


# ---------------------------------------------------------------------------------
# evidence statistics (docs/design.md 6.1)


@njit(cache=True)
def autocovariances_nb(r, max_lag, out):
    """out[j] = (1/n) sum_{t<n-j} (r_t - m)(r_{t+j} - m) for j = 0..max_lag, m the mean
    of r (the 1/n divisor keeps the Newey-West long-run variance non-negative). Lags at
    or beyond n are 0. out needs max_lag + 1 slots."""
    n = r.shape[0]
    for j in range(max_lag + 1):
        out[j] = 0.0
    if n == 0:
        return
    m = 0.0
    for t in range(n):
        m += r[t]
    m /= n
    for j in range(min(max_lag, n - 1) + 1):
        s = 0.0
        for t in range(n - j):
            s += (r[t] - m) * (r[t + j] - m)
        out[j] = s / n


# columns of evidence_moments_nb's per-series and per-fold outputs
(SM_FINITE, SM_CONSTANT, SM_MEAN, SM_SS, SM_S3, SM_S4) = range(6)
N_SERIES_MOMENTS = 6
(FM_MEAN, FM_SD, FM_CONSTANT) = range(3)
N_FOLD_MOMENTS = 3


@njit(cache=True)
def _series_moments_nb(r, lags, stats, acov):
    n = r.shape[0]
    finite = True
    lo = np.inf
    hi = -np.inf
    total = 0.0
    for t in range(n):
        x = r[t]
        if not np.isfinite(x):
            finite = False
        lo = min(lo, x)
        hi = max(hi, x)
        total += x
    mean = total / n if n else np.nan
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    for t in range(n):
        d = r[t] - mean
        d2 = d * d
        s2 += d2
        s3 += d2 * d
        s4 += d2 * d2
    stats[SM_FINITE] = 1.0 if finite else 0.0
    stats[SM_CONSTANT] = 1.0 if n and lo == hi else 0.0
    stats[SM_MEAN] = mean
    stats[SM_SS] = s2
    stats[SM_S3] = s3
    stats[SM_S4] = s4
    autocovariances_nb(r, lags, acov)


@njit(cache=True)
def _fold_moments_nb(r, out):
    n = r.shape[0]
    total = 0.0
    lo = np.inf
    hi = -np.inf
    for t in range(n):
        total += r[t]
        lo = min(lo, r[t])
        hi = max(hi, r[t])
    mean = total / n if n else np.nan
    ss = 0.0
    for t in range(n):
        d = r[t] - mean
        ss += d * d
    out[FM_MEAN] = mean
    out[FM_SD] = np.sqrt(ss / (n - 1)) if n >= 2 else np.nan
    out[FM_CONSTANT] = 1.0 if n and lo == hi else 0.0


@njit(cache=True)
def evidence_moments_nb(r, r_off, fold_len, fold_off, lags, stats, acov, fold_stats):
    """Moments of many series at once (docs/design.md 6.1). Series i is
    r[r_off[i]:r_off[i+1]], its folds the consecutive runs of lengths
    fold_len[fold_off[i]:fold_off[i+1]]. stats[i, SM_*]: all finite, all equal, the
    mean, and the sums of d^2, d^3, d^4 around it; acov[i, :lags[i] + 1]: its
    autocovariances (1/n), 0 beyond; fold_stats[fold_off[i] + k, FM_*]: fold k's mean,
    standard deviation (ddof 1; NaN below 2 bars) and whether its values are all equal."""
    for i in range(r_off.shape[0] - 1):
        a = r_off[i]
        _series_moments_nb(r[a:r_off[i + 1]], lags[i], stats[i], acov[i])
        for k in range(fold_off[i], fold_off[i + 1]):
            _fold_moments_nb(r[a:a + fold_len[k]], fold_stats[k])
            a += fold_len[k]


# ---------------------------------------------------------------------------------
# validating wrappers


def _as_1d(name, x, dtype):
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if dtype is np.int64 and a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be an integer array, got {a.dtype}")
    return np.ascontiguousarray(a, dtype=dtype)


def _check_offsets(name, off, total, min_len):
    if off.shape[0] < 1:
        raise ValueError(f"{name} needs n_traj + 1 entries, got 0")
    if off[0] != 0:
        raise ValueError(f"{name}[0] must be 0, got {off[0]}")
    lens = np.diff(off)
    if lens.size and lens.min() < min_len:
        j = int(np.argmin(lens))
        raise ValueError(f"{name}: slot {j} has length {lens[j]} < {min_len}")
    if off[-1] > total:
        raise ValueError(f"{name}[-1] = {off[-1]} is beyond the array's {total} rows")


def _per_traj(name, x, n_traj):
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(n_traj, float(a))
    if a.shape != (n_traj,):
        raise ValueError(f"{name} must be a scalar or shape ({n_traj},), got {a.shape}")
    if n_traj and not (np.all(np.isfinite(a)) and a.min() > 0.0):
        raise ValueError(f"{name} must be finite and > 0")
    return np.ascontiguousarray(a)


def trajectory_returns_flat(equity, traj_eq_off) -> tuple[np.ndarray, np.ndarray]:
    """(returns, ret_off): flat float64 returns of every trajectory and their offsets,
    trajectory i at `returns[ret_off[i] : ret_off[i+1]]` (one fewer than its slot)."""
    equity = _as_1d("equity", equity, np.float64)
    traj_eq_off = _as_1d("traj_eq_off", traj_eq_off, np.int64)
    _check_offsets("traj_eq_off", traj_eq_off, equity.shape[0], 1)
    n_traj = traj_eq_off.shape[0] - 1
    ret_off = traj_eq_off - np.arange(n_traj + 1, dtype=np.int64)
    out = np.empty(int(ret_off[-1]), dtype=np.float64)
    if n_traj:
        _returns_nb(equity, traj_eq_off, out)
    return out, ret_off


def trajectory_returns(equity, traj_eq_off) -> list[np.ndarray]:
    """Each trajectory's return series r_t = E_t / E_{t-1} - 1 (first against C), as
    views into one flat array; stitch folds with np.concatenate. NaN after equity <= 0."""
    out, ret_off = trajectory_returns_flat(equity, traj_eq_off)
    return [out[ret_off[i]:ret_off[i + 1]] for i in range(ret_off.shape[0] - 1)]


def trajectory_metrics(equity, traj_eq_off, n_trades, trade_float, traj_trade_off, stats,
                       capital, bars_per_year) -> dict[str, np.ndarray]:
    """Metrics of every trajectory: {name: float64 (n_traj,)} for name in METRIC_NAMES.

    capital and bars_per_year are scalars or per-trajectory arrays; each equity slot
    must start with its capital. NaN stands for null (win_rate, profit_factor) and
    for undefined ratios of ruined curves; see the module docstring."""
    equity = _as_1d("equity", equity, np.float64)
    traj_eq_off = _as_1d("traj_eq_off", traj_eq_off, np.int64)
    traj_trade_off = _as_1d("traj_trade_off", traj_trade_off, np.int64)
    n_trades = _as_1d("n_trades", n_trades, np.int64)
    trade_float = np.ascontiguousarray(trade_float, dtype=np.float64)
    stats = np.ascontiguousarray(stats, dtype=np.float64)
    n_traj = traj_eq_off.shape[0] - 1
    _check_offsets("traj_eq_off", traj_eq_off, equity.shape[0], 1)
    if traj_trade_off.shape[0] != n_traj + 1:
        raise ValueError(f"traj_trade_off has {traj_trade_off.shape[0]} entries, "
                         f"expected n_traj + 1 = {n_traj + 1}")
    if trade_float.ndim != 2 or trade_float.shape[1] < 4:
        raise ValueError(f"trade_float must be (rows, 4), got shape {trade_float.shape}")
    _check_offsets("traj_trade_off", traj_trade_off, trade_float.shape[0], 0)
    if n_trades.shape[0] != n_traj:
        raise ValueError(f"n_trades has {n_trades.shape[0]} entries, expected {n_traj}")
    if n_traj:
        cap = np.diff(traj_trade_off)
        bad = np.nonzero((n_trades < 0) | (n_trades > cap))[0]
        if bad.size:
            j = int(bad[0])
            raise ValueError(f"n_trades[{j}] = {n_trades[j]} is outside 0..{cap[j]} "
                             "(the trajectory's trade capacity)")
    if stats.ndim != 2 or stats.shape[0] != n_traj or stats.shape[1] < 3:
        raise ValueError(f"stats must be ({n_traj}, 4), got shape {stats.shape}")
    capital = _per_traj("capital", capital, n_traj)
    bars_per_year = _per_traj("bars_per_year", bars_per_year, n_traj)
    if n_traj:
        first = equity[traj_eq_off[:-1]]
        bad = np.nonzero(np.abs(first - capital) > 1e-9 * capital)[0]
        if bad.size:
            j = int(bad[0])
            raise ValueError(f"equity slot {j} starts with {first[j]!r}, not its capital "
                             f"{capital[j]!r}: offsets and capital disagree")
    out = np.empty((N_METRICS, n_traj), dtype=np.float64)
    if n_traj:
        _trajectory_metrics_nb(equity, traj_eq_off, n_trades, trade_float, traj_trade_off,
                               stats, capital, bars_per_year, out)
    return {name: out[k] for k, name in enumerate(METRIC_NAMES)}


def autocovariances(r, max_lag: int) -> np.ndarray:
    """Autocovariances of r at lags 0..max_lag (1/n divisor, around the mean)."""
    r = _as_1d("r", r, np.float64)
    if max_lag < 0:
        raise ValueError(f"max_lag must be >= 0, got {max_lag}")
    out = np.empty(int(max_lag) + 1, dtype=np.float64)
    autocovariances_nb(r, int(max_lag), out)
    return out


__all__ = ["METRIC_NAMES", "evidence_moments_nb", "trajectory_metrics", "trajectory_returns",
           "trajectory_returns_flat", "autocovariances"]
