"""`foldgate convert torch`: a user's own PyTorch actor, saved as a plain `state_dict`,
-> a native foldgate.policy/1 checkpoint (docs/design.md 3).

The file is read with `torch.load(weights_only=True)` only, after its size and the
sizes of the zip members torch will read are bounded. A state_dict holds no
architecture, so the sidecar JSON says which keys are the actor (`actor_prefix`: one
prefix, or a list: a body then an action head) and what runs between its layers
(`activation`); the Linear layers under the prefixes are taken in the order of their
indices and must chain. Anything that is not a Linear layer (a convolution, a
recurrent cell, a layer norm, ...) is refused with a message that says what is
supported. The sidecar also holds the fields of docs/design.md 3 that a state_dict lacks:
features, window, state_features, obs_norm, action, symbol, timeframe, trained_until.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any, Mapping

from ..errors import PolicyError
from ..limits import LAYER_WIDTH, POLICY_PARAMS, SIDECAR_FILE, parse_json, read_bounded
from .checkpoint import load_policy, policy_to_checkpoint, save_policy
from .fields import policy_from_fields
from .reading import read_policy_bytes, torch_load_safe, zip_kind

SUPPORTED_TORCH = (
    "supported: a torch.save'd state_dict (or a dict holding one under the sidecar's "
    "state_dict_key) of an MLP actor: Linear layers, with tanh or relu between them, under "
    "actor_prefix (e.g. 'actor.' for CleanRL's actor.0/2/4, 'net.' for an ElegantRL actor, "
    "or ['body.', 'pi.'] for a shared body and a policy head)"
)
SIDECAR_KEYS = (
    "actor_prefix", "activation", "state_dict_key", "obs_norm_keys", "symbol", "timeframe",
    "features", "window", "state_features", "obs_norm", "action", "trained_until",
)
# obs_norm_keys without a clip: normalisation in the user's own forward does not clip;
# the largest float32 keeps every value while staying finite (docs/design.md 3)
_NO_CLIP = 3.4028234663852886e38
_LAYER_KEY = re.compile(r"^(?:(\d+)\.)?(weight|bias)$")


def _err(path: Path, msg: str) -> PolicyError:
    return PolicyError(" ".join(f"{path}: {msg}".split()))


def read_torch_sidecar(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise _err(p, "no such sidecar file (JSON: actor_prefix, activation, features, action, ...)")
    try:
        raw = read_bounded(p, SIDECAR_FILE, PolicyError)
    except OSError as exc:
        raise _err(p, f"cannot read: {exc.strerror}") from None
    side = parse_json(raw, str(p), PolicyError, "not valid JSON")
    if not isinstance(side, dict):
        raise _err(p, "expected a JSON object with actor_prefix, activation, features, action, ...")
    unknown = [k for k in side if k not in SIDECAR_KEYS]
    if unknown:
        raise _err(p, f"{unknown[0]}: unknown key (known: {', '.join(SIDECAR_KEYS)})")
    for k in ("actor_prefix", "activation", "features", "action"):
        if k not in side:
            raise _err(p, f"{k}: missing")
    prefix = side["actor_prefix"]
    if isinstance(prefix, str):
        side["actor_prefix"] = [prefix]
    elif not (isinstance(prefix, list) and prefix and all(isinstance(x, str) for x in prefix)):
        raise _err(p, "actor_prefix: expected a string such as 'actor.' or a list such as ['body.', 'pi.']")
    key = side.get("state_dict_key")
    if key is not None and not isinstance(key, str):
        raise _err(p, "state_dict_key: expected a string, the key of the dict that holds the state_dict")
    nk = side.get("obs_norm_keys")
    if nk is not None:
        if "obs_norm" in side:
            raise _err(p, "obs_norm_keys: give either obs_norm (values) or obs_norm_keys (state_dict keys), not both")
        if not isinstance(nk, dict) or not isinstance(nk.get("mean"), str) or \
                sum(isinstance(nk.get(x), str) for x in ("std", "var")) != 1:
            raise _err(p, 'obs_norm_keys: expected {"mean": KEY, "std": KEY} or {"mean": KEY, "var": KEY, '
                          '"epsilon": 1e-8, "clip": 10.0}, KEY a state_dict key')
        extra = [x for x in nk if x not in ("mean", "std", "var", "epsilon", "clip")]
        if extra:
            raise _err(p, f"obs_norm_keys.{extra[0]}: unknown key (known: mean, std, var, epsilon, clip)")
    return side


def _read_bounded(path: Path) -> bytes:
    """The file's bytes after checking that neither the file nor what torch.load will
    unpack from it exceeds the policy file bound (engine/limits.py)."""

    data = read_policy_bytes(path)
    if not data:
        raise _err(path, f"the file is empty; {SUPPORTED_TORCH}")
    if data[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
        # torch's legacy format allocates every storage at the size its pickle declares
        # before reading it: a small file could ask for any amount of memory
        raise _err(
            path,
            "not a torch zip file (torch.save's format since torch 1.6; a legacy pickle "
            f"declares storage sizes that cannot be bounded before loading); {SUPPORTED_TORCH}",
        )
    kind = zip_kind(path, data)  # also bounds the sizes its entries declare
    if kind == "torchscript":
        raise _err(path, f"a TorchScript module; foldgate does not run TorchScript code. Save model.state_dict() instead; {SUPPORTED_TORCH}")
    if kind == "sb3":
        raise _err(path, "a stable-baselines3 zip: use `foldgate convert sb3`")
    if kind != "torch":
        raise _err(path, f"a zip archive that is not a torch checkpoint; {SUPPORTED_TORCH}")
    return data


def _select_state_dict(path: Path, obj: Any, key: str | None) -> Mapping[str, Any]:
    import torch  # lazy: torch, ~1 s, only while converting

    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            have = ", ".join(repr(k) for k in list(obj)[:10]) if isinstance(obj, Mapping) else type(obj).__name__
            raise _err(path, f"state_dict_key {key!r}: no such key (the file holds {have})")
        obj = obj[key]
    if not isinstance(obj, Mapping):
        raise _err(path, f"holds a {type(obj).__name__}, not a state_dict; {SUPPORTED_TORCH}")
    if obj.get("format") is not None and "actor" in obj:
        raise _err(path, "already a foldgate checkpoint: nothing to convert")
    nested = [k for k, v in obj.items() if isinstance(v, Mapping) and any(isinstance(x, torch.Tensor) for x in v.values())]
    if nested and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise _err(path, f"a dict of state_dicts ({', '.join(map(repr, nested[:5]))}): name the one to convert with the sidecar's state_dict_key")
    return obj


def actor_layers(path: Path, sd: Mapping[str, Any], prefixes: list[str]) -> list[tuple[Any, Any]]:
    """[(W (out, in), b (out,)), ...] of the Linear layers under `prefixes`, in order:
    prefixes in the order given, layers of one prefix by index. Tensors, not copied."""
    import torch  # lazy: torch, ~1 s, only while converting

    layers: list[tuple[Any, Any]] = []
    names: list[str] = []
    width, max_params = LAYER_WIDTH.value(), POLICY_PARAMS.value()
    for prefix in prefixes:
        pre = prefix
        if pre and not pre.endswith(".") and not any(k.startswith(pre) and k[len(pre):] in ("weight", "bias") for k in sd):
            pre += "."  # "actor" means the module actor: its keys are actor.0.weight, ...
        keys = [k for k in sd if isinstance(k, str) and k.startswith(pre)]
        if not keys:
            some = ", ".join(sorted(str(k) for k in sd)[:12])
            raise _err(path, f"actor_prefix {prefix!r}: no key starts with {pre!r} (keys: {some})")
        by_index: dict[int, dict[str, Any]] = {}
        for k in keys:
            rest = k[len(pre):]
            m = _LAYER_KEY.match(rest)
            if m is None:
                what = _what_is(rest)
                raise _err(path, f"{k}: {what} is not supported; {SUPPORTED_TORCH}")
            idx = int(m.group(1)) if m.group(1) is not None else -1
            by_index.setdefault(idx, {})[m.group(2)] = sd[k]
        if -1 in by_index and len(by_index) > 1:
            raise _err(path, f"actor_prefix {prefix!r}: mixes a single layer ({pre}weight) with numbered layers")
        for idx in sorted(by_index):
            entry = by_index[idx]
            lname = f"{pre}{idx}" if idx >= 0 else pre.rstrip(".")
            w = entry.get("weight")
            b = entry.get("bias")
            if not isinstance(w, torch.Tensor):
                raise _err(path, f"{lname}: a bias without a weight is not a Linear layer; {SUPPORTED_TORCH}")
            if w.dim() != 2:
                what = "a layer norm or batch norm (1-D weight)" if w.dim() == 1 else f"a convolution ({w.dim()}-D weight)"
                raise _err(path, f"{lname}.weight: shape {tuple(w.shape)} is {what}, not a Linear layer; {SUPPORTED_TORCH}")
            out_f, in_f = int(w.shape[0]), int(w.shape[1])
            if max(out_f, in_f) > width:
                raise _err(path, f"{lname}.weight: shape {tuple(w.shape)} is wider than {width:,} units; {LAYER_WIDTH.advice()}")
            if b is None:
                b = torch.zeros(out_f, dtype=torch.float32)  # Linear(bias=False)
            elif not isinstance(b, torch.Tensor) or b.dim() != 1 or int(b.shape[0]) != out_f:
                raise _err(path, f"{lname}.bias: shape {tuple(getattr(b, 'shape', ()))} does not match {out_f} outputs")
            if layers:
                prev = int(layers[-1][0].shape[0])
                if in_f != prev:
                    raise _err(path, f"{lname}.weight: takes {in_f} inputs but {names[-1]} gives {prev} outputs: the layers do not chain")
            layers.append((w, b))
            names.append(lname)
    n_params = sum(int(w.numel()) + int(b.numel()) for w, b in layers)
    if n_params > max_params:
        raise _err(path, f"{n_params:,} parameters in the actor, more than {max_params:,}; {POLICY_PARAMS.advice()}")
    return layers


def _what_is(rest: str) -> str:
    r = rest.lower()
    if "weight_ih" in r or "weight_hh" in r or "bias_ih" in r:
        return "a recurrent layer (LSTM/GRU/RNN)"
    if "running_mean" in r or "running_var" in r or "num_batches_tracked" in r:
        return "a batch norm"
    if "in_proj" in r or "attn" in r:
        return "an attention layer"
    if "." in r:
        return f"a nested module ({rest}; point actor_prefix at the Sequential that holds the layers)"
    return f"the parameter {rest!r}"


def _obs_norm_from_keys(path: Path, sd: Mapping[str, Any], nk: Mapping[str, Any]) -> dict[str, Any]:
    """obs_norm from normalisation statistics kept in the state_dict (ElegantRL's
    state_avg / state_std, a saved running mean and variance). A std becomes var =
    std^2 with epsilon 0: float32 sqrt(std^2) is std again, exactly."""
    import torch  # lazy: torch, ~1 s, only while converting

    def get(k):
        t = sd.get(k)
        if not isinstance(t, torch.Tensor) or t.dim() != 1 or not t.is_floating_point():
            raise _err(path, f"obs_norm_keys: {k!r} is not a 1-D float tensor in the state_dict")
        return t.detach().to(torch.float64)

    mean = get(nk["mean"])
    if "std" in nk:
        var, eps = get(nk["std"]) ** 2, 0.0
    else:
        var, eps = get(nk["var"]), nk.get("epsilon", 1e-8)
    return {"mean": mean.to(torch.float32), "var": var.to(torch.float32), "epsilon": eps,
            "clip": nk.get("clip", _NO_CLIP)}


def torch_checkpoint_fields(model: str | os.PathLike, sidecar: str | os.PathLike) -> dict[str, Any]:
    """The native checkpoint fields for a state_dict file and its sidecar."""

    mp, sp = Path(model), Path(sidecar)
    side = read_torch_sidecar(sp)
    data = _read_bounded(mp)
    obj = torch_load_safe(mp, io.BytesIO(data))
    sd = _select_state_dict(mp, obj, side.get("state_dict_key"))
    layers = actor_layers(mp, sd, side["actor_prefix"])
    fields = {k: v for k, v in side.items() if k not in ("actor_prefix", "state_dict_key", "obs_norm_keys")}
    if side.get("obs_norm_keys") is not None:
        fields["obs_norm"] = _obs_norm_from_keys(mp, sd, side["obs_norm_keys"])
    fields["format"] = "foldgate.policy/1"
    fields["actor"] = [t for wb in layers for t in wb]
    return fields


def convert_torch(model: str | os.PathLike, sidecar: str | os.PathLike, output: str | os.PathLike):
    """Convert, write `output` atomically, and return it as load_policy reads it."""

    fields = torch_checkpoint_fields(model, sidecar)
    # what remains to check (features, action, obs_norm, the first layer against the
    # observation) comes from the sidecar: name both files
    where = f"{model} with {Path(sidecar).name}"
    policy = policy_from_fields(fields, path=Path(model), name_path=Path(output), where=where)
    save_policy(output, **policy_to_checkpoint(policy))
    return load_policy(output)
