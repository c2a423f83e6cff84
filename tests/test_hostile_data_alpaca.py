"""Hostile Alpaca answers and keys files (issue 10): secrets echoed by the server are
redacted from everything foldgate prints or writes; malformed pages and keys files are
one `Error:` line, never a traceback; response sizes are bounded."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from cli.main import app
from engine.errors import FoldgateError, SourceError
from engine.sources.alpaca import HttpPolicy, fetch_bars
from engine.sources.credentials import Credentials, parse_keys_text, read_keys_file
from engine.sources.pages import MalformedResponse, check_page, decode_json, parse_bars
from engine.sources.redact import REDACTED, Redactor
from engine.store import BarStore
from fake_alpaca import STOCKS_PATH, FakeAlpaca, make_bars

UTC = dt.timezone.utc
KEY, SECRET = "PKHOSTILEKEY0001", "hostile+secret/0001=="
Y2024 = dt.datetime(2024, 1, 1, tzinfo=UTC)
FAST = HttpPolicy(connect_timeout=1.0, read_timeout=1.0, retries=1, backoff=0.01, max_wait=3.0)


@pytest.fixture(autouse=True)
def _no_real_alpaca(monkeypatch):
    monkeypatch.setenv("FOLDGATE_ALPACA_DATA_URL", "http://127.0.0.1:9")
    for var in ("ALPACA_KEYS_FILE", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "FOLDGATE_STORE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FOLDGATE_ALPACA_TIMEOUT", "1")
    monkeypatch.setenv("FOLDGATE_ALPACA_RETRIES", "1")
    monkeypatch.setenv("FOLDGATE_ALPACA_BACKOFF", "0.01")


@pytest.fixture
def fake():
    with FakeAlpaca(keys=("PKRIGHTKEY", "the-right-secret"), echo_secrets=True) as f:
        f.add_crypto("BTC/USD", make_bars(Y2024, 24))
        f.add_stock("AAPL", make_bars(Y2024, 24))
        yield f


def fetch(tmp_path, fake, symbol="BTCUSD", creds=Credentials(KEY, SECRET, source="test"), **kw):
    kw.setdefault("http", FAST)
    return fetch_bars(BarStore(tmp_path / "bars"), [symbol], data_url=fake.url, credentials=creds,
                      start=Y2024, end=Y2024 + dt.timedelta(hours=23), **kw)


def clean(text: str) -> None:
    for s in (KEY, SECRET, "hostile%2Bsecret", "hostile+secret"):
        assert s not in text, text


# ------------------------------------------------------------------ secrets


def test_secrets_echoed_in_a_refusal_are_redacted(tmp_path, fake):
    with pytest.raises(SourceError) as exc:
        fetch(tmp_path, fake, "AAPL")
    msg = str(exc.value)
    assert "keys were refused" in msg and REDACTED in msg and "\n" not in msg
    clean(msg)


def test_secrets_echoed_in_retried_errors_are_redacted_in_progress_and_errors(tmp_path, fake):
    fake.fail(500, times=5)
    events = []
    with pytest.raises(SourceError) as exc:
        fetch(tmp_path, fake, "BTCUSD", progress=events.append)
    retries = [e.message for e in events if e.stage == "retry"]
    assert retries and all(REDACTED in m for m in retries)
    for m in retries + [str(exc.value)]:
        clean(m)


def test_cli_fetch_never_prints_or_writes_the_secret(tmp_path, fake):
    keys = tmp_path / "keys.env"
    keys.write_text(f"APCA_API_KEY_ID={KEY}\nAPCA_API_SECRET_KEY={SECRET}\n")
    keys.chmod(0o600)
    fake.keys = (KEY, SECRET)
    fake.fail(500, times=1)                              # BTC: a retry note, then a good page
    fake.fail(403, times=5, path=STOCKS_PATH)            # AAPL: refused, the secret echoed
    env = {"ALPACA_KEYS_FILE": str(keys), "FOLDGATE_ALPACA_DATA_URL": fake.url}
    args = ["data", "fetch", "BTC/USD", "AAPL", "--start", "2024-01-01", "--end", "2024-01-01",
            "--store", str(tmp_path / "bars"), "--json", str(tmp_path / "q.json")]
    r = CliRunner().invoke(app, args, env=env)
    assert r.exit_code == 1 and r.output.strip().splitlines()[-1].startswith("Error: ")
    assert "Traceback" not in r.output and REDACTED in r.output
    clean(r.output)
    clean((tmp_path / "q.json").read_text())


def test_secrets_in_the_environment_are_redacted_too(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    with pytest.raises(SourceError) as exc:
        fetch(tmp_path, fake, "AAPL", creds=None)
    clean(str(exc.value))


def test_redactor_covers_the_encodings_a_server_may_echo():
    red = Redactor([SECRET, KEY, "ab"])
    text = f"a {SECRET} b {json.dumps(SECRET)} c hostile%2Bsecret%2F0001%3D%3D d {KEY}; ab stays"
    out = red(text)
    clean(out)
    assert out.count(REDACTED) == 4 and out.endswith("ab stays")
    err = red.error(SourceError(f"boom {SECRET}"))
    assert type(err) is SourceError and str(err) == f"boom {REDACTED}"


# ------------------------------------------------------------------ malformed pages


@pytest.mark.parametrize("body, words", ids=lambda v: repr(v[:16]) if isinstance(v, bytes) else "", argvalues=[
    (b"<html>not json</html>", "malformed (non-JSON)"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    (b'{"bars": {"BTC/USD": [' * 3000 + b"]}}" * 3000, "nested too deep"),
    (b'{"bars": {"BTC/USD": [{"t": "2024-01-01T00:00:00Z", "o": 1' + b"0" * 5000 + b"}]}}", "malformed"),
    (b'{"bars": [1, 2, 3]}', "malformed bars object"),
    (b'{"bars": {"BTC/USD": {"t": 1}}}', "malformed bars for 'BTC/USD'"),
    (b'{"bars": {}, "next_page_token": {"a": 1}}', "malformed next_page_token"),
    (b'{"bars": {}, "next_page_token": "' + b"x" * 10_000 + b'"}', "malformed next_page_token"),
    (b'{"no": "bars"}', "did not answer with Alpaca's bars JSON"),
    (b"\xff\xfe\x00garbage", "malformed"),
])
def test_malformed_pages_are_one_error_line(tmp_path, fake, body, words):
    fake.raw(body, times=3)
    with pytest.raises(SourceError) as exc:
        fetch(tmp_path, fake)
    msg = str(exc.value)
    assert words in msg and "\n" not in msg and len(msg) < 1000
    assert not (tmp_path / "bars" / "1Hour" / "BTCUSD.arrow").exists()


def test_a_page_of_odd_bars_is_counted_not_crashed(tmp_path, fake):
    rows = [
        {"t": "2024-01-01T00:00:00Z", "o": 10**400, "h": 2, "l": 1, "c": 1.5, "v": 1},    # huge int
        {"t": "2024-01-01T01:00:00Z", "o": "1", "h": 2, "l": 1, "c": 1.5, "v": 1},        # a string
        {"t": "2024-01-01T02:00:00Z", "o": True, "h": 2, "l": 1, "c": 1.5, "v": 1},       # a bool
        {"t": "2024-01-01T03:00:00Z", "h": 2, "l": 1, "c": 1.5, "v": 1},                  # missing o
        {"t": 12345, "o": 1, "h": 2, "l": 1, "c": 1.5, "v": 1},                           # t a number
        {"t": "9999-99-99", "o": 1, "h": 2, "l": 1, "c": 1.5, "v": 1},
        {"t": "1960-01-01T00:00:00Z", "o": 1, "h": 2, "l": 1, "c": 1.5, "v": 1},         # before 1970
        [1, 2, 3],                                                                         # not an object
        {"t": "2024-01-01T08:00:00Z", "o": 1, "h": 2, "l": 1, "c": 1.5, "v": 1, "n": 10**30, "vw": "x"},
    ]
    fake.raw(json.dumps({"bars": {"BTC/USD": rows}, "next_page_token": None}).encode())
    [rep] = fetch(tmp_path, fake)
    assert rep.received == 9 and rep.stored == 1 and rep.refused_total == 8
    assert rep.refused["malformed bar"] == 1 and rep.refused["bad timestamp"] == 3
    bars = BarStore(tmp_path / "bars").read("BTCUSD", "1Hour")
    assert bars.trade_count is None and bars.vwap is None


def test_response_size_is_bounded(tmp_path, fake):
    small = HttpPolicy(connect_timeout=1.0, read_timeout=1.0, retries=0, backoff=0.01,
                       max_response_bytes=2048)
    with pytest.raises(SourceError, match="more than the 2,048 allowed|more than 2,048 bytes"):
        fetch(tmp_path, fake, http=small, creds=None)  # crypto: no keys needed


def test_decode_json_and_check_page_raise_only_foldgate_errors():
    for body in (b"[" * 50_000, b"1" * 6000, b"\xff", b"", b"nul"):
        with pytest.raises(MalformedResponse) as exc:
            decode_json(body)
        assert isinstance(exc.value, FoldgateError) and "\n" not in str(exc.value)
    for page in (None, [], {"bars": 3}, {"bars": {"X": 3}}, {"bars": {}, "next_page_token": 5}):
        with pytest.raises(SourceError):
            check_page(page, "host")
    with pytest.raises(SourceError):
        parse_bars({"not": "a list"}, 3600 * 10**9, 0)


# ------------------------------------------------------------------ keys files


@pytest.mark.parametrize("text, words", ids=lambda v: v[:20], argvalues=[
    ('{"a": ' + "[" * 30_000 + "]" * 30_000 + "}", "nested too deep"),
    ("[" * 30_000 + "]" * 30_000, "expected KEY=VALUE"),
    ('{"a": ' * 20_000 + "1" + "}" * 20_000, "nested too deep"),
    ('{"APCA_API_KEY_ID": 1' + "0" * 5000 + ', "APCA_API_SECRET_KEY": "s"}', "number too long"),
    ('{"APCA_API_KEY_ID": 1e400, "APCA_API_SECRET_KEY": "s"}', "no key id"),
])
def test_hostile_keys_json_is_one_error(text, words):
    with pytest.raises(SourceError) as exc:
        parse_keys_text(text, "k.json")
    assert words in str(exc.value) and "\n" not in str(exc.value) and len(str(exc.value)) < 300


def test_keys_file_nested_100000_deep_is_refused(tmp_path):
    f = tmp_path / "keys.json"
    f.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SourceError) as exc:
        read_keys_file(f)
    assert str(f) in str(exc.value) and "\n" not in str(exc.value)
