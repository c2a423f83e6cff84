"""Property-based fuzzing of every parser bar data reaches (issue 10): CSV and Parquet
imports, keys files, Alpaca bar pages, store files. Each asserts only what must always
hold: a result, or a FoldgateError with a one-line message; never another exception;
never a write outside the target. CI runs few examples with a fixed seed (the "ci"
profile of tests/conftest.py); `python benchmarks/fuzz.py -k data` runs them long."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from hypothesis import assume, given
from hypothesis import strategies as st

from engine.errors import FoldgateError
from engine.importer import import_file
from engine.sources.credentials import parse_keys_text
from engine.sources.pages import check_page, decode_json, page_rows, parse_bars
from engine.store import BarStore, bars_to_table, latest_ns

H = 3_600_000_000_000
NOW = latest_ns() - 86_400 * 10**9


def one_line_error(exc: FoldgateError) -> None:
    msg = str(exc)
    assert msg and "\n" not in msg and "\r" not in msg, repr(msg)


@contextlib.contextmanager
def sandbox():
    """A fresh directory; afterwards nothing but the input and the store may be in it."""
    with tempfile.TemporaryDirectory(prefix="fg-fuzz-") as d:
        yield Path(d)


def only_store_files(root: Path, allowed_inputs: set[str]) -> None:
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if p.is_dir():
            assert rel.parts[0] == "store", rel
            continue
        if str(rel) in allowed_inputs:
            continue
        # the store holds <timeframe>/<SYMBOL>.arrow and nothing else, no temp left behind
        assert rel.parts[0] == "store" and len(rel.parts) == 3 and p.suffix == ".arrow", rel


# ------------------------------------------------------------------ values

_epoch_s = st.integers(min_value=-(10**12), max_value=10**12)
_times = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.builds(lambda s, k: str(s * k), _epoch_s, st.sampled_from([1, 1000, 10**6, 10**9])),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=30),
    st.just(""),
    st.sampled_from(["9" * 400, "-" + "9" * 30, "1e400", "nan", "2024-02-30", "3000-01-01", "1600-01-01"]),
)
_number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["", "NA", "null", "abc", "1e400", "-0", "1" * 500]),
    st.text(max_size=10),
)
_columns = st.lists(st.sampled_from(["timestamp", "time", "t", "open", "o", "high", "h", "low", "l", "close",
                                     "c", "volume", "v", "trade_count", "n", "vwap", "vw", "symbol", "x",
                                     "Open", "OPEN"]), min_size=0, max_size=9)


def _cell(text: str) -> str:
    # keep the CSV shape: no separators or quotes inside a cell
    return "".join(ch for ch in text if ch not in ',"\r\n')


@st.composite
def csv_text(draw):
    cols = draw(st.one_of(st.just(["timestamp", "open", "high", "low", "close", "volume"]), _columns))
    n = draw(st.integers(min_value=0, max_value=12))
    lines = [",".join(cols)]
    base = draw(st.integers(min_value=1_500_000_000, max_value=1_700_000_000))
    for i in range(n):
        row = []
        for c in cols:
            if c in ("timestamp", "time", "t"):
                row.append(draw(st.one_of(st.just(str(base + 3600 * i)), _times)))
            elif c == "symbol":
                row.append(draw(st.sampled_from(["AAPL", "MSFT", "", "a/b"])))
            else:
                row.append(draw(st.one_of(st.just(str(100 + i)), _number_text)))
        lines.append(",".join(_cell(x) for x in row))
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


@given(csv_text(), st.sampled_from(["merge", "replace"]))
def test_fuzz_csv_import(text, mode):
    with sandbox() as root:
        f = root / "in.csv"
        f.write_text(text)
        store = BarStore(root / "store")
        try:
            res = import_file(f, "AAPL", "1Hour", "us_equity", store, mode=mode)
        except FoldgateError as exc:
            one_line_error(exc)
            assert not (root / "store" / "1Hour" / "AAPL.arrow").exists()
        else:
            bars = store.read("AAPL", "1Hour")
            assert len(bars) == res.total and res.rows >= 1
            assert (np.diff(bars.timestamp) > 0).all() and (bars.timestamp >= 0).all()
        only_store_files(root, {"in.csv"})


# ------------------------------------------------------------------ Parquet

_arrow_types = st.sampled_from([
    pa.int64(), pa.int32(), pa.uint64(), pa.float64(), pa.float32(), pa.string(), pa.bool_(),
    pa.timestamp("s"), pa.timestamp("ms", tz="UTC"), pa.timestamp("us", tz="America/New_York"),
    pa.timestamp("ns"), pa.date32(), pa.null(), pa.decimal128(20, 2),
])


def _values(draw, typ: pa.DataType, n: int):
    ints = st.one_of(st.none(), st.integers(min_value=-(2**62), max_value=2**62),
                     st.integers(min_value=1_000_000_000, max_value=1_800_000_000))
    if pa.types.is_null(typ):
        return [None] * n
    if pa.types.is_boolean(typ):
        return draw(st.lists(st.one_of(st.none(), st.booleans()), min_size=n, max_size=n))
    if pa.types.is_string(typ):
        return draw(st.lists(st.one_of(st.none(), _times, _number_text), min_size=n, max_size=n))
    if pa.types.is_floating(typ):
        return draw(st.lists(st.one_of(st.none(), st.floats(width=32 if typ == pa.float32() else 64)),
                             min_size=n, max_size=n))
    if pa.types.is_decimal(typ):
        return draw(st.lists(st.one_of(st.none(), st.decimals(min_value=-10**17, max_value=10**17, places=2,
                                                              allow_nan=False, allow_infinity=False)),
                             min_size=n, max_size=n))
    if typ == pa.uint64():
        return draw(st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=2**64 - 1)), min_size=n, max_size=n))
    if typ == pa.int32() or pa.types.is_date32(typ):
        return draw(st.lists(st.one_of(st.none(), st.integers(min_value=-(2**31), max_value=2**31 - 1)),
                             min_size=n, max_size=n))
    return draw(st.lists(ints, min_size=n, max_size=n))


@st.composite
def parquet_table(draw):
    n = draw(st.integers(min_value=0, max_value=10))
    names = draw(st.lists(st.sampled_from(["timestamp", "open", "high", "low", "close", "volume", "trade_count",
                                           "vwap", "t", "x"]), min_size=1, max_size=8, unique=True))
    cols = {}
    for name in names:
        typ = draw(_arrow_types)
        vals = _values(draw, typ, n)
        if pa.types.is_timestamp(typ) or pa.types.is_date32(typ):
            cols[name] = pa.array(vals, pa.int64() if pa.types.is_timestamp(typ) else pa.int32()).view(typ) \
                if not pa.types.is_date32(typ) else pa.array(vals, pa.int32()).view(typ)
        else:
            cols[name] = pa.array(vals, typ)
    return pa.table(cols)


@given(parquet_table())
def test_fuzz_parquet_import(table):
    with sandbox() as root:
        f = root / "in.parquet"
        try:
            pq.write_table(table, f)
        except (pa.ArrowException, OverflowError):
            assume(False)
        store = BarStore(root / "store")
        try:
            import_file(f, "BTC/USD", "1Hour", "crypto", store)
        except FoldgateError as exc:
            one_line_error(exc)
        else:
            bars = store.read("BTCUSD", "1Hour")
            assert len(bars) >= 1 and (bars.high >= np.maximum(bars.open, bars.close)).all()
        only_store_files(root, {"in.parquet"})


# ------------------------------------------------------------------ keys files

_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=12), kids, max_size=4)),
    max_leaves=20,
)
_key_names = st.sampled_from(["APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "key", "secret", "export APCA_API_KEY_ID",
                              "api_key", "x", ""])


@st.composite
def keys_text(draw):
    kind = draw(st.sampled_from(["lines", "json", "text", "deep"]))
    if kind == "json":
        obj = draw(st.one_of(_json, st.dictionaries(_key_names, st.one_of(st.text(max_size=30), _json), max_size=4)))
        return json.dumps(obj)
    if kind == "deep":
        d = draw(st.integers(min_value=500, max_value=30_000))
        return draw(st.sampled_from(['{"a": ' * d + "1" + "}" * d, "[" * d + "]" * d, '{"k": ' + "[" * d]))
    if kind == "text":
        return draw(st.text(max_size=200))
    lines = draw(st.lists(st.tuples(_key_names, st.sampled_from(["=", ": ", " = ", ""]),
                                    st.one_of(st.text(max_size=30), st.from_regex(r"[A-Za-z0-9]{4,30}", fullmatch=True),
                                              st.integers().map(str))), max_size=5))
    return "\n".join(f"{k}{sep}{v}" for k, sep, v in lines)


@given(keys_text())
def test_fuzz_keys_file(text):
    try:
        creds = parse_keys_text(text, "keys.env")
    except FoldgateError as exc:
        one_line_error(exc)
    else:
        assert creds.key_id and creds.secret
        assert creds.secret not in repr(creds)


# ------------------------------------------------------------------ Alpaca pages

_bar_field = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**400), max_value=10**400),
                       st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10), _json)
_t = st.one_of(st.datetimes().map(lambda d: d.isoformat() + "Z"), st.text(max_size=30), st.integers(), st.none(),
               st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z", "1960-01-01T00:00:00Z",
                                "9999-12-31T23:59:59Z", "2024-13-01T00:00:00Z"]))


@st.composite
def bar_row(draw):
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        return draw(_json)
    p = draw(st.floats(min_value=0.01, max_value=1e6))
    good = {"t": draw(_t), "o": p, "h": p * 1.01, "l": p * 0.99, "c": p, "v": 1.0, "n": 3, "vw": p}
    for k in draw(st.lists(st.sampled_from(list(good)), max_size=3)):
        if draw(st.booleans()):
            good.pop(k, None)
        else:
            good[k] = draw(_bar_field)
    return good


@st.composite
def page(draw):
    kind = draw(st.integers(min_value=0, max_value=5))
    if kind == 0:
        return draw(_json)
    bars = draw(st.one_of(st.dictionaries(st.sampled_from(["BTC/USD", "ETH/USD", ""]),
                                          st.one_of(st.lists(bar_row(), max_size=8), _json), max_size=2),
                          _json))
    out = {"bars": bars}
    if draw(st.booleans()):
        out["next_page_token"] = draw(st.one_of(st.none(), st.text(max_size=20), _json))
    return out


@given(page())
def test_fuzz_alpaca_pages(obj):
    body = json.dumps(obj).encode()
    try:
        resp = check_page(decode_json(body), "fake")
        rows = page_rows(resp, "BTC/USD")
        parsed = parse_bars(rows, H, NOW)
    except FoldgateError as exc:
        one_line_error(exc)
        return
    ts = parsed.bars["timestamp"]
    assert len(ts) + sum(parsed.refused.values()) + parsed.unfinished <= len(rows)
    assert (np.diff(ts) > 0).all() and (ts >= 0).all()
    for k in ("open", "high", "low", "close"):
        assert (parsed.bars[k] > 0).all() and np.isfinite(parsed.bars[k]).all()


@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                 st.integers(min_value=1, max_value=60_000).map(lambda d: b"[" * d + b"]" * d),
                 st.integers(min_value=1, max_value=6000).map(lambda d: b"1" * d)))
def test_fuzz_alpaca_raw_bodies(body):
    try:
        check_page(decode_json(body), "fake")
    except FoldgateError as exc:
        one_line_error(exc)


# ------------------------------------------------------------------ store files


def _good_table(n: int, start: int) -> pa.Table:
    from engine.store import Bars

    ts = start + np.arange(n, dtype=np.int64) * H
    c = 100.0 + np.arange(n, dtype=np.float64)
    return bars_to_table(Bars("AAPL", "1Hour", "us_equity", ts, c, c + 1, c - 1, c, np.full(n, 5.0)))


@st.composite
def store_table(draw):
    n = draw(st.integers(min_value=0, max_value=8))
    table = _good_table(n, draw(st.integers(min_value=0, max_value=NOW // H - 10)) * H)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        what = draw(st.sampled_from(["cell", "type", "drop", "meta", "null"]))
        if not table.column_names:
            break
        name = draw(st.sampled_from(table.column_names))
        i = table.schema.get_field_index(name)
        if what == "cell" and n:
            vals = table.column(name).to_pylist()
            row = draw(st.integers(min_value=0, max_value=n - 1))
            typ = table.schema.field(name).type
            if typ not in (pa.timestamp("ns", tz="UTC"), pa.int64(), pa.float64()):
                continue
            if name == "timestamp":
                vals = table.column(name).cast(pa.int64()).to_pylist()
                vals[row] = draw(st.integers(min_value=-(2**63), max_value=2**63 - 1))
                arr = pa.array(vals, pa.int64()).view(pa.timestamp("ns", tz="UTC"))
            elif name == "trade_count":
                vals[row] = draw(st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)))
                arr = pa.array(vals, pa.int64())
            else:
                vals[row] = draw(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)))
                arr = pa.array(vals, pa.float64())
            table = table.set_column(i, table.schema.field(name), arr)
        elif what == "type":
            typ = draw(st.sampled_from([pa.float32(), pa.int64(), pa.string(), pa.timestamp("ms")]))
            try:
                col = table.column(name).cast(pa.int64()) if name == "timestamp" else table.column(name)
                table = table.set_column(i, pa.field(name, typ), col.cast(typ))
            except (pa.ArrowException, ValueError):
                pass
        elif what == "drop":
            table = table.remove_column(i)
        elif what == "null" and n:
            table = table.set_column(i, pa.field(name, table.schema.field(name).type),
                                     pa.nulls(n, table.schema.field(name).type))
        else:
            meta = dict(table.schema.metadata or {})
            key = draw(st.sampled_from([b"foldgate.asset_class", b"foldgate.symbol", b"foldgate.timeframe",
                                        b"foldgate.format", b"foldgate.adjustment", b"foldgate.first_available"]))
            if draw(st.booleans()):
                meta.pop(key, None)
            else:
                meta[key] = draw(st.one_of(st.binary(max_size=12), st.text(max_size=12).map(str.encode),
                                           st.sampled_from([b"us_equity", b"crypto", b"split", b"AAPL", b"1Hour"])))
            table = table.replace_schema_metadata(meta)
    return table


def _read_back(path: Path) -> None:
    store = BarStore(path.parent.parent)
    try:
        bars = store.read("AAPL", "1Hour")
    except FoldgateError as exc:
        one_line_error(exc)
        return
    assert (np.diff(bars.timestamp) > 0).all()
    for col in (bars.open, bars.high, bars.low, bars.close):
        assert np.isfinite(col).all() and (col > 0).all()
    assert (bars.volume >= 0).all()
    assert (bars.high >= np.maximum(bars.open, bars.close)).all()
    assert (bars.low <= np.minimum(bars.open, bars.close)).all()
    for e in store.list():
        assert e.error is None or "\n" not in e.error


@given(store_table(), st.integers(min_value=1, max_value=4))
def test_fuzz_store_tables(table, chunks):
    with sandbox() as root:
        path = root / "store" / "1Hour" / "AAPL.arrow"
        path.parent.mkdir(parents=True)
        with ipc.new_file(str(path), table.schema) as w:
            w.write_table(table, max_chunksize=max(1, math.ceil(len(table) / chunks)))
        _read_back(path)


_GOOD = None


def _good_bytes() -> bytes:
    global _GOOD
    if _GOOD is None:
        buf = pa.BufferOutputStream()
        t = _good_table(40, 1_700_000_000 * 10**9)
        with ipc.new_file(buf, t.schema) as w:
            w.write_table(t)
        _GOOD = buf.getvalue().to_pybytes()
    return _GOOD


@given(st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=30),
       st.one_of(st.none(), st.integers(min_value=0)), st.binary(max_size=64))
def test_fuzz_store_bytes(flips, cut, tail):
    data = bytearray(_good_bytes())
    for pos, val in flips:
        data[pos % len(data)] = val
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    with sandbox() as root:
        path = root / "store" / "1Hour" / "AAPL.arrow"
        path.parent.mkdir(parents=True)
        path.write_bytes(bytes(data) + tail)
        _read_back(path)
        assert sorted(os.listdir(path.parent)) == ["AAPL.arrow"]
