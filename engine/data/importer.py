"""Import bars from a CSV or Parquet file into the store (`foldgate data import`).

Columns are matched case-insensitively (`timestamp`/`time`/`t`, `open`/`o`, ...,
`trade_count`/`n`, `vwap`/`vw`, so Alpaca's own dumps import as they are). Timestamps
may be ISO-8601 (an offset or `Z` is honoured, none means UTC), dates, Arrow
timestamps, or epoch numbers in seconds, milliseconds, microseconds or nanoseconds
(told apart by magnitude). Every bad row is found before anything is written; the
error names the first few by their 1-based data row number and counts the rest."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ..errors import DataError, FoldgateError
from .bars import (
    EARLIEST_NS,
    NS_PER_DAY,
    Bars,
    RowProblem,
    bar_problems,
    canonical_timeframe,
    format_problems,
    format_ts,
    latest_ns,
)
from .store import BarStore
from .symbols import canonical_symbol, check_asset_class, guess_asset_class

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".txt", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")

ALIASES = {
    "timestamp": ("timestamp", "time", "datetime", "date", "ts", "t"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v"),
    "trade_count": ("trade_count", "trades", "num_trades", "n"),
    "vwap": ("vwap", "vw"),
}
REQUIRED = ("timestamp", "open", "high", "low", "close", "volume")
SHOW_ROWS = 5

# NaN is deliberately not a null marker: a literal NaN is reported as NaN.
_NULLS = ["", "NA", "N/A", "null", "NULL", "None", "none"]


@dataclass(frozen=True)
class ImportResult:
    path: Path  # the store file written
    symbol: str
    timeframe: str
    asset_class: str
    asset_class_source: str  # "option", "store" or "guessed"
    rows: int  # rows in the file
    added: int  # timestamps the store did not have
    replaced: int  # stored bars overwritten by the file's
    total: int  # bars stored after the import
    first: int  # ns of the first stored bar
    last: int


def file_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise DataError(
        f"{path}: unknown file type {''.join(path.suffixes) or '(no extension)'!r}; import takes "
        f"CSV ({', '.join(CSV_SUFFIXES)}) or Parquet ({', '.join(PARQUET_SUFFIXES)})"
    )


MAX_IMPORT_BYTES_ENV = "FOLDGATE_MAX_IMPORT_BYTES"
MAX_IMPORT_BYTES = 2 * 1024**3  # ~20 years of minute bars as CSV; raise it with the env
MAX_IMPORT_ROWS = 50_000_000


def _max_import_bytes() -> int:
    raw = os.environ.get(MAX_IMPORT_BYTES_ENV, "").strip()
    if not raw:
        return MAX_IMPORT_BYTES
    if not (raw.isdigit() and len(raw) <= 15):
        raise DataError(f"{MAX_IMPORT_BYTES_ENV}={raw[:20]!r} is not a number of bytes")
    return int(raw)


def read_table(path: str | Path) -> pa.Table:
    """The file as an Arrow table, or DataError naming the file. Files over
    FOLDGATE_MAX_IMPORT_BYTES (2 GiB) and tables over 50M rows are refused."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"file not found: {p}")
    if p.is_dir():
        raise DataError(f"{p} is a directory; give a CSV or Parquet file")
    kind = file_kind(p)
    limit = _max_import_bytes()
    size = p.stat().st_size
    if size > limit:
        raise DataError(f"{p} is {size:,} bytes, more than the {limit:,} allowed "
                        f"({MAX_IMPORT_BYTES_ENV}); split it or raise the limit")
    try:
        if kind == "parquet":
            meta = pq.read_metadata(p)
            if meta.num_rows > MAX_IMPORT_ROWS:
                raise DataError(f"{p} holds {meta.num_rows:,} rows, more than the {MAX_IMPORT_ROWS:,} "
                                "one import takes; split it")
            return pq.read_table(p)
        parse = pa_csv.ParseOptions(delimiter="\t" if p.name.lower().endswith(".tsv") else ",")
        convert = pa_csv.ConvertOptions(null_values=_NULLS, strings_can_be_null=True)
        table = pa_csv.read_csv(str(p), parse_options=parse, convert_options=convert)
    except PermissionError:
        raise DataError(f"{p}: permission denied") from None
    except (pa.ArrowException, OSError) as exc:
        what = "a Parquet" if kind == "parquet" else "a CSV"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{p}: cannot read it as {what} file: {first[:200]}") from None
    if table.num_rows > MAX_IMPORT_ROWS:
        raise DataError(f"{p} holds {table.num_rows:,} rows, more than the {MAX_IMPORT_ROWS:,} one "
                        "import takes; split it")
    return table


def _map_columns(table: pa.Table, source: str) -> dict[str, str]:
    by_lower: dict[str, str] = {}
    for name in table.column_names:
        key = name.strip().lower()
        if key in by_lower:
            raise DataError(f"{source}: columns {by_lower[key]!r} and {name!r} differ only in case")
        by_lower[key] = name
    found = {}
    for field, aliases in ALIASES.items():
        for a in aliases:
            if a in by_lower:
                found[field] = by_lower[a]
                break
    missing = [f for f in REQUIRED if f not in found]
    if missing:
        raise DataError(
            f"{source}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(found: {', '.join(table.column_names) or 'none'}; needed: {', '.join(REQUIRED)}, "
            "optional trade_count, vwap)"
        )
    return found


class _Problems:
    def __init__(self) -> None:
        self.by_row: dict[int, list[str]] = {}

    def add(self, i: int, message: str) -> None:
        self.by_row.setdefault(int(i), []).append(message)


class _MissingAllowed:
    def __init__(self, inner: _Problems) -> None:
        self.inner = inner

    def add(self, i: int, message: str) -> None:
        if not message.endswith(" is missing"):
            self.inner.add(i, message)


def _float_column(arr: pa.Array, name: str, problems: _Problems, allow_missing: bool = False) -> np.ndarray:
    """float64 values; missing or unparsable cells become NaN and are reported
    (missing ones only when not allow_missing)."""
    if allow_missing:
        problems = _MissingAllowed(problems)
    if pa.types.is_null(arr.type):
        for i in range(len(arr)):
            problems.add(i, f"{name} is missing")
        return np.full(len(arr), np.nan)
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type):
        for i in np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False)):
            problems.add(i, f"{name} is missing")
        try:
            return arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        except pa.ArrowException as exc:
            raise DataError(f"column {name} holds numbers foldgate cannot read as float64 "
                            f"({' '.join(str(exc).split())[:120]})") from None
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        out = np.full(len(arr), np.nan)
        for i, v in enumerate(arr.to_pylist()):
            if v is None:
                problems.add(i, f"{name} is missing")
                continue
            try:
                out[i] = float(v)
            except ValueError:
                problems.add(i, f"{name} is not a number ({v.strip()[:20]!r})")
        return out
    raise DataError(f"column {name} has type {arr.type}; expected numbers")


def _optional_int_column(arr: pa.Array, name: str, problems: _Problems) -> np.ndarray:
    """int64 with nulls as -1 (the Bars convention for a missing trade count)."""
    vals = _float_column(arr, name, problems, allow_missing=True)
    out = np.full(len(vals), -1, dtype=np.int64)
    ok = np.isfinite(vals)
    bad = ok & (vals != np.round(vals))
    for i in np.flatnonzero(bad):
        problems.add(i, f"{name} is not a whole number ({vals[i]:g})")
    huge = ok & ~bad & (np.abs(vals) > 2.0**62)
    for i in np.flatnonzero(huge):
        problems.add(i, f"{name} is too large ({vals[i]:g})")
    bad |= huge
    out[ok & ~bad] = vals[ok & ~bad].astype(np.int64)
    return out


# An epoch column holds one unit for all its rows (docs/design.md 2). A value's magnitude says
# which: seconds ~1e9, ms ~1e12, us ~1e15, ns ~1e18 for the years foldgate accepts.
EPOCH_UNITS = (("s", 1_000_000_000, 1e11), ("ms", 1_000_000, 1e14), ("us", 1_000, 1e17), ("ns", 1, math.inf))
_MAX_EPOCH_DIGITS = 25  # more digits than any ns epoch before year 9999: refused unparsed


def _unit_index(mags: np.ndarray) -> np.ndarray:
    """Per value, the index into EPOCH_UNITS its magnitude suggests."""
    return np.searchsorted(np.array([u[2] for u in EPOCH_UNITS[:-1]]), mags, side="right")


def _range_text() -> str:
    return f"1970-01-01 .. {format_ts(latest_ns())[:10]}"


class _Epochs:
    """An epoch column's unit, from the magnitude most of its values have; rows in
    another unit are refused, never converted."""

    def __init__(self, values: np.ndarray, name: str, problems: "_Problems"):
        mags = np.abs(values)
        # beyond the latest ns epoch a value is out of range in every unit: the range
        # check reports it, not the unit check
        usable = np.isfinite(mags) & (mags != 0) & (mags <= latest_ns())
        idx = _unit_index(np.where(usable, mags, 1.0))
        counts = np.bincount(idx[usable], minlength=len(EPOCH_UNITS))
        self.unit = int(np.argmax(counts)) if usable.any() else 0
        self.label, self.factor = EPOCH_UNITS[self.unit][0], EPOCH_UNITS[self.unit][1]
        self.mixed = usable & (idx != self.unit)
        for i in np.flatnonzero(self.mixed):
            problems.add(i, f"{name} {_num_text(values[i])} looks like epoch {EPOCH_UNITS[idx[i]][0]} "
                            f"while the column is in {self.label} (an epoch column has one unit)")


def _num_text(v) -> str:
    t = f"{v:.15g}" if isinstance(v, (float, np.floating)) else str(v)
    return t if len(t) <= 30 else t[:29] + "…"


def _check_range(ns_or_none, raw_text: str, i: int, name: str, problems: "_Problems") -> bool:
    """True when `ns_or_none` (a Python int, or None for a value too large to convert)
    lies in docs/design.md 2's range; else the row is reported."""
    if ns_or_none is None or ns_or_none > latest_ns():
        problems.add(i, f"{name} {raw_text} is after {_range_text()[-10:]} (timestamps must lie in "
                        f"{_range_text()})")
        return False
    if ns_or_none < EARLIEST_NS:
        problems.add(i, f"{name} {raw_text} is before 1970 (timestamps must lie in {_range_text()})")
        return False
    return True


def _parse_iso(text: str) -> int:
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    # integer arithmetic: float seconds would lose the sub-microsecond digits
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _native_ints(values: np.ndarray, per_unit_ns: int, ok: np.ndarray, name: str, problems: "_Problems",
                 text) -> np.ndarray:
    """int64 values counted in units of `per_unit_ns` -> ns, each checked against the
    range before the multiplication (which could otherwise overflow to 1702)."""
    lo, hi = -(-EARLIEST_NS // per_unit_ns), latest_ns() // per_unit_ns
    out = np.zeros(len(values), dtype=np.int64)
    inside = ok & (values >= lo) & (values <= hi)
    out[inside] = values[inside] * per_unit_ns
    for i in np.flatnonzero(ok & ~inside):
        v = int(values[i])
        _check_range(v * per_unit_ns, text(i), i, name, problems)
        ok[i] = False
    return out


def _timestamp_column(arr: pa.Array, name: str, problems: _Problems) -> tuple[np.ndarray, np.ndarray]:
    """(int64 ns UTC, ok mask). Rows outside 1970 .. a day past now, epochs in another
    unit than the column's, and unparsable cells are reported, never stored."""
    n = len(arr)
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    null = arr.is_null().to_numpy(zero_copy_only=False)
    ok = ~null
    for i in np.flatnonzero(null):
        problems.add(i, f"{name} is missing")
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        if pa.types.is_timestamp(t):
            per_unit = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[t.unit]
            raw = arr.view(pa.int64())
        elif pa.types.is_date32(t):
            per_unit, raw = NS_PER_DAY, arr.view(pa.int32()).cast(pa.int64())
        else:  # date64: ms
            per_unit, raw = 1_000_000, arr.view(pa.int64())
        vals = raw.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)

        def text(i: int) -> str:
            try:
                return str(arr[i])
            except (ValueError, OverflowError, pa.ArrowException):
                return f"{vals[i]} ({t})"

        return _native_ints(vals, per_unit, ok, name, problems, text), ok
    if pa.types.is_integer(t):
        raw = arr.fill_null(0).to_numpy(zero_copy_only=False)
        # uint64 beyond int64 is out of range anyway: clamp it rather than wrap it
        vals = np.minimum(raw, 2**62).astype(np.int64) if raw.dtype == np.uint64 else raw.astype(np.int64)
        ep = _Epochs(np.where(ok, vals, 0).astype(np.float64), name, problems)
        ok &= ~ep.mixed
        return _native_ints(vals, ep.factor, ok, name, problems, lambda i: str(vals[i])), ok
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        vals = arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(ok & ~np.isfinite(vals)):
            problems.add(i, f"{name} is not finite ({vals[i]})")
        ok &= np.isfinite(vals)
        ep = _Epochs(np.where(ok, vals, 0.0), name, problems)
        ok &= ~ep.mixed
        out = np.zeros(n, dtype=np.int64)
        with np.errstate(over="ignore"):  # inf is out of range, and reported so below
            ns = vals * ep.factor
        inside = ok & (ns >= EARLIEST_NS) & (ns <= latest_ns())
        out[inside] = np.round(ns[inside]).astype(np.int64)
        for i in np.flatnonzero(ok & ~inside):
            _check_range(int(ns[i]) if abs(ns[i]) < 2**63 else None if ns[i] > 0 else -1,
                         _num_text(vals[i]), i, name, problems)
        ok &= inside
        return out, ok
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _timestamp_strings(arr, name, problems)
    raise DataError(f"column {name} has type {t}; expected ISO-8601 times or epoch numbers")


def _timestamp_strings(arr: pa.Array, name: str, problems: _Problems) -> tuple[np.ndarray, np.ndarray]:
    n = len(arr)
    stripped = pc.utf8_trim_whitespace(arr)
    # fast path: the whole column in one Arrow cast, when every value parses and lies in range
    for typ in (pa.timestamp("ns", tz="UTC"), pa.timestamp("ns")):
        try:
            ns = pc.cast(stripped, typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        ok = ~ns.is_null().to_numpy(zero_copy_only=False)
        vals = ns.view(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        if ok.all() and (vals >= EARLIEST_NS).all() and (vals <= latest_ns()).all():
            return vals, ok
    # slow path, row by row: mixed offsets, epoch numbers as text, and the bad rows
    values = stripped.to_pylist()
    numeric = np.full(n, np.nan)
    is_num = np.zeros(n, dtype=bool)
    for i, v in enumerate(values):
        if v and len(v) <= 64:
            try:
                numeric[i] = float(v)
                is_num[i] = True
            except ValueError:
                pass
    epochs = _Epochs(np.where(is_num, numeric, 0.0), name, _Problems())
    out = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    for i, v in enumerate(values):
        if not v:
            problems.add(i, f"{name} is missing")
        elif is_num[i]:
            text = repr(v[:30] + ("…" if len(v) > 30 else ""))
            if not math.isfinite(numeric[i]):
                problems.add(i, f"{name} is not a time ({text})")
            elif epochs.mixed[i]:
                unit = EPOCH_UNITS[int(_unit_index(np.array([abs(numeric[i])]))[0])][0]
                problems.add(i, f"{name} {text} looks like epoch {unit} while the column is in "
                                f"{epochs.label} (an epoch column has one unit)")
            else:
                digits = v.lstrip("+-")
                if digits.isascii() and digits.isdigit():
                    # exact for integer text (a float would round ns epochs); too many
                    # digits is out of range without converting it
                    val = None if len(digits) > _MAX_EPOCH_DIGITS else int(v) * epochs.factor
                    if val is not None and v.startswith("-") and len(digits) > _MAX_EPOCH_DIGITS:
                        val = -1
                else:
                    with np.errstate(over="ignore"):
                        x = numeric[i] * epochs.factor
                    val = round(x) if abs(x) < 2**63 else (None if x > 0 else -1)
                if _check_range(val, text, i, name, problems):
                    out[i], ok[i] = val, True
        else:
            try:
                val = _parse_iso(v)
            except (ValueError, OverflowError):
                problems.add(i, f"{name} is not an ISO-8601 time or epoch number ({v[:40]!r})")
                continue
            if _check_range(val, repr(v[:40]), i, name, problems):
                out[i], ok[i] = val, True
    return out, ok


def table_to_bars(table: pa.Table, symbol: str, timeframe: str, asset_class: str, source: str) -> Bars:
    """Bars from a file's table; DataError listing bad rows (1-based) if any row is bad."""
    n = table.num_rows
    if n == 0:
        raise DataError(f"{source}: no data rows")
    cols = _map_columns(table, source)
    sym = canonical_symbol(symbol)
    sym_col = next((c for c in table.column_names if c.strip().lower() == "symbol"), None)
    if sym_col is not None:
        others = set()
        for v in table.column(sym_col).combine_chunks().unique().to_pylist():
            if v is None:
                continue
            try:
                if canonical_symbol(str(v)) != sym:
                    others.add(str(v))
            except FoldgateError:
                others.add(str(v))
        if others:
            raise DataError(
                f"{source}: its symbol column holds {', '.join(sorted(others)[:5])}, not {sym}; "
                "import one symbol per file"
            )
    problems = _Problems()

    def col(field: str) -> pa.Array:
        return table.column(cols[field]).combine_chunks()

    ts, ts_ok = _timestamp_column(col("timestamp"), "timestamp", problems)
    if not ts_ok.all():
        # stand-ins keep the order check quiet around rows already reported
        good = np.flatnonzero(ts_ok)
        if len(good):
            idx = np.arange(n)
            nearest = good[np.clip(np.searchsorted(good, idx, side="right") - 1, 0, len(good) - 1)]
            ts = np.where(ts_ok, ts, ts[nearest] + (idx - nearest))
    values, reported_nan = {}, {}
    for f in ("open", "high", "low", "close", "volume"):
        before = {i: len(m) for i, m in problems.by_row.items()}
        values[f] = _float_column(col(f), f, problems)
        # NaN stand-ins for missing or unparsable cells are reported; no second "is NaN"
        reported_nan[f] = np.zeros(n, dtype=bool)
        for i, m in problems.by_row.items():
            if len(m) > before.get(i, 0):
                reported_nan[f][i] = True
    trade_count = _optional_int_column(col("trade_count"), "trade_count", problems) if "trade_count" in cols else None
    vwap = None
    if "vwap" in cols:
        vwap = _float_column(col("vwap"), "vwap", problems, allow_missing=True)
    bars = Bars(sym, timeframe, asset_class, ts, trade_count=trade_count, vwap=vwap, **values)
    found, _ = bar_problems(bars, first_row=1, limit=None)
    for p in found:
        i = p.row - 1
        for msg in p.message.split("; "):
            field = msg.split(" ", 1)[0]
            if msg.endswith(" is NaN") and field in reported_nan and reported_nan[field][i]:
                continue
            if "timestamp" in msg and not ts_ok[i]:
                continue
            problems.add(i, msg)
    if problems.by_row:
        rows = sorted(problems.by_row)
        shown = [RowProblem(i + 1, "; ".join(problems.by_row[i])) for i in rows[:SHOW_ROWS]]
        raise DataError(format_problems(source, shown, len(rows), n))
    return bars


def import_file(
    path: str | Path,
    symbol: str,
    timeframe: str,
    asset_class: str | None = None,
    store: BarStore | None = None,
    mode: str = "merge",
) -> ImportResult:
    """Read, validate and merge a CSV or Parquet file into the store; nothing is written
    unless every row is valid. asset_class None: the stored one, else a guess from the
    symbol (see engine.data.symbols.guess_asset_class)."""
    store = store if store is not None else BarStore()
    p = Path(path)
    sym = canonical_symbol(symbol)
    tf = canonical_timeframe(timeframe)
    if asset_class is not None:
        ac, ac_source = check_asset_class(asset_class), "option"
    else:
        stored = store.asset_class(sym)
        ac, ac_source = (stored, "store") if stored else (guess_asset_class(symbol), "guessed")
    table = read_table(p)
    bars = table_to_bars(table, sym, tf, ac, str(p))
    w = store.write_bars(bars, mode=mode)
    return ImportResult(w.path, sym, tf, ac, ac_source, len(bars), w.added, w.replaced,
                        w.total, w.first, w.last)
