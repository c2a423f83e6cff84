"""One symbol's bars at one timeframe (`Bars`), the schema of docs/design.md 2, timeframes,
time formatting, and the per-row rules every bar that enters the store must pass.

Schema (docs/design.md 2): timestamp timestamp[ns, UTC]; open high low close volume
float64; trade_count int64 nullable; vwap float64 nullable."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import numpy as np
import pyarrow as pa

from ..errors import DataError
from .symbols import canonical_symbol, check_asset_class

FORMAT = "foldgate.bars/1"
PRICE_COLUMNS = ("open", "high", "low", "close")
FLOAT_COLUMNS = ("open", "high", "low", "close", "volume")
COLUMNS = ("timestamp", "open", "high", "low", "close", "volume", "trade_count", "vwap")

SCHEMA = pa.schema(
    [
        pa.field("timestamp", pa.timestamp("ns", tz="UTC"), nullable=False),
        pa.field("open", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("low", pa.float64(), nullable=False),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("volume", pa.float64(), nullable=False),
        pa.field("trade_count", pa.int64(), nullable=True),
        pa.field("vwap", pa.float64(), nullable=True),
    ]
)

NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND

# docs/design.md 2: timestamps between 1970 and a day past now (a day covers clock skew and
# a bar stamped in a time zone ahead of UTC).
EARLIEST_NS = 0


# Alpaca's stock-bar adjustments (docs/design.md 2); stocks are fetched split-adjusted by default.
ADJUSTMENTS = ("raw", "split", "dividend", "all")
DEFAULT_STOCK_ADJUSTMENT = "split"


def check_adjustment(adjustment: str) -> str:
    a = str(adjustment).strip().lower()
    if a not in ADJUSTMENTS:
        raise DataError(f"unknown adjustment {adjustment!r}; use one of: {', '.join(ADJUSTMENTS)}")
    return a


def latest_ns(now_ns: int | None = None) -> int:
    """The latest timestamp a bar may carry: a day past now."""
    return (time.time_ns() if now_ns is None else int(now_ns)) + NS_PER_DAY

# --------------------------------------------------------------------------- timeframes

_TF_UNITS = {
    "min": "Min", "m": "Min", "minute": "Min", "minutes": "Min", "t": "Min",
    "hour": "Hour", "h": "Hour", "hours": "Hour", "hr": "Hour",
    "day": "Day", "d": "Day", "days": "Day",
    "week": "Week", "w": "Week", "weeks": "Week",
    "month": "Month", "mo": "Month", "months": "Month",
}
_TF_SECONDS = {"Min": 60, "Hour": 3600, "Day": 86400, "Week": 7 * 86400, "Month": 31 * 86400}
_TF_RE = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")


def canonical_timeframe(timeframe: str) -> str:
    """Alpaca's spelling: `1hour`, `1h`, `1Hour` -> `1Hour`; `15m` -> `15Min`."""
    m = _TF_RE.match(str(timeframe))
    unit = _TF_UNITS.get(m.group(2).lower()) if m else None
    if not m or unit is None or int(m.group(1)) <= 0:
        raise DataError(
            f"invalid timeframe {timeframe!r}; use an amount and a unit, e.g. 1Min, 15Min, "
            "1Hour, 4Hour, 1Day, 1Week, 1Month"
        )
    return f"{int(m.group(1))}{unit}"


def timeframe_seconds(timeframe: str) -> int:
    """Nominal bar length in seconds (a month counts as 31 days, its longest)."""
    tf = canonical_timeframe(timeframe)
    n, unit = int(re.match(r"\d+", tf).group(0)), re.sub(r"^\d+", "", tf)
    return n * _TF_SECONDS[unit]


# --------------------------------------------------------------------------- Bars


def _as_1d(name: str, values, dtype) -> np.ndarray:
    # np.asarray keeps a memory-mapped view as it is when the dtype already matches.
    a = np.asarray(values, dtype=dtype)
    if a.ndim != 1:
        raise DataError(f"bars column {name} must be one-dimensional, got shape {a.shape}")
    return a


@dataclass(frozen=True, eq=False)
class Bars:
    """One symbol's bars at one timeframe, as NumPy arrays.

    Arrays read from the store are read-only views onto the memory-mapped file."""

    symbol: str
    timeframe: str
    asset_class: str
    timestamp: np.ndarray  # int64 ns since epoch, UTC, strictly increasing
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    trade_count: np.ndarray | None = None  # int64, nulls -> -1
    vwap: np.ndarray | None = None  # float64, nulls -> NaN
    adjustment: str | None = None  # stocks: raw | split | dividend | all; None = not recorded
    feed: str | None = None  # the Alpaca feed the bars came from; None = not fetched
    first_available: int | None = None  # ns of the first bar the source had after searched_from
    searched_from: int | None = None  # ns: the source was asked from here and had nothing before first_available

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "symbol", canonical_symbol(self.symbol))
        set_(self, "timeframe", canonical_timeframe(self.timeframe))
        set_(self, "asset_class", check_asset_class(self.asset_class))
        if self.adjustment is not None:
            set_(self, "adjustment", check_adjustment(self.adjustment))
        for name in ("first_available", "searched_from"):
            if getattr(self, name) is not None:
                set_(self, name, int(getattr(self, name)))
        if (self.first_available is None) != (self.searched_from is None):
            raise DataError("first_available and searched_from go together")
        ts = self.timestamp
        if isinstance(ts, np.ndarray) and ts.dtype.kind == "M":
            ts = ts.astype("datetime64[ns]").view(np.int64)
        set_(self, "timestamp", _as_1d("timestamp", ts, np.int64))
        n = len(self.timestamp)
        for name in FLOAT_COLUMNS:
            set_(self, name, _as_1d(name, getattr(self, name), np.float64))
        if self.trade_count is not None:
            set_(self, "trade_count", _as_1d("trade_count", self.trade_count, np.int64))
        if self.vwap is not None:
            set_(self, "vwap", _as_1d("vwap", self.vwap, np.float64))
        for name in COLUMNS[1:]:
            col = getattr(self, name)
            if col is not None and len(col) != n:
                raise DataError(
                    f"{self.symbol} {self.timeframe}: column {name} has {len(col)} values, "
                    f"timestamp has {n}"
                )

    def __len__(self) -> int:
        return len(self.timestamp)

    def __repr__(self) -> str:
        rng = ""
        if len(self):
            rng = f", {format_ts(self.timestamp[0])} .. {format_ts(self.timestamp[-1])}"
        return f"Bars({self.symbol} {self.timeframe} {self.asset_class}, {len(self)} bars{rng})"

    def slice(self, start: int | None, stop: int | None) -> "Bars":
        """Rows start:stop (Python slice rules); views, no copy."""
        sl = slice(start, stop)
        cols = {
            name: (None if getattr(self, name) is None else getattr(self, name)[sl])
            for name in COLUMNS
        }
        return Bars(self.symbol, self.timeframe, self.asset_class, **cols, **self.provenance())

    def provenance(self) -> dict:
        """Where the bars came from, as keyword arguments of Bars."""
        return {"adjustment": self.adjustment, "feed": self.feed, "first_available": self.first_available,
                "searched_from": self.searched_from}

    def column(self, name: str) -> np.ndarray | None:
        return getattr(self, name)

    @property
    def datetimes(self) -> np.ndarray:
        """Timestamps as numpy datetime64[ns] (UTC, naive dtype)."""
        return self.timestamp.view("datetime64[ns]")


def format_ts(ns: int | np.integer) -> str:
    """ISO-8601 UTC with a Z, seconds precision, for messages and tables."""
    sec, rem = divmod(int(ns), NS_PER_SECOND)
    dt = datetime.fromtimestamp(sec, tz=timezone.utc)
    s = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if rem:
        s += f".{rem:09d}".rstrip("0")
    return s + "Z"


def datetime_ns(t: datetime) -> int:
    """An aware datetime -> int ns since the epoch, exactly (no float on the way)."""
    return (t - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1) * 1000


def ns_to_datetime(ns: int | np.integer) -> datetime:
    """UTC-aware datetime (microsecond precision)."""
    sec, rem = divmod(int(ns), NS_PER_SECOND)
    return datetime.fromtimestamp(sec, tz=timezone.utc).replace(microsecond=rem // 1000)


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class RowProblem:
    row: int  # 1-based row number in the source (data rows, header not counted)
    message: str


@dataclass(frozen=True)
class RowCheck:
    """One rule of docs/design.md 2 over a column: the rows that break it, and how to say so."""

    reason: str                      # the rule, for counts (e.g. a fetch's refused bars)
    mask: np.ndarray                 # bool per row, True = broken
    describe: Callable[[int], str]   # row index -> message for that row


def row_checks(timestamp, open_, high, low, close, volume, trade_count=None, vwap=None,
               now_ns: int | None = None) -> list[RowCheck]:
    """Every per-row rule of docs/design.md 2 (ordering across rows aside), in the order a
    fetch counts them: timestamp range, missing or NaN values, non-positive prices,
    negative volume, high/low against open/close, trade_count, vwap. The one place the
    import, a fetch, every store write and every store read take these rules from."""
    ts = np.asarray(timestamp, dtype=np.int64)
    cols = {"open": np.asarray(open_, dtype=np.float64), "high": np.asarray(high, dtype=np.float64),
            "low": np.asarray(low, dtype=np.float64), "close": np.asarray(close, dtype=np.float64)}
    vol = np.asarray(volume, dtype=np.float64)
    hi_ns = latest_ns(now_ns)
    out = [
        RowCheck("bad timestamp", ts < EARLIEST_NS,
                 lambda i: f"timestamp {format_ts(ts[i])} is before 1970"),
        RowCheck("bad timestamp", ts > hi_ns,
                 lambda i: f"timestamp {format_ts(ts[i])} is more than a day past now"),
    ]
    for name, col in cols.items():
        out.append(RowCheck("missing or NaN value", np.isnan(col), lambda i, name=name: f"{name} is NaN"))
        out.append(RowCheck("missing or NaN value", np.isinf(col),
                            lambda i, name=name, col=col: f"{name} is {col[i]}"))
    out.append(RowCheck("missing or NaN value", ~np.isfinite(vol), lambda i: f"volume is {vol[i]}"))
    with np.errstate(invalid="ignore"):
        for name, col in cols.items():
            out.append(RowCheck("non-positive price", col <= 0,
                                lambda i, name=name, col=col: f"{name} is not positive ({col[i]:g})"))
        out.append(RowCheck("negative volume", vol < 0, lambda i: f"volume is negative ({vol[i]:g})"))
        o, h, l_, c = cols["open"], cols["high"], cols["low"], cols["close"]
        out.append(RowCheck("high/low inconsistent", h < np.maximum(o, c),
                            lambda i: f"high {h[i]:g} is below max(open, close) {max(o[i], c[i]):g}"))
        out.append(RowCheck("high/low inconsistent", l_ > np.minimum(o, c),
                            lambda i: f"low {l_[i]:g} is above min(open, close) {min(o[i], c[i]):g}"))
        if trade_count is not None:
            tc = np.asarray(trade_count, dtype=np.int64)
            out.append(RowCheck("bad trade_count", tc < -1, lambda i: f"trade_count is negative ({tc[i]})"))
        if vwap is not None:
            vw = np.asarray(vwap, dtype=np.float64)
            out.append(RowCheck("bad vwap", np.isinf(vw) | (vw <= 0),
                                lambda i: f"vwap is not a positive price ({vw[i]:g})"))
    return out


def bar_problems(bars: Bars, first_row: int = 1, limit: int | None = None,
                 now_ns: int | None = None) -> tuple[list[RowProblem], int]:
    """Rows that break docs/design.md 2, in row order: (the first `limit` problems, the number
    of bad rows). Row numbers start at `first_row` (1 = the first data row).

    Checks: `row_checks`, and timestamps strictly increasing (so unique)."""
    n = len(bars)
    bad: dict[int, list[str]] = {}

    def flag(mask: np.ndarray, describe) -> None:
        for i in np.flatnonzero(mask):
            bad.setdefault(int(i), []).append(describe(int(i)))

    for check in row_checks(bars.timestamp, bars.open, bars.high, bars.low, bars.close,
                            bars.volume, bars.trade_count, bars.vwap, now_ns=now_ns):
        flag(check.mask, check.describe)
    if n > 1:
        ts = bars.timestamp
        d = np.diff(ts)
        flag(np.concatenate([[False], d == 0]),
             lambda i: f"duplicate timestamp {format_ts(ts[i])} (also row {i - 1 + first_row})")
        flag(np.concatenate([[False], d < 0]),
             lambda i: f"timestamp {format_ts(ts[i])} is before row {i - 1 + first_row}'s "
                       f"{format_ts(ts[i - 1])} (not sorted)")
    rows = sorted(bad)
    shown = rows if limit is None else rows[:limit]
    return [RowProblem(i + first_row, "; ".join(bad[i])) for i in shown], len(rows)


def format_problems(source: str, problems: list[RowProblem], n_bad: int, n_rows: int,
                    outcome: str = "nothing written") -> str:
    """One line: `SOURCE: 3 of 120 rows are invalid, nothing written: row 5: close is NaN; ...`."""
    listed = "; ".join(f"row {p.row}: {p.message}" for p in problems)
    more = f"; and {n_bad - len(problems)} more" if n_bad > len(problems) else ""
    verb = "is" if n_bad == 1 else "are"
    return (
        f"{source}: {n_bad} of {n_rows} rows {verb} invalid (data rows, first = 1), "
        f"{outcome}: {listed}{more}"
    ).replace("\n", " ").replace("\r", " ")


def validate_bars(bars: Bars, source: str | None = None, first_row: int = 1, limit: int = 5,
                  outcome: str = "nothing written") -> Bars:
    """Raise DataError naming the first `limit` bad rows and their count; else return bars.

    Used by the importer, the Alpaca fetcher, every store write and every store read."""
    problems, n_bad = bar_problems(bars, first_row=first_row, limit=limit)
    if n_bad:
        src = source or f"{bars.symbol} {bars.timeframe} bars"
        raise DataError(format_problems(src, problems, n_bad, len(bars), outcome))
    return bars


# --------------------------------------------------------------------------- Arrow