"""backtest / validate fetch the bars they need from Alpaca (the fake on 127.0.0.1)."""

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import app
from fake_alpaca import FakeAlpaca, make_bars

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "data" / "policies"
KEY, SECRET = "PKTESTKEY", "test-secret-never-printed"


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDGATE_ALPACA_DATA_URL", "http://127.0.0.1:9")  # never the real host
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FOLDGATE_ALPACA_TIMEOUT", "2")
    monkeypatch.setenv("FOLDGATE_ALPACA_RETRIES", "1")
    monkeypatch.setenv("FOLDGATE_ALPACA_BACKOFF", "0.01")
    for var in ("ALPACA_KEYS_FILE", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "FOLDGATE_STORE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def fake():
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    with FakeAlpaca(keys=(KEY, SECRET)) as f:
        f.add_crypto("BTC/USD", make_bars(now - dt.timedelta(days=60), 60 * 24 - 2, price=90_000.0))
        yield f


def two_btc_models(tmp_path):
    d = tmp_path / "models"
    d.mkdir(parents=True)
    for name in ("BTCUSD_1Hour.pt", "BTCUSD_1Hour_v2.pt"):
        shutil.copy(POLICIES / "BTCUSD_1Hour.pt", d / name)
    return d


def test_source_alpaca_fetches_once_per_symbol_for_all_its_models(fake, tmp_path):
    store = tmp_path / "bars"
    out = tmp_path / "r.json"
    r = CliRunner().invoke(app, ["backtest", "--model", str(two_btc_models(tmp_path)), "--store", str(store),
                                 "--source", "alpaca", "--data-url", fake.url, "--days", "20",
                                 "--walk-forward", "2", "--json", str(out)])
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    assert [m["symbol"] for m in report["models"]] == ["BTCUSD", "BTCUSD"]
    assert (store / "1Hour" / "BTCUSD.arrow").exists()
    symbols_asked = {req.params.get("symbols") for req in fake.bar_requests()}
    assert symbols_asked == {"BTC/USD"}
    n_first = len(fake.bar_requests())
    # the store now holds the range: a second run asks at most for the newest bar
    r = CliRunner().invoke(app, ["backtest", "--model", str(two_btc_models(tmp_path / "x")), "--store", str(store),
                                 "--source", "alpaca", "--data-url", fake.url, "--days", "20"])
    assert r.exit_code == 0, r.output
    assert len(fake.bar_requests()) - n_first <= 1
    assert SECRET not in r.output


def test_keys_file_set_and_store_empty_fetches_by_default(fake, tmp_path, monkeypatch):
    keys = tmp_path / "API_key_100kPaper.txt"
    keys.write_text(f"APCA_API_KEY_ID={KEY}\nAPCA_API_SECRET_KEY={SECRET}\n")
    keys.chmod(0o600)
    monkeypatch.setenv("ALPACA_KEYS_FILE", str(keys))
    store = tmp_path / "bars"
    out = tmp_path / "r.json"
    r = CliRunner().invoke(app, ["backtest", "--model", str(POLICIES / "BTCUSD_1Hour.pt"), "--store", str(store),
                                 "--data-url", fake.url, "--days", "10", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert fake.bar_requests() and (store / "1Hour" / "BTCUSD.arrow").exists()
    assert SECRET not in r.output
    # no --source, yet the bars came from Alpaca: the report says so (issue 10 item 8)
    assert json.loads(out.read_text())["settings"]["source"] == "alpaca"
    r = CliRunner().invoke(app, ["backtest", "--model", str(POLICIES / "BTCUSD_1Hour.pt"), "--store", str(store),
                                 "--data-url", fake.url, "--days", "10", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["settings"]["source"] == "store"  # now stored: nothing fetched


def test_unknown_symbol_on_alpaca_is_a_clear_error(fake, tmp_path):
    model = tmp_path / "SOLUSD_1Hour.pt"
    shutil.copy(POLICIES / "SOLUSD_1Hour.pt", model)
    r = CliRunner().invoke(app, ["backtest", "--model", str(model), "--store", str(tmp_path / "bars"),
                                 "--source", "alpaca", "--data-url", fake.url])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1].startswith("Error:") and "SOL" in r.output
    assert not (tmp_path / "bars" / "1Hour" / "SOLUSD.arrow").exists()
