"""Generate the shipped sample bar store: synthetic hourly bars, 400 days per symbol.

    python data/make_sample_bars.py            # writes data/bars/1Hour/*.arrow
    python data/make_sample_bars.py --out DIR  # elsewhere

Deterministic: the same seed gives byte-identical files. The data is SYNTHETIC: no
market data is shipped. Each symbol walks through a random sequence of regimes
(trends up and down, mean-reverting ranges, quiet stretches, volatility bursts with
jumps) so that walk-forward folds really differ and a policy can win in one fold and
lose in the next. Crypto trades 24/7; equities only in US market hours (7 bars per
regular day, 4 on half days, none on weekends and NYSE holidays), with overnight gaps.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.store import Bars, BarStore  # noqa: E402

SEED = 20261120
END_DATE = date(2026, 11, 20)  # last day with bars
DAYS = 400  # a year of folds plus warm-up: the seed's `--days 365 --walk-forward 10` runs
NS = 1_000_000_000

# symbol: (start price, annual volatility, mean volume per hour, mean trade size in units)
CRYPTO = {
    "BTCUSD": (91_000.0, 0.50, 350.0, 0.03),
    "ETHUSD": (3_050.0, 0.65, 6_000.0, 0.8),
    "SOLUSD": (142.0, 0.85, 60_000.0, 12.0),
    "UNIUSD": (7.2, 0.95, 150_000.0, 250.0),
    "LINKUSD": (13.5, 0.85, 120_000.0, 150.0),
    "AVAXUSD": (14.8, 0.95, 80_000.0, 110.0),
}
EQUITY = {
    "AAPL": (268.0, 0.26, 7_000_000.0, 95.0),
    "MSFT": (472.0, 0.23, 3_000_000.0, 80.0),
    "SPY": (662.0, 0.16, 10_000_000.0, 120.0),
    "NVDA": (181.0, 0.50, 30_000_000.0, 140.0),
    "AMZN": (221.0, 0.32, 5_000_000.0, 100.0),
    "TSLA": (392.0, 0.60, 12_000_000.0, 90.0),
}

# Steady movers: a constant drift plus stationary noise in the price LEVEL (an AR(1)
# that forgets within hours), the way a gold token or a gold ETF grinds along. Unlike the
# regime symbols, their fold Sharpes barely move from fold to fold, so a trend-following
# policy on them is what consistent out-of-sample performance looks like.
# symbol: (asset class, start price, annual log drift, level noise sd, mean volume per hour,
# mean trade size)
STEADY = {
    "PAXGUSD": ("crypto", 2_650.0, 0.30, 0.004, 900.0, 0.5),
    "GLD": ("us_equity", 245.0, 0.25, 0.003, 6_000_000.0, 100.0),
}

# NYSE closures and 13:00 closes between the first and the last sample day.
HOLIDAYS = {
    date(2025, 11, 27), date(2025, 12, 25), date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16),
    date(2026, 4, 3), date(2026, 5, 25), date(2026, 6, 19), date(2026, 7, 3), date(2026, 9, 7),
}
HALF_DAYS = {date(2025, 11, 28), date(2025, 12, 24)}

# regime: (drift in units of annual vol per year, vol multiplier, mean-reversion
# strength per bar, volume multiplier, jump probability per bar)
REGIMES = {
    "trend_up": (2.2, 1.0, 0.0, 1.1, 0.0),
    "trend_down": (-2.2, 1.1, 0.0, 1.2, 0.0),
    "range": (0.0, 0.8, 0.02, 0.9, 0.0),
    "quiet": (0.0, 0.45, 0.005, 0.6, 0.0),
    "burst": (0.0, 2.1, 0.0, 2.4, 0.01),
}


# --------------------------------------------------------------------------- calendars


def _nth_sunday(year: int, month: int, n: int) -> date:
    d = date(year, month, 1)
    d += timedelta(days=(6 - d.weekday()) % 7)
    return d + timedelta(weeks=n - 1)


def _new_york_offset_hours(day: date) -> int:
    """UTC offset of New York on `day` (US rules since 2007: DST from the second Sunday of
    March to the first Sunday of November); the market is closed at 2 a.m. anyway."""
    dst = _nth_sunday(day.year, 3, 2) <= day < _nth_sunday(day.year, 11, 1)
    return -4 if dst else -5


def crypto_timestamps() -> np.ndarray:
    start = datetime(END_DATE.year, END_DATE.month, END_DATE.day, tzinfo=timezone.utc) - timedelta(days=DAYS - 1)
    first = int(start.timestamp()) * NS
    return first + np.arange(DAYS * 24, dtype=np.int64) * 3600 * NS


def equity_sessions() -> list[tuple[np.ndarray, bool]]:
    """Per trading day: (bar start times in ns, hourly 09:00..15:00 New York, whole day?)."""
    out = []
    day = END_DATE - timedelta(days=DAYS - 1)
    while day <= END_DATE:
        if day.weekday() < 5 and day not in HOLIDAYS:
            last_hour = 12 if day in HALF_DAYS else 15
            off = _new_york_offset_hours(day)
            midnight = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())
            hours = np.arange(9, last_hour + 1) - off
            out.append(((midnight + hours * 3600) * NS, day not in HALF_DAYS))
        day += timedelta(days=1)
    return out


# --------------------------------------------------------------------------- paths


def regime_schedule(rng: np.random.Generator, n_bars: int, bars_per_day: float) -> list[tuple[str, int]]:
    """Regimes of 5 to 40 days; a new regime is never the previous one, and every kind
    appears before any repeats, so each year holds all of them."""
    kinds = list(REGIMES)
    out: list[tuple[str, int]] = []
    pool: list[str] = []
    used = 0
    while used < n_bars:
        if not pool:
            pool = list(rng.permutation(kinds))
            if out and pool[0] == out[-1][0]:
                pool.append(pool.pop(0))
        kind = pool.pop(0)
        days = rng.uniform(4, 12) if kind == "burst" else rng.uniform(8, 40)
        length = max(int(days * bars_per_day), 4)
        out.append((kind, min(length, n_bars - used)))
        used += length
    return out


def log_price_path(rng, n_bars, sigma_bar, bars_per_year, schedule, start_log, annual_vol, gap_sigma=None,
                   day_starts=None, max_wander=0.35):
    """Log closes and per-bar (sigma, volume factor), regime by regime."""
    logc = np.empty(n_bars)
    sig = np.empty(n_bars)
    vfac = np.empty(n_bars)
    opens_gap = np.zeros(n_bars)
    if day_starts is not None:
        opens_gap[day_starts] = 1.0
    x = start_log
    i = 0
    # a slow pull toward the start level (half-life ~3 months) keeps a year's prices
    # plausible without flattening the regimes
    kappa = np.log(2.0) / (bars_per_year / 4.0)
    for kind, length in schedule:
        drift_units, vol_mult, theta, vol_fac, jump_p = REGIMES[kind]
        # keep a year's wander within plausible bounds: lean trends back toward the start
        distance = x - start_log
        if kind.startswith("trend") and abs(distance) > max_wander * annual_vol / 0.5 and np.sign(drift_units) == np.sign(distance):
            drift_units = -drift_units
        strength = rng.uniform(0.6, 1.4)
        mu = drift_units * strength * annual_vol / bars_per_year
        anchor = x
        s = sigma_bar * vol_mult
        for _ in range(length):
            if i >= n_bars:
                break
            # slow GARCH-like wobble so volatility clusters inside a regime too
            s_t = s * float(np.exp(rng.normal(0.0, 0.25)))
            step = mu + s_t * rng.standard_normal() - theta * (x - anchor) - kappa * (x - start_log)
            if jump_p and rng.random() < jump_p:
                step += rng.normal(0.0, 4.0 * s)
            if gap_sigma is not None and opens_gap[i]:
                step += rng.normal(0.0, gap_sigma * vol_mult)
            x += step
            logc[i] = x
            sig[i] = s_t
            vfac[i] = vol_fac * (1.0 + 0.8 * min(abs(step) / max(s, 1e-12), 6.0) / 3.0)
            i += 1
    return logc, sig, vfac


def tick_for(price: float) -> float:
    return 0.01 if price >= 10 else 0.001 if price >= 0.1 else 0.00001


def ohlc_from_closes(rng, close, sigma, first_open, day_starts=None, gap_open=None):
    """Open = previous close (crypto) or the day's gapped open (equities); high and low
    reach beyond the body by a bar-local half-normal excursion; all on the price tick."""
    n = len(close)
    open_ = np.empty(n)
    open_[0] = first_open
    open_[1:] = close[:-1]
    if day_starts is not None and gap_open is not None:
        open_[day_starts] = gap_open
    body_hi = np.maximum(open_, close)
    body_lo = np.minimum(open_, close)
    high = body_hi * np.exp(np.abs(rng.normal(0.0, 0.55, n)) * sigma)
    low = body_lo * np.exp(-np.abs(rng.normal(0.0, 0.55, n)) * sigma)
    tick = tick_for(float(np.median(close)))
    q = lambda a: np.round(a / tick) * tick  # noqa: E731
    open_, close, high, low = q(open_), q(close), q(high), q(low)
    high = np.maximum(high, np.maximum(open_, close))
    low = np.maximum(np.minimum(low, np.minimum(open_, close)), tick)
    return open_, high, low, close


def volumes(rng, n, base, vfac, seasonal, trade_size, high, low, close):
    vol = base * seasonal * vfac * rng.lognormal(-0.125, 0.5, n)
    vol = np.round(vol, 4)
    trades = np.maximum(np.round(vol / trade_size * rng.lognormal(0.0, 0.2, n)), 1).astype(np.int64)
    trades[vol == 0] = 0
    # a volume-weighted price sits inside the bar, near its typical price
    typical = (high + low + close) / 3.0
    vwap = typical + (high - low) * rng.normal(0.0, 0.12, n)
    vwap = np.clip(vwap, low, high)
    tick = tick_for(float(np.median(close)))
    vwap = np.round(vwap / (tick / 10)) * (tick / 10)
    return vol, trades, vwap


def make_crypto(symbol: str, rng: np.random.Generator) -> Bars:
    price, annual_vol, base_vol, trade_size = CRYPTO[symbol]
    ts = crypto_timestamps()
    n = len(ts)
    bars_per_year = 24 * 365.25
    sigma_bar = annual_vol / np.sqrt(bars_per_year)
    schedule = regime_schedule(rng, n, 24)
    logc, sig, vfac = log_price_path(rng, n, sigma_bar, bars_per_year, schedule, np.log(price), annual_vol)
    close = np.exp(logc)
    open_, high, low, close = ohlc_from_closes(rng, close, sig, price)
    hour = (ts // (3600 * NS)) % 24
    dow = ((ts // (86400 * NS)) + 3) % 7
    # busiest while both Europe and the US are awake, quieter at weekends
    seasonal = (1.0 + 0.6 * np.exp(-0.5 * ((hour - 15.5) / 3.5) ** 2)) * np.where(dow >= 5, 0.7, 1.0)
    vol, trades, vwap = volumes(rng, n, base_vol, vfac, seasonal, trade_size, high, low, close)
    return Bars(symbol, "1Hour", "crypto", ts, open_, high, low, close, vol, trades, vwap)


def make_equity(symbol: str, rng: np.random.Generator) -> Bars:
    price, annual_vol, base_vol, trade_size = EQUITY[symbol]
    sessions = equity_sessions()
    ts = np.concatenate([s for s, _ in sessions])
    n = len(ts)
    day_starts = np.cumsum([0] + [len(s) for s, _ in sessions[:-1]])
    bars_per_year = n / (DAYS / 365.25)
    # a quarter of the daily variance arrives overnight, as the gap at the open
    sigma_bar = annual_vol * np.sqrt(0.75 / bars_per_year)
    gap_sigma = annual_vol * np.sqrt(0.25 / 252)
    schedule = regime_schedule(rng, n, 7)
    logc, sig, vfac = log_price_path(
        rng, n, sigma_bar, bars_per_year, schedule, np.log(price), annual_vol,
        gap_sigma=gap_sigma, day_starts=day_starts,
    )
    close = np.exp(logc)
    # the day's first bar opens at the gapped price: part of its move happens overnight
    gap_open = np.exp(logc[day_starts] - np.abs(sig[day_starts]) * rng.standard_normal(len(day_starts)))
    open_, high, low, close = ohlc_from_closes(rng, close, sig, gap_open[0], day_starts, gap_open)
    # U-shaped day: heavy open and close, a lull at lunch
    pos = np.zeros(n)
    for k, (s, _) in enumerate(sessions):
        pos[day_starts[k]: day_starts[k] + len(s)] = np.linspace(0.0, 1.0, len(s)) if len(s) > 1 else 0.0
    seasonal = 0.7 + 1.3 * (2.0 * pos - 1.0) ** 2
    vol, trades, vwap = volumes(rng, n, base_vol, vfac, seasonal, trade_size, high, low, close)
    vol = np.round(vol)  # whole shares
    return Bars(symbol, "1Hour", "us_equity", ts, open_, high, low, close, vol, trades, vwap)


def make_steady(symbol: str, rng: np.random.Generator) -> Bars:
    asset_class, price, drift, noise, base_vol, trade_size = STEADY[symbol]
    if asset_class == "crypto":
        ts = crypto_timestamps()
    else:
        ts = np.concatenate([s for s, _ in equity_sessions()])
    n = len(ts)
    years = (ts - ts[0]) / (365.25 * 86400 * NS)
    phi = 0.6  # per bar: a deviation halves in about 1.4 bars
    shocks = rng.normal(0.0, noise * np.sqrt(1 - phi**2), n)
    level = np.empty(n)
    level[0] = rng.normal(0.0, noise)
    for i in range(1, n):
        level[i] = phi * level[i - 1] + shocks[i]
    close = price * np.exp(drift * years + level)
    sig = np.full(n, noise)
    open_, high, low, close = ohlc_from_closes(rng, close, sig, price)
    vol, trades, vwap = volumes(rng, n, base_vol, np.ones(n), np.ones(n), trade_size, high, low, close)
    if asset_class == "us_equity":
        vol = np.round(vol)
    return Bars(symbol, "1Hour", asset_class, ts, open_, high, low, close, vol, trades, vwap)


def symbol_rng(symbol: str, seed: int) -> np.random.Generator:
    # crc32, not hash(): Python salts str hashes per process
    return np.random.default_rng([seed, zlib.crc32(symbol.encode())])


def generate(seed: int = SEED) -> list[Bars]:
    out = [make_crypto(s, symbol_rng(s, seed)) for s in CRYPTO]
    out += [make_equity(s, symbol_rng(s, seed)) for s in EQUITY]
    out += [make_steady(s, symbol_rng(s, seed)) for s in STEADY]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "bars",
                    help="bar store root [default: data/bars next to this script]")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    store = BarStore(args.out)
    total = 0
    for bars in generate(args.seed):
        path = store.write(bars, mode="replace")
        size = path.stat().st_size
        total += size
        move = bars.close[-1] / bars.open[0] - 1
        print(f"{bars.symbol:8s} {bars.asset_class:9s} {len(bars):6d} bars  "
              f"{bars.close.min():>12,.3f} .. {bars.close.max():>12,.3f}  year {move:+7.1%}  "
              f"{size / 1024:7.1f} KB  {path}")
    print(f"total {total / 1024 / 1024:.2f} MB in {store.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
