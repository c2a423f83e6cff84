"""`foldgate data fetch` / `engine.sources.alpaca` against a real HTTP server on
127.0.0.1 that speaks Alpaca's market-data API (tests/fake_alpaca.py), reached by
alpaca-py through its url_override. No test reaches any other host."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time

import numpy as np
import pytest
from click.testing import CliRunner

from engine.errors import FoldgateError, SourceError
from engine.calendar import is_trading_day
from engine.sources.alpaca import (
    HttpPolicy,
    analyse_gaps,
    ensure_bars,
    fetch_bars,
)
from engine.sources.credentials import Credentials
from engine.store import BarStore
from fake_alpaca import CRYPTO_PATH, STOCKS_PATH, FakeAlpaca, iso, make_bars

UTC = dt.timezone.utc
KEY, SECRET = "PKTESTKEY0000", "fake-secret-0000"
CREDS = Credentials(KEY, SECRET, source="test")
FAST = HttpPolicy(connect_timeout=1.0, read_timeout=1.0, retries=2, backoff=0.01, max_wait=3.0)
Y2024 = dt.datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_real_alpaca(monkeypatch):
    # A test that forgot its data URL must fail on a closed local port, never reach Alpaca.
    monkeypatch.setenv("FOLDGATE_ALPACA_DATA_URL", "http://127.0.0.1:9")
    for var in ("ALPACA_KEYS_FILE", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "FOLDGATE_STORE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FOLDGATE_ALPACA_TIMEOUT", "1")
    monkeypatch.setenv("FOLDGATE_ALPACA_RETRIES", "2")
    monkeypatch.setenv("FOLDGATE_ALPACA_BACKOFF", "0.01")


@pytest.fixture
def fake():
    with FakeAlpaca(keys=(KEY, SECRET)) as f:
        yield f


@pytest.fixture
def store(tmp_path):
    return BarStore(tmp_path / "bars")


def fetch(store, fake, symbols, **kw):
    kw.setdefault("http", FAST)
    kw.setdefault("credentials", CREDS)
    return fetch_bars(store, symbols, data_url=fake.url, **kw)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ pagination, symbols


def test_year_of_crypto_over_several_pages(fake, store):
    bars = make_bars(Y2024, 8784)
    fake.add_crypto("BTC/USD", bars)
    fake.max_page = 1000
    seen = []
    [rep] = fetch(store, fake, ["BTCUSD"], start="2024-01-01", end="2024-12-31", progress=seen.append)
    reqs = fake.bar_requests()
    assert len(reqs) == 9 and rep.pages == 9
    assert all(r.path == CRYPTO_PATH and r.symbols == ["BTC/USD"] for r in reqs)
    assert "page_token" not in reqs[0].params and all("page_token" in r.params for r in reqs[1:])
    assert (rep.status, rep.received, rep.new_bars, rep.stored, rep.holes) == ("fetched", 8784, 8784, 8784, 0)
    got = store.read("BTCUSD", "1Hour")
    assert got.asset_class == "crypto" and len(got) == 8784
    assert got.close[100] == bars[100]["c"] and got.trade_count[5] == bars[5]["n"]
    assert got.timestamp[0] == np.datetime64("2024-01-01T00:00", "ns").astype(np.int64)
    stages = [e.stage for e in seen]
    assert stages[0] == "start" and stages[-1] == "done" and stages.count("page") == 9
    fractions = [e.fraction for e in seen if e.stage == "page"]
    assert fractions == sorted(fractions) and fractions[-1] > 0.99


def test_two_symbols_stock_and_crypto(fake, store):
    fake.add_stock("AAPL", make_bars(Y2024, 100, price=190.0))
    fake.add_crypto("ETH/USD", make_bars(Y2024, 100, price=2300.0))
    reps = fetch(store, fake, ["AAPL", "eth/usd"], start=Y2024, end=Y2024 + dt.timedelta(days=10))
    assert [r.symbol for r in reps] == ["AAPL", "ETHUSD"]
    assert [r.asset_class for r in reps] == ["us_equity", "crypto"]
    assert store.read("AAPL", "1Hour").asset_class == "us_equity"
    assert store.read("ETHUSD", "1Hour").asset_class == "crypto"
    stock_req, crypto_req = fake.bar_requests()
    assert stock_req.path == STOCKS_PATH and stock_req.params["feed"] == "iex"
    assert stock_req.key_id == KEY and stock_req.has_secret
    assert crypto_req.path == CRYPTO_PATH and crypto_req.symbols == ["ETH/USD"]


def test_unknown_symbol_says_so_and_writes_nothing(fake, store):
    [rep] = fetch(store, fake, ["ZZZZ"], start=Y2024, end=Y2024 + dt.timedelta(days=3))
    assert rep.status == "no-data" and rep.path is None
    assert "no 1Hour bars for ZZZZ" in rep.notes[-1] and "nothing written" in rep.notes[-1]
    assert not store.has("ZZZZ", "1Hour")
    assert not (store.root / "1Hour").exists() or not list((store.root / "1Hour").iterdir())
    with pytest.raises(SourceError, match="no 1Hour bars for ZZZZ"):
        ensure_bars(store, "ZZZZ", "1Hour", Y2024, Y2024 + dt.timedelta(days=3),
                    data_url=fake.url, http=FAST, credentials=CREDS)


def test_unknown_crypto_looking_symbol_hints_pair_notation(fake, store):
    [rep] = fetch(store, fake, ["FOOUSD"], start=Y2024, end=Y2024 + dt.timedelta(days=1))
    assert rep.status == "no-data" and "FOO/USD" in rep.notes[-1]


# ------------------------------------------------------------------ faults


def test_429_with_retry_after_then_success(fake, store):
    fake.add_crypto("BTC/USD", make_bars(Y2024, 48))
    fake.fail(429, retry_after="1")
    events = []
    t0 = time.perf_counter()
    [rep] = fetch(store, fake, ["BTCUSD"], start=Y2024, end=Y2024 + dt.timedelta(days=2),
                  progress=events.append)
    assert time.perf_counter() - t0 >= 0.95  # Retry-After honoured, not the 0.01 s backoff
    assert rep.retries == 1 and rep.stored == 48
    assert any(e.stage == "retry" and "HTTP 429" in e.message for e in events)


def test_500_then_success(fake, store):
    fake.add_stock("MSFT", make_bars(Y2024, 24))
    fake.fail(500, times=2)
    [rep] = fetch(store, fake, ["MSFT"], start=Y2024, end=Y2024 + dt.timedelta(days=1))
    assert rep.retries == 2 and rep.received == 24 and len(fake.bar_requests()) == 3


def test_retries_are_bounded_then_clear_error(fake, store):
    fake.add_stock("MSFT", make_bars(Y2024, 24))
    fake.fail(503, times=10)
    with pytest.raises(SourceError, match=r"failed after 3 attempts: HTTP 503"):
        fetch(store, fake, ["MSFT"], start=Y2024, end=Y2024 + dt.timedelta(days=1))
    assert len(fake.bar_requests()) == 3
    assert not store.has("MSFT", "1Hour")


def test_retry_after_longer_than_allowed_fails_at_once(fake, store):
    fake.add_crypto("BTC/USD", make_bars(Y2024, 24))
    fake.fail(429, retry_after="3600")
    t0 = time.perf_counter()
    with pytest.raises(SourceError, match="asked to wait 3600 s"):
        fetch(store, fake, ["BTCUSD"], start=Y2024, end=Y2024 + dt.timedelta(days=1))
    assert time.perf_counter() - t0 < 1.0


def test_401_says_keys_were_refused_without_secret(fake, store):
    fake.add_stock("AAPL", make_bars(Y2024, 24))
    bad = Credentials(KEY, "wrong-secret-XYZ", source="keys file k.txt")
    with pytest.raises(SourceError) as ei:
        fetch(store, fake, ["AAPL"], start=Y2024, end=Y2024 + dt.timedelta(days=1), credentials=bad)
    msg = str(ei.value)
    assert "keys were refused" in msg and "keys file k.txt" in msg and "403" in msg
    assert "wrong-secret-XYZ" not in msg
    assert len(fake.bar_requests()) == 1  # never retried
    fake.fail(401)
    with pytest.raises(SourceError, match="keys were refused.*HTTP 401"):
        fetch(store, fake, ["AAPL"], start=Y2024, end=Y2024 + dt.timedelta(days=1))


def test_timeout_then_success_and_timeout_for_good(fake, store):
    fake.add_crypto("BTC/USD", make_bars(Y2024, 24))
    quick = HttpPolicy(connect_timeout=0.5, read_timeout=0.3, retries=1, backoff=0.01)
    fake.hang(2.0)
    [rep] = fetch(store, fake, ["BTCUSD"], start=Y2024, end=Y2024 + dt.timedelta(days=1), http=quick)
    assert rep.retries == 1 and rep.stored == 24

    fake.hang(2.0, times=2)
    t0 = time.perf_counter()
    with pytest.raises(SourceError, match=r"failed after 2 attempts: no response within 0.3 s"):
        fetch(store, fake, ["BTCUSD"], start=Y2024, end=Y2024 + dt.timedelta(days=2),
              http=quick, refresh=True)
    assert time.perf_counter() - t0 < 1.5


def test_connection_dropped_mid_fetch_leaves_store_exactly_as_it_was(fake, store):
    fake.add_crypto("BTC/USD", make_bars(Y2024, 300))
    fetch(store, fake, ["BTCUSD"], start=Y2024, end=Y2024 + dt.timedelta(days=5))
    path = store.path("BTCUSD", "1Hour")
    before, mtime = digest(path), path.stat().st_mtime_ns

    fake.max_page = 50
    fake.requests.clear()
    # page 1 arrives, then every later attempt is cut off half-way through its body
    fake.drop(times=5, skip=1)
    with pytest.raises(SourceError, match="connection failed or dropped"):
        fetch(store, fake, ["BTCUSD"], start=Y2024, end=Y2024 + dt.timedelta(days=12), refresh=True)
    assert len(fake.bar_requests()) == 1 + 3  # one good page, then 3 attempts of page 2
    assert digest(path) == before and path.stat().st_mtime_ns == mtime
    assert [p.name for p in path.parent.iterdir()] == ["BTCUSD.arrow"]  # no temp file left


def test_dropped_connection_then_success(fake, store):
    fake.add_crypto("BTC/USD", make_bars(Y2024, 24))
    fake.drop()
    [rep] = fetch(store, fake, ["BTCUSD"], start=Y2024, end=Y2024 + dt.timedelta(days=1))
    assert rep.retries == 1 and rep.stored == 24


def test_server_down_is_a_clear_error(store):
    with pytest.raises(SourceError, match="failed after 3 attempts: connection failed"):
        fetch_bars(store, ["BTCUSD"], start=Y2024, end=Y2024 + dt.timedelta(days=1),
                   data_url="http://127.0.0.1:9", http=FAST)


# ------------------------------------------------------------------ missing ranges, refresh


def test_only_missing_ranges_are_requested(fake, store):
    fake.add_crypto("BTC/USD", make_bars(Y2024, 24 * 30))
    d10, d20 = Y2024 + dt.timedelta(days=10), Y2024 + dt.timedelta(days=20)
    fetch(store, fake, ["BTCUSD"], start=d10, end=d20)
    fake.requests.clear()

    [rep] = fetch(store, fake, ["BTCUSD"], start=d10, end=d20)
    assert rep.status == "up-to-date" and fake.bar_requests() == []

    [rep] = fetch(store, fake, ["BTCUSD"], start=Y2024, end=Y2024 + dt.timedelta(days=29))
    head, tail = fake.bar_requests()
    assert head.start == Y2024 and d10 - dt.timedelta(hours=1) < head.end < d10
    assert tail.start == d20  # from the last stored bar, so a corrected bar is replaced
    assert rep.new_bars == 24 * 10 + 24 * 9 and rep.received == 24 * 10 + 24 * 9 + 1
    got = store.read("BTCUSD", "1Hour")
    assert len(got) == 24 * 29 + 1 and (np.diff(got.timestamp) == 3600 * 10**9).all()


def test_refresh_refetches_the_window_and_new_data_wins(fake, store):
    bars = make_bars(Y2024, 48)
    fake.add_crypto("BTC/USD", bars)
    end = Y2024 + dt.timedelta(days=1, hours=23)
    fetch(store, fake, ["BTCUSD"], start=Y2024, end=end)
    corrected = [dict(b, c=b["c"] + 0.1, h=b["h"] + 0.2) for b in bars]
    fake.add_crypto("BTC/USD", corrected)
    fake.requests.clear()
    [rep] = fetch(store, fake, ["BTCUSD"], start=Y2024, end=end)
    assert rep.status == "up-to-date" and not fake.bar_requests()
    [rep] = fetch(store, fake, ["BTCUSD"], start=Y2024, end=end, refresh=True)
    [req] = fake.bar_requests()
    assert req.start == Y2024 and rep.new_bars == 0 and rep.received == 48
    assert store.read("BTCUSD", "1Hour").close[3] == corrected[3]["c"]


def test_stock_window_over_a_weekend_needs_no_request(fake, store):
    fri = dt.datetime(2024, 3, 8, 14, tzinfo=UTC)
    # 09:00..19:00 EST, up to the end of after-hours trading (20:00 EST = 01:00 UTC)
    fake.add_stock("AAPL", make_bars(fri, 11))
    fetch(store, fake, ["AAPL"], start=fri, end=fri + dt.timedelta(hours=10))
    fake.requests.clear()
    # Saturday and Sunday: nothing could have traded, so nothing is asked
    [rep] = fetch(store, fake, ["AAPL"], start=fri, end=dt.datetime(2024, 3, 10, 23, tzinfo=UTC))
    assert rep.status == "up-to-date" and fake.bar_requests() == []
    # Monday's session: the tail is asked from the last stored bar
    [rep] = fetch(store, fake, ["AAPL"], start=fri, end=dt.datetime(2024, 3, 11, 16, tzinfo=UTC))
    [req] = fake.bar_requests()
    assert req.start == fri + dt.timedelta(hours=10)


def test_ensure_bars_needs_no_keys_or_network_when_the_store_has_the_range(fake, store):
    fake.add_stock("AAPL", make_bars(Y2024, 48))
    end = Y2024 + dt.timedelta(hours=47)
    rep = ensure_bars(store, "AAPL", "1Hour", Y2024, end, data_url=fake.url, http=FAST,
                      credentials=CREDS)
    assert rep.status == "fetched" and rep.stored == 48
    fake.requests.clear()
    rep = ensure_bars(store, "AAPL", "1Hour", Y2024, end, data_url=fake.url, http=FAST)
    assert rep.status == "up-to-date" and fake.bar_requests() == []


# ------------------------------------------------------------------ keys, urls, windows


def test_no_keys_for_stocks_says_what_to_set(fake, store):
    fake.add_stock("AAPL", make_bars(Y2024, 24))
    with pytest.raises(SourceError) as ei:
        fetch_bars(store, ["AAPL"], start=Y2024, end=Y2024 + dt.timedelta(days=1),
                   data_url=fake.url, http=FAST)
    msg = str(ei.value)
    assert "ALPACA_KEYS_FILE" in msg and "APCA_API_KEY_ID" in msg and "APCA_API_SECRET_KEY" in msg
    assert fake.bar_requests() == []


def test_crypto_needs_no_keys(fake, store):
    fake.add_crypto("SOL/USD", make_bars(Y2024, 24))
    [rep] = fetch_bars(store, ["SOLUSD"], start=Y2024, end=Y2024 + dt.timedelta(days=1),
                       data_url=fake.url, http=FAST)
    assert rep.stored == 24 and fake.bar_requests()[0].key_id is None


def test_keys_from_keys_file_env(fake, store, tmp_path, monkeypatch):
    kf = tmp_path / "API_key_100kPaper.txt"
    kf.write_text(f"APCA_API_KEY_ID={KEY}\nAPCA_API_SECRET_KEY={SECRET}\n")
    kf.chmod(0o600)
    monkeypatch.setenv("ALPACA_KEYS_FILE", str(kf))
    fake.add_stock("AAPL", make_bars(Y2024, 24))
    [rep] = fetch_bars(store, ["AAPL"], start=Y2024, end=Y2024 + dt.timedelta(days=1),
                       data_url=fake.url, http=FAST)
    assert rep.stored == 24 and fake.bar_requests()[0].key_id == KEY


def test_keys_never_sent_over_plain_http_to_another_host(store):
    with pytest.raises(SourceError, match="plain http"):
        fetch_bars(store, ["AAPL"], start=Y2024, end=Y2024 + dt.timedelta(days=1),
                   data_url="http://example.invalid", http=FAST, credentials=CREDS)


def test_data_url_from_env(fake, store, monkeypatch):
    monkeypatch.setenv("FOLDGATE_ALPACA_DATA_URL", fake.url + "/")
    fake.add_crypto("BTC/USD", make_bars(Y2024, 5))
    [rep] = fetch_bars(store, ["BTCUSD"], start=Y2024, end=Y2024 + dt.timedelta(hours=4), http=FAST)
    assert rep.stored == 5


def test_future_end_is_clamped_to_now_with_a_note(fake, store):
    now = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - dt.timedelta(hours=30)
    # the last bar is still forming: not stored
    fake.add_crypto("BTC/USD", make_bars(start, 31))
    [rep] = fetch(store, fake, ["BTCUSD"], start=start, end=now + dt.timedelta(days=400))
    assert rep.end <= dt.datetime.now(UTC) and "in the future" in rep.notes[0]
    [req] = fake.bar_requests()
    assert req.end <= dt.datetime.now(UTC)
    assert rep.unfinished == 1 and rep.stored == 30
    with pytest.raises(FoldgateError, match="start .* is in the future"):
        fetch(store, fake, ["BTCUSD"], start=now + dt.timedelta(days=2), end=now + dt.timedelta(days=3))


def test_days_back_from_end(fake, store):
    end = dt.datetime(2024, 1, 11, tzinfo=UTC)
    fake.add_crypto("BTC/USD", make_bars(Y2024, 24 * 12))
    [rep] = fetch(store, fake, ["BTCUSD"], days=3, end=end)
    [req] = fake.bar_requests()
    assert req.start == end - dt.timedelta(days=3) and rep.stored == 73


@pytest.mark.parametrize("kw, match", [
    (dict(start="2024-02-01", end="2024-01-01"), "not before end"),
    (dict(start="yesterday"), "not an ISO date"),
    (dict(days=0), "positive"),
    (dict(days=3, start="2024-01-01"), "not both"),
    (dict(timeframe="7Fortnight"), "invalid timeframe"),
    (dict(feed="nasdaq"), "unknown feed"),
])
def test_bad_arguments(fake, store, kw, match):
    with pytest.raises(FoldgateError, match=match):
        fetch(store, fake, ["BTCUSD"], **kw)
    assert fake.bar_requests() == []


# ------------------------------------------------------------------ data quality


def test_refused_bars_are_counted_and_not_stored(fake, store):
    bars = make_bars(Y2024, 10)
    bars[2]["c"] = None
    bars[3]["o"] = 0.0
    bars[4]["l"] = -1.0
    bars[5]["v"] = -5
    bars[6]["h"] = bars[6]["l"] / 2
    bars[7]["t"] = "not-a-time"
    fake.add_crypto("BTC/USD", bars)
    [rep] = fetch(store, fake, ["BTCUSD"], start=Y2024, end=Y2024 + dt.timedelta(hours=9))
    assert rep.received == 10 and rep.stored == 4 and rep.refused_total == 6
    assert rep.refused == {"missing or NaN value": 1, "non-positive price": 2, "negative volume": 1,
                           "high/low inconsistent": 1, "bad timestamp": 1}
    assert rep.holes == 1 and rep.hole_bars == 6  # bars 2..7 missing between the kept 1 and 8
    assert "6 bar(s) refused" in " ".join(rep.notes)


def test_crypto_gaps_are_holes(fake, store):
    bars = make_bars(Y2024, 48)
    del bars[10:13]
    fake.add_crypto("BTC/USD", bars)
    [rep] = fetch(store, fake, ["BTCUSD"], start=Y2024, end=Y2024 + dt.timedelta(days=2))
    assert (rep.holes, rep.hole_bars, rep.closed_gaps) == (1, 3, 0)
    assert rep.largest_hole == (Y2024 + dt.timedelta(hours=9), Y2024 + dt.timedelta(hours=13))


def _stock_hours(day: dt.date, hours_utc) -> list[str]:
    return [iso(dt.datetime(day.year, day.month, day.day, h, tzinfo=UTC)) for h in hours_utc]


def test_stock_gaps_separate_closures_from_holes():
    # Regular session 09:30-16:00 EDT = 13:30-20:00 UTC; hourly bars 13:00..19:00 UTC.
    session = range(13, 20)
    days = [dt.date(2024, 7, 1), dt.date(2024, 7, 2), dt.date(2024, 7, 3),   # Jul 3: close 13:00 ET
            dt.date(2024, 7, 5), dt.date(2024, 7, 8)]                          # Jul 4 holiday, weekend
    stamps = []
    for d in days:
        hours = range(13, 17) if d == dt.date(2024, 7, 3) else session
        stamps += _stock_hours(d, hours)
    stamps.remove(iso(dt.datetime(2024, 7, 2, 16, tzinfo=UTC)))  # a real hole, mid-session
    ts = np.array([np.datetime64(s.rstrip("Z"), "ns").astype(np.int64) for s in stamps])
    g = analyse_gaps(ts, "1Hour", "us_equity")
    assert (g.holes, g.hole_bars) == (1, 1)
    assert g.closed_gaps == 4  # three nights (one over the holiday) and a weekend
    assert g.largest_hole[0] == np.datetime64("2024-07-02T15:00", "ns").astype(np.int64)
    # the same stamps as crypto: every gap is a hole
    assert analyse_gaps(ts, "1Hour", "crypto").holes == 5


def test_nyse_calendar():
    assert not is_trading_day(dt.date(2024, 3, 29))   # Good Friday
    assert not is_trading_day(dt.date(2024, 6, 19))   # Juneteenth
    assert not is_trading_day(dt.date(2022, 12, 26))  # Christmas on a Sunday, observed Monday
    assert not is_trading_day(dt.date(2025, 1, 9))    # national day of mourning
    assert is_trading_day(dt.date(2021, 12, 31))      # New Year on a Saturday: not moved
    assert is_trading_day(dt.date(2024, 11, 29))      # early close, still a trading day


# ------------------------------------------------------------------ the command


def _cli(args, env=None):
    from cli.main import app

    return CliRunner().invoke(app, ["data", "fetch", *args], env=env or {})


def test_cli_two_symbols_table_and_json(fake, tmp_path):
    fake.add_stock("AAPL", make_bars(Y2024, 30))
    fake.add_crypto("BTC/USD", make_bars(Y2024, 30))
    store_dir = tmp_path / "s"
    out_json = tmp_path / "q.json"
    res = _cli(["AAPL", "BTCUSD", "--start", "2024-01-01", "--end", "2024-01-02", "--store",
                str(store_dir), "--json", str(out_json)],
               env={"FOLDGATE_ALPACA_DATA_URL": fake.url, "APCA_API_KEY_ID": KEY,
                    "APCA_API_SECRET_KEY": SECRET})
    assert res.exit_code == 0, res.output
    assert "Data quality" in res.stdout and "AAPL" in res.stdout and "BTCUSD" in res.stdout
    assert SECRET not in res.output
    reps = json.loads(out_json.read_text())
    assert [r["symbol"] for r in reps] == ["AAPL", "BTCUSD"] and reps[1]["stored"] == 30
    assert BarStore(store_dir).has("BTCUSD", "1Hour")


def test_cli_unknown_symbol_exits_1(fake, tmp_path):
    res = _cli(["NOSUCH", "--days", "3", "--store", str(tmp_path)],
               env={"FOLDGATE_ALPACA_DATA_URL": fake.url, "APCA_API_KEY_ID": KEY,
                    "APCA_API_SECRET_KEY": SECRET})
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines()[-1].startswith("Error: Alpaca has no 1Hour bars for NOSUCH")
    assert not any(tmp_path.rglob("*.arrow"))


def test_cli_401_is_one_error_line_without_secret(fake, tmp_path):
    fake.add_stock("AAPL", make_bars(Y2024, 30))
    res = _cli(["AAPL", "--start", "2024-01-01", "--end", "2024-01-02", "--store", str(tmp_path)],
               env={"FOLDGATE_ALPACA_DATA_URL": fake.url, "APCA_API_KEY_ID": KEY,
                    "APCA_API_SECRET_KEY": "not-the-right-one"})
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "keys were refused" in res.stderr and "not-the-right-one" not in res.output


def test_cli_no_keys_for_stock(fake, tmp_path):
    res = _cli(["AAPL", "--days", "2", "--store", str(tmp_path)],
               env={"FOLDGATE_ALPACA_DATA_URL": fake.url})
    assert res.exit_code == 1 and "ALPACA_KEYS_FILE" in res.stderr


def test_cli_bad_keys_file_names_line(fake, tmp_path):
    kf = tmp_path / "keys.txt"
    kf.write_text(f"APCA_API_KEY_ID={KEY}\nAPCA_API_SECRET_KEY='{SECRET}\n")
    kf.chmod(0o644)
    res = _cli(["AAPL", "--days", "2", "--store", str(tmp_path)],
               env={"FOLDGATE_ALPACA_DATA_URL": fake.url, "ALPACA_KEYS_FILE": str(kf)})
    assert res.exit_code == 1 and "line 2" in res.stderr
    assert "readable by other users" in res.stderr
    assert SECRET not in res.output


@pytest.mark.parametrize("args", [
    ["AAPL", "--days", "3", "--start", "2024-01-01"],
    ["AAPL", "--start", "01/02/2024"],
    ["AAPL", "--days", "0"],
    ["AAPL", "--feed", "nasdaq"],
    ["AAPL", "--timeframe", "3Parsecs"],
    ["not a symbol!"],
    [],
])
def test_cli_usage_errors_exit_2(fake, tmp_path, args):
    res = _cli([*args, "--store", str(tmp_path)], env={"FOLDGATE_ALPACA_DATA_URL": fake.url})
    assert res.exit_code == 2, res.output
    assert fake.bar_requests() == []


def test_cli_failure_half_way_keeps_completed_symbols(fake, tmp_path):
    fake.add_crypto("BTC/USD", make_bars(Y2024, 24))
    fake.add_crypto("ETH/USD", make_bars(Y2024, 24))
    fake.fail(500, times=10, skip=1)  # BTCUSD's one page passes, ETHUSD's fail
    res = _cli(["BTCUSD", "ETHUSD", "--start", "2024-01-01", "--end", "2024-01-01T23:00",
                "--store", str(tmp_path)],
               env={"FOLDGATE_ALPACA_DATA_URL": fake.url})
    assert res.exit_code == 1
    assert "not fetched: ETHUSD (BTCUSD written)" in res.stderr
    assert "BTCUSD" in res.stdout  # its quality row was printed
    st = BarStore(tmp_path)
    assert st.has("BTCUSD", "1Hour") and not st.has("ETHUSD", "1Hour")



def test_clock_ahead_of_the_server_is_noted_and_unfinished_bars_still_cut(fake, store, monkeypatch):
    import engine.sources.alpaca as alp

    real_now = dt.datetime.now(UTC)
    monkeypatch.setattr(alp, "_utcnow", lambda: real_now + dt.timedelta(days=1))
    hour = real_now.replace(minute=0, second=0, microsecond=0)
    fake.add_crypto("BTC/USD", make_bars(hour - dt.timedelta(hours=30), 31))
    [rep] = fetch(store, fake, ["BTCUSD"], start=hour - dt.timedelta(hours=30))
    assert any("clock is" in n and "ahead of" in n for n in rep.notes)
    assert rep.unfinished == 1 and rep.stored == 30


def test_a_repeated_page_token_stops_instead_of_looping():
    from engine.sources.alpaca import _Pager

    pager = _Pager(FAST, "127.0.0.1", None, on_page=lambda r: None, on_retry=lambda p, w: None)
    page = {"bars": {}, "next_page_token": "abc"}
    pager.call(lambda: page, {"page_token": "abc"})
    with pytest.raises(SourceError, match="same next_page_token twice"):
        pager.call(lambda: page, {"page_token": "abc"})


def test_http_policy_from_env(monkeypatch):
    monkeypatch.setenv("FOLDGATE_ALPACA_TIMEOUT", "2.5")
    monkeypatch.setenv("FOLDGATE_ALPACA_RETRIES", "7")
    monkeypatch.setenv("FOLDGATE_ALPACA_MAX_WAIT", "9")
    p = HttpPolicy.from_env()
    assert (p.connect_timeout, p.read_timeout, p.retries, p.backoff, p.max_wait) == (2.5, 2.5, 7, 0.01, 9.0)
    monkeypatch.setenv("FOLDGATE_ALPACA_TIMEOUT", "soon")
    with pytest.raises(FoldgateError, match="FOLDGATE_ALPACA_TIMEOUT"):
        HttpPolicy.from_env()
    with pytest.raises(FoldgateError, match="positive"):
        HttpPolicy(read_timeout=0)


def test_asset_class_option_picks_the_api(fake, store):
    """A symbol the guess gets wrong can be fetched with --asset-class."""
    fake.add_crypto("ZZZ/USD", make_bars(Y2024, 48))
    reps = fetch(store, fake, ["ZZZUSD"], start=Y2024, end=Y2024 + dt.timedelta(hours=47), asset_class="crypto")
    assert reps[0].asset_class == "crypto" and store.read("ZZZUSD", "1Hour").asset_class == "crypto"
    assert {r.path for r in fake.bar_requests()} == {"/v1beta3/crypto/us/bars"}
