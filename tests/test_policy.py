"""Native policy checkpoints: loading, every validation error, forward/act parity with
the same network in torch, and that a malicious pickle is never executed."""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import PolicyError
from engine.policies.checkpoint import load_policy, policy_to_checkpoint, save_policy
from engine.policies.fields import parse_filename, policy_from_fields
from engine.policies.model import FORMAT, set_tanh

ROOT = Path(__file__).resolve().parent.parent


def _fields(
    features=("ret_1", "ret_4", "rsi_14"),
    window=2,
    state=("position",),
    hidden=(8, 5),
    n_out=3,
    activation="tanh",
    action=None,
    seed=0,
    obs_norm=False,
):
    rng = np.random.default_rng(seed)
    obs_dim = len(features) * window + len(state)
    sizes = [obs_dim, *hidden, n_out]
    actor = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        actor.append(torch.from_numpy(rng.normal(0, 1 / np.sqrt(a), (b, a)).astype(np.float32)))
        actor.append(torch.from_numpy(rng.normal(0, 0.1, b).astype(np.float32)))
    f = {
        "format": FORMAT,
        "features": list(features),
        "window": window,
        "state_features": list(state),
        "actor": actor,
        "activation": activation,
        "action": action or {"type": "discrete", "targets": [0.0, 1.0, None][:n_out] + [None] * max(0, n_out - 3)},
    }
    if obs_norm:
        f["obs_norm"] = {
            "mean": torch.from_numpy(rng.normal(0, 0.5, obs_dim).astype(np.float32)),
            "var": torch.from_numpy(rng.uniform(0.01, 4.0, obs_dim).astype(np.float32)),
            "epsilon": 1e-8,
            "clip": 3.0,
        }
    return f


def _write(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


def _torch_reference(policy, obs: np.ndarray) -> np.ndarray:
    mods = []
    for i, (w, b) in enumerate(policy.layers):
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if i < len(policy.layers) - 1:
            mods.append(torch.nn.Tanh() if policy.activation == "tanh" else torch.nn.ReLU())
    net = torch.nn.Sequential(*mods)
    x = torch.from_numpy(obs.astype(np.float32))
    if policy.obs_norm is not None:
        on = policy.obs_norm
        denom = torch.sqrt(torch.from_numpy(on.var) + torch.tensor(on.epsilon, dtype=torch.float32))
        x = torch.clamp((x - torch.from_numpy(on.mean)) / denom, -on.clip, on.clip)
    with torch.no_grad():
        return net(x).numpy()


# ---------------------------------------------------------------------------
# loading

def test_load_valid_and_filename(tmp_path):
    p = _write(tmp_path / "UNIUSD_1Hour.pt", _fields(obs_norm=True))
    pol = load_policy(p)
    assert pol.obs_dim == 3 * 2 + 1
    assert (pol.symbol, pol.timeframe) == ("UNIUSD", "1Hour")
    assert pol.source_format == "foldgate.policy/1"
    assert pol.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert pol.action_kind == "discrete"
    assert pol.targets.dtype == np.float64 and np.isnan(pol.targets[2])
    assert [w.shape for w, _ in pol.layers] == [(8, 7), (5, 8), (3, 5)]
    assert all(w.dtype == np.float32 and b.dtype == np.float32 for w, b in pol.layers)
    assert pol.obs_norm.mean.dtype == np.float32 and pol.obs_norm.clip == 3.0
    assert pol.trained_until is None


def test_fields_override_filename_and_odd_names(tmp_path):
    f = _fields()
    f.update(symbol="btc/usd", timeframe="15Min", trained_until="2024-12-20T00:00:00Z")
    pol = load_policy(_write(tmp_path / "ETHUSD_1Hour.pt", f))
    assert (pol.symbol, pol.timeframe) == ("BTCUSD", "15Min")
    assert pol.trained_until == datetime(2024, 12, 20, tzinfo=timezone.utc)
    pol = load_policy(_write(tmp_path / "mymodel.pt", _fields()))
    assert (pol.symbol, pol.timeframe) == (None, None)
    f = _fields()
    f["timeframe"] = "1h"  # the store's spelling rules apply
    assert load_policy(_write(tmp_path / "m2.pt", f)).timeframe == "1Hour"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("UNIUSD_1Hour.pt", ("UNIUSD", "1Hour")),
        ("AAPL_1Day.pt", ("AAPL", "1Day")),
        ("BTCUSD_15Min_best.pt", ("BTCUSD", "15Min")),
        ("dir/SPY_1Hour.zip", ("SPY", "1Hour")),
        ("model.pt", (None, None)),
        ("UNIUSD_hourly.pt", (None, None)),
        ("uniusd_1hour.pt", ("UNIUSD", "1Hour")),
        ("UNIUSD_1H.pt", ("UNIUSD", "1Hour")),
        ("BTC-USD_1Day.pt", ("BTCUSD", "1Day")),
    ],
)
def test_parse_filename(name, expected):
    assert parse_filename(name) == expected


def test_unknown_fields_are_metadata_and_ignored(tmp_path):
    f = _fields()
    f["step"] = 120_000
    f["optimizer"] = {"lr": 3e-4}
    pol = load_policy(_write(tmp_path / "UNIUSD_1Hour.pt", f))
    ref = load_policy(_write(tmp_path / "REF_1Hour.pt", _fields()))
    obs = np.random.default_rng(0).standard_normal((8, pol.obs_dim)).astype(np.float32)
    assert np.array_equal(pol.forward(obs), ref.forward(obs))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-12-20T00:00:00Z", datetime(2024, 12, 20, tzinfo=timezone.utc)),
        ("2024-12-20T02:00:00+02:00", datetime(2024, 12, 20, tzinfo=timezone.utc)),
        ("2024-12-20", datetime(2024, 12, 20, tzinfo=timezone.utc)),
    ],
)
def test_trained_until_is_utc(tmp_path, text, expected):
    f = _fields()
    f["trained_until"] = text
    pol = load_policy(_write(tmp_path / "X_1Hour.pt", f))
    assert pol.trained_until == expected and pol.trained_until.tzinfo == timezone.utc


# ---------------------------------------------------------------------------
# every validation error names the file and the field, in one line

def _mut(**changes):
    def apply(f):
        for k, v in changes.items():
            if v is _DEL:
                f.pop(k, None)
            else:
                f[k] = v(f) if callable(v) else v
        return f

    return apply


_DEL = object()
_T = torch.tensor


def _set_actor(i, value):
    def fn(f):
        a = list(f["actor"])
        a[i] = value(a[i]) if callable(value) else value
        return a

    return fn


BAD = [
    ("format missing", _mut(format=_DEL), "format"),
    ("format wrong", _mut(format="foldgate.policy/2"), "format"),
    ("features missing", _mut(features=_DEL), "features"),
    ("features not list", _mut(features="ret_1"), "features"),
    ("unknown feature", _mut(features=["ret_1", "momentum", "rsi_14"]), "features[1]"),
    ("feature without k", _mut(features=["ret_1", "ret", "rsi_14"]), "features[1]"),
    ("duplicate feature", _mut(features=["ret_1", "ret_1", "rsi_14"]), "features"),
    ("window zero", _mut(window=0), "window"),
    ("window string", _mut(window="2"), "window"),
    ("window bool", _mut(window=True), "window"),
    ("unknown state", _mut(state_features=["position", "cash"]), "state_features[1]"),
    ("actor missing", _mut(actor=_DEL), "actor"),
    ("actor odd", _mut(actor=lambda f: f["actor"][:-1]), "actor"),
    ("actor not tensors", _mut(actor=_set_actor(0, lambda w: w.tolist())), "actor[0]"),
    ("int weights", _mut(actor=_set_actor(0, lambda w: w.to(torch.int32))), "actor[0]"),
    ("3-d weight", _mut(actor=_set_actor(0, lambda w: w[None])), "actor[0]"),
    ("first layer != obs_dim", _mut(window=3), "actor[0]"),
    ("chain broken", _mut(actor=_set_actor(2, lambda w: w[:, :-1])), "actor[2]"),
    ("bias length", _mut(actor=_set_actor(3, lambda b: b[:-1])), "actor[3]"),
    ("nan weight", _mut(actor=_set_actor(4, lambda w: w.index_fill(1, _T([0]), float("nan")))), "actor[4]"),
    ("inf bias", _mut(actor=_set_actor(5, lambda b: b.index_fill(0, _T([0]), float("inf")))), "actor[5]"),
    ("float64 overflow", _mut(actor=_set_actor(1, lambda b: b.double().index_fill(0, _T([0]), 1e300))), "actor[1]"),
    ("activation", _mut(activation="sigmoid"), "activation"),
    ("action missing", _mut(action=_DEL), "action"),
    ("action type", _mut(action={"type": "box"}), "action.type"),
    ("targets count", _mut(action={"type": "discrete", "targets": [0.0, 1.0]}), "action.targets"),
    ("target bool", _mut(action={"type": "discrete", "targets": [0.0, True, None]}), "action.targets[1]"),
    ("target str", _mut(action={"type": "discrete", "targets": [0.0, "1", None]}), "action.targets[1]"),
    ("target nan", _mut(action={"type": "discrete", "targets": [0.0, float("nan"), None]}), "action.targets[1]"),
    ("targets missing", _mut(action={"type": "discrete"}), "action.targets"),
    ("discrete extra key", _mut(action={"type": "discrete", "targets": [0, 1, None], "low": 0}), "action.low"),
    ("continuous 3 outputs", _mut(action={"type": "continuous", "low": -1.0, "high": 1.0}), "action"),
    ("symbol", _mut(symbol="../etc"), "symbol"),
    ("timeframe", _mut(timeframe="hourly"), "timeframe"),
    ("trained_until", _mut(trained_until="yesterday"), "trained_until"),
    ("trained_until type", _mut(trained_until=20241220), "trained_until"),
]


@pytest.mark.parametrize("label, mutate, field", BAD, ids=[b[0] for b in BAD])
def test_validation_errors_name_file_and_field(tmp_path, label, mutate, field):
    p = _write(tmp_path / "BAD_1Hour.pt", mutate(_fields()))
    with pytest.raises(PolicyError) as ei:
        load_policy(p)
    msg = str(ei.value)
    assert "\n" not in msg
    assert str(p) in msg
    assert f"{field}:" in msg or f"{field} " in msg, msg


def test_first_layer_message_explains_obs_dim(tmp_path):
    f = _fields()
    f["window"] = 3
    with pytest.raises(PolicyError, match=r"takes 7 inputs but the observation \(3 features x window 3 \+ 1 state features\) has 10"):
        load_policy(_write(tmp_path / "X_1Hour.pt", f))


def _cont(low, high):
    return {"type": "continuous", "low": low, "high": high}


BAD_CONT = [
    ("low >= high", _cont(1.0, 1.0), "action"),
    ("low not finite", _cont(float("-inf"), 1.0), "action.low"),
    ("high missing", {"type": "continuous", "low": 0.0}, "action.high"),
]


@pytest.mark.parametrize("label, action, field", BAD_CONT, ids=[b[0] for b in BAD_CONT])
def test_continuous_action_errors(tmp_path, label, action, field):
    p = _write(tmp_path / "X_1Hour.pt", _fields(n_out=1, action=action))
    with pytest.raises(PolicyError, match=rf"{p}: {field}[: ]"):
        load_policy(p)


def _norm(**kw):
    def fn(f):
        on = dict(f["obs_norm"])
        on.update(kw)
        return on

    return fn


BAD_NORM = [
    ("mean length", _norm(mean=torch.zeros(6)), "obs_norm.mean"),
    ("var length", _norm(var=[1.0] * 8), "obs_norm.var"),
    ("var negative", _norm(var=torch.tensor([1.0, 1, 1, -0.5, 1, 1, 1])), "obs_norm.var"),
    ("var nan", _norm(var=torch.tensor([1.0, 1, 1, float("nan"), 1, 1, 1])), "obs_norm.var"),
    ("clip zero", _norm(clip=0.0), "obs_norm.clip"),
    ("epsilon negative", _norm(epsilon=-1.0), "obs_norm.epsilon"),
    ("unknown key", _norm(count=10), "obs_norm.count"),
    ("var + eps zero", _norm(var=torch.zeros(7), epsilon=0.0), "obs_norm.var"),
]


@pytest.mark.parametrize("label, mutate, field", BAD_NORM, ids=[b[0] for b in BAD_NORM])
def test_obs_norm_errors(tmp_path, label, mutate, field):
    f = _fields(obs_norm=True)
    f["obs_norm"] = mutate(f)
    p = _write(tmp_path / "X_1Hour.pt", f)
    with pytest.raises(PolicyError, match=rf"{p}: {field}[: ]"):
        load_policy(p)


def test_obs_norm_as_lists_is_accepted(tmp_path):
    f = _fields()
    f["obs_norm"] = {"mean": [0.0] * 7, "var": [1.0] * 7}
    pol = load_policy(_write(tmp_path / "X_1Hour.pt", f))
    assert pol.obs_norm.epsilon == 1e-8 and pol.obs_norm.clip == 10.0


def test_top_level_not_a_dict_and_bare_state_dict(tmp_path):
    with pytest.raises(PolicyError, match="not a dict"):
        load_policy(_write(tmp_path / "a.pt", [torch.zeros(2)]))
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    with pytest.raises(PolicyError, match="bare state_dict.*supported"):
        load_policy(_write(tmp_path / "b.pt", net.state_dict()))


# ---------------------------------------------------------------------------
# files that are not checkpoints, and pickles that would run code

def test_missing_file_directory_empty_and_garbage(tmp_path):
    with pytest.raises(PolicyError, match="no such file"):
        load_policy(tmp_path / "nope.pt")
    with pytest.raises(PolicyError, match="directory"):
        load_policy(tmp_path)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(PolicyError, match="empty"):
        load_policy(tmp_path / "empty.pt")
    (tmp_path / "text.pt").write_text('{"format": "foldgate.policy/1"}')
    with pytest.raises(PolicyError, match="not a torch checkpoint.*supported"):
        load_policy(tmp_path / "text.pt")
    rng = np.random.default_rng(5)
    for i in range(300):  # garbage fails inside the unpickler in many ways; all are PolicyError
        junk = tmp_path / f"junk{i}.pt"
        junk.write_bytes(b"\x80\x02" + rng.bytes(64))
        with pytest.raises(PolicyError):
            load_policy(junk)
    with zipfile.ZipFile(tmp_path / "other.pt", "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(PolicyError, match="neither a torch checkpoint nor an SB3 model"):
        load_policy(tmp_path / "other.pt")


class _Payload:
    """Unpickling this creates `marker`: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _SystemPayload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_payload_is_live(tmp_path):
    # the control: plain pickle does run it, so the refusals below are meaningful
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(_Payload(marker))).close()
    assert marker.exists()


@pytest.mark.parametrize("how", ["torch.save", "torch.save legacy", "raw pickle", "os.system", "inside a dict"])
def test_malicious_pickle_is_never_executed(tmp_path, how):
    marker = tmp_path / "PWNED"
    p = tmp_path / "EVIL_1Hour.pt"
    if how == "torch.save":
        torch.save(_Payload(marker), p)
    elif how == "torch.save legacy":
        torch.save(_Payload(marker), p, _use_new_zipfile_serialization=False)
    elif how == "raw pickle":
        p.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    elif how == "os.system":
        torch.save({"format": FORMAT, "x": _SystemPayload(marker)}, p)
    else:
        f = _fields()
        f["meta"] = {"note": _Payload(marker)}
        torch.save(f, p)
    with pytest.raises(PolicyError) as ei:
        load_policy(p)
    assert "code or Python objects" in str(ei.value) and "nothing in it was executed" in str(ei.value)
    assert not marker.exists()


def test_full_module_pickle_refused(tmp_path):
    p = tmp_path / "M_1Hour.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), p)
    with pytest.raises(PolicyError, match="code or Python objects"):
        load_policy(p)


def test_torchscript_refused_with_what_is_supported(tmp_path):
    p = tmp_path / "TS_1Hour.pt"
    torch.jit.script(torch.nn.Linear(3, 2)).save(str(p))
    with pytest.raises(PolicyError, match="TorchScript.*supported: a foldgate.policy/1 checkpoint"):
        load_policy(p)


# ---------------------------------------------------------------------------
# forward and act

@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("obs_norm", [False, True])
@pytest.mark.parametrize("hidden", [(), (16,), (32, 16, 8)])
def test_forward_matches_torch(tmp_path, activation, obs_norm, hidden):
    f = _fields(hidden=hidden, activation=activation, obs_norm=obs_norm, seed=len(hidden))
    pol = load_policy(_write(tmp_path / "X_1Hour.pt", f))
    obs = np.random.default_rng(1).normal(0, 2, (300, pol.obs_dim)).astype(np.float32)
    out = pol.forward(obs)
    assert out.dtype == np.float32 and out.shape == (300, 3)
    np.testing.assert_allclose(out, _torch_reference(pol, obs), rtol=1e-5, atol=2e-6)
    np.testing.assert_array_equal(pol.act(obs), np.argmax(_torch_reference(pol, obs), axis=1))


def test_obs_norm_clips(tmp_path):
    f = _fields(obs_norm=True)
    pol = load_policy(_write(tmp_path / "X_1Hour.pt", f))
    obs = np.full((4, pol.obs_dim), 1e6, dtype=np.float32)
    normed = pol.obs_norm.apply(obs)
    assert normed.dtype == np.float32 and np.all(normed == np.float32(3.0))
    np.testing.assert_allclose(pol.forward(obs), _torch_reference(pol, obs), rtol=1e-5, atol=2e-6)


def test_forward_rejects_wrong_width(tmp_path):
    pol = load_policy(_write(tmp_path / "X_1Hour.pt", _fields()))
    with pytest.raises(ValueError, match=r"\(N, 7\)"):
        pol.forward(np.zeros((2, 6), np.float32))
    assert pol.forward(np.zeros(7, np.float32)).shape == (1, 3)


def test_act_ties_take_lowest_index(tmp_path):
    f = _fields(hidden=(4,), n_out=4, action={"type": "discrete", "targets": [-1.0, 0.0, 1.0, None]})
    f["actor"][2] = torch.zeros(4, 4)
    f["actor"][3] = torch.tensor([1.0, 3.0, 3.0, 2.0])
    pol = load_policy(_write(tmp_path / "X_1Hour.pt", f))
    obs = np.random.default_rng(0).normal(size=(50, pol.obs_dim)).astype(np.float32)
    a = pol.act(obs)
    assert a.dtype == np.int64 and np.all(a == 1)
    f["actor"][3] = torch.tensor([2.0, 1.0, 2.0, 2.0])
    assert np.all(load_policy(_write(tmp_path / "Y_1Hour.pt", f)).act(obs) == 0)


def test_continuous_act_is_clipped(tmp_path):
    f = _fields(hidden=(4,), n_out=1, action=_cont(-0.5, 0.75))
    f["actor"][2] = torch.zeros(1, 4)
    obs = np.zeros((3, 7), np.float32)
    for bias, expected in [(5.0, 0.75), (-5.0, -0.5), (0.25, 0.25)]:
        f["actor"][3] = torch.tensor([bias])
        pol = load_policy(_write(tmp_path / f"C{bias}_1Hour.pt", f))
        a = pol.act(obs)
        assert a.dtype == np.float32 and a.shape == (3,)
        np.testing.assert_array_equal(a, np.float32(expected))
    assert (pol.low, pol.high) == (-0.5, 0.75)


def test_forward_uses_the_switchable_tanh(tmp_path):
    pol = load_policy(_write(tmp_path / "X_1Hour.pt", _fields(hidden=(4,))))
    obs = np.ones((2, 7), np.float32)
    calls = []

    def fake(x):
        calls.append(x.shape)
        return np.zeros_like(x)

    try:
        set_tanh(fake)
        out = pol.forward(obs)
    finally:
        set_tanh(None)
    assert calls == [(2, 4)]
    np.testing.assert_array_equal(out, np.broadcast_to(pol.layers[1][1], (2, 3)))


# ---------------------------------------------------------------------------
# writing

def test_save_round_trip(tmp_path):
    f = _fields(obs_norm=True, hidden=(6,))
    f.update(symbol="SPY", timeframe="1Hour", trained_until="2024-06-30T12:00:00Z")
    pol = load_policy(_write(tmp_path / "a.pt", f))
    out = save_policy(tmp_path / "sub" / "b.pt", **policy_to_checkpoint(pol))
    back = load_policy(out)
    obs = np.random.default_rng(2).normal(size=(64, 7)).astype(np.float32)
    np.testing.assert_array_equal(back.forward(obs), pol.forward(obs))
    assert (back.symbol, back.timeframe, back.trained_until) == ("SPY", "1Hour", pol.trained_until)
    assert np.isnan(back.targets[2])


def test_save_accepts_numpy_and_datetime(tmp_path):
    f = _fields(hidden=(4,))
    f["actor"] = [t.numpy() for t in f["actor"]]
    f.pop("format")
    f["trained_until"] = datetime(2024, 1, 2, 3, tzinfo=timezone.utc)
    pol = load_policy(save_policy(tmp_path / "N_1Hour.pt", **f))
    assert pol.trained_until == datetime(2024, 1, 2, 3, tzinfo=timezone.utc)


def test_save_refuses_invalid_and_writes_nothing(tmp_path):
    f = _fields()
    f["features"] = ["nonsense_feature"]
    with pytest.raises(PolicyError, match="features"):
        save_policy(tmp_path / "X_1Hour.pt", **f)
    assert list(tmp_path.iterdir()) == []


def test_policy_from_fields_directly():
    pol = policy_from_fields(_fields(hidden=(3,)))
    assert pol.path is None and pol.obs_dim == 7 and "obs_dim 7" in pol.describe()


# ---------------------------------------------------------------------------
# the committed sample policies

SAMPLES = sorted((ROOT / "data" / "policies").glob("*.pt"))


def test_samples_are_there():
    assert len(SAMPLES) >= 12


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample_policy_loads_and_acts(path):
    pol = load_policy(path)
    assert (pol.symbol, pol.timeframe) == tuple(path.stem.split("_"))
    obs = np.random.default_rng(0).normal(size=(100, pol.obs_dim)).astype(np.float32) * 0.01
    np.testing.assert_allclose(pol.forward(obs), _torch_reference(pol, obs), rtol=1e-5, atol=2e-6)


def test_sample_generator_reproduces_and_varies(tmp_path):
    from data.make_sample_policies import DEFAULT_SYMBOLS, build_sample_policies

    syms = list(DEFAULT_SYMBOLS) + ["BTCUSD2", "AAPL2"]
    paths = build_sample_policies(tmp_path, syms)
    assert [p.name for p in paths] == [f"{s}_1Hour.pt" for s in syms]
    kinds = set()
    obs_rng = np.random.default_rng(3)
    n_default = len(DEFAULT_SYMBOLS)
    for p in paths[:n_default]:
        new, old = load_policy(p), load_policy(ROOT / "data" / "policies" / p.name)
        obs = obs_rng.normal(size=(32, new.obs_dim)).astype(np.float32)
        np.testing.assert_array_equal(new.forward(obs), old.forward(obs))
        kinds.add((new.action_kind, new.activation, new.window > 1, new.obs_norm is not None, bool(new.state_features)))
    assert {k[0] for k in kinds} == {"discrete", "continuous"}
    assert {k[1] for k in kinds} == {"tanh", "relu"}
    assert {k[2] for k in kinds} == {True, False} and {k[3] for k in kinds} == {True, False}
    # the first extra symbol reuses a recipe with other random filler weights
    from data.make_sample_policies import sample_specs

    k = n_default % len(sample_specs())
    a, b = load_policy(paths[k]), load_policy(paths[n_default])
    assert a.features == b.features and not np.array_equal(a.layers[0][0], b.layers[0][0])
    assert b.symbol == "BTCUSD2"


def test_the_design_path_hands_on_the_policies_package():
    """docs/design.md 3 names `engine.policy.load_policy`; it and the other former names of
    engine/policy.py are the very objects of `engine.policies`, and the pipeline's
    `engine.policy_cache` path gives the cache's own function."""
    import engine.policies.checkpoint as checkpoint
    import engine.policies.fields as fields
    import engine.policies.model as model
    import engine.policies.policy_cache as cache
    import engine.policy
    import engine.policy_cache

    assert engine.policy.load_policy is checkpoint.load_policy
    assert engine.policy.save_policy is checkpoint.save_policy
    assert engine.policy.Policy is model.Policy and engine.policy.set_tanh is model.set_tanh
    assert engine.policy.policy_from_fields is fields.policy_from_fields
    assert engine.policy_cache.load_policy_cached is cache.load_policy_cached
