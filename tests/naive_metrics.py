"""Plain-Python references for docs/design.md 6: per-fold metrics, the walk-forward
summary, PSR and DSR, the --days window and fold cutting. Loops and the statistics
module only, one step of the contract at a time, so the kernels have something
obviously right to be compared with. NaN stands for null and for "undefined"."""

import math
import statistics

NAN = float("nan")
NS_PER_DAY = 86_400 * 10**9
EULER_GAMMA = 0.5772156649015329

__all__ = [
    "naive_returns", "naive_trajectory_metrics", "naive_per_bar_sharpe", "naive_psr",
    "naive_expected_max_sharpe", "naive_dsr", "naive_walk_forward_summary",
    "naive_window", "naive_make_folds", "naive_bars_per_year", "naive_mark_in_sample",
]


# ---------------------------------------------------------------------------------
# per-fold metrics


def naive_returns(equity_slot):
    """[C, E_s0, ..., E_{e-1}] -> [E_t / E_{t-1} - 1]; undefined (NaN) after E <= 0."""
    out = []
    for t in range(1, len(equity_slot)):
        prev = equity_slot[t - 1]
        if prev <= 0:
            out.append(NAN)
        else:
            out.append(equity_slot[t] / prev - 1.0)
    return out


def naive_trajectory_metrics(equity_slot, trade_pnls, exposure_bars, traded_notional,
                             clipped_shorts, capital, bars_per_year):
    equity_slot = [float(x) for x in equity_slot]
    bars = len(equity_slot) - 1
    closes = equity_slot[1:]

    # total_return = E_end / C - 1
    end_equity = closes[-1] if closes else capital
    total_return = end_equity / capital - 1.0

    # max_drawdown = max over t of 1 - E_t / max(C, max E up to t)
    max_drawdown = 0.0
    for t in range(len(closes)):
        peak = capital
        for u in range(t + 1):
            if closes[u] > peak:
                peak = closes[u]
        dd = 1.0 - closes[t] / peak
        if dd > max_drawdown:
            max_drawdown = dd

    returns = naive_returns(equity_slot)
    ann = math.sqrt(bars_per_year)
    if any(math.isnan(r) for r in returns):
        sharpe = NAN
        sortino = NAN
    else:
        # sharpe = mean(r) / std(r, ddof 1) * sqrt(bpy); 0 when std is 0
        if len(returns) < 2:
            sharpe = 0.0
        else:
            sd = statistics.stdev(returns)
            sharpe = 0.0 if sd == 0 else statistics.mean(returns) / sd * ann
        # sortino = mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(bpy); 0 when that is 0
        if len(returns) == 0:
            sortino = 0.0
        else:
            down = statistics.mean([min(r, 0.0) ** 2 for r in returns])
            sortino = 0.0 if down == 0 else statistics.mean(returns) / math.sqrt(down) * ann

    n_trades = len(trade_pnls)
    wins = 0
    gross_profit = 0.0
    gross_loss = 0.0
    for pnl in trade_pnls:
        if pnl > 0:
            wins += 1
            gross_profit += pnl
        elif pnl < 0:
            gross_loss += -pnl
    win_rate = wins / n_trades if n_trades else NAN
    profit_factor = gross_profit / gross_loss if gross_loss > 0 else NAN

    return {
        "total_return": total_return,
        "max_drawdown": max_drawdown,
        "sharpe": sharpe,
        "sortino": sortino,
        "n_trades": float(n_trades),
        "win_rate": win_rate,
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
        "profit_factor": profit_factor,
        "exposure": exposure_bars / bars if bars else 0.0,
        "turnover": traded_notional / capital,
        "clipped_shorts": float(clipped_shorts),
        "bars": float(bars),
    }


# ---------------------------------------------------------------------------------
# PSR and DSR


def naive_per_bar_sharpe(returns):
    returns = [float(r) for r in returns]
    if len(returns) < 2 or any(not math.isfinite(r) for r in returns):
        return NAN
    sd = statistics.stdev(returns)
    if sd == 0:
        return NAN
    return statistics.mean(returns) / sd


def naive_psr(returns, sr_benchmark=0.0):
    returns = [float(r) for r in returns]
    sr = naive_per_bar_sharpe(returns)
    if math.isnan(sr):
        return NAN
    n = len(returns)
    mu = statistics.fmean(returns)
    m2 = sum((r - mu) ** 2 for r in returns) / n
    m3 = sum((r - mu) ** 3 for r in returns) / n
    m4 = sum((r - mu) ** 4 for r in returns) / n
    skew = m3 / m2 ** 1.5
    kurt = m4 / m2 ** 2  # raw: 3 for a normal distribution
    denom = 1 - skew * sr + (kurt - 1) / 4 * sr ** 2
    if denom <= 0:
        return NAN
    z = (sr - sr_benchmark) * math.sqrt(n - 1) / math.sqrt(denom)
    return statistics.NormalDist().cdf(z)


def naive_expected_max_sharpe(trial_sharpes):
    n = len(trial_sharpes)
    finite = [float(s) for s in trial_sharpes if math.isfinite(s)]
    v = statistics.pvariance(finite) if len(finite) >= 2 else 0.0
    if n == 1 or v == 0:
        return 0.0
    inv = statistics.NormalDist().inv_cdf
    return math.sqrt(v) * ((1 - EULER_GAMMA) * inv(1 - 1 / n)
                           + EULER_GAMMA * inv(1 - 1 / (n * math.e)))


def naive_dsr(returns, trial_sharpes):
    return naive_psr(returns, naive_expected_max_sharpe(trial_sharpes))


# ---------------------------------------------------------------------------------
# walk-forward summary


def naive_walk_forward_summary(fold_metrics, fold_returns, in_sample=None):
    k = len(fold_metrics)
    sharpes = [NAN if m["sharpe"] is None else float(m["sharpe"]) for m in fold_metrics]
    rets = [NAN if m["total_return"] is None else float(m["total_return"]) for m in fold_metrics]
    positive = 0
    for r in rets:
        if r > 0:
            positive += 1
    stitched = []
    for r in fold_returns:
        stitched.extend(float(x) for x in r)
    any_nan_sharpe = any(math.isnan(s) for s in sharpes)
    any_nan_ret = any(math.isnan(r) for r in rets)
    return {
        "folds": k,
        "positive_folds": positive,
        "sharpe_min": NAN if any_nan_sharpe else min(sharpes),
        "sharpe_max": NAN if any_nan_sharpe else max(sharpes),
        "sharpe_mean": NAN if any_nan_sharpe else statistics.mean(sharpes),
        "sharpe_std": NAN if any_nan_sharpe or k < 2 else statistics.stdev(sharpes),
        "return_min": NAN if any_nan_ret else min(rets),
        "return_max": NAN if any_nan_ret else max(rets),
        "return_mean": NAN if any_nan_ret else statistics.mean(rets),
        "psr": naive_psr(stitched),
        "in_sample_folds": sum(1 for x in (in_sample or []) if x),
    }


# ---------------------------------------------------------------------------------
# window and folds


def naive_window(timestamps, days, end=None):
    """(start, stop) of the bars with end - days < ts <= end, or None when empty."""
    if end is None:
        end = timestamps[-1]
    lo = end - round(days * NS_PER_DAY)
    idx = [i for i, t in enumerate(timestamps) if lo < t <= end]
    if not idx:
        return None
    return idx[0], idx[-1] + 1


def naive_make_folds(timestamps, days, k, end=None):
    """[(start, stop)] of k folds of floor(N/k) bars, remainder in the last."""
    start, stop = naive_window(timestamps, days, end)
    n = stop - start
    size = n // k
    folds = []
    a = start
    for j in range(k):
        b = stop if j == k - 1 else a + size
        folds.append((a, b))
        a = b
    return folds


def naive_bars_per_year(timestamps):
    n = len(timestamps)
    span_days = (timestamps[-1] - timestamps[0]) / NS_PER_DAY
    return n / (span_days / 365.25)


def naive_mark_in_sample(first_last, trained_until=None, periods=()):
    flags = []
    for first, last in first_last:
        flag = False
        if trained_until is not None and first <= trained_until:
            flag = True
        for a, b in periods:
            if first <= b and last >= a:
                flag = True
        flags.append(flag)
    return flags


# ---------------------------------------------------------------------------------
# evidence statistics (docs/design.md 6.1), one formula at a time


def naive_moments(r):
    """(mean, m2, g3, g4) with population (1/n) moments; g4 raw (normal = 3)."""
    n = len(r)
    mu = sum(r) / n
    m2 = sum((x - mu) ** 2 for x in r) / n
    m3 = sum((x - mu) ** 3 for x in r) / n
    m4 = sum((x - mu) ** 4 for x in r) / n
    if m2 == 0:
        return mu, 0.0, NAN, NAN
    return mu, m2, m3 / m2 ** 1.5, m4 / m2 ** 2


def naive_autocovariance(r, j):
    n = len(r)
    mu = sum(r) / n
    return sum((r[t] - mu) * (r[t + j] - mu) for t in range(n - j)) / n


def naive_q(r):
    """q = 1 + 2 sum_{j=1..L} (1 - j/(L+1)) rho_j, L = min(24, n // 4), floored at 0.05;
    1 for a series of equal values."""
    n = len(r)
    L = min(24, n // 4)
    g0 = naive_autocovariance(r, 0)
    if min(r) == max(r):
        return 1.0, L
    total = 0.0
    for j in range(1, L + 1):
        total += (1 - j / (L + 1)) * naive_autocovariance(r, j) / g0
    return max(1 + 2 * total, 0.05), L


def naive_fold_sharpe(r):
    if len(r) < 2:
        return NAN
    sd = statistics.stdev(r)
    return 0.0 if min(r) == max(r) else statistics.mean(r) / sd


def naive_evidence(returns, fold_lengths, bars_per_year, hurdle_sharpe=0.0, level=0.95):
    """The numbers of docs/design.md 6.1 for a traded model with >= 2 finite returns."""
    from scipy import stats

    r = [float(x) for x in returns]
    n = len(r)
    ann = math.sqrt(bars_per_year)
    h = hurdle_sharpe / ann
    _, m2, g3, g4 = naive_moments(r)
    sr = 0.0 if m2 == 0 else statistics.mean(r) / statistics.stdev(r)
    q, L = naive_q(r)
    factor = 1.0 if sr == 0 else 1 - g3 * sr + (g4 - 1) / 4 * sr ** 2
    se = math.sqrt(q * factor / (n - 1))
    z = stats.norm.ppf(level)
    z90 = stats.norm.ppf(0.95)
    out = {
        "lags": L, "q": q, "sr": sr, "sr_annual": sr * ann, "se": se,
        "psr0": stats.norm.cdf(sr / se), "psr_hurdle": stats.norm.cdf((sr - h) / se),
        "sr_ci90": [(sr - z90 * se) * ann, (sr + z90 * se) * ann],
        "g3": g3, "g4": g4,
    }
    if sr > h:
        out["min_trl_bars"] = 1 + q * factor * (z / (sr - h)) ** 2
        out["min_trl_days"] = out["min_trl_bars"] * 365.25 / bars_per_year
    else:
        out["min_trl_bars"] = out["min_trl_days"] = NAN
    # Cochran's Q over the folds, se_k from the stitched moments and q
    folds, a = [], 0
    for m in fold_lengths:
        folds.append(r[a:a + m])
        a += m
    srk, wk, fold_ci = [], [], []
    for f in folds:
        s = naive_fold_sharpe(f)
        sek = math.sqrt(q * factor / (len(f) - 1)) if len(f) >= 2 else NAN
        fold_ci.append([(s - z90 * sek) * ann, (s + z90 * sek) * ann])
        if not math.isnan(s):
            srk.append(s)
            wk.append(1 / sek ** 2)
    out["fold_sharpe"] = [naive_fold_sharpe(f) * ann for f in folds]
    out["fold_sharpe_ci90"] = fold_ci
    if len(srk) >= 2:
        pooled = sum(w * s for w, s in zip(wk, srk)) / sum(wk)
        cq = sum(w * (s - pooled) ** 2 for w, s in zip(wk, srk))
        out["cochran_q"] = cq
        out["cochran_p"] = stats.chi2.sf(cq, len(srk) - 1)
    else:
        out["cochran_q"] = out["cochran_p"] = NAN
    return out


def naive_dsr_variants(srs, ses, qs, ns, hurdle_per_bar=0.0):
    """DSR of each variant (docs/design.md 6.1); srs may hold NaN for never-traded ones."""
    from scipy import stats

    N = len(srs)
    if N == 1:
        return [stats.norm.cdf((srs[0] - hurdle_per_bar) / ses[0])]
    traded = [i for i in range(N) if not math.isnan(srs[i])]
    v_noise = statistics.median([qs[i] / (ns[i] - 1) for i in traded])
    if N >= 3 and len(traded) >= 2:
        v = max(statistics.variance([srs[i] for i in traded]), v_noise)
    else:
        v = v_noise
    e = math.e
    sr_star = hurdle_per_bar + math.sqrt(v) * ((1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / N)
                                               + EULER_GAMMA * stats.norm.ppf(1 - 1 / (N * e)))
    return [NAN if math.isnan(srs[i]) else stats.norm.cdf((srs[i] - sr_star) / ses[i]) for i in range(N)]


def naive_bh(pvalues):
    """BH adjusted p-values by the definition: q_i = min over p_j >= p_i of p_j m / rank_j."""
    m = len(pvalues)
    ranked = sorted(pvalues)
    out = []
    for p in pvalues:
        best = 1.0
        for rank, pj in enumerate(ranked, start=1):
            if pj >= p:
                best = min(best, pj * m / rank)
        out.append(best)
    return out
