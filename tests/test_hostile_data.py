"""Hostile and broken bar data (issue 10, docs/design.md 2): imports, store files, concurrent
writers, killed writers, a full disk. Every test builds its hostile input itself; each
must end in a result or one `Error:` line naming the file and row, with nothing
half-written."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import engine.atomic as atomic
from cli.main import app
from engine.errors import DataError, FoldgateError, WriteError
from engine.data.importer import import_file
from engine.data.arrow_file import bars_to_table
from engine.data.bars import SCHEMA, Bars, latest_ns
from engine.data.store import BarStore

ROOT = Path(__file__).resolve().parent.parent
H = 3_600_000_000_000
S0 = 1_700_000_000  # 2023-11-14T22:13:20Z, in seconds
HEADER = "timestamp,open,high,low,close,volume\n"


def csv(path: Path, stamps, prices=None) -> Path:
    prices = prices or ["100,101,99,100.5,10"] * len(stamps)
    path.write_text(HEADER + "".join(f"{t},{p}\n" for t, p in zip(stamps, prices)))
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make(n, start=S0 * 10**9, symbol="AAPL", asset_class="us_equity"):
    ts = start + np.arange(n, dtype=np.int64) * H
    c = 100.0 + np.arange(n, dtype=np.float64)
    return Bars(symbol, "1Hour", asset_class, ts, c.copy(), c + 1, c - 1, c, np.full(n, 10.0))


@pytest.fixture
def seeded(tmp_path):
    """A store holding 3 good bars, and the digest of its file."""
    st = BarStore(tmp_path / "store")
    path = st.write(make(3))
    return st, path, digest(path)


def refused(seeded, tmp_path, name, stamps, prices=None) -> str:
    st, path, before = seeded
    with pytest.raises(DataError) as exc:
        import_file(csv(tmp_path / name, stamps, prices), "AAPL", "1Hour", "us_equity", st)
    msg = str(exc.value)
    assert "\n" not in msg and str(tmp_path / name) in msg
    assert digest(path) == before  # nothing written
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    return msg


# ------------------------------------------------------------------ import: times


def test_epoch_seconds_past_2262_refused_not_stored_as_1702(seeded, tmp_path):
    # 10**10 s is the year 2286: as ns it overflows int64 and used to wrap to 1702
    msg = refused(seeded, tmp_path, "far.csv", [S0, S0 + 3600, 10**10])
    assert "row 3: timestamp 10000000000 is after" in msg and "1 of 3 rows" in msg


def test_epoch_column_mixing_seconds_and_milliseconds_refused(seeded, tmp_path):
    ms = (S0 + 7200) * 1000
    msg = refused(seeded, tmp_path, "mixed.csv", [S0, S0 + 3600, ms, S0 + 10800])
    assert f"row 3: timestamp {ms} looks like epoch ms while the column is in s" in msg
    assert "row 1" not in msg and "1 of 4 rows" in msg


def test_epoch_column_in_any_one_unit_imports(tmp_path):
    for unit, f in (("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)):
        st = BarStore(tmp_path / unit)
        res = import_file(csv(tmp_path / f"{unit}.csv", [S0 * f, (S0 + 3600) * f]), "AAPL", "1Hour",
                          "us_equity", st)
        assert (res.first, res.last) == (S0 * 10**9, (S0 + 3600) * 10**9), unit


@pytest.mark.parametrize("stamp, words", [
    ("1600-01-01T00:00:00Z", "is before 1970"),
    ("3000-01-01T00:00:00Z", "is after"),
    ("1969-12-31T23:00:00Z", "is before 1970"),
    ("9" * 5000, "timestamp"),            # a huge epoch as text: refused, not int()-ed
    ("1" + "0" * 30, "is after"),
    ("-1700000000", "is before 1970"),
])
def test_out_of_range_times_refused_with_row(seeded, tmp_path, stamp, words):
    msg = refused(seeded, tmp_path, "range.csv", ["2024-01-01T00:00:00Z", stamp]
                  if not stamp[0].isdigit() and not stamp.startswith("-") else [S0, stamp])
    assert "row 2: " in msg and words in msg and "1 of 2 rows" in msg


def test_a_day_past_now_is_the_limit(seeded, tmp_path):
    soon = (time.time_ns() + 12 * H) // 10**9
    later = (time.time_ns() + 30 * H) // 10**9
    msg = refused(seeded, tmp_path, "future.csv", [S0, soon, later])
    assert "row 3" in msg and "row 2" not in msg


def test_parquet_timestamps_of_year_3000_and_dates_refused(seeded, tmp_path):
    st, path, before = seeded
    base = {"open": [100.0] * 2, "high": [101.0] * 2, "low": [99.0] * 2, "close": [100.5] * 2, "volume": [1.0] * 2}
    for name, col in [
        ("ts_s.parquet", pa.array([S0, 32_503_680_000], pa.int64()).cast(pa.timestamp("s"))),
        ("ts_us.parquet", pa.array([S0 * 10**6, -(10**16)], pa.int64()).cast(pa.timestamp("us", tz="UTC"))),
        ("date.parquet", pa.array([19_000, 400_000], pa.int32()).cast(pa.date32())),
    ]:
        pq.write_table(pa.table({"timestamp": col, **base}), tmp_path / name)
        with pytest.raises(DataError, match=r"row 2: timestamp .* (after|before)") as exc:
            import_file(tmp_path / name, "AAPL", "1Hour", "us_equity", st)
        assert "\n" not in str(exc.value)
    assert digest(path) == before


def test_integer_parquet_epochs_out_of_int64_range(seeded, tmp_path):
    st, path, before = seeded
    tab = pa.table({"timestamp": pa.array([S0, 2**63 - 1, 2**64 - 1], pa.uint64()), "open": [1.0] * 3,
                    "high": [2.0] * 3, "low": [0.5] * 3, "close": [1.5] * 3, "volume": [1.0] * 3})
    pq.write_table(tab, tmp_path / "big.parquet")
    with pytest.raises(DataError, match="2 of 3 rows") as exc:
        import_file(tmp_path / "big.parquet", "AAPL", "1Hour", "us_equity", st)
    assert "row 2" in str(exc.value) and "row 3" in str(exc.value)
    assert digest(path) == before


# ------------------------------------------------------------------ import: prices


@pytest.mark.parametrize("row, words", [
    ("100,99,98,100.5,10", "high 99 is below max(open, close) 100.5"),    # high < close
    ("100,101,100.2,100.5,10", "low 100.2 is above min(open, close) 100"),  # low > open
    ("100,98,99,100.5,10", "high 98 is below"),                            # high < low
])
def test_high_low_inconsistent_with_open_close_refused(seeded, tmp_path, row, words):
    msg = refused(seeded, tmp_path, "hl.csv", [S0, S0 + 3600],
                  ["100,101,99,100.5,10", row])
    assert "row 2: " in msg and words in msg


def test_fetch_and_import_share_the_high_low_rule():
    from engine.data.sources.pages import parse_bars

    now = time.time_ns()
    rows = [{"t": "2024-01-01T00:00:00Z", "o": 100, "h": 99, "l": 98, "c": 100.5, "v": 1},
            {"t": "2024-01-01T01:00:00Z", "o": 100, "h": 101, "l": 100.2, "c": 100.5, "v": 1},
            {"t": "2024-01-01T02:00:00Z", "o": 100, "h": 101, "l": 99, "c": 100.5, "v": 1}]
    parsed = parse_bars(rows, H, now)
    assert parsed.refused == {"high/low inconsistent": 2} and len(parsed.bars["timestamp"]) == 1


def test_huge_trade_count_refused(seeded, tmp_path):
    st, path, before = seeded
    (tmp_path / "tc.csv").write_text("timestamp,open,high,low,close,volume,trade_count\n"
                                     f"{S0},100,101,99,100,1,1e300\n")
    with pytest.raises(DataError, match="row 1: trade_count is too large"):
        import_file(tmp_path / "tc.csv", "AAPL", "1Hour", "us_equity", st)
    assert digest(path) == before


# ------------------------------------------------------------------ store: concurrent writers

_WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from engine.data.importer import import_file
    from engine.data.store import BarStore
    store, go, files = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    while not go.exists():
        time.sleep(0.005)
    for f in files:
        import_file(f, "BTCUSD", "1Hour", "crypto", BarStore(store))
""")


def test_two_concurrent_imports_never_lose_bars(tmp_path):
    """Two processes import disjoint bars into one symbol at once, several rounds each;
    every bar of both must be there (before the lock, one file's bars were lost half the
    time)."""
    worker = tmp_path / "worker.py"
    worker.write_text(_WORKER)
    store = tmp_path / "store"
    rounds, per_file = 6, 24
    files = {0: [], 1: []}
    expected = set()
    for w in (0, 1):
        for r in range(rounds):
            start = S0 + ((r * 2 + w) * per_file) * 3600
            stamps = [start + i * 3600 for i in range(per_file)]
            expected |= {t * 10**9 for t in stamps}
            files[w].append(str(csv(tmp_path / f"w{w}_{r}.csv", stamps)))
    go = tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, str(worker), str(store), str(go), *files[w]], env=env,
                              stderr=subprocess.PIPE, text=True) for w in (0, 1)]
    time.sleep(0.5)  # both past their imports, waiting
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    got = BarStore(store).read("BTCUSD", "1Hour")
    assert set(got.timestamp.tolist()) == expected and len(got) == 2 * rounds * per_file


def test_two_concurrent_cli_imports_keep_both_files(tmp_path):
    store = tmp_path / "store"
    a = csv(tmp_path / "a.csv", [S0 + i * 3600 for i in range(30)])
    b = csv(tmp_path / "b.csv", [S0 + (30 + i) * 3600 for i in range(30)])
    env = dict(os.environ, PYTHONPATH=str(ROOT), FOLDGATE_STORE=str(store))
    for _ in range(2):
        procs = [subprocess.Popen([sys.executable, "-m", "cli.main", "data", "import", str(f), "--symbol",
                                   "BTC/USD", "--timeframe", "1Hour", "--asset-class", "crypto"],
                                  cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for f in (a, b)]
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
    assert len(BarStore(store).read("BTCUSD", "1Hour")) == 60


# ------------------------------------------------------------------ store: killed writers, full disk


def test_temp_files_of_a_killed_writer_are_removed_by_the_next_writer(tmp_path):
    st = BarStore(tmp_path)
    path = st.write(make(3))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale_pid = path.parent / f".{path.name}.{dead.pid}.abcd1234.tmp"
    stale_old = path.parent / f".{path.name}.k2j3h4g5.tmp"   # an older name, no pid
    other = path.parent / ".MSFT.arrow.1.x.tmp"               # another target's: not ours to touch
    for f in (stale_pid, stale_old, other):
        f.write_bytes(b"half a file")
    st.write(make(2, start=S0 * 10**9 + 10 * H))
    assert not stale_pid.exists() and not stale_old.exists() and other.exists()
    assert len(st.read("AAPL", "1Hour")) == 5


def test_a_killed_import_leaves_the_store_readable_and_the_next_one_cleans_up(tmp_path):
    """kill -9 in the middle of a write: the old file stays whole, and its temp goes."""
    store = tmp_path / "store"
    BarStore(store).write(make(3))
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        import engine.atomic as atomic
        real = os.fsync
        def stall(fd):
            open({str(tmp_path / 'ready')!r}, 'w').close()
            time.sleep(60)
        os.fsync = stall
        from engine.store import BarStore
        from test_hostile_data import make
        BarStore({str(store)!r}).write(make(5, start={S0 * 10**9 + 100 * H}))
    """))
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}")
    p = subprocess.Popen([sys.executable, str(script)], env=env)
    try:
        deadline = time.time() + 120
        while not (tmp_path / "ready").exists():
            assert time.time() < deadline and p.poll() is None
            time.sleep(0.02)
    finally:
        p.kill()
        p.wait()
    path = BarStore(store).path("AAPL", "1Hour")
    temps = [f for f in path.parent.iterdir() if f.name.endswith(".tmp")]
    assert temps and len(BarStore(store).read("AAPL", "1Hour")) == 3
    BarStore(store).write(make(1, start=S0 * 10**9 + 200 * H))
    assert not [f for f in path.parent.iterdir() if f.name.endswith(".tmp")]


def test_full_disk_is_one_error_line_and_nothing_half_written(tmp_path, monkeypatch):
    st = BarStore(tmp_path / "store")
    path = st.write(make(3))
    before = digest(path)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(DataError) as exc:
        st.write(make(2, start=S0 * 10**9 + 10 * H))
    msg = str(exc.value)
    assert "No space left on device" in msg and str(path) in msg and "\n" not in msg
    assert digest(path) == before and sorted(p.name for p in path.parent.iterdir()) == [path.name]
    # through the CLI: one Error line, exit 1
    f = csv(tmp_path / "more.csv", [S0 + 20 * 3600])
    r = CliRunner().invoke(app, ["data", "import", str(f), "--symbol", "AAPL", "--timeframe", "1Hour",
                                 "--store", str(tmp_path / "store")])
    assert r.exit_code == 1 and r.output.strip().splitlines()[-1].startswith("Error: ")
    assert "No space left" in r.output and "Traceback" not in r.output
    assert digest(path) == before


def test_atomic_writes_report_a_full_disk_as_a_foldgate_error(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(WriteError) as exc:
        atomic.atomic_write_text(tmp_path / "report.json", "{}")
    assert isinstance(exc.value, FoldgateError) and isinstance(exc.value, OSError)
    assert str(exc.value).startswith(f"cannot write {tmp_path / 'report.json'}: No space left")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ store: reads check rows


def _write_table(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with ipc.new_file(str(path), table.schema) as w:
        w.write_table(table)


def _edited(st: BarStore, column: str, row: int, value) -> Path:
    """The stored AAPL file with one cell changed by hand."""
    b = make(5)
    table = bars_to_table(b)
    vals = table.column(column).to_pylist()
    vals[row] = value
    table = table.set_column(table.schema.get_field_index(column), table.schema.field(column),
                             pa.array(vals, table.schema.field(column).type))
    path = st.path("AAPL", "1Hour")
    _write_table(path, table)
    return path


@pytest.mark.parametrize("column, value, words", [
    ("close", float("nan"), "row 3: close is NaN"),
    ("close", 0.0, "row 3: close is not positive"),
    ("open", -5.0, "row 3: open is not positive"),
    ("high", 50.0, "row 3: high 50 is below max(open, close)"),
    ("volume", -1.0, "row 3: volume is negative"),
    ("timestamp", 0, "row 3: timestamp 1970-01-01T00:00:00Z is before row 2's"),
])
def test_hand_edited_rows_are_refused_naming_file_and_row(tmp_path, column, value, words):
    st = BarStore(tmp_path)
    path = _edited(st, column, 2, value)
    with pytest.raises(DataError) as exc:
        st.read("AAPL", "1Hour")
    msg = str(exc.value)
    assert msg.startswith(str(path)) and words in msg and "\n" not in msg
    r = CliRunner().invoke(app, ["data", "show", "AAPL", "--store", str(tmp_path)])
    assert r.exit_code == 1 and words in r.output and "Traceback" not in r.output


def _raw_table(ts, b: Bars) -> pa.Table:
    """A store-schema table with any timestamps, bypassing Bars' own checks."""
    return pa.Table.from_arrays(
        [pa.array(ts).cast(pa.timestamp("ns", tz="UTC")),
         *(pa.array(getattr(b, c)) for c in ("open", "high", "low", "close", "volume")),
         pa.nulls(len(ts), pa.int64()), pa.nulls(len(ts), pa.float64())],
        schema=SCHEMA.with_metadata({"foldgate.asset_class": "us_equity"}))


def test_duplicate_and_future_timestamps_refused_on_read(tmp_path):
    st = BarStore(tmp_path)
    b = make(3)
    ts = b.timestamp.copy()
    ts[2] = ts[1]
    _write_table(st.path("AAPL", "1Hour"), _raw_table(ts, b))
    with pytest.raises(DataError, match="row 3: duplicate timestamp"):
        st.read("AAPL", "1Hour")
    ts[2] = latest_ns() + 10 * H
    _write_table(st.path("AAPL", "1Hour"), _raw_table(ts, b))
    with pytest.raises(DataError, match="row 3: timestamp .* is more than a day past now"):
        st.read("AAPL", "1Hour")


@pytest.mark.parametrize("meta, words", [
    ({b"foldgate.asset_class": b"stocks"}, "metadata foldgate.asset_class is 'stocks'"),
    ({b"foldgate.asset_class": b"\xff\xfe"}, "metadata is not UTF-8"),
    ({}, "no asset class"),
    ({b"foldgate.asset_class": b"us_equity", b"foldgate.format": b"other/9"}, "metadata foldgate.format"),
    ({b"foldgate.asset_class": b"us_equity", b"foldgate.symbol": b"MSFT"}, "says 'MSFT'"),
    ({b"foldgate.asset_class": b"us_equity", b"foldgate.timeframe": b"1Day"}, "says '1Day'"),
    ({b"foldgate.asset_class": b"us_equity", b"foldgate.adjustment": b"weird"}, "foldgate.adjustment"),
    ({b"foldgate.asset_class": b"us_equity", b"foldgate.first_available": b"9" * 40}, "first_available"),
])
def test_bad_metadata_is_one_error_naming_the_file(tmp_path, meta, words):
    st = BarStore(tmp_path)
    table = bars_to_table(make(3)).replace_schema_metadata(meta)
    path = st.path("AAPL", "1Hour")
    _write_table(path, table)
    with pytest.raises(DataError) as exc:
        st.read("AAPL", "1Hour")
    assert str(exc.value).startswith(str(path)) and words in str(exc.value)
    [entry] = st.list()
    assert entry.error and words in entry.error


@pytest.mark.parametrize("column, typ", [("close", pa.float32()), ("volume", pa.int64()),
                                          ("timestamp", pa.int64()), ("trade_count", pa.float64())])
def test_wrong_column_types_refused(tmp_path, column, typ):
    st = BarStore(tmp_path)
    table = bars_to_table(make(3))
    i = table.schema.get_field_index(column)
    col = table.column(column)
    if column == "timestamp":
        col = col.cast(pa.int64())
    table = table.set_column(i, pa.field(column, typ), col.cast(typ))
    _write_table(st.path("AAPL", "1Hour"), table)
    with pytest.raises(DataError, match=f"column {column} has type"):
        st.read("AAPL", "1Hour")


def test_truncated_and_garbage_files_are_one_error(tmp_path):
    st = BarStore(tmp_path)
    path = st.write(make(50))
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 8):
        path.write_bytes(data[:cut])
        with pytest.raises(DataError, match="not a readable Arrow bar file"):
            st.read("AAPL", "1Hour")
    rng = np.random.default_rng(7)
    for _ in range(30):
        blob = bytearray(data)
        for i in rng.integers(0, len(blob), 20):
            blob[i] = int(rng.integers(0, 256))
        path.write_bytes(bytes(blob))
        try:
            st.read("AAPL", "1Hour")
        except DataError as exc:
            assert "\n" not in str(exc)


def test_symbols_are_canonical_in_and_out(tmp_path):
    st = BarStore(tmp_path)
    (tmp_path / "b.csv").write_text(HEADER + f"{S0},1,2,0.5,1.5,3\n")
    r = CliRunner().invoke(app, ["data", "import", str(tmp_path / "b.csv"), "--symbol", "btc/usd",
                                 "--timeframe", "1h", "--store", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "1Hour" / "BTCUSD.arrow").is_file()
    assert st.read("BTC/USD", "1Hour").symbol == "BTCUSD" == st.read("btc-usd", "1hour").symbol
    assert [e.symbol for e in st.list()] == ["BTCUSD"]


# ------------------------------------------------------------------ issue 8: the store directory


def test_missing_store_directory_is_reported_as_such(tmp_path):
    st = BarStore(tmp_path / "nowhere")
    with pytest.raises(DataError) as exc:
        st.read("AAPL", "1Hour")
    assert f"store directory {tmp_path / 'nowhere'} does not exist" in str(exc.value)
    assert "no 1Hour bars" not in str(exc.value)


def test_import_into_the_shipped_sample_store_needs_an_explicit_store(tmp_path, monkeypatch):
    sample = ROOT / "data" / "bars"
    before = {p.name: digest(p) for p in (sample / "1Hour").iterdir()}
    f = csv(tmp_path / "x.csv", [S0])
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("FOLDGATE_STORE", raising=False)
    r = CliRunner().invoke(app, ["data", "import", str(f), "--symbol", "ZZTEST", "--timeframe", "1Hour"],
                           env={"FOLDGATE_STORE": None})
    assert r.exit_code == 2 and "sample data that ships with foldgate" in r.output and "--store" in r.output
    assert {p.name: digest(p) for p in (sample / "1Hour").iterdir()} == before
    r = CliRunner().invoke(app, ["data", "fetch", "AAPL"], env={"FOLDGATE_STORE": None})
    assert r.exit_code == 2 and "sample data" in r.output
    # elsewhere the default store is an ordinary directory
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["data", "import", str(f), "--symbol", "ZZTEST", "--timeframe", "1Hour"],
                           env={"FOLDGATE_STORE": None})
    assert r.exit_code == 0, r.output
    assert (tmp_path / "data" / "bars" / "1Hour" / "ZZTEST.arrow").is_file()


def test_import_file_size_is_bounded(seeded, tmp_path, monkeypatch):
    st, path, before = seeded
    f = csv(tmp_path / "big.csv", [S0 + i * 3600 for i in range(50)])
    monkeypatch.setenv("FOLDGATE_MAX_IMPORT_BYTES", "100")
    with pytest.raises(DataError, match=r"big.csv is \d[\d,]* bytes, more than the 100 allowed"):
        import_file(f, "AAPL", "1Hour", "us_equity", st)
    assert digest(path) == before
    monkeypatch.setenv("FOLDGATE_MAX_IMPORT_BYTES", "lots")
    with pytest.raises(DataError, match="FOLDGATE_MAX_IMPORT_BYTES"):
        import_file(f, "AAPL", "1Hour", "us_equity", st)
