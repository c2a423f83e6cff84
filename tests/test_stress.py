"""--stress (docs/design.md 11): the cost scenarios equal plain runs at those costs, the delay
scenario is its own fill, decisions stay on the base, FRAGILE_TO_COSTS follows its rule."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import app
from engine.report.schema import validate_report
from engine.sample import build_sample_archive
from engine.stress import BASE, SCENARIOS, fragile_to_costs, stress_section

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "data" / "bars"
POLICIES = ROOT / "data" / "policies"


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ALPACA_KEYS_FILE", raising=False)
    monkeypatch.chdir(tmp_path)


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("base, x2, fragile", [
    (0.80, 0.79, True), (0.80, 0.80, False), (0.79, 0.10, False), (0.95, None, True),
    (None, 0.1, False), (0.99, 0.85, False)])
def test_fragile_to_costs_at_the_paper_level(base, x2, fragile):
    assert fragile_to_costs(base, x2, 0.80) is fragile


def test_stress_section_orders_scenarios_and_takes_changes_from_the_base():
    rows = {sc.name: {"psr0": 0.5 + k / 10, "psr_hurdle": None, "sr_annual": 1.0 - k,
                      "return_mean": 0.01 * k, "sharpe_mean": 2.0} for k, sc in
            reversed(list(enumerate(SCENARIOS)))}
    out = stress_section(rows)["scenarios"]
    assert [r["scenario"] for r in out] == [sc.name for sc in SCENARIOS]
    assert out[0]["scenario"] == BASE and out[0]["change"]["psr0"] == 0.0
    assert out[2]["change"]["psr0"] == pytest.approx(0.2)
    assert out[2]["change"]["sr_annual"] == pytest.approx(-2.0)
    assert out[1]["change"]["psr_hurdle"] is None  # None on either side stays None


def _folds(report, symbol=None):
    m = next(m for m in report["models"] if symbol is None or m["symbol"] == symbol)
    return [f["metrics"]["total_return"] for f in m["folds"]], [f["metrics"]["sharpe"] for f in m["folds"]]


def test_backtest_cost_scenarios_are_plain_runs_at_those_costs(tmp_path):
    model = POLICIES / "BTCUSD_1Hour.pt"
    common = ["backtest", "--store", STORE, "--model", model, "--days", 60, "--walk-forward", 3,
              "--commission-bps", 10, "--slippage-bps", 5]
    r = cli(*common, "--stress", "--json", tmp_path / "s.json")
    assert r.exit_code == 0, r.output
    assert "Stress" in r.output and "fills 1 bar later" in r.output
    stressed = json.loads((tmp_path / "s.json").read_text())
    validate_report(stressed)
    assert stressed["settings"]["stress"] is True
    m = stressed["models"][0]
    rows = {row["scenario"]: row for row in m["stress"]["scenarios"]}
    assert list(rows) == [sc.name for sc in SCENARIOS]
    base_ret, base_sr = _folds(stressed)
    assert rows["base"]["fold_returns"] == pytest.approx(base_ret)
    assert rows["base"]["psr0"] == pytest.approx(m["summary"]["evidence"]["psr0"])
    for name, mult in (("costs_x2", 2), ("costs_x3", 3)):
        r = cli(*common[:-4], "--commission-bps", 10 * mult, "--slippage-bps", 5 * mult,
                "--json", tmp_path / f"{name}.json")
        assert r.exit_code == 0, r.output
        plain = json.loads((tmp_path / f"{name}.json").read_text())
        ret, sr = _folds(plain)
        assert rows[name]["fold_returns"] == pytest.approx(ret, rel=1e-12, abs=1e-15)
        assert rows[name]["fold_sharpes"] == pytest.approx(sr, rel=1e-12, abs=1e-15)
        ev = plain["models"][0]["summary"]["evidence"]
        assert rows[name]["psr0"] == pytest.approx(ev["psr0"])
        assert rows[name]["sr_annual"] == pytest.approx(ev["sr_annual"])
        assert rows[name]["change"]["sr_annual"] == pytest.approx(ev["sr_annual"] - rows["base"]["sr_annual"])
    # the delay is a scenario of its own: not the base, not a cost multiple
    assert rows["fill_late"]["fold_returns"] != pytest.approx(base_ret)
    # decisions stay on the base: the same report without --stress decides the same
    r = cli(*common, "--json", tmp_path / "plain.json")
    plain = json.loads((tmp_path / "plain.json").read_text())
    assert plain["models"][0]["decision"] == m["decision"]
    assert plain["models"][0]["stress"] is None and plain["settings"]["stress"] is False
    assert _folds(plain) == (base_ret, base_sr)


def test_backtest_without_folds_reports_the_backtest_per_scenario(tmp_path):
    r = cli("backtest", "--store", STORE, "--model", POLICIES / "BTCUSD_1Hour.pt", "--days", 30,
            "--stress", "--json", tmp_path / "s.json")
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "s.json").read_text())
    validate_report(rep)
    rows = {row["scenario"]: row for row in rep["models"][0]["stress"]["scenarios"]}
    assert rows["base"]["backtest_return"] == pytest.approx(rep["models"][0]["backtest"]["metrics"]["total_return"])
    assert rows["base"]["psr0"] is None and rows["base"]["fold_returns"] == []
    # more costs on the same decisions cost money (this policy reads only `position`)
    assert rows["costs_x3"]["backtest_return"] < rows["costs_x2"]["backtest_return"] < rows["base"]["backtest_return"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return build_sample_archive(tmp_path_factory.mktemp("archive"), STORE)


def test_validate_stress_flags_fragile_models_and_resumes(archive, tmp_path):
    out = tmp_path / "out"
    args = ["validate", archive, "--store", STORE, "--out", out, "--stress"]
    r = cli(*args)
    assert r.exit_code == 1, r.output  # the sample archive's malformed entry
    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    paper = report["settings"]["thresholds"]["decision"]["evidence"]["paper_min_psr"]
    n_fragile = 0
    for m in report["models"]:
        if not m["folds"]:
            assert m["stress"] is None
            continue
        rows = {row["scenario"]: row for row in m["stress"]["scenarios"]}
        want = fragile_to_costs(rows["base"]["psr0"], rows["costs_x2"]["psr0"], paper)
        codes = {f["code"] for f in m["flags"]}
        assert ("FRAGILE_TO_COSTS" in codes) is want, m["symbol"]
        if want:
            n_fragile += 1
            assert any(reason.startswith("FRAGILE_TO_COSTS") for reason in m["reasons"])
    assert n_fragile >= 1  # the sample archive holds one (ETHUSD at the time of writing)
    # the delay scenario is trajectories of the one run (their own fill mode), not a
    # second run; a resume reads every chunk
    assert not (out / "run" / "fill_late").exists()
    r = cli(*args, "--resume")
    assert "chunks read from" in r.stderr
    again = json.loads((out / "report.json").read_text())
    assert [m["stress"] for m in again["models"]] == [m["stress"] for m in report["models"]]
