"""`foldgate backtest` through CliRunner: the seed's output, reports, every error path."""

import json
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import app

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "data" / "bars"
POLICIES = ROOT / "data" / "policies"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ALPACA_KEYS_FILE", raising=False)
    monkeypatch.delenv("FOLDGATE_STORE", raising=False)


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result


def backtest(*args):
    return run("backtest", "--store", STORE, *args)


def test_simple_backtest_prints_the_seed_metrics():
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--days", 30, "--capital", 100000)
    assert r.exit_code == 0, r.output
    for label in ("Total Return", "Max Drawdown", "Win Rate", "Profit Factor", "Sharpe"):
        assert label in r.output
    assert "PER-FOLD ANALYSIS" not in r.output


def test_walk_forward_prints_per_fold_analysis(tmp_path):
    out = tmp_path / "r.json"
    r = backtest("--model", POLICIES / "UNIUSD_1Hour.pt", "--days", 180, "--walk-forward", 5, "--json", out)
    assert r.exit_code == 0, r.output
    assert "PER-FOLD ANALYSIS" in r.output
    rng = re.search(r"Sharpe Range: (-?[\d.]+) to (-?[\d.]+)", r.output)
    mean = re.search(r"Sharpe Mean: (-?[\d.]+) \(\+/- ([\d.]+)\)", r.output)
    pos = re.search(r"Positive Folds: (\d)/5", r.output)
    assert rng and mean and pos
    report = json.loads(out.read_text())
    entry = report["models"][0]
    sharpes = [f["metrics"]["sharpe"] for f in entry["folds"]]
    assert len(sharpes) == 5
    assert float(rng.group(1)) == pytest.approx(min(sharpes), abs=0.006)
    assert float(rng.group(2)) == pytest.approx(max(sharpes), abs=0.006)
    assert float(mean.group(2)) == pytest.approx(np.std(sharpes, ddof=1), abs=0.006)
    assert int(pos.group(1)) == sum(f["metrics"]["total_return"] > 0 for f in entry["folds"])
    assert entry["decision"] in {"LIVE", "PAPER", "RETRAIN", "DROP"}
    assert entry["reasons"]


def test_json_report_matches_schema_and_equity_accounting(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    out = tmp_path / "r.json"
    r = backtest("--model", POLICIES / "AAPL_1Hour.pt", "--model", POLICIES / "MSFT_1Hour.pt",
                 "--days", 120, "--walk-forward", 3, "--json", out, "--allow-short")
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    schema = json.loads((ROOT / "engine" / "schemas" / "report.schema.json").read_text())
    jsonschema.validate(report, schema)
    assert report["schema"] == "foldgate.report/2"
    assert [m["symbol"] for m in report["models"]] == ["AAPL", "MSFT"]
    for m in report["models"]:
        assert m["long_only"] is False
        for fold in m["folds"]:
            eq = fold["equity"]
            assert eq[0] == 100000
            assert len(eq) == fold["bars"] + 1 == len(fold["timestamps"]) + 1
            assert fold["metrics"]["total_return"] == pytest.approx(eq[-1] / eq[0] - 1, rel=1e-9)
            # every trade completes inside its fold, and PnL sums to the fold's change
            pnl = sum(t["pnl"] for t in fold["trades"])
            assert pnl == pytest.approx(eq[-1] - eq[0], rel=1e-9, abs=1e-6)


def test_directory_of_models_runs_in_one_call(tmp_path):
    d = tmp_path / "models"
    d.mkdir()
    for name in ("BTCUSD_1Hour.pt", "ETHUSD_1Hour.pt", "SPY_1Hour.pt"):
        shutil.copy(POLICIES / name, d / name)
    out = tmp_path / "r.json"
    r = backtest("--model", d, "--days", 60, "--walk-forward", 2, "--json", out)
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    assert sorted(m["symbol"] for m in report["models"]) == ["BTCUSD", "ETHUSD", "SPY"]
    assert all(m["summary"]["dsr"] is not None for m in report["models"])


def test_fill_close_is_marked_optimistic():
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--fill", "close")
    assert r.exit_code == 0, r.output
    assert "optimistic" in r.output


# ---------------------------------------------------------------- errors


def assert_error(r, code, *words):
    assert r.exit_code == code, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("Error:"), r.output
    assert "Traceback" not in r.output
    for w in words:
        assert w in last, last


def test_missing_model():
    assert_error(backtest("--model", "nope/BTCUSD_1Hour.pt"), 1, "nope/BTCUSD_1Hour.pt")


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "BTCUSD_1Hour.pt"
    bad.write_bytes(b"hello, not torch")
    assert_error(backtest("--model", bad), 1, "BTCUSD_1Hour.pt")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_that_would_run_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "BTCUSD_1Hour.pt"
    with open(bad, "wb") as fh:
        pickle.dump({"format": "foldgate.policy/1", "x": _Evil(marker)}, fh)
    r = backtest("--model", bad)
    assert_error(r, 1, "BTCUSD_1Hour.pt")
    assert not marker.exists()


def test_symbol_not_in_store(tmp_path):
    model = tmp_path / "DOGEUSD_1Hour.pt"
    shutil.copy(POLICIES / "BTCUSD_1Hour.pt", model)
    # the checkpoint names BTCUSD itself; use an empty store instead
    empty = tmp_path / "store"
    empty.mkdir()
    r = run("backtest", "--store", empty, "--model", POLICIES / "BTCUSD_1Hour.pt")
    assert_error(r, 1, "BTCUSD")
    assert "foldgate data" in r.output


def test_fewer_bars_than_days():
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--days", 2000)
    assert_error(r, 1)
    assert re.search(r"\d", r.output.strip().splitlines()[-1])


def test_walk_forward_zero_is_a_usage_error():
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--walk-forward", 0)
    assert r.exit_code == 2
    assert "Traceback" not in r.output


def test_more_folds_than_bars():
    r = backtest("--model", POLICIES / "SPY_1Hour.pt", "--days", 2, "--walk-forward", 50)
    assert_error(r, 1, "folds")


def test_end_before_data():
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--end", "2001-01-01")
    assert_error(r, 1)


def test_bad_end_date():
    assert_error(backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--end", "yesterday"), 1, "--end")


def test_json_into_unwritable_place_leaves_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--json", blocker / "r.json")
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    assert blocker.read_text() == "x"


def test_device_auto_says_what_it_used(tmp_path):
    from kernels.gpu_simulate import cuda_available

    out = tmp_path / "r.json"
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--device", "auto", "--json", out)
    assert r.exit_code == 0, r.output
    used = json.loads(out.read_text())["settings"]["device_used"]
    assert used.startswith("cuda" if cuda_available() else "cpu")
    assert used.split(" ")[0] in r.output


def test_device_cuda_without_gpu_is_a_clear_error():
    from kernels.gpu_simulate import cuda_available

    if cuda_available():
        pytest.skip("a GPU is present")
    assert_error(backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--device", "cuda"), 1, "--device cuda")
    r = run("bench", "--tiny", "--no-torch", "--device", "cuda")
    assert_error(r, 1, "CUDA")


def test_bench_tiny_reports_ratios(tmp_path):
    out = tmp_path / "bench.json"
    r = run("bench", "--tiny", "--json", out)
    assert r.exit_code == 0, r.output
    result = json.loads(out.read_text())
    res = result["results"]
    assert set(res) >= {"foldgate_cpu", "torch_batch1", "torch_lockstep"}
    assert res["torch_batch1"]["vs_torch_batch1"] == pytest.approx(1.0)
    for r_ in res.values():
        assert r_["bar_steps_per_s"] > 0


@pytest.mark.parametrize("args", [
    ["--capital", "inf"], ["--capital", "0"], ["--commission-bps", "nan"], ["--commission-bps", "-1"],
    ["--slippage-bps", "10000"], ["--slippage-bps", "inf"], ["--bars-per-year", "inf"], ["--days", "0"],
    ["--fill", "later"],
])
def test_bad_numbers_are_usage_errors(args):
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", *args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "Error:" in r.output


@pytest.mark.parametrize("end", ["9999-12-31", "1500-01-01", "2026-13-01"])
def test_end_out_of_range(end):
    assert_error(backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--end", end), 1, "--end")


def test_end_inside_data_moves_the_window(tmp_path):
    out = tmp_path / "r.json"
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--end", "2026-09-30", "--days", 10, "--json", out)
    assert r.exit_code == 0, r.output
    bt = json.loads(out.read_text())["models"][0]["backtest"]
    assert bt["end"].startswith("2026-09-30T23") and bt["start"].startswith("2026-09-21")
