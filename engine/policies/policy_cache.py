"""A cache of validated policies, so a warm run does not import torch.

Importing torch costs about 1.5 s, most of the 2 s a warm `foldgate backtest` may take.
The first load of a checkpoint goes through `load_policy` (torch.load with
weights_only=True, full validation); the validated arrays are then kept as an `.npz`
(read back with allow_pickle=False, so the cache can never run code) keyed by the
sha256 of the file's bytes, its name (the name can carry the symbol) and, for an SB3
zip, its sidecar's bytes. A changed file has a new key.

What an entry is trusted for (docs/security.md): an entry carries the sha256 of its own
payload (every array's name, dtype, shape and bytes) and the sha256 of the source file
it was built from; it is used only when both still match. Anything else (a damaged,
truncated, edited or foreign entry) is discarded and rebuilt from the source. The
directory must be the user's own and not writable by others, since whoever can write
there could plant an entry with a self-consistent hash: a directory that fails the
check is not used (the temp-directory fallback is recreated when it is ours but loose).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from datetime import datetime
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes
from ..cache_root import usable_cache_dir
from ..errors import PolicyError
from ..limits import POLICY_FILE, SIDECAR_FILE, read_bounded
from .checkpoint import load_policy
from .model import ObsNorm, Policy
from .reading import read_policy_bytes
from .sb3 import sidecar_path

CACHE_VERSION = 2
_HASH_KEY = "payload_sha256"
# an entry holds at most the float32 arrays of a bounded policy (16M parameters = 64 MiB)
# plus its metadata; anything larger was not written by foldgate
_ENTRY_SLACK = 1 << 20


def _key(path: Path, data: bytes) -> str:
    h = hashlib.sha256(data)
    h.update(b"\0" + path.name.encode("utf-8", "surrogateescape") + b"\0" + str(CACHE_VERSION).encode())
    if data[:2] == b"PK" and path.suffix.lower() == ".zip":
        # an SB3 zip is half a policy: its sidecar holds the features, targets and obs_norm
        try:
            h.update(b"\0sidecar\0" + read_bounded(sidecar_path(path), SIDECAR_FILE, PolicyError))
        except PolicyError:  # over its bound: load_policy refuses it, nothing is cached
            h.update(b"\0oversized sidecar")
        except (OSError, ValueError):
            h.update(b"\0no sidecar")
    return h.hexdigest()


def payload_hash(arrays) -> str:
    """sha256 over every array but the hash itself: name, dtype, shape, bytes, in name
    order, so an edit of any value, or a renamed or added array, changes it."""
    h = hashlib.sha256()
    for name in sorted(k for k in arrays if k != _HASH_KEY):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
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
    arrays[_HASH_KEY] = np.frombuffer(payload_hash(arrays).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


class _Untrusted(Exception):
    """The entry does not verify; it is discarded."""


def _from_npz(path: Path, blob, source_sha256: str) -> object:

    arrays = {k: blob[k] for k in blob.files}
    stored = bytes(arrays.get(_HASH_KEY, np.zeros(0, np.uint8))).decode("ascii", "replace")
    if stored != payload_hash(arrays):
        raise _Untrusted("payload hash")
    meta = json.loads(bytes(arrays["meta"]).decode())
    if meta["sha256"] != source_sha256:
        raise _Untrusted("source hash")
    layers = [(arrays[f"w{i}"], arrays[f"b{i}"]) for i in range(meta["n_layers"])]
    norm = None
    if meta["norm"] is not None:
        norm = ObsNorm(mean=arrays["norm_mean"], var=arrays["norm_var"], epsilon=meta["norm"]["epsilon"],
                       clip=meta["norm"]["clip"])
    return Policy(
        path=path, sha256=meta["sha256"], source_format=meta["source_format"], symbol=meta["symbol"],
        timeframe=meta["timeframe"], features=meta["features"], window=meta["window"],
        state_features=meta["state_features"], obs_norm=norm, layers=layers,
        activation=meta["activation"], action_kind=meta["action_kind"],
        targets=arrays.get("targets"), low=meta["low"], high=meta["high"],
        trained_until=datetime.fromisoformat(meta["trained_until"]) if meta["trained_until"] else None,
    )


def _read_entry(entry: Path, p: Path, source_sha256: str):
    """The cached policy, or None when the entry is absent or does not verify (then it
    is removed, so that it is rebuilt from the source)."""

    try:
        st = os.lstat(entry)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(st.st_mode) or st.st_size > POLICY_FILE.value() + _ENTRY_SLACK:
            raise _Untrusted("not a plain file of a policy's size")
        with open(entry, "rb") as fh:
            raw = fh.read(st.st_size + 1)
        with np.load(io.BytesIO(raw), allow_pickle=False) as blob:
            return _from_npz(p, blob, source_sha256)
    except Exception:  # noqa: BLE001 - damaged, edited or foreign: never used, rebuilt
        try:
            entry.unlink()
        except OSError:
            pass
        return None


def load_policy_cached(path: str | os.PathLike):
    """`load_policy(path)`, from the cache when this exact file was validated before
    and its entry still verifies."""

    p = Path(path)
    try:
        data = read_policy_bytes(p)  # bounded before it is read
    except PolicyError:
        return load_policy(p)  # it words the error
    d = usable_cache_dir()
    entry = d / f"{_key(p, data)}.npz" if d is not None else None
    if entry is not None:
        cached = _read_entry(entry, p, hashlib.sha256(data).hexdigest())
        if cached is not None:
            return cached
    policy = load_policy(p)
    if entry is not None:
        try:
            atomic_write_bytes(entry, _to_npz(policy))
        except Exception:  # noqa: BLE001 - a read-only cache must not fail the run; it only stays cold
            pass
    return policy
