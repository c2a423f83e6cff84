"""The reference workload of docs/design.md 10 and the baselines it is measured against.

A 2x64 tanh MLP on 16 inputs with 3 discrete actions, run over 256 trajectories of 2,000
bars. One bar-step is one policy forward plus the fill and the accounting. Three ways
of doing the same work are timed in one process:
- foldgate's batched kernel (all trajectories in one call, JIT compile not timed);
- torch, batch 1, one step at a time: the seed's per-step loop;
- torch, all trajectories in lockstep: one batched forward per bar, numpy accounting.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

import numpy as np

from .errors import FoldgateError
from .policies.model import Policy


@dataclass
class BenchConfig:
    """Sizes of the reference workload (docs/design.md 10)."""

    n_traj: int = 256
    """Trajectories (models x folds) simulated at once."""
    n_bars: int = 2000
    """Bars per trajectory."""
    n_inputs: int = 16
    """Observation size: market features, window 1, no state features."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths (tanh)."""
    n_actions: int = 3
    """Discrete actions, mapped to targets -1, 0, +1."""
    batch1_steps: int = 3000
    """Steps timed for the torch batch-1 loop; its rate is steps / time."""
    repeats: int = 3
    """Timed repetitions of the kernel; the median is reported."""
    seed: int = 7

    @classmethod
    def tiny(cls) -> "BenchConfig":
        return cls(n_traj=8, n_bars=200, batch1_steps=200, repeats=1)


@dataclass
class Workload:
    policy: object
    open_: np.ndarray  # (n_series, T)
    close: np.ndarray
    feats: np.ndarray  # (n_series, T, F) float64
    feature_names: list[str]
    cfg: BenchConfig
    cpu_seconds: float = 0.0  # of the last run_kernel, all threads


def make_workload(cfg: BenchConfig) -> Workload:
    """Random-walk prices and standard-normal features, one series per 32 trajectories."""

    rng = np.random.default_rng(cfg.seed)
    sizes = [cfg.n_inputs, *cfg.hidden, cfg.n_actions]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
        b = (0.1 * rng.standard_normal(n_out)).astype(np.float32)
        layers.append((w, b))
    names = [f"ret_{k}" for k in range(1, cfg.n_inputs + 1)]
    policy = Policy(
        path=None, sha256="", source_format="bench", symbol="BENCH", timeframe="1Hour",
        features=names, window=1, state_features=[], obs_norm=None, layers=layers,
        activation="tanh", action_kind="discrete", targets=np.array([-1.0, 0.0, 1.0]),
        low=-1.0, high=1.0, trained_until=None,
    )
    n_series = max(1, cfg.n_traj // 32)
    t = cfg.n_bars + 1
    log_ret = 0.01 * rng.standard_normal((n_series, t))
    close = 100.0 * np.exp(np.cumsum(log_ret, axis=1))
    open_ = close * np.exp(0.002 * rng.standard_normal((n_series, t)))
    feats = rng.standard_normal((n_series, t, cfg.n_inputs))
    return Workload(policy, open_, close, feats, names, cfg)


def run_kernel(work: Workload, device: str = "cpu") -> tuple[float, float]:
    """(median seconds, bar-steps/s) of foldgate's batched kernel on the workload."""
    from .batch import Batch  # lazy: the Numba kernels, ~0.4 s that `foldgate --help` never needs

    cfg = work.cfg
    batch = Batch(fill_mode=0)
    series_ids = [batch.add_series(work.open_[s], work.close[s], np.ascontiguousarray(work.feats[s]),
                                   work.feature_names) for s in range(work.open_.shape[0])]
    # one model per series, as a run packs one policy for all of its folds
    model_ids = [batch.add_model(work.policy, sid) for sid in series_ids]
    for i in range(cfg.n_traj):
        sid, mid = series_ids[i % len(series_ids)], model_ids[i % len(series_ids)]
        batch.add_trajectory(mid, sid, 0, cfg.n_bars, capital=100_000.0, commission=0.001,
                             slippage=0.0005, long_only=False)
    packed = batch.pack()
    batch.simulate_packed(packed, device=device)  # JIT compile / cache load, not timed
    times, cpu = [], []
    for _ in range(cfg.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        batch.simulate_packed(packed, device=device)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    median = float(np.median(times))
    # CPU seconds of all threads: what the kernel needs whatever else holds the cores
    # (on a shared machine the wall-clock rate swings with the load)
    work.cpu_seconds = float(np.median(cpu))
    return median, cfg.n_traj * (cfg.n_bars - 1) / median


def _torch_net(policy):
    import torch  # lazy: torch, ~1 s, only for the baselines

    mods = []
    for i, (w, b) in enumerate(policy.layers):
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if i < len(policy.layers) - 1:
            mods.append(torch.nn.Tanh())
    return torch.nn.Sequential(*mods).eval()


def run_torch_batch1(work: Workload) -> tuple[float, float]:
    """The seed's loop: per bar, one batch-1 forward, then fill and accounting in Python."""
    import torch  # lazy: as in _torch_net

    cfg = work.cfg
    net = _torch_net(work.policy)
    targets = work.policy.targets
    feats = work.feats[0].astype(np.float32)
    open_, close = work.open_[0], work.close[0]
    steps = min(cfg.batch1_steps, cfg.n_bars - 1)
    cash, units, held = 100_000.0, 0.0, 0.0
    with torch.inference_mode():
        net(torch.from_numpy(feats[:1]))  # warm-up
        t0 = time.perf_counter()
        done = 0
        while done < steps:
            for t in range(min(steps - done, cfg.n_bars - 1)):
                logits = net(torch.from_numpy(feats[t: t + 1]))
                target = float(targets[int(torch.argmax(logits))])
                if target != held:
                    p = open_[t + 1]
                    equity = cash + units * p
                    new_units = target * equity / p
                    d = new_units - units
                    fill = p * (1.0005 if d > 0 else 0.9995)
                    cash -= d * fill + 0.001 * abs(d) * fill
                    units, held = new_units, target
                _ = cash + units * close[t + 1]
                done += 1
        elapsed = time.perf_counter() - t0
    return elapsed, steps / elapsed


def run_torch_lockstep(work: Workload, threads: int = 1) -> tuple[float, float]:
    """All trajectories advance together: one batched forward per bar, numpy accounting.

    One torch thread by default, docs/design.md 10's baseline: with two, torch's intra-op
    pool collapsed to ~1% of its speed whenever other work held a core."""
    import torch  # lazy: as in _torch_net

    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _torch_lockstep(work, torch)
    finally:
        torch.set_num_threads(old_threads)


def _torch_lockstep(work: Workload, torch) -> tuple[float, float]:
    cfg = work.cfg
    net = _torch_net(work.policy)
    targets = work.policy.targets
    series = np.arange(cfg.n_traj) % work.open_.shape[0]
    # time-major, so each step's observations are one contiguous (n_traj, F) block
    feats = np.ascontiguousarray(work.feats.astype(np.float32)[series].transpose(1, 0, 2))
    open_, close = work.open_[series], work.close[series]
    cash = np.full(cfg.n_traj, 100_000.0)
    units = np.zeros(cfg.n_traj)
    held = np.zeros(cfg.n_traj)
    with torch.inference_mode():
        net(torch.from_numpy(feats[0]))
        t0 = time.perf_counter()
        for t in range(cfg.n_bars - 1):
            logits = net(torch.from_numpy(feats[t]))
            target = targets[torch.argmax(logits, dim=1).numpy()]
            trade = target != held
            p = open_[:, t + 1]
            equity = cash + units * p
            new_units = np.where(trade, target * equity / p, units)
            d = new_units - units
            fill = p * np.where(d > 0, 1.0005, 0.9995)
            cash -= d * fill + 0.001 * np.abs(d) * fill
            units, held = new_units, np.where(trade, target, held)
            _ = cash + units * close[:, t + 1]
        elapsed = time.perf_counter() - t0
    return elapsed, cfg.n_traj * (cfg.n_bars - 1) / elapsed


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def run_bench(cfg: BenchConfig | None = None, device: str = "cpu", torch_baselines: bool = True) -> dict:
    """All three measurements in one process, with ratios against the torch batch-1 loop."""
    import numba  # lazy: as .batch in run_kernel

    cfg = cfg or BenchConfig()
    work = make_workload(cfg)
    results = {}
    secs, rate = run_kernel(work, device="cpu")
    results["foldgate_cpu"] = {"seconds": secs, "bar_steps_per_s": rate,
                               "bar_steps_per_cpu_s": cfg.n_traj * (cfg.n_bars - 1) / work.cpu_seconds,
                               "threads": numba.get_num_threads()}
    if device in ("cuda", "auto"):
        from kernels.cuda_env import cuda_available  # lazy: the CUDA kernel module (numba.cuda)

        if cuda_available():
            secs, rate = run_kernel(work, device="cuda")
            results["foldgate_cuda"] = {"seconds": secs, "bar_steps_per_s": rate}
        elif device == "cuda":
            raise FoldgateError("--device cuda: no CUDA GPU is available here")
    if torch_baselines:
        import torch  # lazy: torch, only when the baselines run

        secs, rate = run_torch_batch1(work)
        results["torch_batch1"] = {"seconds": secs, "bar_steps_per_s": rate}
        secs, rate = run_torch_lockstep(work)
        results["torch_lockstep"] = {"seconds": secs, "bar_steps_per_s": rate}
        base = results["torch_batch1"]["bar_steps_per_s"]
        for r in results.values():
            r["vs_torch_batch1"] = r["bar_steps_per_s"] / base
        torch_version = torch.__version__
    else:
        torch_version = None
    return {
        "workload": {"trajectories": cfg.n_traj, "bars": cfg.n_bars, "inputs": cfg.n_inputs,
                     "hidden": list(cfg.hidden), "actions": cfg.n_actions, "activation": "tanh"},
        "machine": machine(),
        "versions": {"numba": numba.__version__, "numpy": np.__version__, "torch": torch_version},
        "results": results,
    }
