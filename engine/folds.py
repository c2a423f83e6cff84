"""The `--days` window, walk-forward folds, warm-up checks, bars_per_year and
in-sample marking (docs/design.md 6).

Bar indices are into the full stored series (what the simulation kernel takes as
traj_start / traj_end), end exclusive; timestamps are int64 ns since the epoch, UTC.

The window of `days` days up to `end` (inclusive; default the last bar) holds the
bars with end - days < timestamp <= end. It is refused as too short when the series
does not reach back to its start: when the first stored bar lies later after the
window start than the widest gap between stored bars, bars are missing there (a
weekend or holiday before an equity series' first bar is within that gap, so it does
not count as missing).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .errors import DataError, SettingError

NS_PER_DAY = 86_400 * 10**9
NS_PER_SECOND = 1_000_000_000
DAYS_PER_YEAR = 365.25
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


class FoldCountError(DataError, SettingError):
    """A fold count or day count below 1: the setting's value is wrong (the CLI names
    its flag, exit status 2). Also a DataError, as it always was, and (as a
    SettingError) a ValueError for callers that treat bad arguments as such."""


class TooManyFoldsError(DataError, SettingError):
    """More folds than the window's bars allow: a valid count that this data cannot
    hold (the CLI names --walk-forward, exit status 1)."""


@dataclass(frozen=True)
class Window:
    """The bars of the last `days` days up to `end_ts`: series[start:end]."""

    start: int
    end: int
    first_ts: int
    last_ts: int
    end_ts: int
    days: float

    @property
    def bars(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Fold:
    """Fold `index` of a walk-forward: bars series[start:end], first/last timestamps."""

    index: int
    start: int
    end: int
    first_ts: int
    last_ts: int

    @property
    def bars(self) -> int:
        return self.end - self.start


# ---------------------------------------------------------------------------------
# time values


def iso(ns: int) -> str:
    """int ns -> '2024-12-20T13:00:00Z' (sub-second digits only when present)."""
    ns = int(ns)
    sec, rem = divmod(ns, 10**9)
    t = _EPOCH + dt.timedelta(seconds=sec)
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if rem:
        s += f".{rem:09d}".rstrip("0")
    return s + "Z"


def to_ns(value) -> int | None:
    """A point in time -> int64 ns UTC. Accepts None, int ns, numpy datetime64,
    datetime / date (naive = UTC, a date = its midnight) and ISO-8601 strings."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"not a point in time: {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ValueError("not a point in time: NaT")
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"cannot read {value!r} as an ISO date or time") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        ns = (value - _EPOCH) // dt.timedelta(microseconds=1) * 1000
        return ns + int(getattr(value, "nanosecond", 0))  # pandas Timestamp
    if isinstance(value, dt.date):
        return to_ns(dt.datetime(value.year, value.month, value.day))
    raise TypeError(f"not a point in time: {value!r}")


def _timestamps(timestamps_ns) -> np.ndarray:
    ts = np.asarray(timestamps_ns)
    if np.issubdtype(ts.dtype, np.datetime64):
        ts = ts.astype("datetime64[ns]").view(np.int64)
    elif not np.issubdtype(ts.dtype, np.integer):
        raise TypeError(f"timestamps must be int64 ns or datetime64, got {ts.dtype}")
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    if ts.ndim != 1:
        raise ValueError(f"timestamps must be 1-D, got shape {ts.shape}")
    if ts.size > 1:
        bad = np.nonzero(np.diff(ts) <= 0)[0]
        if bad.size:
            j = int(bad[0]) + 1
            raise DataError(f"timestamps are not strictly increasing at bar {j} ({iso(ts[j])})")
    return ts


def _days_text(days: float) -> str:
    return f"{days:g} day" + ("" if days == 1 else "s")


# ---------------------------------------------------------------------------------
# window and folds


def _window(ts: np.ndarray, days, end) -> Window:
    if not (isinstance(days, (int, float, np.integer, np.floating))
            and not isinstance(days, (bool, np.bool_)) and math.isfinite(days) and days > 0):
        raise FoldCountError("days", f"must be a number above 0, got {days!r}")
    if ts.size == 0:
        raise DataError("no bars: the series is empty")
    end_ts = int(ts[-1]) if end is None else to_ns(end)
    if end_ts < ts[0]:
        raise DataError(f"end {iso(end_ts)} is before the first bar ({iso(ts[0])})")
    days_ns = int(round(float(days) * NS_PER_DAY))
    lo = end_ts - days_ns
    start = int(np.searchsorted(ts, lo, side="right"))
    stop = int(np.searchsorted(ts, end_ts, side="right"))
    n = stop - start
    if n == 0:
        raise DataError(f"no bars in the {_days_text(days)} up to {iso(end_ts)} "
                        f"(the nearest earlier bar is {iso(ts[stop - 1])})")
    if start == 0:
        gaps = np.diff(ts[:stop])
        widest = int(gaps.max()) if gaps.size else 0
        if int(ts[0]) - lo > widest:
            # Bar density of what is there, extended to the whole window.
            typical = int(np.median(gaps)) if gaps.size else 0
            covered = end_ts - int(ts[0]) + typical
            need = max(n + 1, int(round(n * days_ns / covered))) if covered > 0 else n + 1
            raise DataError(
                f"too few bars for {_days_text(days)} up to {iso(end_ts)}: the series has "
                f"{n} bars from {iso(ts[0])}, the window needs about {need}")
    return Window(start=start, end=stop, first_ts=int(ts[start]), last_ts=int(ts[stop - 1]),
                  end_ts=end_ts, days=float(days))


def _check_warmup(ts: np.ndarray, start: int, warmup, what: str) -> None:
    warmup = int(warmup)
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if start < warmup:
        raise DataError(
            f"too few warm-up bars: {what} starts at {iso(ts[start])} with {start} bars "
            f"before it in the series, the features need {warmup}")


def make_window(timestamps_ns, days: float, end=None, warmup: int = 0) -> Window:
    """The last `days` days of bars up to `end` (inclusive; None = the last bar),
    checked for coverage and for `warmup` bars before its first bar."""
    ts = _timestamps(timestamps_ns)
    w = _window(ts, days, end)
    _check_warmup(ts, w.start, warmup, "the window")
    return w


def make_folds(timestamps_ns, days: float, k: int, end=None, warmup: int = 0) -> list[Fold]:
    """The window of make_window cut into k contiguous folds of floor(N/k) bars, the
    remainder in the last fold. Each fold needs at least 2 bars (one decision and its
    fill); the first fold needs `warmup` bars before it in the series."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise FoldCountError("walk_forward", f"the number of folds must be an integer, got {k!r}")
    if k < 1:
        raise FoldCountError("walk_forward", f"the number of folds must be at least 1, got {k}")
    k = int(k)
    ts = _timestamps(timestamps_ns)
    w = _window(ts, days, end)
    n = w.bars
    if k > n:
        raise TooManyFoldsError("walk_forward", f"more folds ({k}) than bars ({n}) in the {_days_text(days)} "
                                f"up to {iso(w.end_ts)}", usage=False, value=k)
    size = n // k
    if size < 2:
        raise TooManyFoldsError("walk_forward", f"{n} bars in the {_days_text(days)} up to {iso(w.end_ts)} make "
                                f"folds of {size} bar; {k} folds of at least 2 bars need {2 * k}",
                                usage=False, value=k)
    _check_warmup(ts, w.start, warmup, "fold 1")  # folds count from 1, as the tables do
    folds = []
    for j in range(k):
        a = w.start + j * size
        b = w.end if j == k - 1 else a + size
        folds.append(Fold(index=j, start=a, end=b, first_ts=int(ts[a]), last_ts=int(ts[b - 1])))
    return folds


def end_past_last_bar(timestamps_ns, days: float, end) -> str | None:
    """When `end` lies past the last stored bar, the window ends at that bar: a sentence
    saying so, with how many hours of the requested window hold no bars; else None."""
    if end is None:
        return None
    ts = _timestamps(timestamps_ns)
    end_ts = to_ns(end)
    if ts.size == 0 or end_ts <= int(ts[-1]):
        return None
    empty_h = min(end_ts - int(ts[-1]), int(round(float(days) * NS_PER_DAY))) / 3.6e12
    end_text = iso(end_ts // NS_PER_SECOND * NS_PER_SECOND)  # to the second: a bare date ends at 23:59:59.999999
    return (f"--end {end_text} lies past the last stored bar ({iso(int(ts[-1]))}): the "
            f"{float(days):g}-day window is cut short there: {empty_h:,.0f} of its hours hold no bars")


def bars_per_year(timestamps_ns_of_window) -> float:
    """N / (span / 365.25 days), N the window's bars and span its last minus first
    timestamp (docs/design.md 6)."""
    ts = _timestamps(timestamps_ns_of_window)
    if ts.size < 2:
        raise ValueError(f"bars_per_year needs at least 2 bars, got {ts.size}")
    span_years = (int(ts[-1]) - int(ts[0])) / (DAYS_PER_YEAR * NS_PER_DAY)
    return ts.size / span_years


def mark_in_sample(folds: Sequence, trained_until=None,
                   train_periods: Iterable = ()) -> list[bool]:
    """One flag per fold (or Window): True when the fold may have been seen in
    training, i.e. it starts at or before `trained_until` (the last training bar), or
    it overlaps a (train_start, train_end) period, both ends inclusive; a None end is
    open. Times as accepted by to_ns."""
    tu = to_ns(trained_until)
    periods = []
    for p in train_periods or ():
        a, b = p
        a = to_ns(a)
        b = to_ns(b)
        periods.append((-(2**63) if a is None else a, 2**63 - 1 if b is None else b))
    flags = []
    for f in folds:
        first, last = int(f.first_ts), int(f.last_ts)
        flag = tu is not None and first <= tu
        for a, b in periods:
            if first <= b and last >= a:
                flag = True
        flags.append(flag)
    return flags


__all__ = ["Window", "Fold", "FoldCountError", "make_window", "make_folds",
           "bars_per_year", "mark_in_sample", "end_past_last_bar", "to_ns", "iso", "NS_PER_DAY"]
