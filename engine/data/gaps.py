"""Gaps between consecutive bars and the per-file summary `foldgate data show` prints.
A stock's gap is told apart from a hole by the NYSE calendar."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .bars import NS_PER_SECOND, Bars, timeframe_seconds
from .calendar import slots_in_sessions

@dataclass(frozen=True)
class Gap:
    before: int  # ns of the last bar before the gap
    after: int  # ns of the first bar after it
    missing: int  # whole bars that fit in between
    market_closed: bool  # us_equity: explained by nights, weekends or a holiday

    @property
    def length_ns(self) -> int:
        return self.after - self.before


def gaps(bars: Bars) -> list[Gap]:
    """Steps between consecutive bars longer than one timeframe, oldest first.

    For us_equity, a gap is marked market_closed when no missing bar would have
    overlapped a regular NYSE session (nights, weekends, holidays, early closes)."""
    ts = bars.timestamp
    if len(ts) < 2:
        return []
    step = timeframe_seconds(bars.timeframe) * NS_PER_SECOND
    d = np.diff(ts)
    out = []
    equity = bars.asset_class == "us_equity"
    for i in np.flatnonzero(d > step):
        a, b = int(ts[i]), int(ts[i + 1])
        closed = equity and slots_in_sessions(a + step, b, step) == 0
        out.append(Gap(a, b, int((b - a) // step) - 1, closed))
    return out


@dataclass(frozen=True)
class BarsSummary:
    symbol: str
    timeframe: str
    asset_class: str
    n_bars: int
    first: int | None
    last: int | None
    gaps: list[Gap] = field(default_factory=list)

    @property
    def unexpected_gaps(self) -> list[Gap]:
        return [g for g in self.gaps if not g.market_closed]


def summarize(bars: Bars) -> BarsSummary:
    """Range, count and gaps: what `foldgate data show` prints."""
    n = len(bars)
    return BarsSummary(
        bars.symbol, bars.timeframe, bars.asset_class, n,
        int(bars.timestamp[0]) if n else None,
        int(bars.timestamp[-1]) if n else None,
        gaps(bars),
    )


# --------------------------------------------------------------------------- store