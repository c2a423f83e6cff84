"""The Arrow bar store: round trip, zero-copy reads, merges, atomic writes, symbols."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

import engine.data.store as store_mod
import engine.store
from engine.errors import DataError, FoldgateError
from engine.data.bars import COLUMNS, SCHEMA, Bars, format_ts, canonical_timeframe, timeframe_seconds, validate_bars
from engine.data.gaps import gaps, summarize
from engine.data.store import BarStore
from engine.data.symbols import SymbolError, alpaca_symbol, canonical_symbol, guess_asset_class

H = 3_600_000_000_000
T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00Z, a Thursday


def make(n, start=T0, symbol="BTCUSD", asset_class="crypto", price=100.0, extras=True, step=H):
    ts = start + np.arange(n, dtype=np.int64) * step
    c = price + np.arange(n, dtype=np.float64)
    tc = np.arange(n, dtype=np.int64) if extras else None
    vw = c + 0.5 if extras else None
    return Bars(symbol, "1Hour", asset_class, ts, c.copy(), c + 1, c - 1, c, np.full(n, 10.0), tc, vw)


def same(a: Bars, b: Bars):
    assert (a.symbol, a.timeframe, a.asset_class) == (b.symbol, b.timeframe, b.asset_class)
    for name in COLUMNS:
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)


def test_round_trip_with_nulls(tmp_path):
    st = BarStore(tmp_path)
    b = make(50)
    b.trade_count[3] = -1
    b.vwap[4] = np.nan
    path = st.write(b)
    assert path == tmp_path / "1Hour" / "BTCUSD.arrow"
    same(st.read("BTCUSD", "1Hour"), b)
    # the file itself follows docs/design.md 2 and carries the asset class
    with pa.memory_map(str(path)) as src:
        table = ipc.open_file(src).read_all()
        assert table.schema.equals(SCHEMA, check_metadata=False)
        assert table.schema.metadata[b"foldgate.asset_class"] == b"crypto"
        assert table.column("trade_count").null_count == 1
        assert table.column("vwap").null_count == 1
        assert str(table.schema.field("timestamp").type) == "timestamp[ns, tz=UTC]"


def test_round_trip_without_optional_columns(tmp_path):
    st = BarStore(tmp_path)
    b = make(5, symbol="AAPL", asset_class="us_equity", extras=False)
    st.write(b)
    r = st.read("AAPL", "1Hour")
    same(r, b)
    assert r.asset_class == "us_equity"


def test_read_is_a_zero_copy_memory_map(tmp_path):
    st = BarStore(tmp_path)
    st.write(make(20_000, start=T0 - 20_000 * H))
    before = pa.total_allocated_bytes()
    r = st.read("BTCUSD", "1Hour")
    # a copy of five float columns would allocate 800 kB from Arrow's pool
    assert pa.total_allocated_bytes() - before < 1024
    for name in ("timestamp", "open", "high", "low", "close", "volume"):
        arr = getattr(r, name)
        assert not arr.flags.writeable and not arr.flags.owndata, name
        assert arr.flags.c_contiguous
    assert r.timestamp.dtype == np.int64 and r.close.dtype == np.float64


def test_merge_keeps_one_row_per_timestamp_new_wins(tmp_path):
    st = BarStore(tmp_path)
    st.write(make(10))  # hours 0..9
    new = make(6, start=T0 + 7 * H, price=500.0)  # hours 7..12
    st.write(new)
    r = st.read("BTCUSD", "1Hour")
    assert len(r) == 13
    assert np.all(np.diff(r.timestamp) == H)
    np.testing.assert_array_equal(r.close[:7], 100.0 + np.arange(7))
    np.testing.assert_array_equal(r.close[7:], 500.0 + np.arange(6))
    # earlier bars merge in front, and a merge of the same bars changes nothing
    st.write(make(3, start=T0 - 3 * H, price=50.0))
    st.write(make(3, start=T0 - 3 * H, price=50.0))
    r = st.read("BTCUSD", "1Hour")
    assert len(r) == 16 and r.close[0] == 50.0 and np.all(np.diff(r.timestamp) > 0)


def test_merge_fills_optional_columns_and_replace_mode(tmp_path):
    st = BarStore(tmp_path)
    st.write(make(4, extras=False))
    st.write(make(2, start=T0 + 4 * H))
    r = st.read("BTCUSD", "1Hour")
    np.testing.assert_array_equal(r.trade_count, [-1, -1, -1, -1, 0, 1])
    assert np.isnan(r.vwap[:4]).all() and np.isfinite(r.vwap[4:]).all()
    st.write(make(2, start=T0 + 100 * H), mode="replace")
    assert len(st.read("BTCUSD", "1Hour")) == 2


def test_merge_refuses_a_different_asset_class(tmp_path):
    st = BarStore(tmp_path)
    st.write(make(3))
    with pytest.raises(DataError, match="stored as crypto"):
        st.write(make(3, asset_class="us_equity"))


class _Boom(RuntimeError):
    pass


def _failing_ipc(monkeypatch):
    class Writer:
        def __init__(self, fh, schema):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write_table(self, table, max_chunksize=None):
            self.fh.write(b"ARROW1 half a file")
            raise _Boom("disk full")

    class FakeIpc:
        new_file = Writer
        open_file = staticmethod(ipc.open_file)

    monkeypatch.setattr(store_mod, "ipc", FakeIpc)


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    st = BarStore(tmp_path)
    path = st.write(make(5))
    old = path.read_bytes()
    _failing_ipc(monkeypatch)
    with pytest.raises(_Boom):
        st.write(make(5, start=T0 + 10 * H))
    assert path.read_bytes() == old
    assert sorted(p.name for p in path.parent.iterdir()) == ["BTCUSD.arrow"]


def test_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    st = BarStore(tmp_path)
    _failing_ipc(monkeypatch)
    with pytest.raises(_Boom):
        st.write(make(5))
    assert list((tmp_path / "1Hour").iterdir()) == []
    assert not st.has("BTCUSD", "1Hour")


def test_invalid_bars_are_refused_with_row_numbers(tmp_path):
    st = BarStore(tmp_path)
    b = make(6)
    b.close[2] = np.nan
    b.open[4] = -1.0
    b.timestamp[5] = b.timestamp[4]
    with pytest.raises(DataError) as exc:
        st.write(b)
    msg = str(exc.value)
    assert "3 of 6 rows" in msg and "row 3: close is NaN" in msg
    assert "row 5: open is not positive" in msg and "row 6: duplicate timestamp" in msg
    assert not st.has("BTCUSD", "1Hour")


def test_validate_lists_first_rows_and_counts_the_rest():
    b = make(30)
    b.volume[:] = -1.0
    with pytest.raises(DataError) as exc:
        validate_bars(b, source="x.csv", first_row=1, limit=5)
    msg = str(exc.value)
    assert msg.startswith("x.csv: 30 of 30 rows are invalid")
    assert "row 5:" in msg and "row 6:" not in msg and "and 25 more" in msg
    b = make(4)
    b.timestamp[2] = b.timestamp[0]
    with pytest.raises(DataError, match=r"row 3: timestamp .* is before row 2's .* \(not sorted\)"):
        validate_bars(b)


def test_canonical_symbols_in_paths_and_reads(tmp_path):
    st = BarStore(tmp_path)
    st.write(make(3, symbol="btc/usd"))
    assert (tmp_path / "1Hour" / "BTCUSD.arrow").is_file()
    for spelling in ("BTCUSD", "BTC/USD", "btc-usd", " btc_usd "):
        assert st.has(spelling, "1hour")
        assert st.read(spelling, "1h").symbol == "BTCUSD"


def test_symbol_forms():
    assert canonical_symbol("BTC/USD") == "BTCUSD"
    assert canonical_symbol("btc-usd") == "BTCUSD"
    assert canonical_symbol("aapl") == "AAPL"
    assert canonical_symbol("BRK.B") == "BRK.B"
    assert alpaca_symbol("BTCUSD", "crypto") == "BTC/USD"
    assert alpaca_symbol("ETHUSDT", "crypto") == "ETH/USDT"
    assert alpaca_symbol("UNIUSD") == "UNI/USD"
    assert alpaca_symbol("AAPL", "us_equity") == "AAPL"
    assert guess_asset_class("BTC/USD") == "crypto"
    assert guess_asset_class("LINKUSD") == "crypto"
    assert guess_asset_class("SPY") == "us_equity"
    assert guess_asset_class("BRK-B") == "us_equity"
    for bad in ("", "../etc", "A B$", "X" * 21, "."):
        with pytest.raises(SymbolError):
            canonical_symbol(bad)
    with pytest.raises(SymbolError, match="BASE/QUOTE"):
        alpaca_symbol("FOO", "crypto")


def test_timeframes():
    assert canonical_timeframe("1hour") == "1Hour"
    assert canonical_timeframe("15m") == "15Min"
    assert canonical_timeframe("1Day") == "1Day"
    assert timeframe_seconds("4Hour") == 4 * 3600
    for bad in ("hour", "0Hour", "1Fortnight", ""):
        with pytest.raises(DataError, match="invalid timeframe"):
            canonical_timeframe(bad)


def test_missing_symbol_says_how_to_import_or_fetch(tmp_path):
    st = BarStore(tmp_path)
    with pytest.raises(DataError) as exc:
        st.read("eth/usd", "1Hour")
    msg = str(exc.value)
    assert "\n" not in msg
    assert "no 1Hour bars for ETHUSD" in msg
    assert "foldgate data import FILE --symbol ETHUSD --timeframe 1Hour" in msg
    assert "foldgate data fetch ETHUSD" in msg
    st.write(make(3, symbol="ETHUSD"))
    with pytest.raises(DataError, match="stored timeframes for ETHUSD: 1Hour.*fetch ETHUSD --timeframe 1Day"):
        st.read("ETHUSD", "1Day")


def test_corrupt_file_is_a_data_error(tmp_path):
    st = BarStore(tmp_path)
    p = st.path("BTCUSD", "1Hour")
    p.parent.mkdir(parents=True)
    p.write_bytes(b"not arrow at all")
    with pytest.raises(DataError, match="not a readable Arrow bar file"):
        st.read("BTCUSD", "1Hour")
    [entry] = st.list()
    assert entry.error


def test_store_dir_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    st = BarStore(blocker / "bars")
    with pytest.raises(DataError) as exc:
        st.write(make(3))
    assert "not writable" in str(exc.value) and "--store" in str(exc.value)
    assert isinstance(exc.value, FoldgateError)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_store_dir(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(DataError, match="not writable"):
            BarStore(root).write(make(3))
    finally:
        root.chmod(0o755)


def test_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("FOLDGATE_STORE", str(tmp_path / "env"))
    assert BarStore().root == tmp_path / "env"
    monkeypatch.delenv("FOLDGATE_STORE")
    assert BarStore().root == Path("data") / "bars"
    assert BarStore(tmp_path).root == tmp_path


def test_list_entries(tmp_path):
    st = BarStore(tmp_path)
    assert st.list() == []
    st.write(make(5))
    st.write(make(3, symbol="AAPL", asset_class="us_equity"))
    entries = st.list()
    assert [(e.symbol, e.asset_class, e.n_bars) for e in entries] == [("AAPL", "us_equity", 3), ("BTCUSD", "crypto", 5)]
    e = entries[1]
    assert e.first_ns == T0 and e.last_ns == T0 + 4 * H and e.first.year == 2026 and e.error is None


def test_slice_and_len():
    b = make(10)
    s = b.slice(2, 5)
    assert len(s) == 3 and s.close[0] == b.close[2] and np.shares_memory(s.close, b.close)
    assert len(b.slice(-3, None)) == 3


def test_gaps_crypto_and_equity_sessions():
    ts = T0 + np.array([0, 1, 2, 5, 6], dtype=np.int64) * H
    n = len(ts)
    b = Bars("BTCUSD", "1Hour", "crypto", ts, np.ones(n), np.ones(n), np.ones(n), np.ones(n), np.ones(n))
    [g] = gaps(b)
    assert (g.before, g.after, g.missing, g.market_closed) == (int(ts[2]), int(ts[3]), 2, False)
    # equities (NYSE calendar, 2026-01-08 a regular Thursday; sessions 14:30-21:00 UTC in
    # winter): Thu 14..20h (hole), Fri 14h (night), Fri 20h (hole), Mon 14h (weekend),
    # Mon 18h (intraday hole), Thu (2 trading days gone)
    day = 86400 * 10**9
    thu = T0 + 7 * day
    ts = thu + np.array([14 * H, 20 * H, day + 14 * H, day + 20 * H, 4 * day + 14 * H, 4 * day + 18 * H,
                         7 * day + 14 * H])
    n = len(ts)
    e = Bars("AAPL", "1Hour", "us_equity", ts, np.ones(n), np.ones(n), np.ones(n), np.ones(n), np.ones(n))
    info = summarize(e)
    assert [g.market_closed for g in info.gaps] == [False, True, False, True, False, False]
    assert len(info.unexpected_gaps) == 4 and info.n_bars == 7 and info.first == ts[0]
    # a holiday is a closure, not a hole: Thu 2026-01-01 (New Year) between Wed and Fri bars
    ts = T0 + np.array([-day + 20 * H, day + 14 * H])
    h = Bars("AAPL", "1Hour", "us_equity", ts, np.ones(2), np.ones(2), np.ones(2), np.ones(2), np.ones(2))
    assert [g.market_closed for g in gaps(h)] == [True]


def test_shipped_sample_store_is_valid():
    st = BarStore(Path(__file__).resolve().parent.parent / "data" / "bars")
    entries = {e.symbol: e for e in st.list()}
    crypto = ["BTCUSD", "ETHUSD", "SOLUSD", "UNIUSD", "LINKUSD", "AVAXUSD"]
    equity = ["AAPL", "MSFT", "SPY", "NVDA", "AMZN", "TSLA"]
    assert set(crypto + equity) <= set(entries)
    for s in crypto + equity:
        b = st.read(s, "1Hour")
        validate_bars(b)
        assert b.asset_class == ("crypto" if s in crypto else "us_equity")
        assert b.trade_count is not None and b.vwap is not None
        assert (b.high >= np.maximum(b.open, b.close)).all() and (b.low <= np.minimum(b.open, b.close)).all()
        assert format_ts(b.timestamp[-1]).startswith("2026-11-20")
        assert len(b) == (9600 if s in crypto else 1926)  # 400 days: a year of folds plus warm-up


def test_design_paths_hand_on_the_data_package():
    """docs/design.md 1 names `engine.store.BarStore`; the old module paths the pipeline and
    policies still import give the very objects of `engine.data`, not copies."""
    import engine.data.sources.alpaca as alpaca
    import engine.data.symbols as symbols
    import engine.sources.alpaca
    import engine.symbols

    assert engine.store.BarStore is BarStore
    assert engine.store.Bars is Bars and engine.store.summarize is summarize
    assert engine.symbols.canonical_symbol is symbols.canonical_symbol
    assert engine.sources.alpaca.ensure_bars is alpaca.ensure_bars


def test_datetime_ns_is_exact_where_a_float_timestamp_is_not():
    from datetime import datetime, timedelta, timezone

    from engine.data.bars import datetime_ns, ns_to_datetime

    rng = np.random.default_rng(7)
    for us in rng.integers(-(2**52), 2**55, 200).tolist() + [0, 1, -1]:
        t = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)
        assert datetime_ns(t) == us * 1000
        if us >= 0:
            assert ns_to_datetime(us * 1000) == t
    # a zone other than UTC is the same instant
    t = datetime(2024, 5, 1, 15, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert datetime_ns(t) == datetime_ns(t.astimezone(timezone.utc))
