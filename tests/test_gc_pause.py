"""backtest and validate build their reports with the cycle collector paused
(cli/gc_pause.py) and leave it as they found it."""

import gc

import pytest
from click.testing import CliRunner

import cli.backtest
import cli.validate
from cli.gc_pause import paused_gc
from cli.main import app


def test_paused_gc_restores_the_previous_state_even_on_an_error():
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError):
        with paused_gc():
            assert not gc.isenabled()
            1 / 0
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


@pytest.mark.parametrize("module, name, args", [
    (cli.backtest, "run_backtest", ["backtest", "--model", "data/policies/UNIUSD_1Hour.pt", "--days", "5"]),
    (cli.validate, "run_validate", ["validate", "data"]),
])
def test_the_run_and_its_reports_happen_with_the_collector_paused(monkeypatch, module, name, args):
    seen = []

    def spy(*a, **k):
        seen.append(gc.isenabled())
        raise SystemExit(3)  # enough: the run was reached

    monkeypatch.setattr(module, name, spy)
    result = CliRunner().invoke(app, args)
    assert seen == [False], result.output
    assert result.exit_code == 3
    assert gc.isenabled()
