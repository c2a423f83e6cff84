"""Feature plugins: installed packages add features through the `foldgate.features`
entry point; each is checked for lookahead before its first use (verdict cached per
distribution version) and refused, naming the bar, when it fails."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from engine import feature_check, feature_plugins, lookahead
from engine.errors import FeatureError
from engine.feature_check import synthetic_bars
from engine.features import compute_features, feature_lookback, lookback, parse_feature
from plugin_factory import FakeEntryPoint, install, momentum, no_lookback, peek, wrong_shape


@pytest.fixture(autouse=True)
def _clean_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    feature_plugins.reset()
    yield
    feature_plugins.reset()


def test_an_installed_feature_is_parsed_computed_and_mixed_with_builtins(monkeypatch):
    install(monkeypatch, FakeEntryPoint("acme:mom", momentum))
    assert parse_feature("acme:mom_5") == ("acme:mom", 5)
    assert feature_lookback("acme:mom_5") == 5 and lookback(["ret_1", "acme:mom_5"]) == 5
    bars = synthetic_bars(600, seed=1)
    got = compute_features(bars, ["ret_1", "acme:mom_5", "hl_range"])
    want = np.full(600, np.nan)
    want[5:] = bars.close[5:] / bars.close[:-5] - 1.0
    np.testing.assert_array_equal(got[:, 1], want)
    np.testing.assert_array_equal(got[:, 0], compute_features(bars, ["ret_1"])[:, 0])


def test_a_lookahead_plugin_is_refused_before_first_use_naming_the_bar(monkeypatch):
    install(monkeypatch, FakeEntryPoint("acme:peek", peek))
    with pytest.raises(FeatureError) as exc:
        compute_features(synthetic_bars(500), ["ret_1", "acme:peek"])
    msg = str(exc.value)
    assert "acme:peek" in msg and "acme-features 1.0" in msg and "looked ahead at bar " in msg
    bar = int(msg.split("looked ahead at bar ")[1].split()[0])
    verdict = feature_check.check_features(["acme:peek"])[0]
    assert bar == verdict.first_lookahead().bar  # the bar the check found, not a guess
    assert "\n" not in msg


def test_the_verdict_is_cached_per_distribution_version(monkeypatch):
    ep = FakeEntryPoint("acme:mom", momentum)
    install(monkeypatch, ep)
    calls = []
    real = lookahead.check_values
    monkeypatch.setattr(lookahead, "check_values", lambda *a, **k: calls.append(a) or real(*a, **k))
    bars = synthetic_bars(400)
    compute_features(bars, ["acme:mom_3"])
    compute_features(bars, ["acme:mom_3"])
    assert len(calls) == 1
    feature_plugins.reset()  # a new process: the verdict comes from the cache on disk
    compute_features(bars, ["acme:mom_3"])
    assert len(calls) == 1
    install(monkeypatch, FakeEntryPoint("acme:mom", momentum, dist=("acme-features", "1.1")))
    compute_features(bars, ["acme:mom_3"])
    assert len(calls) == 2  # a new version is checked again
    compute_features(bars, ["acme:mom_4"])
    assert len(calls) == 3  # and each window is its own feature


def test_a_failed_verdict_is_cached_too(monkeypatch):
    install(monkeypatch, FakeEntryPoint("acme:peek", peek))
    with pytest.raises(FeatureError):
        compute_features(synthetic_bars(300), ["acme:peek"])
    feature_plugins.reset()
    install(monkeypatch, FakeEntryPoint("acme:peek", peek))
    monkeypatch.setattr(lookahead, "check_values", lambda *a, **k: pytest.fail("re-checked"))
    with pytest.raises(FeatureError, match="looked ahead at bar"):
        compute_features(synthetic_bars(300), ["acme:peek"])


def test_without_a_distribution_the_check_runs_in_every_process(monkeypatch, tmp_path):
    install(monkeypatch, FakeEntryPoint("acme:mom", momentum, dist=None))
    compute_features(synthetic_bars(300), ["acme:mom_2"])
    assert not list((tmp_path / "cache").rglob("*.json"))  # nothing to key a cached verdict on


def test_a_policy_naming_a_lookahead_plugin_is_refused_when_loaded(monkeypatch, tmp_path):
    from engine.errors import PolicyError
    from engine.policies.checkpoint import load_policy, save_policy

    install(monkeypatch, FakeEntryPoint("acme:peek", peek), FakeEntryPoint("acme:mom", momentum))
    fields = dict(features=["ret_1", "acme:mom_3"], actor=[np.zeros((2, 2), np.float32), np.zeros(2, np.float32)],
                  action={"type": "discrete", "targets": [0.0, 1.0]})
    good = save_policy(tmp_path / "BTCUSD_1Hour.pt", **fields)
    assert load_policy(good).features == ["ret_1", "acme:mom_3"]
    with pytest.raises(PolicyError) as exc:
        save_policy(tmp_path / "ETHUSD_1Hour.pt", **{**fields, "features": ["ret_1", "acme:peek"]})
    assert "features[1]" in str(exc.value) and "looked ahead at bar" in str(exc.value)


@pytest.mark.parametrize("ep, name, words", [
    (FakeEntryPoint("acme:bad", wrong_shape), "acme:bad", ["returned", "shape"]),
    (FakeEntryPoint("acme:nolb", no_lookback), "acme:nolb", ["lookback"]),
    (FakeEntryPoint("acme:mom", momentum), "acme:mom", ["needs a window"]),
    (FakeEntryPoint("acme:peek", peek), "acme:peek_3", ["takes no window"]),
    (FakeEntryPoint("acme:mom", momentum), "acme:other_3", ["unknown feature", "acme:mom"]),
    (FakeEntryPoint("stockstats:evil", momentum), "stockstats:evil_3", ["unknown feature"]),
])
def test_broken_plugins_and_names_are_one_line_errors(monkeypatch, ep, name, words):
    install(monkeypatch, ep)
    with pytest.raises(FeatureError) as exc:
        compute_features(synthetic_bars(300), [name])
    for w in words:
        assert w in str(exc.value)
    assert "\n" not in str(exc.value)


def test_a_plugin_that_fails_to_import_is_named(monkeypatch):
    class Broken(FakeEntryPoint):
        def load(self):
            raise ImportError("no module named acme_features")

    install(monkeypatch, Broken("acme:mom", momentum))
    with pytest.raises(FeatureError, match="cannot be loaded"):
        parse_feature("acme:mom_3")


def test_nothing_is_discovered_unless_a_plugin_name_is_used(monkeypatch):
    monkeypatch.setattr(feature_plugins, "discover_entry_points", lambda: pytest.fail("entry points read"))
    feature_plugins.reset()
    compute_features(synthetic_bars(300), ["ret_1", "stockstats:rsi_14"])


def _write_dist(root, version="1.0", body=None):
    (root / "acme_feats.py").write_text(body or textwrap.dedent('''
        import numpy as np

        def momentum(timestamp, open, high, low, close, volume, k):
            out = np.full(close.shape, np.nan)
            out[k:] = close[k:] / close[:-k] - 1.0
            return out

        momentum.lookback = lambda k: k

        def peek(timestamp, open, high, low, close, volume, k):
            out = np.full(close.shape, np.nan)
            out[:-2] = close[2:] - close[:-2]
            return out

        peek.lookback = 0
    '''))
    info = root / f"acme_feats-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: acme-feats\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        "[foldgate.features]\nacme:mom = acme_feats:momentum\nacme:peek = acme_feats:peek\n"
    )


def test_a_real_installed_distribution_is_found_through_importlib_metadata(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    _write_dist(site)
    monkeypatch.syspath_prepend(str(site))
    feature_plugins.reset()
    reg = feature_plugins.registry()
    assert reg["acme:mom"].dist == "acme-feats" and reg["acme:mom"].version == "1.0"
    bars = synthetic_bars(400, seed=2)
    got = compute_features(bars, ["acme:mom_3"])[:, 0]
    np.testing.assert_array_equal(got[3:], bars.close[3:] / bars.close[:-3] - 1.0)
    with pytest.raises(FeatureError, match=r"acme:peek.*acme-feats 1\.0.*looked ahead at bar \d+"):
        compute_features(bars, ["acme:peek"])
    monkeypatch.delitem(sys.modules, "acme_feats", raising=False)


def test_a_policy_naming_a_plugin_feature_loads_in_a_fresh_process(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _write_dist(site)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from engine.features import compute_features; from engine.feature_check import synthetic_bars;"
        "print(compute_features(synthetic_bars(300), ['acme:mom_2'])[5, 0] is not None)"
    )
    env_cache = tmp_path / "cache"
    import os

    env = {**os.environ, "FOLDGATE_CACHE_DIR": str(env_cache)}
    out = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert list((env_cache / "feature-verdicts").glob("*.json"))  # the verdict was kept for the next run
