"""`load_policy` (docs/design.md 3: a native checkpoint or an SB3 zip, told apart by
their bytes) and the native `foldgate.policy/1` checkpoint written back."""

from __future__ import annotations

import hashlib
import io
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..atomic import atomic_write_bytes
from ..errors import PolicyError
from .fields import policy_from_fields
from .model import FORMAT, Policy, SUPPORTED
from .reading import malformed, read_policy_bytes, torch_load_safe, zip_kind
from .sb3 import load_sb3_policy

def load_policy(path: str | os.PathLike) -> Policy:
    """Load and validate a native checkpoint or an SB3 PPO zip (with its sidecar)."""
    p = Path(path)
    data = read_policy_bytes(p)
    if not data:
        raise PolicyError(f"{p}: the file is empty; {SUPPORTED}")
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        kind = zip_kind(p, data)
        if kind == "sb3" or (kind == "other" and p.suffix.lower() == ".zip"):
            return load_sb3_policy(p)
        if kind == "torchscript":
            raise PolicyError(
                f"{p}: a TorchScript archive; foldgate does not run TorchScript code. "
                f"Save the weights instead; {SUPPORTED}"
            )
        if kind == "other":
            raise PolicyError(f"{p}: a zip archive that is neither a torch checkpoint nor an SB3 model; {SUPPORTED}")
    elif data[:1] != b"\x80":
        # torch.save writes a zip, or (legacy) a pickle that starts with the PROTO opcode
        raise PolicyError(f"{p}: not a torch checkpoint (neither a zip archive nor a pickle); {SUPPORTED}")
    obj = torch_load_safe(p, io.BytesIO(data))  # the bytes checked and hashed, not a re-read
    sha = hashlib.sha256(data).hexdigest()
    with malformed(p):
        return policy_from_fields(obj, path=p, source_format=FORMAT, sha256=sha)


# ---------------------------------------------------------------------------
# writing

def policy_to_checkpoint(policy: Policy) -> dict[str, Any]:
    """The native checkpoint dict of a policy (tensors, floats, strings only)."""
    import torch  # lazy: torch, ~1 s, only to write a checkpoint

    ck: dict[str, Any] = {"format": FORMAT}
    if policy.symbol:
        ck["symbol"] = policy.symbol
    if policy.timeframe:
        ck["timeframe"] = policy.timeframe
    ck["features"] = list(policy.features)
    ck["window"] = int(policy.window)
    ck["state_features"] = list(policy.state_features)
    if policy.obs_norm is not None:
        ck["obs_norm"] = {
            "mean": torch.from_numpy(np.array(policy.obs_norm.mean, dtype=np.float32)),
            "var": torch.from_numpy(np.array(policy.obs_norm.var, dtype=np.float32)),
            "epsilon": float(policy.obs_norm.epsilon),
            "clip": float(policy.obs_norm.clip),
        }
    actor = []
    for w, b in policy.layers:
        actor += [torch.from_numpy(np.array(w, dtype=np.float32)), torch.from_numpy(np.array(b, dtype=np.float32))]
    ck["actor"] = actor
    ck["activation"] = policy.activation
    if policy.action_kind == "discrete":
        ck["action"] = {
            "type": "discrete",
            "targets": [None if math.isnan(t) else float(t) for t in policy.targets],
        }
    else:
        ck["action"] = {"type": "continuous", "low": float(policy.low), "high": float(policy.high)}
    if policy.trained_until is not None:
        ck["trained_until"] = policy.trained_until.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ck


def _storable(v: Any) -> Any:
    """Only what the weights-only unpickler accepts may go into the file: numpy
    arrays become tensors, datetimes ISO strings."""
    import torch  # lazy: torch, ~1 s, only to write a checkpoint

    if isinstance(v, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(v))
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, datetime):
        d = v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)
        return d.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, Mapping):
        return {k: _storable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_storable(x) for x in v]
    return v


def save_policy(path: str | os.PathLike, **fields: Any) -> Path:
    """Validate `fields` as a native checkpoint and write it atomically with
    torch.save. `format` defaults to foldgate.policy/1. Returns the path."""
    import torch  # lazy: torch, ~1 s, only to write a checkpoint

    p = Path(path)
    fields = {k: _storable(v) for k, v in fields.items()}
    fields.setdefault("format", FORMAT)
    policy_from_fields(fields, path=p)  # never write a file load_policy would refuse
    buf = io.BytesIO()
    torch.save(fields, buf)
    atomic_write_bytes(p, buf.getvalue())
    return p
