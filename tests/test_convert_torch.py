"""`foldgate convert torch`: users' own torch actors (CleanRL, ElegantRL, a custom
ActorCritic) saved as state_dicts -> native checkpoints that act exactly as the torch
modules do; everything that is not an MLP actor is refused with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from cli.main import app
from engine.errors import PolicyError
from engine.policies.checkpoint import load_policy
from engine.limits import LAYER_WIDTH
from engine.policies.torch_convert import convert_torch

N_OBS = 10_000
FEATURES = ["ret_1", "ret_4", "vol_24", "rsi_14", "stockstats:macd", "hour_sin"]


class CleanRLAgent(nn.Module):
    """CleanRL's ppo.py Agent: separate critic and actor Sequentials."""

    def __init__(self, obs_dim, n_actions):
        super().__init__()
        self.critic = nn.Sequential(nn.Linear(obs_dim, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
        self.actor = nn.Sequential(
            nn.Linear(obs_dim, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, n_actions)
        )


class ElegantActor(nn.Module):
    """ElegantRL's ActorPPO: an MLP `net` (ReLU) plus a free log-std parameter."""

    def __init__(self, state_dim, action_dim):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(state_dim, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, action_dim)
        )
        self.action_std_log = nn.Parameter(torch.zeros((1, action_dim)) - 0.5)


class ElegantDiscreteActor(nn.Module):
    """ElegantRL's ActorDiscretePPO: state_norm with state_avg / state_std kept as
    parameters, then `net`; the action is the argmax."""

    def __init__(self, state_dim, action_dim):
        super().__init__()
        self.state_avg = nn.Parameter(torch.zeros((state_dim,)), requires_grad=False)
        self.state_std = nn.Parameter(torch.ones((state_dim,)), requires_grad=False)
        self.net = nn.Sequential(nn.Linear(state_dim, 64), nn.ReLU(), nn.Linear(64, action_dim))

    def forward(self, state):
        return self.net((state - self.state_avg) / self.state_std).argmax(dim=1)


class ActorCritic(nn.Module):
    """A custom ActorCritic: a shared body, separate policy and value heads."""

    def __init__(self, obs_dim, n_actions):
        super().__init__()
        self.shared = nn.Sequential(nn.Linear(obs_dim, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh())
        self.policy_head = nn.Linear(32, n_actions)
        self.value_head = nn.Linear(32, 1)

    def policy_logits(self, x):
        return self.policy_head(self.shared(x))


def _randomise(module, seed, scale=0.4):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)


def _observations(obs_dim, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N_OBS, obs_dim)) * rng.uniform(0.1, 3.0, obs_dim)).astype(np.float32)


def _write(tmp_path, name, obj, sidecar):
    model = tmp_path / f"{name}.pt"
    torch.save(obj, model)
    side = tmp_path / f"{name}.json"
    side.write_text(json.dumps(sidecar))
    return model, side


def test_cleanrl_agent_discrete_zero_mismatches_through_the_cli(tmp_path):
    obs_dim = len(FEATURES) * 2 + 2
    agent = CleanRLAgent(obs_dim, 3)
    _randomise(agent, 1)
    model, side = _write(tmp_path, "agent", agent.state_dict(), {
        "actor_prefix": "actor.", "activation": "tanh", "features": FEATURES, "window": 2,
        "state_features": ["position", "unrealized_return"],
        "action": {"type": "discrete", "targets": [-1.0, 0.0, 1.0]},
    })
    out = tmp_path / "BTCUSD_1Hour.pt"
    res = CliRunner().invoke(app, ["convert", "torch", str(model), "--features", str(side), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "BTCUSD 1Hour" in res.output
    policy = load_policy(out)
    assert policy.source_format == "foldgate.policy/1" and policy.hidden_sizes == [64, 64]
    assert (policy.symbol, policy.timeframe) == ("BTCUSD", "1Hour")
    obs = _observations(obs_dim, 2)
    with torch.no_grad():
        want = agent.actor(torch.from_numpy(obs)).argmax(dim=1).numpy()
    got = policy.act(obs)
    assert len(set(want.tolist())) == 3  # every action occurs: the comparison can fail
    assert int(np.sum(got != want)) == 0


def test_elegantrl_actor_continuous_clipped_mean_matches(tmp_path):
    obs_dim = len(FEATURES) + 1
    actor = ElegantActor(obs_dim, 1)
    _randomise(actor, 3, scale=0.1)
    model, side = _write(tmp_path, "actor", actor.state_dict(), {
        "actor_prefix": "net", "activation": "relu", "features": FEATURES,
        "state_features": ["position"], "symbol": "ETH/USD", "timeframe": "15Min",
        "action": {"type": "continuous", "low": -0.5, "high": 0.5},
    })
    out = tmp_path / "out.pt"
    written = convert_torch(model, side, out)
    assert written.activation == "relu" and written.action_kind == "continuous"
    assert (written.symbol, written.timeframe) == ("ETHUSD", "15Min")
    policy = load_policy(out)
    obs = _observations(obs_dim, 4)
    with torch.no_grad():
        want = actor.net(torch.from_numpy(obs))[:, 0].clamp(-0.5, 0.5).numpy()
    got = policy.act(obs)
    assert np.mean(np.abs(want) < 0.5) > 0.2 and np.mean(np.abs(want) == 0.5) > 0.05  # both regimes
    assert int(np.sum(np.abs(got - want) > 1e-5)) == 0


def test_elegantrl_state_norm_kept_in_the_state_dict(tmp_path):
    obs_dim = len(FEATURES)
    actor = ElegantDiscreteActor(obs_dim, 3)
    _randomise(actor, 8)
    with torch.no_grad():
        actor.state_avg.copy_(torch.linspace(-2.0, 3.0, obs_dim))
        actor.state_std.copy_(torch.linspace(0.3, 4.0, obs_dim))
    model, side = _write(tmp_path, "edp", actor.state_dict(), {
        "actor_prefix": "net.", "activation": "relu", "features": FEATURES,
        "obs_norm_keys": {"mean": "state_avg", "std": "state_std"},
        "action": {"type": "discrete", "targets": [-1.0, 0.0, 1.0]},
    })
    policy = convert_torch(model, side, tmp_path / "SPY_1Day.pt")
    assert policy.obs_norm is not None and policy.obs_norm.epsilon == 0.0
    np.testing.assert_array_equal(policy.obs_norm.denom, actor.state_std.detach().numpy())
    obs = _observations(obs_dim, 9) * 3.0
    with torch.no_grad():
        want = actor(torch.from_numpy(obs)).numpy()
    got = load_policy(tmp_path / "SPY_1Day.pt").act(obs)
    assert len(set(want.tolist())) == 3
    assert int(np.sum(got != want)) == 0
    _refused(tmp_path, actor.state_dict(), {**BASE, "actor_prefix": "net.", "features": FEATURES,
                                            "obs_norm_keys": {"mean": "state_avg"}}, "obs_norm_keys")
    _refused(tmp_path, actor.state_dict(), {**BASE, "actor_prefix": "net.", "features": FEATURES,
                                            "obs_norm_keys": {"mean": "avg", "std": "state_std"}}, "'avg'")


def test_custom_actor_critic_body_then_head_under_a_state_dict_key(tmp_path):
    obs_dim = len(FEATURES) + 3
    ac = ActorCritic(obs_dim, 3)
    _randomise(ac, 5)
    rng = np.random.default_rng(6)
    mean = rng.normal(0, 1, obs_dim).tolist()
    var = rng.uniform(0.5, 4.0, obs_dim).tolist()
    ckpt = {"model_state_dict": ac.state_dict(), "step": 123, "optimizer": {"lr": 3e-4}}
    model, side = _write(tmp_path, "ac", ckpt, {
        "state_dict_key": "model_state_dict", "actor_prefix": ["shared.", "policy_head."],
        "activation": "tanh", "features": FEATURES,
        "state_features": ["position", "unrealized_return", "bars_held"],
        "obs_norm": {"mean": mean, "var": var, "epsilon": 1e-8, "clip": 5.0},
        "action": {"type": "discrete", "targets": [0.0, 1.0, None]},
        "trained_until": "2024-12-20T00:00:00Z",
    })
    out = tmp_path / "AAPL_1Day.pt"
    convert_torch(model, side, out)
    policy = load_policy(out)
    assert policy.hidden_sizes == [32, 32] and policy.n_out == 3
    assert policy.trained_until.year == 2024
    obs = _observations(obs_dim, 7)
    x = torch.from_numpy(obs)
    x = torch.clamp((x - torch.tensor(mean, dtype=torch.float32)) / torch.sqrt(torch.tensor(var, dtype=torch.float32) + 1e-8), -5.0, 5.0)
    with torch.no_grad():
        want = ac.policy_logits(x).argmax(dim=1).numpy()
    got = policy.act(obs)
    assert len(set(want.tolist())) == 3
    assert int(np.sum(got != want)) == 0
    # the value head is not part of the policy: its weights changed nothing
    assert policy.layers[-1][0].shape == (3, 32)


def _refused(tmp_path, obj, sidecar, *words):
    model, side = _write(tmp_path, "m", obj, sidecar)
    res = CliRunner().invoke(app, ["convert", "torch", str(model), "--features", str(side), "-o", str(tmp_path / "o.pt")])
    assert res.exit_code == 1, res.output
    line = res.output.strip()
    assert line.startswith("Error: ") and "\n" not in line and "Traceback" not in res.output, res.output
    for w in words:
        assert w in line, line
    assert not (tmp_path / "o.pt").exists()
    return line


BASE = {"actor_prefix": "actor.", "activation": "tanh", "features": ["ret_1", "ret_4"],
        "action": {"type": "discrete", "targets": [0.0, 1.0]}}


@pytest.mark.parametrize("make, words", [
    (lambda: nn.Sequential(nn.Conv1d(2, 4, 3), nn.Tanh(), nn.Linear(4, 2)), ["actor.0.weight", "convolution", "supported: "]),
    (lambda: nn.Sequential(nn.Linear(2, 8), nn.LayerNorm(8), nn.Linear(8, 2)), ["actor.1.weight", "layer norm", "supported: "]),
    (lambda: nn.Sequential(nn.LSTM(2, 8)), ["recurrent", "supported: "]),
    (lambda: nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Linear(8, 2)), ["batch norm", "supported: "]),
    (lambda: nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(7, 2)), ["actor.2.weight", "do not chain"]),
    (lambda: nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2)), ["takes 3 inputs"]),
])
def test_other_architectures_are_refused_saying_what_is_supported(tmp_path, make, words):
    actor = make()
    sd = {f"actor.{k}": v for k, v in actor.state_dict().items()}
    _refused(tmp_path, sd, BASE, *words)


def test_nested_modules_and_missing_prefixes_are_named(tmp_path):
    sd = {f"actor.net.{k}": v for k, v in nn.Sequential(nn.Linear(2, 2)).state_dict().items()}
    _refused(tmp_path, sd, BASE, "nested module")
    _refused(tmp_path, {"pi.weight": torch.zeros(2, 2)}, BASE, "actor_prefix 'actor.'", "pi.weight")


def test_sidecar_problems_are_one_line(tmp_path):
    sd = {f"actor.{k}": v for k, v in nn.Sequential(nn.Linear(2, 2)).state_dict().items()}
    _refused(tmp_path, sd, {**BASE, "colour": "red"}, "colour: unknown key")
    _refused(tmp_path, sd, {k: v for k, v in BASE.items() if k != "activation"}, "activation: missing")
    _refused(tmp_path, sd, {**BASE, "activation": "gelu"}, "activation", "tanh, relu")
    _refused(tmp_path, sd, {**BASE, "features": ["ret_1", "bogus_9"]}, "features[1]", "bogus_9")
    _refused(tmp_path, {"model": sd}, BASE, "state_dict_key")
    _refused(tmp_path, {"model": sd}, {**BASE, "state_dict_key": "weights"}, "state_dict_key 'weights'", "'model'")


def test_a_wide_layer_is_refused(tmp_path):
    width = LAYER_WIDTH.value()
    sd = {"actor.0.weight": torch.zeros(width + 1, 2), "actor.0.bias": torch.zeros(width + 1)}
    _refused(tmp_path, sd, BASE, f"wider than {width:,} units")


def test_bounds_come_from_engine_limits(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDGATE_MAX_LAYER_WIDTH", "8")
    sd = {f"actor.{k}": v for k, v in nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).state_dict().items()}
    _refused(tmp_path, sd, BASE, "wider than 8 units", "FOLDGATE_MAX_LAYER_WIDTH")
    monkeypatch.setenv("FOLDGATE_MAX_LAYER_WIDTH", "4096")
    monkeypatch.setenv("FOLDGATE_MAX_POLICY_PARAMS", "20")
    _refused(tmp_path, sd, BASE, "parameters", "FOLDGATE_MAX_POLICY_PARAMS")
    monkeypatch.delenv("FOLDGATE_MAX_POLICY_PARAMS")
    monkeypatch.setenv("FOLDGATE_MAX_POLICY_MB", "1")
    big = {"actor.0.weight": torch.zeros(600, 600), "actor.0.bias": torch.zeros(600)}
    _refused(tmp_path, big, BASE, "bytes, over the bound")


def test_torchscript_and_pickled_code_are_refused_and_never_run(tmp_path):
    scripted = torch.jit.script(nn.Sequential(nn.Linear(2, 2)))
    path = tmp_path / "ts.pt"
    scripted.save(str(path))
    side = tmp_path / "s.json"
    side.write_text(json.dumps(BASE))
    res = CliRunner().invoke(app, ["convert", "torch", str(path), "--features", str(side), "-o", str(tmp_path / "o.pt")])
    assert res.exit_code == 1 and "TorchScript" in res.output and "supported: " in res.output

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    line = _refused(tmp_path, {"actor.0.weight": torch.zeros(2, 2), "x": Evil()}, BASE, "nothing in it was executed")
    assert "builtins.open" in line or "open" in line
    assert not marker.exists()


def test_legacy_pickle_format_is_refused(tmp_path):
    sd = {f"actor.{k}": v for k, v in nn.Sequential(nn.Linear(2, 2)).state_dict().items()}
    path = tmp_path / "legacy.pt"
    torch.save(sd, path, _use_new_zipfile_serialization=False)
    side = tmp_path / "s.json"
    side.write_text(json.dumps(BASE))
    with pytest.raises(PolicyError, match="legacy"):
        convert_torch(path, side, tmp_path / "o.pt")


def test_sb3_command_is_still_registered():
    res = CliRunner().invoke(app, ["convert", "--help"])
    assert res.exit_code == 0 and "sb3" in res.output and "torch" in res.output
