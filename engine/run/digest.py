"""The content hash of a run's inputs: what a run directory's chunks depend on.

A run is keyed by four digests, so that a refused `--resume` can say what changed:
the bars (each series' open, close and feature block), the models (every field of a
policy that the kernel reads, and the series it reads them from), the trajectories
(fold bounds, capital, costs and fill modes) and the settings (fill mode, device, formats)."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import __version__

RUN_FORMAT = "foldgate.run/2"  # 2: each trajectory's own fill mode is part of its key
"""Version of the run directory's layout and chunk contents."""

PARTS = ("bars", "models", "trajectories", "settings")
"""The digests a run key is made of, in this order."""

PART_WORDS = {"bars": "the bars or their features", "models": "the models",
              "trajectories": "the folds, capital or costs",
              "settings": "the fill mode, device or foldgate version"}


def _update(h, value) -> None:
    """Feed one value into `h`, typed and length-prefixed, so no two different
    sequences of values hash alike."""
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        h.update(f"a{a.dtype.str}{a.shape}:".encode())
        h.update(a.tobytes())
    elif isinstance(value, (list, tuple)):
        h.update(f"l{len(value)}:".encode())
        for v in value:
            _update(h, v)
    elif value is None:
        h.update(b"n:")
    else:
        text = repr(value).encode()
        h.update(f"s{type(value).__name__}{len(text)}:".encode())
        h.update(text)


def digest(*values) -> str:
    h = hashlib.sha256()
    for v in values:
        _update(h, v)
    return h.hexdigest()


def series_digest(series) -> str:
    """One series of a Batch: its open, close, features and their names."""
    return digest(series.open_, series.close, series.feats, list(series.names))


def policy_digest(policy) -> str:
    """Every field of a policy that packing reads (duck-typed, as engine.batch packs)."""
    norm = policy.obs_norm
    norm_parts = None if norm is None else [
        np.asarray(norm.mean, dtype=np.float32), np.asarray(norm.var, dtype=np.float32),
        float(norm.epsilon), float(norm.clip)]
    targets = getattr(policy, "targets", None)
    return digest(
        getattr(policy, "sha256", None), list(policy.features), int(policy.window),
        list(policy.state_features), norm_parts,
        [(np.asarray(w, dtype=np.float32), np.asarray(b, dtype=np.float32))
         for w, b in policy.layers],
        str(policy.activation), str(policy.action_kind),
        None if targets is None else np.asarray(targets, dtype=np.float64),
        None if policy.low is None else float(policy.low),
        None if policy.high is None else float(policy.high))


def run_digests(batch, ids: list[int], device: str) -> dict[str, str]:
    """{part: sha256} for simulating trajectories `ids` of `batch` on `device`."""
    chosen = [batch.trajectories[t] for t in ids]
    series_ids = sorted({t.series for t in chosen})
    model_ids = sorted({t.model for t in chosen})
    # hashlib leaves the GIL while it hashes a large buffer: two series at a time
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="foldgate-digest") as pool:
        bars = digest(list(pool.map(series_digest, [batch.series[s] for s in series_ids])))
    models = digest([(policy_digest(batch.models[m][0]), series_ids.index(batch.models[m][1]))
                     for m in model_ids])
    m_index = {m: k for k, m in enumerate(model_ids)}
    s_index = {s: k for k, s in enumerate(series_ids)}
    trajectories = digest(
        np.array([m_index[t.model] for t in chosen], dtype=np.int64),
        np.array([s_index[t.series] for t in chosen], dtype=np.int64),
        np.array([[t.start, t.end] for t in chosen], dtype=np.int64).reshape(-1, 2),
        np.array([[t.capital, t.commission, t.slippage] for t in chosen],
                 dtype=np.float64).reshape(-1, 3),
        np.array([t.long_only for t in chosen], dtype=np.uint8),
        batch.fill_modes(ids))
    settings = digest(RUN_FORMAT, __version__, int(batch.fill_mode), str(device))
    return {"bars": bars, "models": models, "trajectories": trajectories, "settings": settings}


def run_key(digests: dict[str, str]) -> str:
    return digest([digests[p] for p in PARTS])
