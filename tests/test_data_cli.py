"""`foldgate data import|list|show` through click's CliRunner, every bad-input path
included: each ends in one `Error:` line, exit 1 (2 for usage), nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cli.main import app
from engine.store import BarStore

HEADER = "timestamp,open,high,low,close,volume,trade_count,vwap\n"


def rows(n, start_hour=0, price=100.0, day="2026-03-02"):
    out = []
    for i in range(n):
        h = start_hour + i
        p = price + i
        out.append(f"{day}T{h:02d}:00:00Z,{p},{p + 1},{p - 1},{p + 0.5},{10 + i},{5 + i},{p + 0.2}\n")
    return out


def write_csv(path: Path, lines, header=HEADER) -> Path:
    path.write_text(header + "".join(lines))
    return path


@pytest.fixture
def env(tmp_path):
    store = tmp_path / "store"
    runner = CliRunner()

    def run(*args, **kw):
        return runner.invoke(app, ["data", *map(str, args)], env={"FOLDGATE_STORE": str(store)}, **kw)

    return run, store, tmp_path


def error_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[-1]


def test_import_list_show(env):
    run, store, tmp = env
    f = write_csv(tmp / "btc.csv", rows(10))
    r = run("import", f, "--symbol", "BTC/USD", "--timeframe", "1Hour")
    assert r.exit_code == 0, r.output
    assert "Imported 10 bars of BTCUSD 1Hour crypto" in r.output and "guessed" in r.output
    b = BarStore(store).read("BTCUSD", "1Hour")
    assert len(b) == 10 and b.close[0] == 100.5 and b.trade_count[0] == 5 and b.vwap[0] == 100.2

    r = run("list")
    assert r.exit_code == 0 and "BTCUSD" in r.output and "1Hour" in r.output and "crypto" in r.output
    assert "2026-03-02 00:00" in r.output and "2026-03-02 09:00" in r.output

    r = run("show", "btc-usd")
    assert r.exit_code == 0, r.output
    assert "Bars        10" in r.output and "2026-03-02 00:00 to 2026-03-02 09:00" in r.output
    assert "none longer than 1Hour" in r.output


def test_merge_counts_new_and_replaced_and_gaps(env):
    run, store, tmp = env
    run("import", write_csv(tmp / "a.csv", rows(6)), "--symbol", "ETHUSD", "--timeframe", "1h")
    r = run("import", write_csv(tmp / "b.csv", rows(4, start_hour=4, price=900.0)), "--symbol", "ETHUSD",
            "--timeframe", "1Hour")
    assert r.exit_code == 0, r.output
    assert "4 new" not in r.output and "2 new, 2 replaced" in r.output and "8 bars" in r.output
    assert "(as stored)" in r.output
    b = BarStore(store).read("ETHUSD", "1Hour")
    np.testing.assert_array_equal(b.open, [100, 101, 102, 103, 900, 901, 902, 903])
    # a hole of three hours shows as a gap
    run("import", write_csv(tmp / "c.csv", rows(2, start_hour=11)), "--symbol", "ETHUSD", "--timeframe", "1Hour")
    r = run("show", "ETHUSD", "--timeframe", "1Hour")
    assert "1 longer than 1Hour, 3 bars missing" in r.output and "2026-03-02 07:00" in r.output


def test_import_parquet_and_epoch_and_aliases(env):
    run, store, tmp = env
    ts = pa.array(np.array([1_772_409_600_000 + i * 3_600_000 for i in range(5)]), pa.timestamp("ms", tz="UTC"))
    price = pa.array([10.0, 11, 12, 13, 14])
    table = pa.table({"Timestamp": ts, "Open": price, "High": price, "Low": price, "Close": price,
                      "Volume": pa.array([0.0] * 5)})
    pq.write_table(table, tmp / "x.parquet")
    r = run("import", tmp / "x.parquet", "--symbol", "aapl", "--timeframe", "1Hour")
    assert r.exit_code == 0, r.output
    b = BarStore(store).read("AAPL", "1Hour")
    assert b.timestamp[0] == 1_772_409_600 * 10**9 and b.asset_class == "us_equity" and b.trade_count is None

    # Alpaca-style short names, epoch seconds, a crypto asset class given explicitly
    f = write_csv(tmp / "e.csv", [f"{1_772_409_600 + i * 3600},1,2,0.5,1.5,3,4,1.2\n" for i in range(3)],
                  header="T,O,H,L,C,V,N,VW\n")
    r = run("import", f, "--symbol", "SOLUSD", "--timeframe", "1Hour", "--asset-class", "crypto")
    assert r.exit_code == 0, r.output
    assert BarStore(store).read("SOLUSD", "1Hour").timestamp[-1] == (1_772_409_600 + 7200) * 10**9

    # epoch nanoseconds and milliseconds land on the same instants
    for scale, name in [(10**9, "ns.csv"), (10**3, "ms.csv")]:
        f = write_csv(tmp / name, [f"{(1_772_409_600 + i * 3600) * scale},1,2,0.5,1.5,3\n" for i in range(3)],
                      header="time,open,high,low,close,volume\n")
        r = run("import", f, "--symbol", "LINKUSD", "--timeframe", "1Hour", "--replace")
        assert r.exit_code == 0, r.output
        assert BarStore(store).read("LINKUSD", "1Hour").timestamp[0] == 1_772_409_600 * 10**9


def test_offsets_and_naive_times_are_utc(env):
    run, store, tmp = env
    f = write_csv(tmp / "tz.csv", ["2026-03-02T01:00:00+01:00,1,2,0.5,1.5,3\n", "2026-03-02 01:00,1,2,0.5,1.5,3\n"],
                  header="timestamp,open,high,low,close,volume\n")
    r = run("import", f, "--symbol", "SPY", "--timeframe", "1Hour")
    assert r.exit_code == 0, r.output
    ts = BarStore(store).read("SPY", "1Hour").timestamp
    assert list(ts) == [1_772_409_600 * 10**9, (1_772_409_600 + 3600) * 10**9]


@pytest.mark.parametrize(
    "bad_rows, expected",
    [
        ({2: "2026-03-02T02:00:00Z,102,103,101,NaN,12,7,102.2\n"}, ["1 of 6 rows", "row 3: close is NaN"]),
        ({1: "2026-03-02T01:00:00Z,0,103,101,101,12,7,102.2\n", 4: "2026-03-02T04:00:00Z,104,105,-3,104,14,9,104.2\n"},
         ["2 of 6 rows", "row 2: open is not positive (0)", "row 5: low is not positive (-3)"]),
        ({3: "2026-03-02T01:30:00Z,103,104,102,103.5,13,8,103.2\n"},
         ["row 4: timestamp 2026-03-02T01:30:00Z is before row 3's", "not sorted"]),
        ({3: "2026-03-02T02:00:00Z,103,104,102,103.5,13,8,103.2\n"}, ["row 4: duplicate timestamp 2026-03-02T02:00:00Z (also row 3)"]),
        ({0: "2026-03-02T00:00:00Z,100,101,99,100.5,-1,5,100.2\n"}, ["row 1: volume is negative (-1)"]),
        ({5: "2026-03-02T05:00:00Z,105,inf,104,105.5,15,10,105.2\n"}, ["row 6: high is inf"]),
        ({1: "2026-03-02T01:00:00Z,101,102,100,,11,6,101.2\n"}, ["row 2: close is missing"]),
        ({1: "2026-03-02T01:00:00Z,abc,102,100,101,11,6,101.2\n"}, ["row 2: open is not a number ('abc')"]),
        ({2: "yesterday,102,103,101,102,12,7,102.2\n"}, ["row 3: timestamp is not an ISO-8601 time"]),
    ],
    ids=["nan", "non-positive", "unsorted", "duplicate", "negative-volume", "inf", "empty", "text", "bad-time"],
)
def test_bad_rows_are_named_and_nothing_is_written(env, bad_rows, expected):
    run, store, tmp = env
    lines = rows(6)
    for i, line in bad_rows.items():
        lines[i] = line
    f = write_csv(tmp / "bad.csv", lines)
    r = run("import", f, "--symbol", "BTCUSD", "--timeframe", "1Hour")
    assert r.exit_code == 1, r.output
    msg = error_line(r)
    assert "bad.csv" in msg and "nothing written" in msg
    for e in expected:
        assert e in msg, msg
    assert not BarStore(store).has("BTCUSD", "1Hour")
    assert not (store / "1Hour").exists() or list((store / "1Hour").iterdir()) == []


def test_bad_import_leaves_stored_bars_untouched(env):
    run, store, tmp = env
    run("import", write_csv(tmp / "ok.csv", rows(3)), "--symbol", "BTCUSD", "--timeframe", "1Hour")
    path = BarStore(store).path("BTCUSD", "1Hour")
    before = path.read_bytes()
    lines = rows(4, start_hour=3)
    lines[2] = lines[2].replace(",102.5,", ",NaN,")
    r = run("import", write_csv(tmp / "bad.csv", lines), "--symbol", "BTCUSD", "--timeframe", "1Hour")
    assert r.exit_code == 1 and "row 3: close is NaN" in error_line(r)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["BTCUSD.arrow"]


def test_many_bad_rows_list_the_first_five_and_count(env):
    run, store, tmp = env
    lines = [f"2026-03-02T{i:02d}:00:00Z,1,2,0.5,1.5,{-1 if i % 2 == 0 else 1}\n" for i in range(20)]
    r = run("import", write_csv(tmp / "many.csv", lines, header="timestamp,open,high,low,close,volume\n"),
            "--symbol", "BTCUSD", "--timeframe", "1Hour")
    msg = error_line(r)
    assert "10 of 20 rows are invalid" in msg and "row 9:" in msg and "row 11:" not in msg and "and 5 more" in msg


def test_unknown_file_type(env):
    run, store, tmp = env
    f = tmp / "bars.xlsx"
    f.write_bytes(b"PK\x03\x04")
    r = run("import", f, "--symbol", "BTCUSD", "--timeframe", "1Hour")
    assert r.exit_code == 1
    msg = error_line(r)
    assert "unknown file type '.xlsx'" in msg and "CSV" in msg and "Parquet" in msg


def test_missing_file(env):
    run, store, tmp = env
    r = run("import", tmp / "nope.csv", "--symbol", "BTCUSD", "--timeframe", "1Hour")
    assert r.exit_code == 1 and "file not found" in error_line(r) and "nope.csv" in error_line(r)


def test_not_a_parquet_file(env):
    run, store, tmp = env
    f = tmp / "fake.parquet"
    f.write_text("timestamp,open\n")
    r = run("import", f, "--symbol", "BTCUSD", "--timeframe", "1Hour")
    assert r.exit_code == 1 and "cannot read it as a Parquet file" in error_line(r)


def test_missing_columns_and_empty_file(env):
    run, store, tmp = env
    f = write_csv(tmp / "cols.csv", ["2026-03-02T00:00:00Z,1,2\n"], header="timestamp,open,high\n")
    msg = error_line(run("import", f, "--symbol", "BTCUSD", "--timeframe", "1Hour"))
    assert "missing columns low, close, volume" in msg and "found: timestamp, open, high" in msg
    f = write_csv(tmp / "empty.csv", [])
    assert "no data rows" in error_line(run("import", f, "--symbol", "BTCUSD", "--timeframe", "1Hour"))


def test_symbol_column_must_match(env):
    run, store, tmp = env
    f = write_csv(tmp / "sym.csv", ["ETH/USD,2026-03-02T00:00:00Z,1,2,0.5,1.5,3\n"],
                  header="symbol,timestamp,open,high,low,close,volume\n")
    msg = error_line(run("import", f, "--symbol", "BTCUSD", "--timeframe", "1Hour"))
    assert "symbol column holds ETH/USD, not BTCUSD" in msg
    r = run("import", f, "--symbol", "ETHUSD", "--timeframe", "1Hour")
    assert r.exit_code == 0, r.output


def test_usage_errors_exit_2(env):
    run, store, tmp = env
    f = write_csv(tmp / "ok.csv", rows(2))
    r = run("import", f, "--symbol", "BTC$", "--timeframe", "1Hour")
    assert r.exit_code == 2 and "invalid symbol" in r.output
    r = run("import", f, "--symbol", "BTCUSD", "--timeframe", "hourly")
    assert r.exit_code == 2 and "invalid timeframe" in r.output
    r = run("import", f, "--symbol", "BTCUSD", "--timeframe", "1Hour", "--asset-class", "forex")
    assert r.exit_code == 2
    r = run("import", f, "--timeframe", "1Hour")
    assert r.exit_code == 2 and "--symbol" in r.output


def test_asset_class_conflict_with_the_store(env):
    run, store, tmp = env
    f = write_csv(tmp / "ok.csv", rows(2))
    run("import", f, "--symbol", "BTCUSD", "--timeframe", "1Hour")
    r = run("import", f, "--symbol", "BTCUSD", "--timeframe", "1Hour", "--asset-class", "us_equity")
    assert r.exit_code == 1 and "stored as crypto" in error_line(r)


def test_store_not_writable(env, tmp_path):
    run, store, tmp = env
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    f = write_csv(tmp / "ok.csv", rows(2))
    r = run("import", f, "--symbol", "BTCUSD", "--timeframe", "1Hour", "--store", blocker / "bars")
    assert r.exit_code == 1
    msg = error_line(r)
    assert "bar store" in msg and "not writable" in msg


def test_show_missing_symbol_and_empty_list(env):
    run, store, tmp = env
    r = run("show", "UNIUSD")
    assert r.exit_code == 1
    # issue 8 item 6: a missing store directory is not "missing bars"
    msg = error_line(r)
    assert f"store directory {store} does not exist" in msg and "import them" not in msg
    store.mkdir()
    r = run("show", "UNIUSD")
    assert r.exit_code == 1
    msg = error_line(r)
    assert "no 1Hour bars for UNIUSD" in msg and "foldgate data import FILE --symbol UNIUSD" in msg
    assert "foldgate data fetch UNIUSD" in msg
    r = run("list")
    assert r.exit_code == 0 and "No bars in store" in r.output and "foldgate data import" in r.output


def test_store_option_beats_env_and_sample_store_lists(env):
    run, store, tmp = env
    sample = Path(__file__).resolve().parent.parent / "data" / "bars"
    r = run("list", "--store", sample)
    assert r.exit_code == 0, r.output
    for s in ("BTCUSD", "UNIUSD", "AAPL", "TSLA"):
        assert s in r.output
    r = run("show", "AAPL", "--store", sample)
    assert r.exit_code == 0 and "us_equity" in r.output and "between sessions" in r.output
