"""`foldgate check-features`: every built-in feature keeps its values on truncated and
late-started copies; a lookahead or infinite-memory feature is caught at its bars."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import app
from engine import feature_plugins
from engine.feature_check import BUILTIN_CHECK_NAMES, check_feature, check_features, synthetic_bars
from engine.features import KNOWN_FEATURES, parse_feature
from plugin_factory import FakeEntryPoint, install, momentum, peek, running_mean


@pytest.fixture(autouse=True)
def _clean_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    yield
    feature_plugins.reset()


def test_every_builtin_feature_passes_the_check_from_the_cli():
    res = CliRunner().invoke(app, ["check-features"])
    assert res.exit_code == 0, res.output
    for name in BUILTIN_CHECK_NAMES:
        assert f"ok     {name} " in res.output
    assert "MOVED" not in res.output


def test_the_builtin_list_covers_every_kind():
    kinds = {parse_feature(n)[0] for n in BUILTIN_CHECK_NAMES}
    known_kinds = {parse_feature(n.replace("_k", "_3") if "_k" in n else n)[0] for n in KNOWN_FEATURES}
    assert known_kinds <= kinds


def test_builtins_pass_on_another_seed_and_length():
    verdicts = check_features(None, synthetic_bars(4000, seed=11), cuts=4, starts=4, seed=11)
    assert [v.feature for v in verdicts if not v.ok] == []
    assert all(v.copies == 8 for v in verdicts)


def test_lookahead_plugin_is_caught_at_the_bar_before_each_cut(monkeypatch):
    install(monkeypatch, FakeEntryPoint("acme:peek", peek))
    bars = synthetic_bars(1000, seed=3)
    v = check_feature(bars, "acme:peek", cuts=5, starts=3, seed=3)
    assert not v.ok
    cut_moves = [m for m in v.moves if m.copy == "truncated"]
    cuts = sorted({m.at for m in cut_moves})
    assert len(cuts) >= 3
    # bar c-1 reads bar c, which the cut removed: exactly that bar moves, and its values are named
    assert sorted(m.bar for m in cut_moves) == [c - 1 for c in cuts]
    m = cut_moves[0]
    assert np.isfinite(m.full) and np.isnan(m.moved)
    assert f"bar {m.bar} " in m.describe() and f"cut after bar {m.at - 1}" in m.describe()
    assert v.first_lookahead().bar == min(c - 1 for c in cuts)


def test_infinite_memory_is_caught_by_late_starts(monkeypatch):
    install(monkeypatch, FakeEntryPoint("acme:avg", running_mean))
    v = check_feature(synthetic_bars(800, seed=4), "acme:avg_5", cuts=2, starts=3, seed=4)
    assert not v.ok
    assert {m.copy for m in v.moves} == {"started"}  # no lookahead, only start dependence


def test_an_honest_plugin_passes(monkeypatch):
    install(monkeypatch, FakeEntryPoint("acme:mom", momentum))
    assert check_feature(synthetic_bars(800), "acme:mom_7").ok


def test_cli_reports_the_moves_and_exits_1(monkeypatch):
    install(monkeypatch, FakeEntryPoint("acme:peek", peek), FakeEntryPoint("acme:mom", momentum))
    res = CliRunner().invoke(app, ["check-features", "acme:peek", "acme:mom_3", "ret_4", "--limit", "2"])
    assert res.exit_code == 1
    assert "MOVED  acme:peek" in res.output and "lookahead" in res.output
    assert "ok     acme:mom_3" in res.output and "ok     ret_4" in res.output
    assert "on the full series" in res.output and "more (--limit 0 shows all)" in res.output
    assert "Error: 1 of 3 features moved" in res.output


def test_cli_json_holds_every_moved_value(monkeypatch, tmp_path):
    import json

    from plugin_factory import running_mean

    install(monkeypatch, FakeEntryPoint("acme:avg", running_mean))
    out = tmp_path / "check.json"
    res = CliRunner().invoke(app, ["check-features", "acme:avg_3", "ret_1", "--bars", "600", "--json", str(out)])
    assert res.exit_code == 1
    doc = json.loads(out.read_text())
    avg, ret = doc["features"]
    assert avg["feature"] == "acme:avg_3" and not avg["ok"] and ret["ok"] and ret["moves"] == []
    printed = int(res.output.split("MOVED  acme:avg_3 (lookback 3): ")[1].split()[0])
    assert len(avg["moves"]) == printed > 10  # all of them, though 10 were printed
    m = avg["moves"][0]
    assert set(m) == {"copy", "at", "bar", "time", "full", "moved"} and m["time"].endswith("Z")


def test_cli_unknown_name_is_one_line(monkeypatch):
    install(monkeypatch)
    res = CliRunner().invoke(app, ["check-features", "ret_4", "nope_3"])
    assert res.exit_code == 1 and res.output.strip().startswith("Error: ") and "nope_3" in res.output
    assert "Traceback" not in res.output


def test_cli_checks_stored_bars(tmp_path):
    from engine.store import Bars, BarStore

    b = synthetic_bars(1000, seed=5)
    store = BarStore(tmp_path / "bars")
    store.write(Bars("ETHUSD", "1Hour", "crypto", b.timestamp, b.open, b.high, b.low, b.close, b.volume))
    res = CliRunner().invoke(app, ["check-features", "rsi_14", "stockstats:cci_30", "--symbol", "ETH/USD",
                                   "--store", str(tmp_path / "bars")])
    assert res.exit_code == 0, res.output
    assert "ETHUSD 1Hour, 1000 bars" in res.output
    res = CliRunner().invoke(app, ["check-features", "stockstats:rsi_30", "--symbol", "ETHUSD",
                                   "--store", str(tmp_path / "bars")])
    assert res.exit_code == 1 and "needs at least" in res.output
