"""The lookahead and start-dependence check itself (docs/design.md 4), on any one
column of values: a feature's value at bar t may use bars <= t only, and only its last
L + 1 of them.

The column is computed on the full series, on copies truncated at random bars (a
value before the cut that changes read bars after it: lookahead) and on copies that
start at random later bars (a value past the copy's own lookback that changes read
more than its L bars before: infinite memory, or a wrong lookback). Every value that
moves is reported with its bar and both values.

It takes the values as a function of the bars, so it needs no feature module: the
plugin gate (engine/feature_plugins.py) runs it on a plugin's own output before first
use, and `foldgate check-features` (engine/feature_check.py) on engine.features'."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

import numpy as np

from .errors import DataError

DEFAULT_CUTS = 6
DEFAULT_STARTS = 6
# the copies need room past the lookback on both sides
_MIN_SPARE_BARS = 200
_HOUR_NS = 3_600_000_000_000


@dataclass(frozen=True)
class Move:
    """One value that differs between the full series and a copy."""

    feature: str
    copy: str  # "truncated" (bars before `at` kept) | "started" (bars from `at` kept)
    at: int  # the cut or start bar, an index into the full series
    bar: int  # index into the full series
    timestamp: int  # ns since the epoch
    full: float
    moved: float

    def describe(self) -> str:
        iso = np.datetime64(int(self.timestamp), "ns").astype("datetime64[s]").astype(str) + "Z"
        if self.copy == "truncated":
            how = f"on the series cut after bar {self.at - 1}"
        else:
            how = f"on the series started at bar {self.at}"
        return f"{self.feature}: bar {self.bar} ({iso}): {self.full!r} on the full series, {self.moved!r} {how}"


    def to_dict(self) -> dict:
        def num(x: float):
            return None if math.isnan(x) else x

        iso = np.datetime64(int(self.timestamp), "ns").astype("datetime64[s]").astype(str) + "Z"
        return {"copy": self.copy, "at": self.at, "bar": self.bar, "time": iso,
                "full": num(self.full), "moved": num(self.moved)}


@dataclass
class FeatureVerdict:
    feature: str
    lookback: int
    moves: list[Move] = field(default_factory=list)
    copies: int = 0

    @property
    def ok(self) -> bool:
        return not self.moves

    def to_dict(self) -> dict:
        return {"feature": self.feature, "lookback": self.lookback, "ok": self.ok, "copies": self.copies,
                "moves": [m.to_dict() for m in self.moves]}

    def first_lookahead(self) -> Move | None:
        """The earliest bar that moved when the future was cut off, else the earliest move."""
        ahead = [m for m in self.moves if m.copy == "truncated"]
        pool = ahead or self.moves
        return min(pool, key=lambda m: m.bar) if pool else None


def synthetic_bars(n: int = 3000, seed: int = 0):
    """A random hourly series with what breaks features: flat stretches (repeated
    closes, high = low = close), zero volumes, jumps."""
    rng = np.random.default_rng(seed)
    logret = rng.normal(0.0, 0.01, n)
    logret[rng.random(n) < 0.01] *= 8.0
    close = 100.0 * np.exp(np.cumsum(logret))
    high = close * (1.0 + rng.random(n) * 0.01)
    low = close * (1.0 - rng.random(n) * 0.01)
    volume = rng.gamma(2.0, 50.0, n)
    volume[rng.random(n) < 0.05] = 0.0
    for _ in range(max(1, n // 500)):
        a = int(rng.integers(1, max(2, n - 60)))
        b = min(n, a + int(rng.integers(5, 60)))
        close[a:b] = close[a - 1]
        high[a:b] = close[a - 1]
        low[a:b] = close[a - 1]
    ts = np.int64(1_704_067_200) * 10**9 + np.arange(n, dtype=np.int64) * _HOUR_NS
    return SimpleNamespace(timestamp=ts, open=close.copy(), high=high, low=low, close=close, volume=volume)


def _slice(bars, start: int, stop: int):
    cols = {c: np.array(getattr(bars, c)[start:stop]) for c in ("timestamp", "high", "low", "close", "volume")}
    op = getattr(bars, "open", None)
    cols["open"] = np.array(op[start:stop]) if op is not None else cols["close"].copy()
    return SimpleNamespace(**cols)


def _same(a: np.ndarray, b: np.ndarray, rtol: float) -> np.ndarray:
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        eq = a == b
        if rtol > 0:
            eq |= np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b))
    return both_nan | eq



def default_length(lookbacks) -> int:
    """Bars of the synthetic series: room for the longest lookback three times over."""
    return max(3000, 3 * max(lookbacks, default=0) + _MIN_SPARE_BARS)


def check_values(bars, name: str, look: int, values: Callable[[object], np.ndarray], *,
                 cuts: int = DEFAULT_CUTS, starts: int = DEFAULT_STARTS, seed: int = 0,
                 rtol: float = 0.0) -> FeatureVerdict:
    """`values(bars)` (one float64 column, NaN before its lookback `look`) on `bars` and
    on truncated and late-started copies; every value that moves (beyond rtol,
    relative; 0 = bit for bit) is a Move of feature `name`."""
    n = len(bars.close)
    if n < look + _MIN_SPARE_BARS:
        raise DataError(
            f"{name}: the check needs at least {look + _MIN_SPARE_BARS} bars (lookback {look} "
            f"+ {_MIN_SPARE_BARS}), the series has {n}"
        )
    ts = np.asarray(bars.timestamp, dtype=np.int64)
    full = values(bars)
    rng = np.random.default_rng(seed)
    verdict = FeatureVerdict(feature=name, lookback=look)
    # a cut keeps bars 0..c-1; c past the lookback so the copy has values to compare
    cut_bars = sorted({n - 1, *(int(c) for c in rng.integers(look + 1, n, size=max(0, cuts - 1)))})
    for c in cut_bars:
        got = values(_slice(bars, 0, c))
        bad = np.flatnonzero(~_same(full[:c], got, rtol))
        verdict.moves += [Move(name, "truncated", c, int(t), int(ts[t]), float(full[t]), float(got[t])) for t in bad]
        verdict.copies += 1
    start_bars = sorted({1, *(int(s) for s in rng.integers(1, n - look - 1, size=max(0, starts - 1)))})
    for s in start_bars:
        got = values(_slice(bars, s, n))
        # past its own lookback the copy must agree; before it, the value must be NaN
        ref = full[s:].copy()
        ref[:look] = math.nan
        bad = np.flatnonzero(~_same(ref, got, rtol))
        verdict.moves += [Move(name, "started", s, int(s + i), int(ts[s + i]), float(ref[i]), float(got[i])) for i in bad]
        verdict.copies += 1
    return verdict
