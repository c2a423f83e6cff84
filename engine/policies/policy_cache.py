"""A cache of validated policies, so a warm run does not import torch.

Importing torch costs about 1.5 s, most of the 2 s a warm `foldgate backtest` may take.
The first load of a checkpoint goes through `load_policy` (torch.load with
weights_only=True, full validation); the validated arrays are then kept as one `.fgp`
entry keyed by the sha256 of the file's bytes, its name (the name can carry the symbol)
and, for an SB3 zip, its sidecar's bytes. A changed file has a new key.

An entry is plain data, never code: a magic line, the byte length of a JSON header, the
header (each array's name, dtype, shape and byte offset; the policy's metadata; the
hashes below), then the arrays' bytes. It is read in one `read` and its arrays are
views onto that buffer. (Entries were `.npz` before: numpy's zip reader took ~0.6 ms of
a warm load's ~1 ms, most of a 1,000-model run's second.)

What an entry is trusted for (docs/security.md): an entry carries the sha256 of its own
payload (every array's name, dtype, shape and bytes, and the metadata) and the sha256
of the source file it was built from; it is used only when both still match and every
offset, shape and dtype in its header is one foldgate writes. Anything else (a damaged,
truncated, edited or foreign entry) is discarded and rebuilt from the source. The
directory must be the user's own and not writable by others, since whoever can write
there could plant an entry with a self-consistent hash: a directory that fails the
check is not used (the temp-directory fallback is recreated when it is ours but loose).
"""

from __future__ import annotations

import hashlib
import json
import math
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

CACHE_VERSION = 3
_HASH_KEY = "payload_sha256"
ENTRY_SUFFIX = ".fgp"
_MAGIC = b"foldgate-policy/3\n"
_LEN_BYTES = 8  # the header's length, little-endian, after the magic line
_ALIGN = 64  # every array starts on a multiple of this (float32 rows stay aligned)
# the only dtypes an entry holds: float32 weights, float64 targets, uint8 text
_DTYPES = {"<f4": np.float32, "<f8": np.float64, "|u1": np.uint8}
# an entry holds at most the float32 arrays of a bounded policy (16M parameters = 64 MiB)
# plus its metadata; anything larger was not written by foldgate
_ENTRY_SLACK = 1 << 20


def _key(path: Path, data: bytes, source_sha256: str) -> str:
    h = hashlib.sha256(source_sha256.encode())  # the file's own hash, computed once
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


def _to_arrays(policy) -> dict[str, np.ndarray]:
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
    return arrays


def pack_entry(arrays: dict[str, np.ndarray]) -> bytes:
    """Arrays (float32, float64 or uint8) as one entry: magic, header length, header,
    then each array's bytes at an aligned offset."""
    table, at = [], 0
    arrays = {name: np.require(a, requirements="C") for name, a in arrays.items()}  # 0-d stays 0-d
    for name, a in arrays.items():
        if a.dtype.str not in _DTYPES:
            raise ValueError(f"{name}: dtype {a.dtype} is not one an entry holds")
        table.append([name, a.dtype.str, list(a.shape), at, a.nbytes])
        at += -(-a.nbytes // _ALIGN) * _ALIGN
    header = json.dumps({"arrays": table}).encode()
    start = len(_MAGIC) + _LEN_BYTES + len(header)
    start += -start % _ALIGN
    out = bytearray(start + at)
    out[:len(_MAGIC)] = _MAGIC
    out[len(_MAGIC):len(_MAGIC) + _LEN_BYTES] = len(header).to_bytes(_LEN_BYTES, "little")
    out[len(_MAGIC) + _LEN_BYTES:len(_MAGIC) + _LEN_BYTES + len(header)] = header
    for (name, _, _, offset, nbytes), a in zip(table, arrays.values()):
        out[start + offset:start + offset + nbytes] = a.tobytes()
    return bytes(out)


def unpack_entry(raw) -> dict[str, np.ndarray]:
    """An entry's arrays, views onto `raw` (bytes or a memoryview); _Untrusted unless
    every part of its header is one pack_entry writes (and fits in `raw`)."""
    head = len(_MAGIC) + _LEN_BYTES
    if len(raw) < head or bytes(raw[:len(_MAGIC)]) != _MAGIC:
        raise _Untrusted("magic")
    n = int.from_bytes(raw[len(_MAGIC):head], "little")
    if n > len(raw) - head:
        raise _Untrusted("header length")
    try:
        table = json.loads(bytes(raw[head:head + n]))["arrays"]
    except (ValueError, TypeError, KeyError) as exc:
        raise _Untrusted("header") from exc
    start = head + n
    start += -start % _ALIGN
    buf = raw if isinstance(raw, memoryview) else memoryview(raw)
    arrays: dict[str, np.ndarray] = {}
    if not isinstance(table, list):
        raise _Untrusted("header")
    at = 0  # where the next array starts: pack_entry's layout exactly, nothing between or after
    for item in table:
        if not (isinstance(item, list) and len(item) == 5):
            raise _Untrusted("header")
        name, dtype, shape, offset, nbytes = item
        if (not isinstance(name, str) or name in arrays or dtype not in _DTYPES
                or not isinstance(shape, list) or len(shape) > 2
                or not all(type(d) is int and d >= 0 for d in shape)
                or type(offset) is not int or type(nbytes) is not int or offset != at
                or nbytes != math.prod(shape) * np.dtype(_DTYPES[dtype]).itemsize
                or start + offset + nbytes > len(raw)):
            raise _Untrusted("array table")
        at += -(-nbytes // _ALIGN) * _ALIGN
        a = np.frombuffer(buf, dtype=_DTYPES[dtype], count=nbytes // np.dtype(_DTYPES[dtype]).itemsize,
                          offset=start + offset)
        arrays[name] = a.reshape(shape)
    if len(raw) != start + at:
        raise _Untrusted("size")
    return arrays


class _Untrusted(Exception):
    """The entry does not verify; it is discarded."""


def _policy_from(path: Path, arrays: dict[str, np.ndarray], source_sha256: str) -> object:
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
        raw = bytearray(st.st_size + 1)  # writable, so the arrays are too (as torch's were)
        with open(entry, "rb") as fh:
            got = fh.readinto(raw)
        return _policy_from(p, unpack_entry(memoryview(raw)[:got]), source_sha256)
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
    source_sha256 = hashlib.sha256(data).hexdigest()
    entry = d / f"{_key(p, data, source_sha256)}{ENTRY_SUFFIX}" if d is not None else None
    if entry is not None:
        cached = _read_entry(entry, p, source_sha256)
        if cached is not None:
            return cached
    policy = load_policy(p)
    if entry is not None:
        try:
            atomic_write_bytes(entry, pack_entry(_to_arrays(policy)))
        except Exception:  # noqa: BLE001 - a read-only cache must not fail the run; it only stays cold
            pass
    return policy
