"""Arrow tables <-> `Bars`: the file's columns and schema metadata (asset class,
symbol, timeframe, adjustment, feed), checked on the way in so a corrupt or
hand-edited file is an error naming the file, never a traceback.

Files are uncompressed and hold a single record batch, so the price columns are
NumPy views onto the memory-mapped file (no copy, no parse)."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from ..errors import DataError, FoldgateError
from .bars import (
    ADJUSTMENTS, COLUMNS, FLOAT_COLUMNS, FORMAT, SCHEMA, Bars, canonical_timeframe, check_adjustment, latest_ns,
    validate_bars,
)
from .symbols import canonical_symbol, check_asset_class

META_FORMAT = "foldgate.format"
META_SYMBOL = "foldgate.symbol"
META_TIMEFRAME = "foldgate.timeframe"
META_ASSET_CLASS = "foldgate.asset_class"
META_ADJUSTMENT = "foldgate.adjustment"
META_FEED = "foldgate.feed"
META_FIRST_AVAILABLE = "foldgate.first_available"
META_SEARCHED_FROM = "foldgate.searched_from"
_MAX_META_VALUE = 256  # longer metadata values are not ours


def bars_to_table(bars: Bars) -> pa.Table:
    """The Arrow table of docs/design.md 2, asset class and names in the schema metadata."""
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
        meta[META_SEARCHED_FROM] = str(bars.searched_from)
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
                META_FEED, META_FIRST_AVAILABLE, META_SEARCHED_FROM):
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
    prov: dict = {"adjustment": None, "feed": meta.get(META_FEED), "first_available": None,
                  "searched_from": None}
    if prov["feed"] is not None and not re.fullmatch(r"[a-z_]{1,20}", prov["feed"]):
        raise bad(META_FEED, f"is {prov['feed'][:40]!r}, not an Alpaca feed name")
    if META_ADJUSTMENT in meta:
        try:
            prov["adjustment"] = check_adjustment(meta[META_ADJUSTMENT])
        except FoldgateError:
            raise bad(META_ADJUSTMENT, f"is {meta[META_ADJUSTMENT]!r}, not one of {', '.join(ADJUSTMENTS)}") from None
    if META_FIRST_AVAILABLE in meta or META_SEARCHED_FROM in meta:
        for key, field_ in ((META_FIRST_AVAILABLE, "first_available"), (META_SEARCHED_FROM, "searched_from")):
            raw = meta.get(key, "")
            if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) <= latest_ns()):
                raise bad(key, f"is {raw[:40]!r}, not a time in ns since 1970")
            prov[field_] = int(raw)
        if prov["searched_from"] > prov["first_available"]:
            raise bad(META_SEARCHED_FROM, "is after foldgate.first_available")
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
        raise DataError(f"{where}: corrupt column data ({one_line(exc)}); re-import or re-fetch it") from None
    bars = Bars(symbol, timeframe, meta[META_ASSET_CLASS], trade_count=tc, vwap=vw, **cols, **prov)
    if check_rows:
        validate_bars(bars, source=where, outcome="refused (re-import or re-fetch the file)")
    return bars


def one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- gaps