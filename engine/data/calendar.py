"""The NYSE calendar: holidays, early closes and regular sessions, by the exchange's rules,
so that a missing stock bar at night or on a holiday is not mistaken for a hole in the data."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Iterable
from zoneinfo import ZoneInfo

NS_PER_SECOND = 1_000_000_000


def _ns(t: dt.datetime) -> int:
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1) * 1000


@lru_cache(maxsize=1)
def _new_york() -> ZoneInfo:
    # looked up on first use: the store imports this module, and only stock gaps need it
    return ZoneInfo("America/New_York")
# Closures outside the holiday rules (national days of mourning, storms, 9/11).
_SPECIAL_CLOSURES = frozenset(dt.date.fromisoformat(d) for d in (
    "2001-09-11", "2001-09-12", "2001-09-13", "2001-09-14", "2004-06-11", "2007-01-02",
    "2012-10-29", "2012-10-30", "2018-12-05", "2025-01-09",
))


def _easter(year: int) -> dt.date:
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """n-th (1-based; -1 = last) weekday (Monday = 0) of a month."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _observed(d: dt.date) -> dt.date | None:
    if d.weekday() == 5:
        return d - dt.timedelta(days=1)
    if d.weekday() == 6:
        return d + dt.timedelta(days=1)
    return d


@lru_cache(maxsize=64)
def _nyse_year(year: int) -> tuple[frozenset, frozenset]:
    """(holidays, early closes at 13:00 ET) of one year, by the NYSE's rules."""
    hol = set()
    ny = dt.date(year, 1, 1)
    if ny.weekday() == 6:
        hol.add(ny + dt.timedelta(days=1))
    elif ny.weekday() < 5:
        hol.add(ny)  # on a Saturday it is not moved to Friday Dec 31
    hol.add(_nth_weekday(year, 1, 0, 3))      # Martin Luther King Jr. Day
    hol.add(_nth_weekday(year, 2, 0, 3))      # Washington's Birthday
    hol.add(_easter(year) - dt.timedelta(days=2))   # Good Friday
    hol.add(_nth_weekday(year, 5, 0, -1))     # Memorial Day
    if year >= 2022:
        hol.add(_observed(dt.date(year, 6, 19)))     # Juneteenth
    hol.add(_observed(dt.date(year, 7, 4)))
    hol.add(_nth_weekday(year, 9, 0, 1))      # Labor Day
    thanksgiving = _nth_weekday(year, 11, 3, 4)
    hol.add(thanksgiving)
    hol.add(_observed(dt.date(year, 12, 25)))
    hol |= {d for d in _SPECIAL_CLOSURES if d.year == year}
    early = {thanksgiving + dt.timedelta(days=1)}
    for d in (dt.date(year, 7, 3), dt.date(year, 12, 24)):
        if d.weekday() < 4 and d not in hol:
            early.add(d)
    return frozenset(hol), frozenset(early - hol)


def is_trading_day(d: dt.date) -> bool:
    return d.weekday() < 5 and d not in _nyse_year(d.year)[0]


@lru_cache(maxsize=8192)
def _session_ns(d: dt.date, extended: bool) -> tuple[int, int] | None:
    """[open, close) of a trading day in ns UTC: regular 09:30-16:00 ET (13:00 on an
    early close), or extended 04:00-20:00 ET."""
    if not is_trading_day(d):
        return None
    if extended:
        o, c = dt.time(4, 0), dt.time(20, 0)
    else:
        o = dt.time(9, 30)
        c = dt.time(13, 0) if d in _nyse_year(d.year)[1] else dt.time(16, 0)
    return (_ns(dt.datetime.combine(d, o, _new_york())), _ns(dt.datetime.combine(d, c, _new_york())))


def _sessions(a_ns: int, b_ns: int, extended: bool = False) -> Iterable[tuple[int, int]]:
    d = dt.datetime.fromtimestamp(a_ns // NS_PER_SECOND, _new_york()).date() - dt.timedelta(days=1)
    last = dt.datetime.fromtimestamp(b_ns // NS_PER_SECOND, _new_york()).date() + dt.timedelta(days=1)
    while d <= last:
        s = _session_ns(d, extended)
        if s is not None and s[1] > a_ns and s[0] < b_ns:
            yield s
        d += dt.timedelta(days=1)


def slots_in_sessions(a: int, b: int, step: int) -> int:
    """How many bar slots u = a, a+step, ... < b have [u, u+step) overlapping a
    regular session."""
    count = 0
    for o, c in _sessions(a, b):
        # u overlaps [o, c) iff o - step < u < c
        k_lo = max(0, -(-(o - step + 1 - a) // step))
        k_hi = (min(c, b) - 1 - a) // step
        if k_hi >= k_lo:
            count += k_hi - k_lo + 1
    return count


def market_open_between(a_ns: int, b_ns: int) -> bool:
    """Any extended-hours trading time in [a, b)? (stocks only trade then)."""
    return next(iter(_sessions(a_ns, b_ns, extended=True)), None) is not None
