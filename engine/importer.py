"""Import bars from a CSV or Parquet file into the store (`foldgate data import`).

Columns are matched case-insensitively (`timestamp`/`time`/`t`, `open`/`o`, ...,
`trade_count`/`n`, `vwap`/`vw`, so Alpaca's own dumps import as they are). Timestamps
may be ISO-8601 (an offset or `Z` is honoured, none means UTC), dates, Arrow
timestamps, or epoch numbers in seconds, milliseconds, microseconds or nanoseconds
(told apart by magnitude). Every bad row is found before anything is written; the
error names the first few by their 1-based data row number and counts the rest."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from .errors import DataError, FoldgateError
from .store import Bars, BarStore, RowProblem, bar_problems, canonical_timeframe, format_problems
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


def read_table(path: str | Path) -> pa.Table:
    """The file as an Arrow table, or DataError naming the file."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"file not found: {p}")
    if p.is_dir():
        raise DataError(f"{p} is a directory; give a CSV or Parquet file")
    kind = file_kind(p)
    try:
        if kind == "parquet":
            return pq.read_table(p)
        parse = pa_csv.ParseOptions(delimiter="\t" if p.name.lower().endswith(".tsv") else ",")
        convert = pa_csv.ConvertOptions(null_values=_NULLS, strings_can_be_null=True)
        return pa_csv.read_csv(str(p), parse_options=parse, convert_options=convert)
    except PermissionError:
        raise DataError(f"{p}: permission denied") from None
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        what = "a Parquet" if kind == "parquet" else "a CSV"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{p}: cannot read it as {what} file: {first}") from None


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
        return arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
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
    out[ok & ~bad] = vals[ok & ~bad].astype(np.int64)
    return out


def _epoch_unit_factor(values: np.ndarray) -> int:
    """ns per unit, from the magnitude of typical values (s ~1e9, ms ~1e12, us ~1e15, ns ~1e18)."""
    mags = np.abs(values[np.isfinite(values) & (values != 0)])
    if not len(mags):
        return 1_000_000_000
    m = float(np.median(mags))
    if m < 1e11:
        return 1_000_000_000
    if m < 1e14:
        return 1_000_000
    if m < 1e17:
        return 1_000
    return 1


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


def _timestamp_column(arr: pa.Array, name: str, problems: _Problems) -> tuple[np.ndarray, np.ndarray]:
    """(int64 ns UTC, ok mask)."""
    n = len(arr)
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if pa.types.is_timestamp(t):
        ns = arr.cast(pa.timestamp("ns", tz=t.tz)) if t.unit != "ns" else arr
        ns = ns.view(pa.int64())
    elif pa.types.is_date(t):
        ns = arr.cast(pa.timestamp("ns")).view(pa.int64())
    elif pa.types.is_integer(t):
        vals = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        ns = pa.array(vals * _epoch_unit_factor(vals.astype(np.float64)), mask=arr.is_null().to_numpy(zero_copy_only=False))
    elif pa.types.is_floating(t):
        vals = arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        factor = _epoch_unit_factor(vals)
        ok = np.isfinite(vals)
        out = np.zeros(n, dtype=np.int64)
        out[ok] = np.round(vals[ok] * factor).astype(np.int64)
        for i in np.flatnonzero(~ok):
            problems.add(i, f"{name} is missing or not finite")
        return out, ok
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        return _timestamp_strings(arr, name, problems)
    else:
        raise DataError(f"column {name} has type {t}; expected ISO-8601 times or epoch numbers")
    out = ns.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    ok = ~ns.is_null().to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(~ok):
        problems.add(i, f"{name} is missing")
    return out, ok


def _timestamp_strings(arr: pa.Array, name: str, problems: _Problems) -> tuple[np.ndarray, np.ndarray]:
    n = len(arr)
    stripped = pc.utf8_trim_whitespace(arr)
    # fast paths: the whole column in one Arrow cast
    for typ in (pa.timestamp("ns", tz="UTC"), pa.timestamp("ns")):
        try:
            ns = pc.cast(stripped, typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        ok = ~ns.is_null().to_numpy(zero_copy_only=False)
        if ok.all():
            return ns.view(pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64), ok
    # slow path, row by row: mixed offsets, epoch numbers as text, and the bad rows
    values = stripped.to_pylist()
    numeric = np.full(n, np.nan)
    is_num = np.zeros(n, dtype=bool)
    for i, v in enumerate(values):
        if v:
            try:
                numeric[i] = float(v)
                is_num[i] = True
            except ValueError:
                pass
    factor = _epoch_unit_factor(numeric[is_num]) if is_num.any() else 1_000_000_000
    out = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    for i, v in enumerate(values):
        if not v:
            problems.add(i, f"{name} is missing")
        elif is_num[i]:
            if not math.isfinite(numeric[i]):
                problems.add(i, f"{name} is not a time ({v[:40]!r})")
                continue
            # exact for integer text (a float would round ns epochs)
            out[i] = int(v) * factor if v.lstrip("+-").isdigit() else round(numeric[i] * factor)
            ok[i] = True
        else:
            try:
                out[i] = _parse_iso(v)
                ok[i] = True
            except (ValueError, OverflowError):
                problems.add(i, f"{name} is not an ISO-8601 time or epoch number ({v[:40]!r})")
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
    symbol (see engine.symbols.guess_asset_class)."""
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
    replaced = 0
    if mode == "merge" and store.has(sym, tf):
        replaced = int(np.isin(bars.timestamp, store.read(sym, tf).timestamp).sum())
    out = store.write(bars, mode=mode)
    stored = store.read(sym, tf)
    return ImportResult(
        out, sym, tf, ac, ac_source, len(bars), len(bars) - replaced, replaced,
        len(stored), int(stored.timestamp[0]), int(stored.timestamp[-1]),
    )
