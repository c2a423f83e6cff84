"""The seed workflow's three commands (30 days; 180 days, 5 folds; 365 days, 10 folds)
run on the shipped sample data for every sample policy: a new user's first hour."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import app

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "data" / "bars"
POLICIES = sorted((ROOT / "data" / "policies").glob("*.pt"))


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ALPACA_KEYS_FILE", raising=False)
    monkeypatch.delenv("FOLDGATE_STORE", raising=False)


@pytest.mark.parametrize("days, folds", [(30, None), (180, 5), (365, 10)])
def test_seed_commands_run_on_every_sample_policy(days, folds):
    assert len(POLICIES) >= 14
    args = ["backtest", "--store", str(STORE), "--days", str(days), "--capital", "100000"]
    for p in POLICIES:
        args += ["--model", str(p)]
    if folds:
        args += ["--walk-forward", str(folds)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "Error" not in r.output
    if folds:
        assert f"/{folds}" in r.output
