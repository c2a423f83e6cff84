"""The bar store: one Arrow IPC file per `<root>/<timeframe>/<SYMBOL>.arrow`.

Files are uncompressed and hold a single record batch, so a read is a memory map and
the price columns are NumPy views onto the mapped file (no copy, no parse). Writes
go through `engine.atomic.atomic_open`: a reader sees the old file or the new one,
never half of one. Every write is validated, so the store only ever holds bars that
satisfy design.md section 2.

Schema (design.md 2): timestamp timestamp[ns, UTC]; open high low close volume
float64; trade_count int64 nullable; vwap float64 nullable. The asset class, symbol
and timeframe ride in the schema metadata (`foldgate.asset_class`, ...)."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from .atomic import atomic_open, ensure_writable_dir, file_lock
from .calendar import slots_in_sessions
from .errors import DataError, FoldgateError
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

DEFAULT_ROOT = Path("data") / "bars"
NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND

# design.md 2: timestamps between 1970 and a day past now (a day covers clock skew and
# a bar stamped in a time zone ahead of UTC).
EARLIEST_NS = 0


# Alpaca's stock-bar adjustments (design.md 2); stocks are fetched split-adjusted by default.
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
    first_available: int | None = None  # ns of the source's first bar, when it is known

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "symbol", canonical_symbol(self.symbol))
        set_(self, "timeframe", canonical_timeframe(self.timeframe))
        set_(self, "asset_class", check_asset_class(self.asset_class))
        if self.adjustment is not None:
            set_(self, "adjustment", check_adjustment(self.adjustment))
        if self.first_available is not None:
            set_(self, "first_available", int(self.first_available))
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
        return {"adjustment": self.adjustment, "feed": self.feed, "first_available": self.first_available}

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
    """One rule of design.md 2 over a column: the rows that break it, and how to say so."""

    reason: str                      # the rule, for counts (e.g. a fetch's refused bars)
    mask: np.ndarray                 # bool per row, True = broken
    describe: Callable[[int], str]   # row index -> message for that row


def row_checks(timestamp, open_, high, low, close, volume, trade_count=None, vwap=None,
               now_ns: int | None = None) -> list[RowCheck]:
    """Every per-row rule of design.md 2 (ordering across rows aside), in the order a
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
    """Rows that break design.md 2, in row order: (the first `limit` problems, the number
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


META_FORMAT = "foldgate.format"
META_SYMBOL = "foldgate.symbol"
META_TIMEFRAME = "foldgate.timeframe"
META_ASSET_CLASS = "foldgate.asset_class"
META_ADJUSTMENT = "foldgate.adjustment"
META_FEED = "foldgate.feed"
META_FIRST_AVAILABLE = "foldgate.first_available"
_MAX_META_VALUE = 256  # longer metadata values are not ours


def bars_to_table(bars: Bars) -> pa.Table:
    """The Arrow table of design.md 2, asset class and names in the schema metadata."""
    n = len(bars)
    tc = bars.trade_count
    vw = bars.vwap
    arrays = [
        pa.array(bars.timestamp, type=pa.int64()).view(pa.timestamp("ns", tz="UTC")),
        *(pa.array(getattr(bars, c), type=pa.float64()) for c in FLOAT_COLUMNS),
        pa.nulls(n, pa.int64()) if tc is None else pa.array(tc, type=pa.int64(), mask=(tc < 0) if (tc < 0).any() else None),
        pa.nulls(n, pa.float64()) if vw is None else pa.array(vw, type=pa.float64(), mask=np.isnan(vw) if np.isnan(vw).any() else None),
    ]
    meta = {
        META_FORMAT: FORMAT,
        META_SYMBOL: bars.symbol,
        META_TIMEFRAME: bars.timeframe,
        META_ASSET_CLASS: bars.asset_class,
    }
    if bars.adjustment is not None:
        meta[META_ADJUSTMENT] = bars.adjustment
    if bars.feed is not None:
        meta[META_FEED] = bars.feed
    if bars.first_available is not None:
        meta[META_FIRST_AVAILABLE] = str(bars.first_available)
    return pa.Table.from_arrays(arrays, schema=SCHEMA.with_metadata(meta))


def _zero_copy(col: pa.ChunkedArray, np_dtype) -> np.ndarray:
    if col.num_chunks == 1:
        chunk = col.chunk(0)
    else:  # a file written by someone else with several batches: one copy, still correct
        chunk = col.combine_chunks()
    if pa.types.is_timestamp(chunk.type):
        chunk = chunk.view(pa.int64())
    if chunk.null_count == 0:
        # Straight from the memory-mapped buffer: Array.to_numpy would import pandas
        # (~0.2 s of a warm run) just to look for extension types.
        itemsize = np.dtype(np_dtype).itemsize
        return np.frombuffer(chunk.buffers()[1], dtype=np_dtype, count=len(chunk),
                             offset=chunk.offset * itemsize)
    return chunk.to_numpy(zero_copy_only=False)


def table_metadata(schema: pa.Schema, where: str) -> dict[str, str]:
    """The schema metadata as text; DataError naming `where` for bytes that are not."""
    out = {}
    for k, v in (schema.metadata or {}).items():
        try:
            key, value = k.decode("utf-8"), v.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{where}: the file metadata is not UTF-8 text; re-import or re-fetch it") from None
        out[key] = value
    return out


def _check_metadata(meta: dict[str, str], symbol: str, timeframe: str, where: str) -> dict:
    """The provenance fields of Bars from the metadata; DataError for values foldgate
    never writes (a hand-edited or foreign file)."""
    def bad(key: str, why: str) -> DataError:
        return DataError(f"{where}: metadata {key} {why}; re-import or re-fetch the file")

    for key in (META_FORMAT, META_SYMBOL, META_TIMEFRAME, META_ASSET_CLASS, META_ADJUSTMENT,
                META_FEED, META_FIRST_AVAILABLE):
        if key in meta and len(meta[key]) > _MAX_META_VALUE:
            raise bad(key, f"is {len(meta[key])} characters long")
    fmt = meta.get(META_FORMAT)
    if fmt is not None and fmt != FORMAT:
        raise bad(META_FORMAT, f"is {fmt!r}, not {FORMAT!r} (another program, or a newer foldgate, wrote it)")
    for key, want, canon in ((META_SYMBOL, symbol, canonical_symbol), (META_TIMEFRAME, timeframe, canonical_timeframe)):
        if key in meta:
            try:
                ok = canon(meta[key]) == want
            except FoldgateError:
                ok = False
            if not ok:
                raise bad(key, f"says {meta[key]!r} but the file is stored as {want}")
    ac = meta.get(META_ASSET_CLASS)
    if ac is None:
        raise DataError(f"{where}: no asset class in the file metadata ({META_ASSET_CLASS})")
    try:
        check_asset_class(ac)
    except FoldgateError:
        raise bad(META_ASSET_CLASS, f"is {ac!r}, not crypto or us_equity") from None
    prov: dict = {"adjustment": None, "feed": meta.get(META_FEED), "first_available": None}
    if META_ADJUSTMENT in meta:
        try:
            prov["adjustment"] = check_adjustment(meta[META_ADJUSTMENT])
        except FoldgateError:
            raise bad(META_ADJUSTMENT, f"is {meta[META_ADJUSTMENT]!r}, not one of {', '.join(ADJUSTMENTS)}") from None
    if META_FIRST_AVAILABLE in meta:
        raw = meta[META_FIRST_AVAILABLE]
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) <= latest_ns()):
            raise bad(META_FIRST_AVAILABLE, f"is {raw[:40]!r}, not a time in ns since 1970")
        prov["first_available"] = int(raw)
    return prov


def bars_from_table(table: pa.Table, symbol: str, timeframe: str, asset_class: str | None = None,
                    source: str = "", check_rows: bool = True) -> Bars:
    """Bars from a table in the store schema (zero copy for non-null columns). Every
    column type, the metadata and (check_rows) every row are checked: DataError naming
    `source` and the row, never another exception."""
    where = source or f"{symbol} {timeframe}"
    meta = table_metadata(table.schema, where)
    names = table.column_names
    if len(set(names)) != len(names):
        raise DataError(f"{where}: not a foldgate bar file (a column name appears twice)")
    missing = [c for c in COLUMNS[:6] if c not in names]
    if missing:
        raise DataError(f"{where}: not a foldgate bar file (missing columns {', '.join(missing)})")
    for name, want in zip(SCHEMA.names, SCHEMA.types):
        if name in names and table.schema.field(name).type != want:
            raise DataError(
                f"{where}: column {name} has type {table.schema.field(name).type}, expected {want}"
            )
    for name in COLUMNS[:6]:
        if table.column(name).null_count:
            raise DataError(f"{where}: column {name} has missing values")
    if asset_class is not None:
        meta = dict(meta, **{META_ASSET_CLASS: asset_class})
    prov = _check_metadata(meta, canonical_symbol(symbol), canonical_timeframe(timeframe), where)
    try:
        cols = {c: _zero_copy(table.column(c), np.int64 if c == "timestamp" else np.float64) for c in COLUMNS[:6]}
        tc = vw = None
        if "trade_count" in names and table.column("trade_count").null_count < len(table):
            tcol = table.column("trade_count")
            tc = _zero_copy(tcol, np.int64) if tcol.null_count == 0 else tcol.combine_chunks().fill_null(-1).to_numpy()
        if "vwap" in names and table.column("vwap").null_count < len(table):
            vcol = table.column("vwap")
            vw = _zero_copy(vcol, np.float64) if vcol.null_count == 0 else vcol.combine_chunks().fill_null(np.nan).to_numpy()
    except (ValueError, pa.ArrowException) as exc:  # buffers shorter than the declared length
        raise DataError(f"{where}: corrupt column data ({_one_line(exc)}); re-import or re-fetch it") from None
    bars = Bars(symbol, timeframe, meta[META_ASSET_CLASS], trade_count=tc, vwap=vw, **cols, **prov)
    if check_rows:
        validate_bars(bars, source=where, outcome="refused (re-import or re-fetch the file)")
    return bars


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- gaps


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


@dataclass(frozen=True)
class StoreEntry:
    symbol: str
    timeframe: str
    asset_class: str | None
    n_bars: int
    first: datetime | None  # UTC, microsecond precision; first_ns is exact
    last: datetime | None
    path: Path
    size_bytes: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    error: str | None = None  # set when the file could not be read


def _merge(old: Bars, new: Bars) -> Bars:
    """One row per timestamp, sorted; on equal timestamps the new row wins."""
    n_old = len(old)
    ts = np.concatenate([old.timestamp, new.timestamp])
    # stable sort puts a new row right after the old row with the same timestamp,
    # so keeping the last row of each run of equal timestamps keeps the new one
    order = np.argsort(ts, kind="stable")
    ts_sorted = ts[order]
    keep = np.ones(len(ts), dtype=bool)
    keep[:-1] = ts_sorted[1:] != ts_sorted[:-1]
    idx = order[keep]

    def cat(name: str, fill):
        a, b = getattr(old, name), getattr(new, name)
        if a is None and b is None:
            return None
        a = np.full(n_old, fill) if a is None else a
        b = np.full(len(new), fill) if b is None else b
        return np.concatenate([a, b])[idx]

    cols = {c: np.concatenate([getattr(old, c), getattr(new, c)])[idx] for c in COLUMNS[:6]}
    prov = {k: (v if v is not None else getattr(old, k)) for k, v in new.provenance().items()}
    return Bars(
        new.symbol, new.timeframe, new.asset_class,
        trade_count=cat("trade_count", np.int64(-1)), vwap=cat("vwap", np.nan), **cols, **prov,
    )


@dataclass(frozen=True)
class StoreWrite:
    """What one write did, counted under the file's lock."""

    path: Path
    added: int  # timestamps the file did not have
    replaced: int  # stored bars overwritten by new ones
    total: int  # bars in the file afterwards
    first: int | None  # ns of the first and last bar in the file
    last: int | None


def is_shipped_sample(root: str | os.PathLike) -> bool:
    """True when `root` is the sample store of a source checkout (`data/bars` beside
    foldgate's own pyproject.toml): data that ships with foldgate, tracked by git."""
    from .sample import repo_root

    repo = repo_root()
    if not (repo / "pyproject.toml").is_file():
        return False
    try:
        return Path(root).resolve() == (repo / DEFAULT_ROOT).resolve()
    except OSError:
        return False


class BarStore:
    """A directory of Arrow IPC bar files, `<root>/<timeframe>/<SYMBOL>.arrow`."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.explicit = not (root is None or str(root) == "")
        if not self.explicit:
            env = os.environ.get("FOLDGATE_STORE")
            self.explicit = bool(env)
            root = env or DEFAULT_ROOT
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"BarStore({str(self.root)!r})"

    def path(self, symbol: str, timeframe: str) -> Path:
        return self.root / canonical_timeframe(timeframe) / f"{canonical_symbol(symbol)}.arrow"

    def has(self, symbol: str, timeframe: str) -> bool:
        return self.path(symbol, timeframe).is_file()

    def timeframes(self, symbol: str) -> list[str]:
        """Timeframes stored for a symbol."""
        sym = canonical_symbol(symbol)
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob(f"*/{sym}.arrow"))

    def missing_root_message(self) -> str:
        how = ("pass --store DIR or set FOLDGATE_STORE to the directory that holds your bars"
               if not self.explicit else "check --store / FOLDGATE_STORE")
        return (f"store directory {self.root} does not exist; {how}, or create it by importing "
                "or fetching bars into it")

    def _missing_message(self, symbol: str, timeframe: str) -> str:
        sym, tf = canonical_symbol(symbol), canonical_timeframe(timeframe)
        if not self.root.is_dir():
            return self.missing_root_message()
        other = self.timeframes(sym)
        also = f" (stored timeframes for {sym}: {', '.join(other)})" if other else ""
        tf_flag = "" if tf == "1Hour" else f" --timeframe {tf}"
        return (
            f"no {tf} bars for {sym} in store {self.root}{also}; import them with "
            f"`foldgate data import FILE --symbol {sym} --timeframe {tf}` or fetch them with "
            f"`foldgate data fetch {sym}{tf_flag}`"
        )

    def _open_table(self, p: Path) -> pa.Table:
        try:
            source = pa.memory_map(str(p), "r")
            table = ipc.open_file(source).read_all()
            table.validate(full=True)  # offsets and lengths, before any buffer is touched
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"{p}: not a readable Arrow bar file ({_one_line(exc)}); "
                            "re-import or re-fetch it") from None
        return table

    def read(self, symbol: str, timeframe: str) -> Bars:
        """Memory-mapped read; the float columns are read-only views onto the file.
        Every row handed out satisfies design.md 2; anything else is a DataError
        naming the file and the row."""
        p = self.path(symbol, timeframe)
        if not p.is_file():
            raise DataError(self._missing_message(symbol, timeframe))
        return bars_from_table(self._open_table(p), canonical_symbol(symbol),
                               canonical_timeframe(timeframe), source=str(p))

    def asset_class(self, symbol: str, timeframe: str | None = None) -> str | None:
        """The stored asset class of a symbol (any timeframe when none is given)."""
        tfs = [canonical_timeframe(timeframe)] if timeframe else self.timeframes(symbol)
        for tf in tfs:
            p = self.path(symbol, tf)
            if p.is_file():
                try:
                    with pa.memory_map(str(p), "r") as src:
                        meta = ipc.open_file(src).schema.metadata or {}
                except (pa.ArrowException, OSError):
                    continue
                ac = meta.get(META_ASSET_CLASS.encode())
                try:
                    return check_asset_class(ac.decode()) if ac else None
                except (FoldgateError, UnicodeDecodeError):
                    continue
        return None

    def check_writable(self) -> Path:
        """The root, created if needed; DataError when it cannot be written."""
        try:
            return ensure_writable_dir(self.root)
        except FoldgateError as exc:
            raise DataError(
                f"bar store {self.root} is not writable ({exc}); choose another with "
                "--store DIR or FOLDGATE_STORE"
            ) from None

    def write(self, bars: Bars, mode: str = "merge") -> Path:
        """Validate, merge with what is stored (mode="merge": one row per timestamp, new
        rows win) or replace it (mode="replace"), and write atomically."""
        return self.write_bars(bars, mode).path

    def write_bars(self, bars: Bars, mode: str = "merge") -> StoreWrite:
        """`write`, with what it did. Read, merge and write happen under the file's lock,
        so two writers (two imports, an import and a fetch) never lose each other's
        bars; temp files a killed writer left are removed. Bars of another adjustment
        than the stored ones are refused, never merged."""
        if mode not in ("merge", "replace"):
            raise ValueError(f"mode must be 'merge' or 'replace', got {mode!r}")
        validate_bars(bars)
        self.check_writable()
        p = self.path(bars.symbol, bars.timeframe)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            with file_lock(p):
                out, replaced = bars, 0
                if mode == "merge" and p.is_file():
                    old = self.read(bars.symbol, bars.timeframe)
                    if old.asset_class != bars.asset_class:
                        raise DataError(
                            f"{p}: {bars.symbol} is stored as {old.asset_class}, the new bars say "
                            f"{bars.asset_class}; use the stored asset class or replace the file"
                        )
                    if old.adjustment and bars.adjustment and old.adjustment != bars.adjustment:
                        raise DataError(
                            f"{p}: {bars.symbol} is stored {old.adjustment}-adjusted, the new bars are "
                            f"{bars.adjustment}-adjusted; bars of two adjustments are never merged: "
                            f"fetch with --adjustment {old.adjustment}, or replace the file "
                            "(--refresh --replace) to switch"
                        )
                    replaced = int(np.isin(bars.timestamp, old.timestamp).sum())
                    out = _merge(old, bars)
                    del old
                    validate_bars(out, source=f"{p} after merge")
                table = bars_to_table(out)
                with atomic_open(p, "wb", locked=True) as fh:
                    with ipc.new_file(fh, table.schema) as writer:
                        writer.write_table(table, max_chunksize=max(len(table), 1))
        except DataError:
            raise
        except FoldgateError as exc:
            raise DataError(f"{exc}; nothing written (choose another store with --store DIR)") from None
        except OSError as exc:
            raise DataError(f"cannot write {p}: {exc.strerror or exc}; nothing written") from None
        n = len(out)
        return StoreWrite(p, len(bars) - replaced, replaced, n,
                          int(out.timestamp[0]) if n else None, int(out.timestamp[-1]) if n else None)

    def list(self) -> list[StoreEntry]:
        """Every stored (symbol, timeframe), sorted by timeframe then symbol."""
        out: list[StoreEntry] = []
        if not self.root.is_dir():
            return out
        for tf_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for f in sorted(tf_dir.glob("*.arrow")):
                if f.name.startswith("."):
                    continue  # an atomic write in progress
                size = f.stat().st_size
                try:
                    bars = self.read(f.stem, tf_dir.name)
                    n = len(bars)
                    first_ns = int(bars.timestamp[0]) if n else None
                    last_ns = int(bars.timestamp[-1]) if n else None
                    out.append(StoreEntry(
                        bars.symbol, bars.timeframe, bars.asset_class, n,
                        None if first_ns is None else ns_to_datetime(first_ns),
                        None if last_ns is None else ns_to_datetime(last_ns),
                        f, size, first_ns, last_ns,
                    ))
                except FoldgateError as exc:
                    out.append(StoreEntry(f.stem, tf_dir.name, None, 0, None, None, f, size, error=str(exc)))
        return out
