"""Training code builds observations with engine.features; the decisions a policy makes
on them must be the decisions the simulation kernel makes (docs/design.md 4)."""

from pathlib import Path

import numpy as np
import pytest

from engine.features import FeatureError, market_observations, stack_window, state_observation
from engine.pipeline import RunConfig, run_backtest
from engine.policies.checkpoint import load_policy
from engine.data.store import BarStore

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "data" / "bars"


def test_stack_window_layout():
    feats = np.arange(12.0).reshape(4, 3)
    out = stack_window(feats, 2)
    assert out.dtype == np.float32 and out.shape == (4, 6)
    assert np.isnan(out[0, 3:]).all()
    np.testing.assert_array_equal(out[2], [6, 7, 8, 3, 4, 5])
    with pytest.raises(ValueError):
        stack_window(feats, 0)


def test_state_observation():
    np.testing.assert_array_equal(state_observation(["position", "unrealized_return", "bars_held"], 0.0), [0, 0, 0])
    s = state_observation(["bars_held", "unrealized_return", "position"], -1.0, close=90.0,
                          avg_entry_price=100.0, bars_since_open=7)
    np.testing.assert_allclose(s, [0.07, 0.1, -1.0], rtol=1e-6)
    with pytest.raises(FeatureError):
        state_observation(["cash"], 0.0)


@pytest.mark.parametrize("name", ["NVDA_1Hour.pt", "LINKUSD_1Hour.pt", "AMZN_1Hour.pt"])
def test_policy_on_training_observations_decides_as_the_kernel(name, tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path))
    policy = load_policy(ROOT / "data" / "policies" / name)
    assert not policy.state_features  # stateless: its decisions depend on the market alone
    cfg = RunConfig(days=60, store=str(STORE), fill="close", commission_bps=0.0, slippage_bps=0.0,
                    long_only=False)
    entry = run_backtest([ROOT / "data" / "policies" / name], cfg)["models"][0]
    bars = BarStore(STORE).read(policy.symbol, "1Hour")
    ts = bars.timestamp.astype("datetime64[ns]").astype("datetime64[s]")
    s0 = int(np.searchsorted(ts, np.datetime64(entry["backtest"]["start"].rstrip("Z"))))
    e = s0 + entry["backtest"]["bars"]

    obs = market_observations(bars, policy.features, policy.window)  # forward applies obs_norm
    actions = policy.act(obs[s0: e - 1])
    held, expected = 0.0, []
    for a in actions:
        target = float(policy.targets[a]) if policy.action_kind == "discrete" else float(a)
        held = held if np.isnan(target) else target
        expected.append(held)

    index = {str(t) + "Z": i for i, t in enumerate(ts)}
    kernel = np.zeros(e - 1 - s0)
    for trade in entry["backtest"]["trades"]:
        a, b = index[trade["entry_time"]], index[trade["exit_time"]]
        kernel[a - s0: b - s0] = trade["direction"]
    expected_sign = np.sign(expected)
    assert (expected_sign != 0).any() and (expected_sign == 0).any()  # it really trades
    np.testing.assert_array_equal(kernel, expected_sign)
