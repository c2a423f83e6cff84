"""A cache of validated policies, so a warm run does not import torch.

Importing torch costs about 1.5 s, most of the 2 s a warm `foldgate backtest` may take.
The first load of a checkpoint goes through `load_policy` (torch.load with
weights_only=True, full validation); the validated arrays are then kept as an `.npz`
(read back with allow_pickle=False, so the cache can never run code) keyed by the
sha256 of the file's bytes, its name (the name can carry the symbol) and, for an SB3
zip, its sidecar's bytes. A changed file
has a new key; a damaged cache entry is ignored and rewritten."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np

from .atomic import atomic_write_bytes

CACHE_VERSION = 1


def cache_dir() -> Path:
    """$FOLDGATE_CACHE_DIR, else ~/.cache/foldgate; a read-only home falls back to the
    temp directory so warm runs stay warm."""
    if os.environ.get("FOLDGATE_CACHE_DIR"):
        return Path(os.environ["FOLDGATE_CACHE_DIR"]) / "policies"
    home = Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "foldgate" / "policies"
    try:
        home.mkdir(parents=True, exist_ok=True)
        if os.access(home, os.W_OK | os.X_OK):
            return home
    except OSError:
        pass
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"foldgate-{uid}" / "policies"


def _key(path: Path, data: bytes) -> str:
    h = hashlib.sha256(data)
    h.update(b"\0" + path.name.encode() + b"\0" + str(CACHE_VERSION).encode())
    if data[:2] == b"PK" and path.suffix.lower() == ".zip":
        # an SB3 zip is half a policy: its sidecar holds the features, targets and obs_norm
        from .sb3 import sidecar_path

        try:
            h.update(b"\0sidecar\0" + sidecar_path(path).read_bytes())
        except OSError:
            h.update(b"\0no sidecar")
    return h.hexdigest()


def _to_npz(policy) -> bytes:
    arrays = {}
    for i, (w, b) in enumerate(policy.layers):
        arrays[f"w{i}"], arrays[f"b{i}"] = w, b
    if policy.obs_norm is not None:
        arrays["norm_mean"], arrays["norm_var"] = policy.obs_norm.mean, policy.obs_norm.var
    if policy.targets is not None:
        arrays["targets"] = policy.targets
    meta = {
        "sha256": policy.sha256, "source_format": policy.source_format, "symbol": policy.symbol,
        "timeframe": policy.timeframe, "features": policy.features, "window": policy.window,
        "state_features": policy.state_features, "activation": policy.activation,
        "action_kind": policy.action_kind, "low": policy.low, "high": policy.high,
        "n_layers": len(policy.layers),
        "norm": None if policy.obs_norm is None else {"epsilon": policy.obs_norm.epsilon,
                                                      "clip": policy.obs_norm.clip},
        "trained_until": policy.trained_until.isoformat() if policy.trained_until else None,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _from_npz(path: Path, blob) -> object:
    from .policy import ObsNorm, Policy

    meta = json.loads(bytes(blob["meta"]).decode())
    layers = [(blob[f"w{i}"], blob[f"b{i}"]) for i in range(meta["n_layers"])]
    norm = None
    if meta["norm"] is not None:
        norm = ObsNorm(mean=blob["norm_mean"], var=blob["norm_var"], epsilon=meta["norm"]["epsilon"],
                       clip=meta["norm"]["clip"])
    return Policy(
        path=path, sha256=meta["sha256"], source_format=meta["source_format"], symbol=meta["symbol"],
        timeframe=meta["timeframe"], features=meta["features"], window=meta["window"],
        state_features=meta["state_features"], obs_norm=norm, layers=layers,
        activation=meta["activation"], action_kind=meta["action_kind"],
        targets=blob["targets"] if "targets" in blob else None, low=meta["low"], high=meta["high"],
        trained_until=datetime.fromisoformat(meta["trained_until"]) if meta["trained_until"] else None,
    )


def load_policy_cached(path: str | os.PathLike):
    """`load_policy(path)`, from the cache when this exact file was validated before."""
    from .policy import load_policy

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError:
        return load_policy(p)  # it words the error
    entry = cache_dir() / f"{_key(p, data)}.npz"
    if entry.exists():
        try:
            with np.load(entry, allow_pickle=False) as blob:
                return _from_npz(p, blob)
        except Exception:  # a damaged or foreign entry: fall through and rewrite it
            pass
    policy = load_policy(p)
    try:
        atomic_write_bytes(entry, _to_npz(policy))
    except Exception:  # a read-only home must not fail the run; it only stays cold
        pass
    return policy
