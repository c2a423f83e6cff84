"""stable-baselines3 PPO zips: real models trained for a few steps here, loaded without
unpickling anything, acting exactly as SB3's predict(deterministic=True); the
refusals; and `foldgate convert sb3` with and without --trust-pickle."""

from __future__ import annotations

import base64
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

sb3 = pytest.importorskip("stable_baselines3")
gym = pytest.importorskip("gymnasium")

import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize  # noqa: E402

from cli.convert import convert  # noqa: E402
from engine.errors import PolicyError  # noqa: E402
from engine.policies.checkpoint import load_policy  # noqa: E402
from engine.policies.sb3 import load_sb3_policy, read_sb3_zip, sidecar_path  # noqa: E402

OBS_DIM = 7  # 3 features x window 2 + 1 state feature
SIDECAR = {"features": ["ret_1", "ret_4", "rsi_14"], "window": 2, "state_features": ["position"]}


class TinyEnv(gym.Env):
    """Random observations, random reward: enough for PPO to run its updates.

    The observations come from the env's own seeded generator, never from
    `observation_space.sample()`: a space draws from a generator seeded from the OS
    unless it is seeded itself, which made the trained weights (and so whether
    box_asym's actions reach both bounds) change from run to run."""

    def __init__(self, action_space, obs_dim=OBS_DIM):
        self.observation_space = gym.spaces.Box(-5.0, 5.0, (obs_dim,), np.float32)
        self.action_space = action_space
        self._t = 0
        self._rng = np.random.default_rng(0)

    def _obs(self):
        return self._rng.uniform(-5.0, 5.0, self.observation_space.shape).astype(np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self._obs(), {}

    def step(self, action):
        self._t += 1
        return self._obs(), float(np.random.default_rng(self._t).normal()), False, self._t >= 50, {}


def _ppo(env, **kw):
    return PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=2, seed=0, device="cpu", **kw)


def _write_sidecar(zip_path: Path, **extra) -> Path:
    side = dict(SIDECAR, **extra)
    p = sidecar_path(zip_path)
    p.write_text(json.dumps(side))
    return p


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("sb3")
    out = {}

    # Discrete, custom separate net_arch, ReLU
    m = _ppo(TinyEnv(gym.spaces.Discrete(3)), policy_kwargs=dict(net_arch=dict(pi=[32, 16], vf=[8]), activation_fn=torch.nn.ReLU))
    m.learn(128)
    m.save(d / "ETHUSD_1Hour.zip")
    _write_sidecar(d / "ETHUSD_1Hour.zip", targets=[0.0, 1.0, None])
    out["discrete"] = (d / "ETHUSD_1Hour.zip", m)

    # 1-dim Box, SB3 defaults (64x64 Tanh)
    m = _ppo(TinyEnv(gym.spaces.Box(-1.0, 1.0, (1,), np.float32)))
    m.learn(128)
    m.save(d / "SPY_1Hour.zip")
    _write_sidecar(d / "SPY_1Hour.zip")
    out["box"] = (d / "SPY_1Hour.zip", m)

    # asymmetric Box bounds, one shared-spec hidden layer, ReLU, no separate pi/vf dict
    m = _ppo(TinyEnv(gym.spaces.Box(-0.3, 0.8, (1,), np.float32)), policy_kwargs=dict(net_arch=[16], activation_fn=torch.nn.ReLU, log_std_init=-1.0))
    m.learn(128)
    with torch.no_grad():  # action_net starts at gain 0.01: widen it so the bounds are reached
        m.policy.action_net.weight.mul_(300.0)
    m.save(d / "AAPL_1Hour.zip")
    _write_sidecar(d / "AAPL_1Hour.zip")
    out["box_asym"] = (d / "AAPL_1Hour.zip", m)

    # Discrete trained under VecNormalize (the stats saved by SB3 itself)
    venv = VecNormalize(DummyVecEnv([lambda: TinyEnv(gym.spaces.Discrete(3))]), clip_obs=4.0)
    m = _ppo(venv, policy_kwargs=dict(net_arch=dict(pi=[16, 16], vf=[16])))
    m.learn(128)
    m.save(d / "BTCUSD_1Hour.zip")
    venv.save(str(d / "vecnormalize.pkl"))
    _write_sidecar(d / "BTCUSD_1Hour.zip", action={"type": "discrete", "targets": [-1.0, 0.0, 1.0]})
    out["vecnorm"] = (d / "BTCUSD_1Hour.zip", m, venv)

    # refused shapes: built and saved, no training needed
    m = _ppo(TinyEnv(gym.spaces.MultiDiscrete([3, 3])))
    m.save(d / "multidiscrete.zip")
    out["multidiscrete"] = d / "multidiscrete.zip"
    m = _ppo(TinyEnv(gym.spaces.Box(-1.0, 1.0, (2,), np.float32)))
    m.save(d / "box2.zip")
    out["box2"] = d / "box2.zip"
    m = _ppo(TinyEnv(gym.spaces.Box(-1.0, 1.0, (1,), np.float32)), use_sde=True)
    m.save(d / "sde.zip")
    out["sde"] = d / "sde.zip"
    m = _ppo(TinyEnv(gym.spaces.Discrete(3)), policy_kwargs=dict(activation_fn=torch.nn.LeakyReLU))
    m.save(d / "leaky.zip")
    out["leaky"] = d / "leaky.zip"
    out["dir"] = d
    return out


def _obs(n=400, seed=0):
    return np.random.default_rng(seed).normal(0, 2.0, (n, OBS_DIM)).astype(np.float32)


# ---------------------------------------------------------------------------
# parity with SB3

def test_discrete_relu_custom_arch_matches_predict(models):
    path, model = models["discrete"]
    pol = load_policy(path)
    assert pol.source_format == "sb3.zip"
    assert (pol.symbol, pol.timeframe) == ("ETHUSD", "1Hour")
    assert pol.activation == "relu" and pol.hidden_sizes == [32, 16] and pol.obs_dim == OBS_DIM
    obs = _obs()
    expected = model.predict(obs, deterministic=True)[0]
    np.testing.assert_array_equal(pol.act(obs), expected)
    with torch.no_grad():
        logits = model.policy.action_net(model.policy.mlp_extractor.forward_actor(torch.from_numpy(obs))).numpy()
    np.testing.assert_allclose(pol.forward(obs), logits, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("key", ["box", "box_asym"])
def test_box_mean_clipped_matches_predict(models, key):
    path, model = models[key]
    pol = load_policy(path)
    assert pol.action_kind == "continuous"
    low, high = float(model.action_space.low[0]), float(model.action_space.high[0])
    assert (pol.low, pol.high) == (np.float32(low), np.float32(high))
    obs = _obs(seed=1) * 3  # large inputs so some actions hit the bounds
    expected = model.predict(obs, deterministic=True)[0][:, 0]
    got = pol.act(obs)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got == np.float32(high), expected == np.float32(high))
    np.testing.assert_array_equal(got == np.float32(low), expected == np.float32(low))
    if key == "box_asym":
        assert 0 < np.mean(got == np.float32(high)) < 1 and 0 < np.mean(got == np.float32(low)) < 1


def test_box_defaults_are_tanh_64x64(models):
    pol = load_policy(models["box"][0])
    assert pol.activation == "tanh" and pol.hidden_sizes == [64, 64]


def test_vecnormalize_model_with_obs_norm_in_sidecar_json(models, tmp_path):
    path, model, venv = models["vecnorm"]
    dst = tmp_path / path.name
    shutil.copy(path, dst)
    rms = venv.obs_rms
    on = {"mean": rms.mean.tolist(), "var": rms.var.tolist(), "epsilon": venv.epsilon, "clip": venv.clip_obs}
    _write_sidecar(dst, targets=[-1.0, 0.0, 1.0], obs_norm=on)
    pol = load_policy(dst)
    obs = _obs(seed=2)
    expected = model.predict(venv.normalize_obs(obs), deterministic=True)[0]
    agree = np.mean(pol.act(obs) == expected)
    assert agree >= 0.99  # float32 vs VecNormalize's float64 normalisation may flip a near-tie


# ---------------------------------------------------------------------------
# never unpickles

def _rewrite_zip(src: Path, dst: Path, replace: dict | None = None, drop=()) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if item.filename in drop:
                continue
            data = (replace or {}).get(item.filename, zin.read(item.filename))
            zout.writestr(item.filename, data)
    return dst


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_serialized_blobs_are_never_loaded(models, tmp_path):
    src, model = models["discrete"]
    marker = tmp_path / "PWNED"
    with zipfile.ZipFile(src) as z:
        data = json.loads(z.read("data"))
    blob = base64.b64encode(pickle.dumps(_Payload(marker))).decode()
    for key in ("policy_kwargs", "observation_space", "action_space", "policy_class", "lr_schedule"):
        if isinstance(data.get(key), dict):
            data[key][":serialized:"] = blob
    dst = _rewrite_zip(src, tmp_path / "ETHUSD_1Hour.zip", {"data": json.dumps(data).encode()})
    shutil.copy(sidecar_path(src), sidecar_path(dst))
    pol = load_policy(dst)
    assert not marker.exists()
    np.testing.assert_array_equal(pol.act(_obs()), model.predict(_obs(), deterministic=True)[0])


def test_malicious_policy_pth_is_not_executed(models, tmp_path):
    src, _ = models["discrete"]
    marker = tmp_path / "PWNED"
    dst = _rewrite_zip(src, tmp_path / "ETHUSD_1Hour.zip", {"policy.pth": pickle.dumps(_Payload(marker), protocol=2)})
    shutil.copy(sidecar_path(src), sidecar_path(dst))
    with pytest.raises(PolicyError, match="policy.pth.*code or Python objects"):
        load_policy(dst)
    assert not marker.exists()


# ---------------------------------------------------------------------------
# refusals

@pytest.mark.parametrize(
    "key, pattern",
    [
        ("multidiscrete", r"action space MultiDiscrete is not supported; supported: .*Discrete or 1-dim Box"),
        ("box2", r"Box of shape \(2,\) is not supported"),
        ("sde", r"gSDE"),
        ("leaky", r"activation LeakyReLU is not supported \(supported: Tanh, ReLU\)"),
    ],
)
def test_unsupported_models_are_refused(models, key, pattern):
    path = models[key]
    _write_sidecar(path)
    with pytest.raises(PolicyError, match=pattern) as ei:
        load_policy(path)
    assert str(path) in str(ei.value) and "\n" not in str(ei.value)


def test_dict_observation_refused(tmp_path):
    class DictEnv(TinyEnv):
        def __init__(self):
            super().__init__(gym.spaces.Discrete(2))
            self.observation_space = gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (3,), np.float32)})

        def reset(self, seed=None, options=None):
            return self.observation_space.sample(), {}

    m = PPO("MultiInputPolicy", DictEnv(), n_steps=64, device="cpu")
    m.save(tmp_path / "dict.zip")
    with pytest.raises(PolicyError, match="MultiInputPolicy|observation space Dict"):
        load_policy(tmp_path / "dict.zip")


def _with_state_dict(src: Path, dst: Path, edit) -> Path:
    import io

    with zipfile.ZipFile(src) as z:
        sd = torch.load(io.BytesIO(z.read("policy.pth")), weights_only=True)
    buf = io.BytesIO()
    torch.save(edit(dict(sd)), buf)
    return _rewrite_zip(src, dst, {"policy.pth": buf.getvalue()})


def test_old_shared_net_layout_is_mapped(models, tmp_path):
    # SB3 < 1.8 could share the first layers: shared_net, then policy_net
    src, model = models["discrete"]

    def edit(sd):
        sd["mlp_extractor.shared_net.0.weight"] = sd.pop("mlp_extractor.policy_net.0.weight")
        sd["mlp_extractor.shared_net.0.bias"] = sd.pop("mlp_extractor.policy_net.0.bias")
        sd["mlp_extractor.policy_net.0.weight"] = sd.pop("mlp_extractor.policy_net.2.weight")
        sd["mlp_extractor.policy_net.0.bias"] = sd.pop("mlp_extractor.policy_net.2.bias")
        return sd

    dst = _with_state_dict(src, tmp_path / src.name, edit)
    shutil.copy(sidecar_path(src), sidecar_path(dst))
    obs = _obs(seed=5)
    np.testing.assert_array_equal(load_policy(dst).act(obs), model.predict(obs, deterministic=True)[0])


@pytest.mark.parametrize(
    "key, pattern",
    [
        ("features_extractor.cnn.0.weight", "features extractor with parameters"),
        ("lstm_actor.weight_ih_l0", "recurrent"),
        ("mlp_extractor.policy_net.1.weight", "not a plain Linear/activation stack"),
    ],
)
def test_unmappable_parameters_refused(models, tmp_path, key, pattern):
    src, _ = models["discrete"]

    def edit(sd):
        sd[key] = torch.zeros(4, 4)
        return sd

    dst = _with_state_dict(src, tmp_path / src.name, edit)
    shutil.copy(sidecar_path(src), sidecar_path(dst))
    with pytest.raises(PolicyError, match=pattern):
        load_policy(dst)


def test_not_an_sb3_zip(tmp_path):
    p = tmp_path / "model.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("weights.bin", b"\x00" * 16)
    with pytest.raises(PolicyError, match="not a stable-baselines3 model.*supported"):
        load_policy(p)
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("data", "this is not json")
        z.writestr("policy.pth", b"")
    with pytest.raises(PolicyError, match="not JSON"):
        load_policy(p)
    q = tmp_path / "not_a_zip.zip"
    q.write_text("hello")
    with pytest.raises(PolicyError, match="not a torch checkpoint|not a zip"):
        load_policy(q)


def test_missing_policy_pth(models, tmp_path):
    src, _ = models["discrete"]
    dst = _rewrite_zip(src, tmp_path / "ETHUSD_1Hour.zip", drop=("policy.pth",))
    with pytest.raises(PolicyError, match="has no policy.pth"):
        load_policy(dst)


def test_sidecar_size_mismatch_names_both_numbers(models, tmp_path):
    src, _ = models["discrete"]
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    sp = sidecar_path(dst)
    sp.write_text(json.dumps({"features": ["ret_1", "ret_4"], "window": 2, "state_features": ["position"], "targets": [0, 1, None]}))
    with pytest.raises(PolicyError) as ei:
        load_policy(dst)
    msg = str(ei.value)
    assert msg.startswith(f"{sp}: ")
    assert "describes 5 inputs (2 features x window 2 + 1 state features)" in msg
    assert "takes 7" in msg


def test_sidecar_problems(models, tmp_path):
    src, _ = models["discrete"]
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    with pytest.raises(PolicyError, match=r"needs its sidecar ETHUSD_1Hour\.features\.json"):
        load_policy(dst)
    sp = sidecar_path(dst)
    cases = [
        (dict(SIDECAR), r"action\.targets: missing; give 3 target positions"),
        (dict(SIDECAR, targets=[0, 1]), r"action\.targets: 2 targets but .* has Discrete\(3\)"),
        (dict(SIDECAR, targets=[0, 1, None], activation="tanh"), r"activation: 'tanh' but .* says 'relu'"),
        (dict(SIDECAR, targets=[0, 1, None], features=["ret_1", "bogus_9", "rsi_14"]), r"features\[1\]"),
        (dict(SIDECAR, targets=[0, 1, None], colour="red"), r"colour: unknown key"),
        (dict(SIDECAR, action={"type": "continuous"}), r"action\.type: 'continuous' but .* discrete"),
    ]
    for side, pattern in cases:
        sp.write_text(json.dumps(side))
        with pytest.raises(PolicyError, match=pattern) as ei:
            load_policy(dst)
        assert str(sp) in str(ei.value)
    sp.write_text("{not json")
    with pytest.raises(PolicyError, match="not valid JSON"):
        load_policy(dst)


def test_explicit_sidecar_path(models, tmp_path):
    src, model = models["discrete"]
    side = tmp_path / "anything.json"
    side.write_text(json.dumps(dict(SIDECAR, targets=[0, 1, None], symbol="LINKUSD")))
    pol = load_sb3_policy(src, sidecar=side)
    assert pol.symbol == "LINKUSD" and pol.timeframe == "1Hour"
    net = read_sb3_zip(src)
    assert net.activation == "relu" and net.hidden == [32, 16] and net.n_actions == 3


# ---------------------------------------------------------------------------
# foldgate convert sb3

def test_convert_refuses_pickle_without_trust(models, tmp_path):
    path, _, _ = models["vecnorm"]
    out = tmp_path / "out.pt"
    res = CliRunner().invoke(convert, ["sb3", str(path), "--vecnormalize", str(path.parent / "vecnormalize.pkl"), "-o", str(out)])
    assert res.exit_code == 2
    assert "can run arbitrary code" in res.output and "--trust-pickle" in res.output and "obs_norm" in res.output
    assert not out.exists()


def test_convert_with_trust_pickle(models, tmp_path):
    path, model, venv = models["vecnorm"]
    out = tmp_path / "converted.pt"
    res = CliRunner().invoke(
        convert,
        ["sb3", str(path), "--features", str(sidecar_path(path)), "--vecnormalize",
         str(path.parent / "vecnormalize.pkl"), "--trust-pickle", "-o", str(out)],
    )
    assert res.exit_code == 0, res.output
    assert "Wrote" in res.output and "obs_norm" in res.output
    pol = load_policy(out)
    assert pol.source_format == "foldgate.policy/1" and (pol.symbol, pol.timeframe) == ("BTCUSD", "1Hour")
    np.testing.assert_allclose(pol.obs_norm.mean, venv.obs_rms.mean.astype(np.float32))
    np.testing.assert_allclose(pol.obs_norm.var, venv.obs_rms.var.astype(np.float32))
    assert pol.obs_norm.clip == 4.0 and pol.obs_norm.epsilon == venv.epsilon
    np.testing.assert_array_equal(pol.targets, [-1.0, 0.0, 1.0])
    obs = _obs(seed=3)
    expected = model.predict(venv.normalize_obs(obs), deterministic=True)[0]
    assert np.mean(pol.act(obs) == expected) >= 0.99


def test_convert_without_vecnormalize_and_errors(models, tmp_path):
    path, model = models["box"]
    out = tmp_path / "SPY_1Hour.pt"
    res = CliRunner().invoke(convert, ["sb3", str(path), "-o", str(out)])
    assert res.exit_code == 0, res.output
    obs = _obs(seed=4)
    np.testing.assert_allclose(load_policy(out).act(obs), model.predict(obs, deterministic=True)[0][:, 0], rtol=1e-5, atol=1e-6)

    res = CliRunner().invoke(convert, ["sb3", str(tmp_path / "missing.zip"), "-o", str(tmp_path / "x.pt")])
    assert res.exit_code == 1 and "Error:" in res.output and "no such file" in res.output
    res = CliRunner().invoke(convert, ["sb3", str(path), "--trust-pickle", "-o", str(tmp_path / "x.pt")])
    assert res.exit_code == 2 and "--trust-pickle only applies to --vecnormalize" in res.output
    res = CliRunner().invoke(convert, ["sb3", str(models["box2"]), "-o", str(tmp_path / "x.pt")])
    assert res.exit_code == 1 and "1-dim Box" in res.output
    assert not (tmp_path / "x.pt").exists()


def test_policy_cache_sees_sidecar_changes(models, tmp_path, monkeypatch):
    """An SB3 zip's sidecar is half the policy: editing or breaking it must not be hidden
    by the cache of validated policies."""
    from engine.policies.policy_cache import load_policy_cached

    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    src, _ = models["discrete"]
    zp = tmp_path / src.name
    shutil.copy(src, zp)
    side = _write_sidecar(zp, targets=[0.0, 1.0, None])
    first = load_policy_cached(zp)
    assert np.isnan(first.targets[2])
    _write_sidecar(zp, targets=[0.0, 0.5, 1.0])
    assert list(load_policy_cached(zp).targets) == [0.0, 0.5, 1.0]
    side.write_text("{not json")
    with pytest.raises(PolicyError):
        load_policy_cached(zp)
