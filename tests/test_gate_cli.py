"""`foldgate gate` and `foldgate extract` through click's CliRunner."""

import json
import zipfile

import pytest
from click.testing import CliRunner

from archive_factory import build_training_archive, metric_history
from cli.extract import extract
from cli.gate import gate

SYMBOLS = {
    "UNIUSD": metric_history(0.75, 2.0, 0.90, 0.05, best_fitness=0.85, best_at=7),  # APPROVED, better checkpoint
    "BTCUSD": metric_history(0.60, 1.5, 80, 12),                                  # REVIEW, percent units
    "ETHUSD": metric_history(0.80, 2.0, 0.90, 0.45),                              # DROP, inflated proxy
    "SOLUSD": {"metrics": {"fitness_score": [0.5]}},                              # DROP: metrics missing
    "AVAXUSD": {"metrics": {"fitness_score": [0.5], "profit_factor": "high"}},    # malformed
}


@pytest.fixture
def archive(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return build_training_archive(tmp_path / "in", SYMBOLS)


def run(cmd, *args):
    return CliRunner().invoke(cmd, [str(a) for a in args], catch_exceptions=False)


def test_table_shows_classes_metrics_flags_and_checkpoint(archive):
    res = run(gate, archive)
    assert res.exit_code == 0, res.output
    out = res.output
    for text in ["UNIUSD", "APPROVED", "BTCUSD", "REVIEW", "ETHUSD", "DROP", "SOLUSD", "ERROR",
                 "≥0.7 / ≥0.5", "≥1.8 / ≥1.3", "≥85% / ≥65%", "≤8% / ≤15%",
                 "80.0%", "45.0%", "use #7", "CHECKPOINT_BETTER", "PERCENT_UNITS", "INFLATED_PROXY_DD",
                 "SOLUSD MISSING_METRIC", "AVAXUSD: metric profit_factor is a string",
                 "5 symbols: 1 APPROVED, 1 REVIEW, 2 DROP, 1 not gated (errors)"]:
        assert text in out, text
    assert "Traceback" not in out


def test_json_is_written_atomically_with_the_report_gating_shape(archive, tmp_path):
    target = tmp_path / "out" / "gate.json"
    res = run(gate, archive, "--json", target)
    assert res.exit_code == 0, res.output
    doc = json.loads(target.read_text())
    assert sorted(p.name for p in target.parent.iterdir()) == ["gate.json"]  # no temp file left behind
    assert doc["schema"] == "foldgate.report/2" and doc["command"] == "gate"
    assert doc["archive"]["stamp"] == "20241227_120000"
    from engine.report import validate_report

    validate_report(doc)
    classes = [m["gating"]["classification"] if m["gating"] else "error" for m in doc["models"]]
    assert sorted(classes) == ["APPROVED", "DROP", "DROP", "REVIEW", "error"]
    assert all(m["decision"] is None and m["folds"] == [] for m in doc["models"])
    assert doc["settings"]["thresholds"]["review"]["max_drawdown"] == 0.15
    models = {m["symbol"]: m for m in doc["models"]}
    uni = models["UNIUSD"]["gating"]
    assert set(uni) == {"classification", "metrics", "flags", "use_checkpoint", "checkpoint_index", "checkpoint"}
    assert (uni["classification"], uni["use_checkpoint"], uni["checkpoint_index"]) == ("APPROVED", True, 7)
    assert uni["flags"][0]["code"] == "CHECKPOINT_BETTER"
    assert models["BTCUSD"]["gating"]["metrics"]["consistency"] == 0.8
    assert models["UNIUSD"]["model_path"].endswith("UNIUSD_1Hour.pt")
    assert models["SOLUSD"]["gating"]["classification"] == "DROP"
    assert "MISSING_METRIC" in {f["code"] for f in models["SOLUSD"]["gating"]["flags"]}
    assert models["AVAXUSD"]["gating"] is None and "profit_factor" in models["AVAXUSD"]["error"]
    # gate runs no backtest: a flag must not send the reader to one that is not there (issue 8 item 11)
    eth = models["ETHUSD"]
    inflated = [f for f in eth["gating"]["flags"] if f["code"] == "INFLATED_PROXY_DD"]
    assert inflated and "trust the backtest's" not in inflated[0]["message"]
    assert "foldgate backtest or validate" in inflated[0]["message"]
    assert any("INFLATED_PROXY_DD" in r and "trust the backtest's" not in r for r in eth["reasons"])
    # one builder for gate, backtest and validate: the same model keys, profile and decisions
    assert all(set(m) >= {"profile", "decisions", "flags"} for m in doc["models"])
    assert all(m["decisions"] == {"evidence": None, "seed": None} for m in doc["models"])


def test_extracted_dir_and_bare_summary_sources(archive, tmp_path):
    res = run(gate, archive, "--dest", tmp_path / "ta")
    root = tmp_path / "ta" / "20241227_120000_extract"
    assert run(gate, root).exit_code == 0
    # a summary alone, away from its models, can still be gated
    bare = tmp_path / "bare" / "training_summary_20241227_120000.json"
    bare.parent.mkdir()
    bare.write_bytes((root / bare.name).read_bytes())
    res = run(gate, bare, "--json", tmp_path / "bare.json")
    assert res.exit_code == 0, res.output
    assert "UNIUSD: no model file found for it" in res.output
    doc = json.loads((tmp_path / "bare.json").read_text())
    assert {m["symbol"]: m["model_path"] for m in doc["models"]}["UNIUSD"] is None


def test_config_changes_the_classes(archive, tmp_path):
    cfg = tmp_path / "loose.toml"
    cfg.write_text("[approved]\nfitness = 0.6\nprofit_factor = 1.5\nconsistency = 0.8\nmax_drawdown = 0.12\n")
    res = run(gate, archive, "--config", cfg, "--json", tmp_path / "g.json")
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "g.json").read_text())
    approved = [m for m in doc["models"] if m["gating"] and m["gating"]["classification"] == "APPROVED"]
    assert len(approved) == 2 and doc["settings"]["thresholds_file"] == str(cfg)
    assert "≥0.6 / ≥0.5" in res.output


@pytest.mark.parametrize("text, needle", [
    ("[review]\nfitness = 0.5\nsharpe = 1.0\n", "review.sharpe"),
    ("[review]\nfitness = \"high\"\n", "review.fitness"),
])
def test_bad_config_is_one_error_line_exit_1(archive, tmp_path, text, needle):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    res = CliRunner().invoke(gate, [str(archive), "--config", str(cfg)])
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert needle in lines[0] and str(cfg) in lines[0]
    assert not (tmp_path / "training_archives").exists()  # refused before extracting anything


def test_missing_files_are_usage_errors(archive, tmp_path):
    res = CliRunner().invoke(gate, [str(tmp_path / "nope.zip")])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = CliRunner().invoke(gate, [str(archive), "--config", str(tmp_path / "nope.toml")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_archive_without_models_or_summary(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    no_models = build_training_archive(tmp_path / "a", {"UNIUSD": metric_history(0.8, 2, 0.9, 0.05)}, models={})
    res = CliRunner().invoke(gate, [str(no_models)])
    assert res.exit_code == 1 and res.output.startswith("Error: no model files")
    no_summary = tmp_path / "b" / "Alpaca_trading_trained_20250101_000000.zip"
    no_summary.parent.mkdir()
    with zipfile.ZipFile(no_summary, "w") as zf:
        zf.writestr("models/rl_symbols/UNIUSD_1Hour.pt", b"m")
    res = CliRunner().invoke(gate, [str(no_summary)])
    assert res.exit_code == 1 and res.output.startswith("Error: ") and "no training_summary" in res.output


def test_gate_through_the_foldgate_app(archive):
    from cli.main import app

    res = CliRunner().invoke(app, ["gate", str(archive)])
    assert res.exit_code == 0, res.output
    assert "APPROVED" in res.output


# ------------------------------------------------------------------ extract


def test_extract_then_reuse(archive, tmp_path):
    res = run(extract, archive, "--dest", tmp_path / "ta")
    assert res.exit_code == 0, res.output
    out = tmp_path / "ta" / "20241227_120000_extract"
    assert res.output.splitlines()[0] == f"Extracted: {out}"
    assert "summary: training_summary_20241227_120000.json" in res.output and "models: 5 .pt files" in res.output
    res = run(extract, archive, "--dest", tmp_path / "ta")
    assert res.output.splitlines()[0] == f"Already extracted: {out}"


def test_extract_refuses_a_hostile_archive_in_one_line(tmp_path):
    bad = tmp_path / "Alpaca_trading_trained_20241227_120000.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../../evil.txt", b"x")
    res = CliRunner().invoke(extract, [str(bad), "--dest", str(tmp_path / "ta")])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        f"Error: {bad}: entry '../../evil.txt' leaves the destination ('..')"]
    assert not list(tmp_path.rglob("evil.txt"))


def test_extract_bounds_are_options(tmp_path):
    zp = tmp_path / "Alpaca_trading_trained_20241227_120000.zip"
    with zipfile.ZipFile(zp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.bin", bytes(2 * 2**20))
    res = CliRunner().invoke(extract, [str(zp), "--dest", str(tmp_path / "ta"), "--max-total-mb", "1",
                                       "--max-ratio", "1e9"])
    assert res.exit_code == 1 and "over the bound of 1048576" in res.output
    res = CliRunner().invoke(extract, [str(zp), "--max-ratio", "0"])
    assert res.exit_code == 2
