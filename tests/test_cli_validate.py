"""`foldgate validate` and `foldgate demo` end to end through CliRunner."""

import hashlib
import json
import re
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import app
from engine.sample import build_sample_archive

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "data" / "bars"
DECISIONS = {"LIVE", "PAPER", "RETRAIN", "DROP"}


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ALPACA_KEYS_FILE", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return build_sample_archive(tmp_path_factory.mktemp("archive"), STORE)


def validate(*args):
    return CliRunner().invoke(app, ["validate", *[str(a) for a in args], "--store", str(STORE)])


def assert_exit_status(r, report_dir) -> dict:
    """docs/design.md 9: 0 when every model was decided, 1 when any failed (each failure named
    on stderr), with the reports written either way. Returns the report."""
    report = json.loads((Path(report_dir) / "report.json").read_text())
    failed = [m for m in report["models"] if m["error"]]
    assert r.exit_code == (1 if failed else 0), r.output
    for m in failed:
        assert f"Error: {m['symbol']}: {m['error']}" in r.stderr
    return report


def test_validate_decides_every_model_and_writes_reports(archive, tmp_path):
    out = tmp_path / "reports"
    r = validate(archive, "--out", out, "--json", tmp_path / "copy.json", "--html", tmp_path / "copy.html",
                 "--profile", "seed")
    report = assert_exit_status(r, out)
    assert (out / "report.html").stat().st_size > 10_000
    assert json.loads((tmp_path / "copy.json").read_text())["models"] == report["models"]
    by_symbol = {m["symbol"]: m for m in report["models"]}
    # the sample archive is built to meet every gating class and every decision
    assert {m["gating"]["classification"] for m in report["models"] if m["gating"]} == {"APPROVED", "REVIEW", "DROP"}
    assert {m["decision"] for m in report["models"] if m["decision"]} == DECISIONS
    # a malformed entry fails alone, with its reason
    assert by_symbol["DOGEUSD"]["error"] and by_symbol["DOGEUSD"]["decision"] is None
    # gating DROP: not backtested, DROP
    for m in report["models"]:
        if m["gating"] and m["gating"]["classification"] == "DROP":
            assert m["decision"] == "DROP" and m["folds"] == [] and m["backtest"] is None
        if m["gating"] and m["gating"]["classification"] == "REVIEW":
            assert m["decision"] != "LIVE"
        if m["decision"] and m["folds"]:
            assert len(m["folds"]) == 5 and m["backtest"]["bars"] > 0
            assert m["summary"]["dsr"] is not None and m["reasons"]
    # percent-unit consistency is read as a fraction and flagged
    uni = by_symbol["UNIUSD"]["gating"]
    assert uni["metrics"]["consistency"] == pytest.approx(0.86)
    assert "PERCENT_UNITS" in {f["code"] for f in uni["flags"]}
    assert uni["use_checkpoint"] and uni["checkpoint"]
    # TSLA's training ran into the window: its first folds are in-sample
    tsla = by_symbol["TSLA"]
    assert [f["in_sample"] for f in tsla["folds"]][:2] == [True, True]
    assert tsla["summary"]["in_sample_folds"] >= 2
    # the printed table is sorted by decision
    order = [line.split(":")[0] for line in r.output.splitlines() if line.endswith((": LIVE", ": PAPER", ": RETRAIN", ": DROP"))]
    ranks = [{"LIVE": 0, "PAPER": 1, "RETRAIN": 2, "DROP": 3}[by_symbol[s]["decision"]] for s in order]
    assert ranks == sorted(ranks)


def test_validate_twice_reuses_the_extract(archive, tmp_path):
    assert_exit_status(validate(archive, "--out", tmp_path / "a"), tmp_path / "a")
    assert_exit_status(validate(archive, "--out", tmp_path / "b"), tmp_path / "b")
    assert len(list((tmp_path / "training_archives").glob("*_extract"))) == 1


def test_promote_copies_live_and_paper_with_manifest(archive, tmp_path):
    models = tmp_path / "models" / "rl_symbols"
    r = validate(archive, "--out", tmp_path / "rep", "--promote", "--models-dir", models)
    assert_exit_status(r, tmp_path / "rep")
    manifest = json.loads((models / "deployment_manifest.json").read_text())
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    chosen = {m["symbol"]: m["decision"] for m in report["models"] if m["decision"] in ("LIVE", "PAPER")}
    assert {e["symbol"]: e["decision"] for e in manifest["models"]} == chosen
    for e in manifest["models"]:
        f = models / e["model_file"]
        assert hashlib.sha256(f.read_bytes()).hexdigest() == e["sha256"]
        assert e["mode"] == e["decision"].lower()
    assert sorted(p.name for p in models.iterdir()) == sorted(
        [e["model_file"] for e in manifest["models"]] + ["deployment_manifest.json"])


def test_validate_extracted_dir_and_summary_json(archive, tmp_path):
    assert_exit_status(validate(archive, "--out", tmp_path / "a"), tmp_path / "a")
    (extract,) = (tmp_path / "training_archives").glob("*_extract")
    assert_exit_status(validate(extract, "--out", tmp_path / "b"), tmp_path / "b")
    summary = next(extract.rglob("training_summary_*.json"))
    assert_exit_status(validate(summary, "--out", tmp_path / "c"), tmp_path / "c")


def test_out_not_writable_fails_before_work(archive, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = validate(archive, "--out", blocker / "sub")
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1].startswith("Error:")


def test_archive_without_summary(tmp_path):
    bad = tmp_path / "Alpaca_trading_trained_20260101_000000.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("models/rl_symbols/BTCUSD_1Hour.pt", b"x")
    r = validate(bad)
    assert r.exit_code == 1
    assert "summary" in r.output.strip().splitlines()[-1].lower()
    assert not list(tmp_path.glob("training_archives/*_extract"))  # nothing extracted


def test_interrupted_validate_leaves_no_report(archive, tmp_path, monkeypatch):
    import engine.pipeline as pipeline

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "decide_jobs", boom)
    out = tmp_path / "rep"
    r = validate(archive, "--out", out, "--promote", "--models-dir", tmp_path / "m")
    assert r.exit_code != 0
    assert not (out / "report.json").exists() and not (out / "report.html").exists()
    assert not (tmp_path / "m" / "deployment_manifest.json").exists()
    leftovers = [p for p in tmp_path.rglob("*.tmp")]
    assert leftovers == []


def test_demo_runs_offline(tmp_path):
    r = CliRunner().invoke(app, ["demo", "--workdir", str(tmp_path / "demo")])
    assert r.exit_code == 0, r.output
    html = next((tmp_path / "demo").rglob("report.html"))
    assert "HTML report:" in r.output and html.stat().st_size > 10_000
    for decision in DECISIONS:
        assert f": {decision}" in r.output


def test_a_model_without_enough_warm_up_fails_alone(tmp_path):
    """A model whose features reach further back than the store holds is an error for
    that model only; the others of the archive are still decided."""
    from archive_factory import build_training_archive, metric_history
    from engine.policies.checkpoint import load_policy, policy_to_checkpoint, save_policy

    greedy = load_policy(ROOT / "data" / "policies" / "BTCUSD_1Hour.pt")
    fields = policy_to_checkpoint(greedy)
    fields["features"] = ["sma_ratio_6000"] + fields["features"][1:]  # 6000 bars before the window
    save_policy(tmp_path / "BTCUSD_1Hour.pt", **fields)
    good = metric_history(0.8, 2.0, 0.9, 0.05)
    archive = build_training_archive(tmp_path / "in", {"BTCUSD": good, "ETHUSD": good}, models={
        "BTCUSD": tmp_path / "BTCUSD_1Hour.pt", "ETHUSD": ROOT / "data" / "policies" / "ETHUSD_1Hour.pt"})
    r = validate(archive, "--out", tmp_path / "rep")
    assert r.exit_code == 1, r.output  # BTCUSD failed: the run says so, after writing the reports
    assert "1 of 2 models failed" in r.stderr
    models = {m["symbol"]: m for m in assert_exit_status(r, tmp_path / "rep")["models"]}
    error = models["BTCUSD"]["error"] or ""
    assert "warm-up" in error and re.search(r"\d+ bars", error), error
    assert models["BTCUSD"]["decision"] is None
    assert models["ETHUSD"]["decision"] in DECISIONS and len(models["ETHUSD"]["folds"]) == 5
    # up to 10 models: a fold table and the seed's lines per model (docs/design.md 9)
    assert r.stdout.count("PER-FOLD ANALYSIS") == 1 and "Positive Folds: " in r.stdout


def test_evidence_profile_by_default_with_the_other_verdict_beside_it(archive, tmp_path):
    r = validate(archive, "--out", tmp_path / "e")
    report = assert_exit_status(r, tmp_path / "e")
    seed = assert_exit_status(validate(archive, "--out", tmp_path / "s", "--profile", "seed"), tmp_path / "s")
    assert report["settings"]["profile"] == "evidence" and seed["settings"]["profile"] == "seed"
    assert "profile evidence" in r.stdout
    assert "PER-FOLD ANALYSIS" not in r.stdout  # 15 models: the summary table only, unless --verbose
    by_seed = {m["symbol"]: m for m in seed["models"]}
    decided = [m for m in report["models"] if m["decision"]]
    assert decided
    for m in decided:
        assert m["profile"] == "evidence" and m["decision"] == m["decisions"]["evidence"]
        # both verdicts are computed whatever the profile: the seed run agrees on both
        assert by_seed[m["symbol"]]["decisions"] == m["decisions"]
        assert by_seed[m["symbol"]]["decision"] == m["decisions"]["seed"]
    # several symbols: BH applies to every backtested symbol that gating let through
    for m in report["models"]:
        e = (m["summary"] or {}).get("evidence")
        if e and m["gating"]["classification"] != "DROP":
            assert e["bh_q"] is not None and e["bh_pass"] == (e["bh_q"] <= 0.10)
            if m["decision"] == "LIVE":
                assert e["bh_pass"]
    # TSLA's first folds overlap its training: shown, left out of the evidence, worded neutrally
    tsla = next(m for m in report["models"] if m["symbol"] == "TSLA")
    assert tsla["summary"]["evidence"]["oos_folds"] == 5 - tsla["summary"]["in_sample_folds"]
    flag = next(f for f in tsla["flags"] if f["code"] == "IN_SAMPLE_FOLDS")
    assert "left out" in flag["message"] and "optimistic" not in flag["message"]
    assert f"IN_SAMPLE_FOLDS: {flag['message']}" in tsla["reasons"]
    # model paths relative to the working directory the command ran in
    assert all(not Path(m["model_path"]).is_absolute() for m in report["models"] if m["model_path"])


def test_a_missing_model_file_is_gated_flagged_and_not_backtested(tmp_path):
    """docs/design.md 7: gating goes on without the file; MODEL_MISSING, no backtest, no error."""
    from archive_factory import build_training_archive, metric_history

    good = metric_history(0.8, 2.0, 0.9, 0.05)
    archive = build_training_archive(tmp_path / "in", {"BTCUSD": good, "ETHUSD": good}, models={
        "BTCUSD": None, "ETHUSD": ROOT / "data" / "policies" / "ETHUSD_1Hour.pt"})
    r = validate(archive, "--out", tmp_path / "rep")
    models = {m["symbol"]: m for m in assert_exit_status(r, tmp_path / "rep")["models"]}
    assert r.exit_code == 0, r.output
    btc = models["BTCUSD"]
    assert btc["error"] is None and btc["gating"]["classification"] == "APPROVED"
    assert "MODEL_MISSING" in {f["code"] for f in btc["gating"]["flags"]}
    assert btc["backtest"] is None and btc["folds"] == [] and btc["decision"] is None and btc["reasons"]
    assert models["ETHUSD"]["decision"] in DECISIONS
