"""stable-baselines3 PPO zips -> `Policy`, without unpickling anything.

A `PPO.save()` zip holds `policy.pth` (a state dict: read with the weights-only
unpickler) and `data` (JSON in which every non-JSON value is a cloudpickle blob under
`:serialized:`, next to readable `repr`s of its attributes). foldgate reads only the
readable parts: the network comes from the state-dict keys and shapes, the action and
observation spaces and the activation from their readable fields, and everything the
zip lacks (features, window, state features, action targets, obs_norm) from the JSON
sidecar `MODEL.features.json` beside it.

`vecnormalize.pkl` has no readable form; `read_vecnormalize` unpickles it only when
the caller says it trusts the file (`foldgate convert sb3 --trust-pickle`).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import FoldgateError, PolicyError
from ..limits import LAYER_WIDTH, POLICY_FILE, POLICY_PARAMS, SIDECAR_FILE, parse_json, read_bounded, show
from .fields import FieldContext, check_tensor_meta, field_key, policy_from_fields
from .model import Policy
from .reading import check_zip_sizes, malformed, torch_load_safe

SUPPORTED_SB3 = (
    "supported: stable-baselines3 PPO/A2C with MlpPolicy: a flat Box observation, "
    "Discrete or 1-dim Box actions, Tanh or ReLU, any net_arch for the actor, "
    "no gSDE and no squash_output"
)
SIDECAR_KEYS = (
    "features", "window", "state_features", "action", "targets", "obs_norm", "activation",
    "symbol", "timeframe", "trained_until", "meta",
)
_POLICY_KEY = re.compile(r"mlp_extractor\.(policy_net|shared_net|value_net)\.(\d+)\.(weight|bias)")


@dataclass
class Sb3Network:
    """What the zip itself says about the actor (no sidecar)."""

    path: Path
    sha256: str
    obs_dim: int
    actor: list[Any]  # [W0, b0, ..., Wout, bout] torch tensors
    hidden: list[int]
    activation: str | None  # None: only pickled in the zip; the sidecar must say
    action_kind: str  # "discrete" | "continuous"
    n_actions: int
    low: float | None
    high: float | None
    sb3_version: str | None


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """`MODEL.zip` -> `MODEL.features.json` beside it."""
    p = Path(model_path)
    stem = p.name[:-4] if p.name.lower().endswith(".zip") else p.name
    return p.with_name(stem + ".features.json")


def _err(path: Any, msg: str) -> PolicyError:
    return PolicyError(" ".join(f"{path}: {msg}".split()))


def _read_entry(zf: zipfile.ZipFile, path: Path, name: str, most: int | None = None) -> bytes:
    info = zf.getinfo(name)
    most = POLICY_FILE.value() if most is None else most
    if info.file_size > most:
        raise _err(path, f"entry {name!r} is {info.file_size:,} bytes, over the bound of {most:,}")
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError, EOFError, NotImplementedError) as exc:
        # RuntimeError: encrypted entries; NotImplementedError: an unknown compression
        raise _err(path, f"cannot read entry {name!r}: {' '.join(str(exc).split())[:120]}") from None


def _class_name(typ: Any) -> str:
    """"<class 'gymnasium.spaces.box.Box'>" -> "Box"."""
    m = re.search(r"'([\w.]+)'", str(typ))
    return m.group(1).rsplit(".", 1)[-1] if m else str(typ)


def _parse_floats(s: Any) -> list[float]:
    """A numpy repr such as "[-1.]" or "[-inf  2.5]" -> floats."""
    if isinstance(s, (list, tuple)):
        return [float(x) for x in s]
    if isinstance(s, (int, float)) and not isinstance(s, bool):
        return [float(s)]
    body = str(s).strip().strip("[]")
    if "..." in body:
        raise ValueError("truncated repr")
    return [float(tok) for tok in body.replace(",", " ").split()]


def _shown(v: Any) -> str:
    return show(v)


def _shape(space: Mapping) -> list[int] | None:
    """A space's shape from its readable `_shape` (a list, or a repr like "(7,)"), or
    None when it is neither (an integer, a mapping, digits past any real size)."""
    raw = space.get("_shape", space.get("shape"))
    if isinstance(raw, str):
        toks = re.findall(r"\d+", raw)
        if any(len(t) > 9 for t in toks):
            return None
        raw = [int(t) for t in toks]
    if not isinstance(raw, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
        return None
    return raw


def _space(data: Mapping, key: str, path: Path) -> Mapping:
    sp = data.get(key)
    if not isinstance(sp, Mapping) or ":type:" not in sp:
        raise _err(path, f"data has no readable {key}; not a stable-baselines3 model saved by PPO.save()")
    return sp


def read_sb3_zip(path: str | os.PathLike) -> Sb3Network:
    """Read the actor of an SB3 PPO zip from `policy.pth` (weights only) and `data`
    (JSON, readable fields only). Refuses what foldgate cannot reproduce exactly."""
    p = Path(path)
    if not p.exists():
        raise _err(p, "no such file")
    if p.is_dir():
        raise _err(p, "is a directory, not a model zip")
    try:
        raw = read_bounded(p, POLICY_FILE, PolicyError)
    except OSError as exc:
        raise _err(p, f"cannot read: {exc.strerror}") from None
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        names = set(zf.namelist())
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError):
        raise _err(p, f"not a zip archive, so not a stable-baselines3 model; {SUPPORTED_SB3}") from None
    check_zip_sizes(p, zf, len(raw))
    if "data" not in names:
        raise _err(p, f"a zip without a 'data' entry: not a stable-baselines3 model saved by PPO.save(); {SUPPORTED_SB3}")
    data = parse_json(_read_entry(zf, p, "data", SIDECAR_FILE.value()), f"{p}: its 'data' entry", PolicyError,
                      "is not JSON, so not a stable-baselines3 model")
    if not isinstance(data, Mapping):
        raise _err(p, "its 'data' entry is not a JSON object: not a stable-baselines3 model")
    if "policy.pth" not in names:
        raise _err(p, "has no policy.pth (the network weights): save the model with PPO.save()")
    version = None
    if "_stable_baselines3_version" in names:
        version = _read_entry(zf, p, "_stable_baselines3_version").decode("utf-8", "replace").strip()

    # the policy class: only its readable attributes
    pc = data.get("policy_class")
    if isinstance(pc, Mapping):
        readable = " ".join(str(v) for k, v in pc.items() if k in ("__init__", "__module__", "__doc__"))
        init = str(pc.get("__init__", ""))
        m = re.search(r"<function (\w+)\.__init__", init)
        cls = m.group(1) if m else ""
        if "Recurrent" in cls or ("sb3_contrib" in str(pc.get("__module__", "")) and "recurrent" in readable.lower()):
            raise _err(p, f"a recurrent policy ({cls or 'LSTM'}) is not supported; {SUPPORTED_SB3}")
        if "Cnn" in cls:
            raise _err(p, f"a CNN policy ({cls}) is not supported; {SUPPORTED_SB3}")
        if "MultiInput" in cls:
            raise _err(p, f"a MultiInputPolicy (Dict observations) is not supported; {SUPPORTED_SB3}")
    if data.get("use_sde") is True:
        raise _err(p, f"uses gSDE (use_sde=True), whose deterministic action foldgate does not reproduce; {SUPPORTED_SB3}")
    pk = data.get("policy_kwargs")
    pk = pk if isinstance(pk, Mapping) else None
    if pk is not None:
        if pk.get("squash_output") in (True, "True"):
            raise _err(p, f"uses squash_output=True; {SUPPORTED_SB3}")
        fe = pk.get("features_extractor_class")
        if fe is not None and "FlattenExtractor" not in str(fe):
            raise _err(p, f"uses the features extractor {_class_name(fe)}; {SUPPORTED_SB3}")

    # observation space
    osp = _space(data, "observation_space", p)
    otype = _class_name(osp[":type:"])
    if otype != "Box":
        raise _err(p, f"observation space {otype} is not supported (it needs a flat Box); {SUPPORTED_SB3}")
    oshape = _shape(osp)
    if oshape is None or len(oshape) != 1:
        raise _err(p, f"observation space has shape {_shown(osp.get('_shape', osp.get('shape')))}; only a flat "
                      f"(1-dim) Box is supported")
    obs_dim = oshape[0]

    # action space
    asp = _space(data, "action_space", p)
    atype = _class_name(asp[":type:"])
    low = high = None
    if atype == "Discrete":
        try:
            n_actions = int(str(asp.get("n")))
            start = int(str(asp.get("start", "0")))
        except ValueError:
            raise _err(p, "action_space: Discrete without a readable n") from None
        if start != 0:
            raise _err(p, f"action_space: Discrete(start={start}) is not supported; only start=0")
        kind = "discrete"
    elif atype == "Box":
        ashape = _shape(asp)
        if ashape != [1]:
            shown = tuple(ashape) if ashape is not None else _shown(asp.get("_shape", asp.get("shape")))
            raise _err(p, f"action_space: a Box of shape {shown} is not "
                          f"supported (only 1-dim Box); {SUPPORTED_SB3}")
        try:
            lo, hi = _parse_floats(asp.get("low")), _parse_floats(asp.get("high"))
        except (TypeError, ValueError, OverflowError):
            raise _err(p, "action_space: Box without readable low/high") from None
        if len(lo) != 1 or len(hi) != 1:
            raise _err(p, "action_space: Box low/high are not one value each")
        low, high = float(np.float32(lo[0])), float(np.float32(hi[0]))
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise _err(p, f"action_space: Box bounds [{low}, {high}] must be finite with low < high")
        n_actions, kind = 1, "continuous"
    else:
        raise _err(p, f"action space {atype} is not supported; {SUPPORTED_SB3}")

    # the weights
    pth = _read_entry(zf, p, "policy.pth")
    if pth[:2] == b"PK":  # itself a torch zip: its records' declared sizes are checked too
        try:
            inner = zipfile.ZipFile(io.BytesIO(pth))
        except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError):
            raise _err(p, "policy.pth is a damaged zip") from None
        check_zip_sizes(f"{p} (policy.pth)", inner, len(pth))
    sd = torch_load_safe(f"{p} (policy.pth)", io.BytesIO(pth))
    if not isinstance(sd, Mapping):
        raise _err(p, f"policy.pth holds a {type(sd).__name__}, not a state dict")
    keys = [str(k) for k in sd]
    nets: dict[str, dict[int, dict[str, Any]]] = {"policy_net": {}, "shared_net": {}, "value_net": {}}
    other = []
    for k in keys:
        m = _POLICY_KEY.fullmatch(k)
        if m:
            nets[m.group(1)].setdefault(int(m.group(2)), {})[m.group(3)] = sd[k]
        elif k not in ("action_net.weight", "action_net.bias", "value_net.weight", "value_net.bias", "log_std"):
            other.append(k)
    if other:
        low_keys = " ".join(other).lower()
        if "lstm" in low_keys:
            what = "a recurrent (LSTM) policy"
        elif any(k.split(".")[0].endswith("features_extractor") for k in other):
            what = "a features extractor with parameters (CNN or custom)"
        elif "action_net.weight" not in keys:
            what = "not an actor-critic (PPO/A2C) policy"
        else:
            what = "layers foldgate cannot map"
        raise _err(p, f"{what}: unexpected parameters {', '.join(other[:4])}; {SUPPORTED_SB3}")
    if "action_net.weight" not in keys or "action_net.bias" not in keys:
        raise _err(p, f"policy.pth has no action_net: not an actor-critic (PPO/A2C) policy; {SUPPORTED_SB3}")

    actor: list[Any] = []
    for net in ("shared_net", "policy_net"):
        idx = sorted(nets[net])
        # MlpExtractor builds Linear, activation, Linear, activation...: Linear at even indices
        if idx != list(range(0, 2 * len(idx), 2)) or any(set(nets[net][i]) != {"weight", "bias"} for i in idx):
            raise _err(p, f"mlp_extractor.{net} is not a plain Linear/activation stack ({idx}); {SUPPORTED_SB3}")
        for i in idx:
            actor += [nets[net][i]["weight"], nets[net][i]["bias"]]
    actor += [sd["action_net.weight"], sd["action_net.bias"]]

    import torch  # lazy: torch, ~1 s; a warm run reads the policy cache instead

    # shapes from metadata before any value is touched (isfinite of a stride-0 tensor
    # that declares a huge shape would allocate all of it)
    ctx, width, n_params = FieldContext(f"{p} (policy.pth)"), LAYER_WIDTH.value(), 0
    if obs_dim > width:
        raise _err(p, f"observation space of {obs_dim:,} inputs, more than {width:,}; {LAYER_WIDTH.advice()}")
    for j in range(len(actor) // 2):
        for t, what in ((actor[2 * j], "weight"), (actor[2 * j + 1], "bias")):
            if not isinstance(t, torch.Tensor):
                raise _err(p, f"policy.pth: layer {j} is not a (weight matrix, bias vector) pair")
            n_params += check_tensor_meta(ctx, f"layer {j} {what}", t, 2 if what == "weight" else 1, width)
    if n_params > POLICY_PARAMS.value():
        raise _err(p, f"policy.pth: more than {POLICY_PARAMS.value():,} parameters; {POLICY_PARAMS.advice()}")

    prev = obs_dim
    hidden: list[int] = []
    names = [f"layer {j}" for j in range(len(actor) // 2)]
    for j in range(len(actor) // 2):
        w, b = actor[2 * j], actor[2 * j + 1]
        if not (isinstance(w, torch.Tensor) and isinstance(b, torch.Tensor)) or w.ndim != 2 or b.ndim != 1:
            raise _err(p, f"policy.pth: {names[j]} is not a (weight matrix, bias vector) pair")
        if not (w.is_floating_point() and b.is_floating_point()):
            raise _err(p, f"policy.pth: {names[j]} has non-float dtype {w.dtype}")
        if not (bool(torch.isfinite(w).all()) and bool(torch.isfinite(b).all())):
            raise _err(p, f"policy.pth: {names[j]} has non-finite weights")
        if w.shape[1] != prev:
            src = "the observation space" if j == 0 else f"layer {j - 1}"
            raise _err(p, f"policy.pth: {names[j]} takes {w.shape[1]} inputs but {src} gives {prev}")
        if b.shape[0] != w.shape[0]:
            raise _err(p, f"policy.pth: {names[j]} bias has {b.shape[0]} values for {w.shape[0]} outputs")
        prev = int(w.shape[0])
        hidden.append(prev)
    hidden = hidden[:-1]
    if prev != n_actions:
        raise _err(p, f"action_net has {prev} outputs but the action space {atype} needs {n_actions}")
    if pk is not None and isinstance(pk.get("net_arch"), (Mapping, list)):
        na = pk["net_arch"]
        pi = na.get("pi") if isinstance(na, Mapping) else na
        if isinstance(pi, list) and all(isinstance(x, int) for x in pi) and not nets["shared_net"]:
            if list(pi) != hidden:
                raise _err(p, f"policy_kwargs net_arch pi={pi} disagrees with policy.pth layers {hidden}")

    # activation: the readable repr of activation_fn; absent from readable kwargs = SB3's default Tanh
    activation = None
    if pk is not None:
        fn = pk.get("activation_fn")
        if fn is not None:
            name = _class_name(fn)
            if name not in ("Tanh", "ReLU"):
                raise _err(p, f"activation {name} is not supported (supported: Tanh, ReLU)")
            activation = name.lower()
        elif ":serialized:" not in pk:
            activation = "tanh"

    return Sb3Network(
        path=p,
        sha256=hashlib.sha256(raw).hexdigest(),
        obs_dim=obs_dim,
        actor=actor,
        hidden=hidden,
        activation=activation,
        action_kind=kind,
        n_actions=n_actions,
        low=low,
        high=high,
        sb3_version=version,
    )


def read_sidecar(path: str | os.PathLike) -> dict[str, Any]:
    """The sidecar JSON as a dict, with its keys checked (values are checked later)."""
    p = Path(path)
    if not p.exists():
        raise _err(p, "no such sidecar file (features, window, state_features, action targets as JSON)")
    try:
        side = parse_json(read_bounded(p, SIDECAR_FILE, PolicyError), str(p), PolicyError, "not valid JSON")
    except OSError as exc:
        raise _err(p, f"cannot read: {exc.strerror}") from None
    if not isinstance(side, dict):
        raise _err(p, "expected a JSON object with features, window, state_features, action")
    unknown = [k for k in side if k not in SIDECAR_KEYS]
    if unknown:
        raise _err(p, f"{field_key(unknown[0])}: unknown key (known: {', '.join(SIDECAR_KEYS)})")
    if "features" not in side:
        raise _err(p, "features: missing")
    return side


def sb3_checkpoint_fields(
    model_path: str | os.PathLike,
    sidecar: str | os.PathLike | None = None,
    obs_norm: Mapping[str, Any] | None = None,
    *,
    net: Sb3Network | None = None,
) -> dict[str, Any]:
    """Native checkpoint fields (docs/design.md 3) for an SB3 zip plus its sidecar; `obs_norm`
    (e.g. from `read_vecnormalize`) replaces the sidecar's, which it may not contradict."""
    mp = Path(model_path)
    net = net or read_sb3_zip(mp)
    sp = Path(sidecar) if sidecar is not None else sidecar_path(mp)
    if not sp.exists() and sidecar is None:
        raise _err(
            mp,
            f"needs its sidecar {sp.name} beside it (JSON: features, window, state_features, "
            f"action targets, optional obs_norm) since the zip does not say what the inputs are",
        )
    side = read_sidecar(sp)

    features, window = side["features"], side.get("window", 1)
    state = side.get("state_features", []) or []
    if not isinstance(features, list) or not all(isinstance(x, str) for x in features):
        raise _err(sp, "features: expected a list of feature names")
    if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= LAYER_WIDTH.value():
        raise _err(sp, f"window: expected an integer from 1 to {LAYER_WIDTH.value():,}, got {_shown(window)}")
    if not isinstance(state, list) or not all(isinstance(x, str) for x in state):
        raise _err(sp, "state_features: expected a list of names")
    n = len(features) * window + len(state)
    if n != net.obs_dim:
        raise _err(
            sp,
            f"the sidecar describes {n} inputs ({len(features)} features x window {window} + "
            f"{len(state)} state features) but the network in {mp.name} takes {net.obs_dim}",
        )

    activation = side.get("activation")
    if activation is not None and activation not in ("tanh", "relu"):
        raise _err(sp, f"activation: {_shown(activation)} is not supported (supported: tanh, relu)")
    if net.activation is not None:
        if activation is not None and activation != net.activation:
            raise _err(sp, f"activation: {activation!r} but {mp.name} says {net.activation!r}")
        activation = net.activation
    elif activation is None:
        raise _err(
            sp,
            f"activation: missing, and {mp.name} keeps policy_kwargs only as a pickle, which "
            f"foldgate does not load; add \"activation\": \"tanh\" or \"relu\"",
        )

    action = side.get("action")
    if action is not None and not isinstance(action, Mapping):
        raise _err(sp, "action: expected an object {type, targets}")
    action = dict(action or {})
    if "targets" in side:
        if "targets" in action:
            raise _err(sp, "targets: given both at the top level and in action")
        action["targets"] = side["targets"]
    akind = action.get("type", net.action_kind)
    if akind != net.action_kind:
        raise _err(sp, f"action.type: {akind!r} but {mp.name} has a {net.action_kind} action space")
    if net.action_kind == "discrete":
        if "targets" not in action:
            raise _err(sp, f"action.targets: missing; give {net.n_actions} target positions (numbers, or null = hold)")
        if isinstance(action["targets"], list) and len(action["targets"]) != net.n_actions:
            raise _err(
                sp, f"action.targets: {len(action['targets'])} targets but {mp.name} has Discrete({net.n_actions})"
            )
        extra = [k for k in action if k not in ("type", "targets")]
        if extra:
            raise _err(sp, f"action.{extra[0]}: unknown key for a discrete action")
        act = {"type": "discrete", "targets": action["targets"]}
    else:
        for k, v in (("low", net.low), ("high", net.high)):
            if k in action and action[k] != v:
                raise _err(sp, f"action.{k}: {action[k]!r} but the Box in {mp.name} has {v!r}")
        extra = [k for k in action if k not in ("type", "low", "high")]
        if extra:
            raise _err(sp, f"action.{extra[0]}: unknown key for a continuous action")
        act = {"type": "continuous", "low": net.low, "high": net.high}

    fields: dict[str, Any] = {
        "format": "foldgate.policy/1",
        "features": features,
        "window": window,
        "state_features": state,
        "actor": list(net.actor),
        "activation": activation,
        "action": act,
    }
    if obs_norm is not None and side.get("obs_norm") is not None:
        raise _err(sp, "obs_norm: given in the sidecar and from VecNormalize; keep one")
    on = obs_norm if obs_norm is not None else side.get("obs_norm")
    if on is not None:
        if not isinstance(on, Mapping):
            raise _err(sp, f"obs_norm: expected an object {{mean, var, epsilon, clip}}, got {_shown(on)}")
        fields["obs_norm"] = dict(on)
    for k in ("symbol", "timeframe", "trained_until", "meta"):
        if side.get(k) is not None:
            fields[k] = side[k]
    return fields


def load_sb3_policy(
    model_path: str | os.PathLike,
    sidecar: str | os.PathLike | None = None,
    obs_norm: Mapping[str, Any] | None = None,
) -> Policy:
    """An SB3 PPO zip (plus sidecar, default `MODEL.features.json`) as a `Policy`."""
    mp = Path(model_path)
    with malformed(mp):
        net = read_sb3_zip(mp)
        fields = sb3_checkpoint_fields(mp, sidecar, obs_norm, net=net)
        sp = Path(sidecar) if sidecar is not None else sidecar_path(mp)
        return policy_from_fields(
            fields, path=mp, source_format="sb3.zip", sha256=net.sha256, name_path=mp, where=sp
        )


def read_vecnormalize(path: str | os.PathLike, *, trust_pickle: bool = False) -> dict[str, Any] | None:
    """obs_norm {mean, var, epsilon, clip} from a VecNormalize `.pkl`, or None when it
    did not normalise observations. Unpickling runs code from the file, so it happens
    only with trust_pickle=True (the user's explicit opt-in)."""
    p = Path(path)
    if not trust_pickle:
        raise _err(
            p,
            "is a pickle, and loading a pickle can run arbitrary code; foldgate loads it only "
            "with --trust-pickle (trust_pickle=True). Or put the statistics in the sidecar as "
            "JSON: \"obs_norm\": {\"mean\": [...], \"var\": [...], \"epsilon\": 1e-8, \"clip\": 10.0}",
        )
    if not p.exists():
        raise _err(p, "no such file")

    try:
        with open(p, "rb") as fh:
            vn = pickle.load(fh)  # noqa: S301 - the user opted in with --trust-pickle
    except ModuleNotFoundError as exc:
        raise _err(p, f"needs the module {exc.name!r} to unpickle (install stable-baselines3)") from None
    except OSError as exc:
        raise _err(p, f"cannot read: {exc.strerror}") from None
    except Exception as exc:  # a damaged or foreign pickle can fail in any way
        raise _err(p, f"cannot unpickle: {type(exc).__name__}: {exc}") from None
    rms = getattr(vn, "obs_rms", None)
    if rms is None or not hasattr(rms, "mean") or not hasattr(rms, "var"):
        raise _err(p, f"holds a {type(vn).__name__}, not a VecNormalize with obs_rms")
    if not getattr(vn, "norm_obs", True):
        return None
    if isinstance(rms, Mapping):
        raise _err(p, "obs_rms is per-key (Dict observations); only flat Box observations are supported")
    mean = np.asarray(rms.mean, dtype=np.float64).reshape(-1)
    var = np.asarray(rms.var, dtype=np.float64).reshape(-1)
    try:
        eps, clip = float(getattr(vn, "epsilon", 1e-8)), float(getattr(vn, "clip_obs", 10.0))
    except (TypeError, ValueError):
        raise _err(p, "epsilon/clip_obs are not numbers") from None
    return {"mean": mean.astype(np.float32), "var": var.astype(np.float32), "epsilon": eps, "clip": clip}


def check_obs_norm_size(obs_norm: Mapping[str, Any], obs_dim: int, source: Any) -> None:
    n = int(np.size(obs_norm["mean"]))
    if n != obs_dim:
        raise FoldgateError(f"{source}: obs_rms has {n} values but the network takes {obs_dim} inputs")
