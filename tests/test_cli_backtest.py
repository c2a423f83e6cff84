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


def test_more_folds_than_bars():  # a valid count that this data cannot hold: exit 1, naming the flag
    r = backtest("--model", POLICIES / "SPY_1Hour.pt", "--days", 2, "--walk-forward", 50)
    assert_error(r, 1, "--walk-forward 50", "more folds (50) than bars")


def test_end_before_data():
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--end", "2001-01-01")
    assert_error(r, 1)


def test_bad_end_date():  # a value that cannot be a date is a usage error, as for any flag
    assert_error(backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--end", "yesterday"), 2, "--end", "yesterday")


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
    assert_error(backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--end", end), 2, "--end")


def test_end_inside_data_moves_the_window(tmp_path):
    out = tmp_path / "r.json"
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--end", "2026-09-30", "--days", 10, "--json", out)
    assert r.exit_code == 0, r.output
    bt = json.loads(out.read_text())["models"][0]["backtest"]
    assert bt["end"].startswith("2026-09-30T23") and bt["start"].startswith("2026-09-21")


# ---------------------------------------------------------------- several models, profiles


def test_several_models_a_bad_one_fails_alone_and_the_run_exits_1(tmp_path):
    bad = tmp_path / "ETHUSD_1Hour.pt"
    bad.write_bytes(b"not a checkpoint")
    out = tmp_path / "r.json"
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--model", bad, "--model", tmp_path / "gone_1Hour.pt",
                 "--days", 60, "--walk-forward", 2, "--json", out)
    assert r.exit_code == 1, r.output
    report = json.loads(out.read_text())  # written although the run failed
    models = report["models"]
    assert [m["error"] is None for m in models] == [True, False, False]
    assert models[0]["decision"] in {"LIVE", "PAPER", "RETRAIN", "DROP"}
    assert all(m["decision"] is None for m in models[1:])
    assert "Traceback" not in r.output
    assert str(bad) in r.stderr and "gone_1Hour.pt" in r.stderr
    assert "2 of 3 models failed" in r.stderr.strip().splitlines()[-1]


def test_every_model_decided_exits_0(tmp_path):
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--model", POLICIES / "SPY_1Hour.pt",
                 "--days", 60, "--walk-forward", 2)
    assert r.exit_code == 0, r.output
    assert not r.stderr.strip()


def test_default_profile_is_evidence_and_both_verdicts_are_reported(tmp_path):
    out = tmp_path / "e.json"
    r = backtest("--model", POLICIES / "PAXGUSD_1Hour.pt", "--days", 180, "--walk-forward", 5, "--json", out)
    assert r.exit_code == 0, r.output
    m = json.loads(out.read_text())["models"][0]
    assert m["profile"] == "evidence" and set(m["decisions"]) == {"evidence", "seed"}
    assert m["decision"] == m["decisions"]["evidence"]
    e = m["summary"]["evidence"]
    assert e["oos_folds"] == 5 and e["n_variants"] == 1 and e["bh_q"] is None
    assert e["sr_ci90"][0] < e["sr_annual"] < e["sr_ci90"][1]
    # the key figures and the other profile's verdict are on the terminal
    assert "profile evidence" in r.output and f"Other profile: seed {m['decisions']['seed']}" in r.output
    assert f"PSR(0): {e['psr0']:.3f}" in r.output and "90% CI" in r.output and "MinTRL" in r.output
    for line in ("PER-FOLD ANALYSIS", "Sharpe Range:", "Sharpe Mean:", "Positive Folds: "):
        assert line in r.output

    out2 = tmp_path / "s.json"
    r = backtest("--model", POLICIES / "PAXGUSD_1Hour.pt", "--days", 180, "--walk-forward", 5, "--json", out2,
                 "--profile", "seed")
    assert r.exit_code == 0, r.output
    s = json.loads(out2.read_text())["models"][0]
    assert s["profile"] == "seed" and s["decisions"] == m["decisions"] and s["decision"] == m["decisions"]["seed"]
    assert "Decision (seed profile)" in r.output


def test_config_and_hurdle_sharpe_on_backtest(tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text('[decision]\nprofile = "seed"\n\n[decision.evidence]\nhurdle_sharpe = 0.5\n')
    out = tmp_path / "r.json"
    args = ("--model", POLICIES / "PAXGUSD_1Hour.pt", "--days", 180, "--walk-forward", 5, "--json", out)
    r = backtest(*args, "--config", cfg)
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    m = report["models"][0]
    assert m["profile"] == "seed" and report["settings"]["profile"] == "seed"
    assert m["summary"]["evidence"]["hurdle_sharpe"] == 0.5 and report["settings"]["thresholds_file"] == str(cfg)
    # a hurdle above zero is harder to beat
    assert m["summary"]["evidence"]["psr_hurdle"] < m["summary"]["evidence"]["psr0"]
    r = backtest(*args, "--config", cfg, "--profile", "evidence", "--hurdle-sharpe", 2)  # the flags win
    assert r.exit_code == 0, r.output
    m = json.loads(out.read_text())["models"][0]
    assert m["profile"] == "evidence" and m["summary"]["evidence"]["hurdle_sharpe"] == 2.0


@pytest.mark.parametrize("args, code", [(("--profile", "bold"), 2), (("--hurdle-sharpe", "nan"), 2),
                                        (("--hurdle-sharpe", "x"), 2), (("--config", "missing.toml"), 2)])
def test_bad_decision_options_are_usage_errors(args, code):
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", *args)
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output


def test_bad_config_file_is_one_error_line(tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text('[decision]\nprofile = "lucky"\n')
    assert_error(backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--config", cfg), 1, "profile")


def test_buy_and_hold_is_simulated_by_the_kernel_over_the_same_folds(tmp_path):
    out = tmp_path / "r.json"
    r = backtest("--model", POLICIES / "ETHUSD_1Hour.pt", "--days", 60, "--walk-forward", 3, "--json", out)
    assert r.exit_code == 0, r.output
    m = json.loads(out.read_text())["models"][0]
    from engine.data.store import BarStore

    bars = BarStore(STORE).read("ETHUSD", "1Hour")
    iso = np.datetime_as_string(bars.timestamp.astype("datetime64[ns]").astype("datetime64[s]"), unit="s")
    index = {t + "Z": i for i, t in enumerate(iso)}
    rate_c, rate_s = 10 / 1e4, 5 / 1e4
    hold = []
    for fold in m["folds"]:
        bh = fold["buy_and_hold"]
        assert bh["metrics"]["n_trades"] == 1 and len(bh["equity"]) == fold["bars"] + 1
        s0, e = index[fold["start"]], index[fold["end"]] + 1
        # plain buy-and-hold: buy all at the open of s0+1, sell at the close of e-1
        p_in = bars.open[s0 + 1] * (1 + rate_s)
        units = 100000 / bars.open[s0 + 1]  # target 1 of equity at the raw price
        cash = 100000 - units * p_in - rate_c * units * p_in
        p_out = bars.close[e - 1] * (1 - rate_s)
        final = cash + units * p_out - rate_c * units * p_out
        assert bh["equity"][-1] == pytest.approx(final, rel=1e-9)
        eq = np.asarray(bh["equity"])
        hold.append(eq[1:] / eq[:-1] - 1)
    hold = np.concatenate(hold)
    e = m["summary"]["evidence"]
    assert e["buy_and_hold"]["return"] == pytest.approx(np.prod(1 + hold) - 1, rel=1e-9)
    bpy = e["bars_per_year"]
    assert e["buy_and_hold"]["sharpe"] == pytest.approx(hold.mean() / hold.std(ddof=1) * np.sqrt(bpy), rel=1e-9)


def test_fold_tables_fit_80_columns(tmp_path):
    r = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["backtest", "--store", str(STORE), "--model",
                                                      str(POLICIES / "TSLA_1Hour.pt"), "--days", "180",
                                                      "--walk-forward", "5", "--fill", "close"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert "…" not in r.stdout  # nothing cut: dates whole, no blank column squeezed in
    title = [line for line in lines if line.startswith("foldgate backtest:")]
    assert len(title) == 1 and "profile evidence" in title[0]
    table = [line for line in lines if re.match(r"\s*\d \d{4}-\d\d-\d\d \d{4}-\d\d-\d\d ", line)]
    assert len(table) == 5


def test_checkpoint_symbol_differs_from_its_file_name(tmp_path):
    model = tmp_path / "ETHUSD_1Hour.pt"
    shutil.copy(POLICIES / "BTCUSD_1Hour.pt", model)  # the checkpoint says BTCUSD
    out = tmp_path / "r.json"
    r = backtest("--model", model, "--days", 30, "--json", out)
    assert r.exit_code == 0, r.output
    warning = [line for line in r.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warning) == 1 and "BTCUSD" in warning[0] and "ETHUSD" in warning[0]
    m = json.loads(out.read_text())["models"][0]
    assert m["symbol"] == "BTCUSD"
    assert [f["code"] for f in m["flags"]] == ["SYMBOL_MISMATCH"]


def test_model_paths_in_reports_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "r.json"
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--days", 30, "--json", out)
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["models"][0]["model_path"] == "data/policies/BTCUSD_1Hour.pt"
    monkeypatch.chdir(tmp_path)  # a model outside the working directory keeps its full path
    r = backtest("--model", POLICIES / "BTCUSD_1Hour.pt", "--days", 30, "--json", out)
    assert json.loads(out.read_text())["models"][0]["model_path"] == str(POLICIES / "BTCUSD_1Hour.pt")


def test_above_ten_models_one_summary_table_unless_verbose():
    n = len(list(POLICIES.glob("*.pt")))
    assert n > 10
    r = backtest("--model", POLICIES, "--days", 30, "--walk-forward", 2)
    assert r.exit_code == 0, r.output
    assert "PER-FOLD ANALYSIS" not in r.stdout and "Decisions" in r.stdout
    assert all(f" {p.name.split('_')[0]} " in r.stdout for p in POLICIES.glob("*.pt"))
    r = backtest("--model", POLICIES, "--days", 30, "--walk-forward", 2, "--verbose")
    assert r.exit_code == 0, r.output
    assert r.stdout.count("PER-FOLD ANALYSIS") == n and r.stdout.count("Positive Folds: ") == n


def test_end_past_the_last_bar_is_said_not_silent(tmp_path):
    out = tmp_path / "r.json"
    r = backtest("--model", POLICIES / "UNIUSD_1Hour.pt", "--days", 30, "--end", "2026-11-25", "--json", out)
    assert r.exit_code == 0, r.output
    assert "Warning: UNIUSD: --end 2026-11-25T23:59:59Z lies past the last stored bar" in r.output
    assert "121 of its hours hold no bars" in r.output
    flags = json.loads(out.read_text())["models"][0]["flags"]
    assert [f["code"] for f in flags] == ["END_PAST_LAST_BAR"]
    # an end inside the data says nothing
    r = backtest("--model", POLICIES / "UNIUSD_1Hour.pt", "--days", 30, "--end", "2026-11-19", "--json", out)
    assert r.exit_code == 0 and "past the last stored bar" not in r.output
    assert json.loads(out.read_text())["models"][0]["flags"] == []


def test_model_path_with_markup_characters_prints_as_is(tmp_path):
    odd = tmp_path / "runs [" / "] [bold]x"  # the path reads "runs [/] [bold]x"
    odd.mkdir(parents=True)
    shutil.copy(POLICIES / "UNIUSD_1Hour.pt", odd / "UNIUSD_1Hour.pt")
    r = backtest("--model", odd / "UNIUSD_1Hour.pt", "--days", 30, "--walk-forward", 2)
    assert r.exit_code == 0, r.output
    assert "runs [/] [bold]x" in " ".join(r.output.split())  # as written, however rich wraps it
