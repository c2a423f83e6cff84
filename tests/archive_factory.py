"""Builds training archives as the training run writes them (docs/design.md 7), for tests
and the demo: `Alpaca_trading_trained_<stamp>.zip` holding
`training_summary_<stamp>.json` and `<prefix>/models/rl_symbols/<SYMBOL>_<TF>.pt`.

    metrics = metric_history(fitness=0.75, profit_factor=2.0, consistency=0.9, max_drawdown=0.05)
    zip_path = build_training_archive(tmp_path, {"UNIUSD": metrics}, models={"UNIUSD": pt_bytes})
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Mapping

METRIC_KEYS = ("fitness_score", "profit_factor", "consistency", "max_drawdown")
PLACEHOLDER_MODEL = b"placeholder policy bytes: not a loadable checkpoint\n"
# a fixed entry time keeps the zip's bytes (and so its sha256) reproducible
_ZIP_TIME = (2024, 12, 27, 12, 0, 0)


def metric_history(fitness: float, profit_factor: float, consistency: float, max_drawdown: float,
                   n: int = 20, best_fitness: float | None = None, best_at: int | None = None) -> dict:
    """Histories of length n that end at the given finals and rise towards them; with
    best_fitness, epoch best_at (default n // 2) peaks there (a better checkpoint)."""
    def ramp(final: float, start: float) -> list[float]:
        if n == 1:
            return [final]
        return [round(start + (final - start) * i / (n - 1), 6) for i in range(n)]

    out = {
        "fitness_score": ramp(fitness, fitness * 0.5),
        "profit_factor": ramp(profit_factor, 1.0),
        "consistency": ramp(consistency, consistency * 0.7),
        "max_drawdown": ramp(max_drawdown, max_drawdown * 1.5),
    }
    for k, v in (("fitness_score", fitness), ("profit_factor", profit_factor),
                 ("consistency", consistency), ("max_drawdown", max_drawdown)):
        out[k][-1] = v  # exact finals, not rounded ones
    if best_fitness is not None:
        out["fitness_score"][n // 2 if best_at is None else best_at] = best_fitness
    return out


def model_member(symbol: str, timeframe: str = "1Hour", prefix: str = "Alpaca_trading") -> str:
    base = f"models/rl_symbols/{symbol}_{timeframe}.pt"
    return f"{prefix}/{base}" if prefix else base


def summary_dict(symbols: Mapping[str, Mapping[str, Any]], timeframe: str = "1Hour", shape: str = "dict",
                 wrap_metrics: bool = True, model_paths: Mapping[str, str] | None = None) -> Any:
    """The summary JSON object. symbols maps SYMBOL to its metric histories, or to an
    entry dict holding "metrics" plus any of checkpoints / train_start / train_end /
    model / timeframe. shape "dict" (docs/design.md 7) or "list" (records with "symbol")."""
    entries = {}
    for sym, spec in symbols.items():
        spec = dict(spec)
        metrics = spec.pop("metrics") if "metrics" in spec else {k: spec.pop(k) for k in list(spec) if k in METRIC_KEYS}
        entry: dict[str, Any] = {}
        if model_paths and sym in model_paths:
            entry["model"] = model_paths[sym]
        if wrap_metrics:
            entry["metrics"] = metrics
        else:
            entry.update(metrics)
        entry.update(spec)
        entries[sym] = entry
    if shape == "dict":
        return {"timeframe": timeframe, "symbols": entries}
    if shape == "list":
        return [{"symbol": sym, "timeframe": timeframe, **e} for sym, e in entries.items()]
    raise ValueError(f"shape {shape!r}: 'dict' or 'list'")


def build_training_archive(out_dir: str | Path, symbols: Mapping[str, Mapping[str, Any]], *,
                           stamp: str = "20241227_120000", timeframe: str = "1Hour",
                           models: Mapping[str, bytes | str | Path | None] | None = None,
                           shape: str = "dict", wrap_metrics: bool = True, name_models: bool = True,
                           prefix: str = "Alpaca_trading", extra: Mapping[str, bytes] | None = None,
                           archive_name: str | None = None) -> Path:
    """Write the zip and return its path. models maps SYMBOL to the bytes (or a file) of
    its checkpoint; None (the default) gives every symbol placeholder bytes, and a
    symbol left out of a given mapping (or mapped to None) gets no model file.
    name_models: the summary names each model's path (else it is found by name).
    extra: more members, name -> bytes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    contents: dict[str, bytes] = {}
    for sym in symbols:
        data = PLACEHOLDER_MODEL if models is None else models.get(sym)
        if data is None:
            continue
        contents[model_member(sym, timeframe, prefix)] = data if isinstance(data, bytes) else Path(data).read_bytes()
    paths = {sym: model_member(sym, timeframe, prefix) for sym in symbols} if name_models else None
    summary = summary_dict(symbols, timeframe, shape, wrap_metrics, paths)
    zip_path = out / (archive_name or f"Alpaca_trading_trained_{stamp}.zip")
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        def put(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, _ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            zf.writestr(info, data)

        put(f"training_summary_{stamp}.json", json.dumps(summary, indent=1).encode())
        for name, data in sorted(contents.items()):
            put(name, data)
        for name, data in (extra or {}).items():
            put(name, data)
    return zip_path


# ------------------------------------------------------------------ policies


def policy_fields(features=("ret_1", "ret_4"), window=1, state=("position",), hidden=(4,), n_out=3,
                  seed=0, targets=None) -> dict:
    """The fields of a small valid foldgate.policy/1 checkpoint (torch tensors)."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    sizes = [len(features) * window + len(state), *hidden, n_out]
    actor = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        actor.append(torch.from_numpy(rng.normal(0, 0.5, (b, a)).astype(np.float32)))
        actor.append(torch.from_numpy(rng.normal(0, 0.1, b).astype(np.float32)))
    return {
        "format": "foldgate.policy/1", "features": list(features), "window": window,
        "state_features": list(state), "actor": actor, "activation": "tanh",
        "action": {"type": "discrete", "targets": list(targets or [0.0, 1.0, None])[:n_out]},
    }


def policy_bytes(fields: Mapping[str, Any]) -> bytes:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(dict(fields), buf)
    return buf.getvalue()


SB3_OBS = 3  # the hand-made SB3 zip: 2 features + 1 state feature


def sb3_data(n_actions: int = 3, obs_dim: int = SB3_OBS) -> dict:
    """The readable part of a PPO.save() `data` JSON, as SB3 writes it."""
    return {
        "policy_class": {":type:": "<class 'abc.ABCMeta'>", "__module__": "stable_baselines3.common.policies",
                         "__init__": "<function ActorCriticPolicy.__init__ at 0x7f>"},
        "observation_space": {":type:": "<class 'gymnasium.spaces.box.Box'>", "_shape": [obs_dim],
                              "low": "[-5. -5. -5.]", "high": "[5. 5. 5.]"},
        "action_space": {":type:": "<class 'gymnasium.spaces.discrete.Discrete'>", "n": str(n_actions),
                         "start": "0", "_shape": []},
        "policy_kwargs": {"net_arch": {"pi": [4], "vf": [4]}},
    }


def sb3_zip_bytes(data: Any = None, state_dict: Mapping[str, Any] | None = None, raw_data: bytes | None = None,
                  seed: int = 0) -> bytes:
    """A stable-baselines3 PPO zip built by hand (no SB3 needed): `data` JSON (or
    raw_data bytes) and policy.pth, a state dict of a 3 -> 4 -> 3 tanh actor."""
    import io

    import numpy as np
    import torch

    if state_dict is None:
        rng = np.random.default_rng(seed)

        def t(*shape):
            return torch.from_numpy(rng.normal(0, 0.5, shape).astype(np.float32))

        state_dict = {
            "mlp_extractor.policy_net.0.weight": t(4, SB3_OBS), "mlp_extractor.policy_net.0.bias": t(4),
            "mlp_extractor.value_net.0.weight": t(4, SB3_OBS), "mlp_extractor.value_net.0.bias": t(4),
            "action_net.weight": t(3, 4), "action_net.bias": t(3),
            "value_net.weight": t(1, 4), "value_net.bias": t(1),
        }
    pth = io.BytesIO()
    torch.save(dict(state_dict), pth)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data", raw_data if raw_data is not None else json.dumps(sb3_data() if data is None else data))
        zf.writestr("policy.pth", pth.getvalue())
        zf.writestr("_stable_baselines3_version", "2.3.0")
    return out.getvalue()


SB3_SIDECAR = {"features": ["ret_1", "ret_4"], "window": 1, "state_features": ["position"],
               "targets": [0.0, 1.0, None]}
