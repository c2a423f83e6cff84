"""Runs kernels.gpu_simulate in a process of its own, for tests/test_gpu_simulate.py.

Numba fixes CUDA-or-simulator when numba.cuda is first imported, for the whole
process, so the simulator cannot be switched on inside a pytest process that may
already have imported numba.cuda (or whose other tests must not get the simulator).
This script is started with the environment it needs and prints one JSON object
per line:

    NUMBA_ENABLE_CUDASIM=1 python tests/gpu_sim_worker.py sim      # simulator parity cases
    python tests/gpu_sim_worker.py probe                           # is there a real GPU?
    python tests/gpu_sim_worker.py gpu                             # real GPU: parity, rate
    NUMBA_ENABLE_CUDASIM=1 python tests/gpu_sim_worker.py gpu --small   # same code, tiny

Each case line is {"case": name, "ok": bool, "message": str, ...}; a case that fails
says what differed, and the others still run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (str(HERE), str(HERE.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

import numpy as np  # noqa: E402

STATE = ("position", "unrealized_return", "bars_held")


# ---------------------------------------------------------------------------------
# stand-ins: the policy builder of the CPU kernel's tests, with wider weights so the
# tiny simulator cases trade often

from test_simulate import make_policy as _make_policy  # noqa: E402


def make_policy(rng, *args, scale=1.5, **kw):
    return _make_policy(rng, *args, scale=scale, **kw)


def tied_policy(rng):
    """Actions 1 and 2 have the same output row: every time they lead, they tie, and
    the lowest index must win (target 1.0, never -1.0)."""
    pol = make_policy(rng, 3, (5,), state=["position"], targets=(0.0, 1.0, -1.0))
    w, b = pol.layers[-1]
    w[2], b[2] = w[1], b[1]
    return pol


def make_series(rng, n_bars, n_features=6):
    # each series lays its feature columns out in its own order
    names = [f"f{k}" for k in rng.permutation(n_features)]
    close = 100.0 * np.exp(np.cumsum(0.02 * rng.standard_normal(n_bars)))
    open_ = close * np.exp(0.005 * rng.standard_normal(n_bars))
    feats = rng.standard_normal((n_bars, n_features))
    return open_, close, feats, names


MIXED = "mixed"
"""A case's fill: each trajectory draws its own fill mode (one kernel call for all)."""


def build(rng, fill, series, models, folds):
    """Batch with `series` [(open, close, feats, names)], `models` [(policy, series)],
    and for each model `folds` cuts of its series with varied costs and sides, filled
    by `fill` (a code, or MIXED: a random code per trajectory). Returns (batch, packed,
    cases) with cases as the naive reference wants them, each with its fill code."""
    from engine.batch import Batch

    batch = Batch(fill_mode=0 if fill == MIXED else fill)
    sids = [batch.add_series(o, c, f, n) for o, c, f, n in series]
    cases = []
    for k, (pol, s, long_only) in enumerate(models):
        mid = batch.add_model(pol, sids[s])
        n_bars = series[s][1].shape[0]
        first = pol.window - 1
        edges = np.linspace(first, n_bars, folds + 1).astype(int)
        for f in range(folds):
            start, end = int(edges[f]), int(edges[f + 1])
            if f == folds - 1 and folds > 1:
                start = int(rng.integers(first, max(first + 1, n_bars - 12)))
            cap = float(rng.choice([1e4, 1e5, 2.5e6]))
            com = float(rng.choice([0.0, 0.001]))
            slip = float(rng.choice([0.0, 0.0005]))
            mode = int(rng.integers(0, 3)) if fill == MIXED else fill
            batch.add_trajectory(mid, sids[s], start, end, capital=cap, commission=com,
                                 slippage=slip, long_only=long_only,
                                 fill_mode=mode if fill == MIXED else None)
            cases.append((pol, s, start, end, cap, com, slip, long_only, mode))
    return batch, batch.pack(), cases


# ---------------------------------------------------------------------------------
# comparisons (raise AssertionError with what differed)

def compare_results(got, want, capital, label):
    """GPU result against the CPU kernel's: equity within 1e-9 relative, trades and
    counts identical, trade prices and PnL within 1e-9."""
    cap_per_slot = np.repeat(capital, np.diff(want.traj_eq_off))
    bad = ~np.isclose(got.equity, want.equity, rtol=1e-9, atol=1e-9 * cap_per_slot)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise AssertionError(f"{label}: equity[{k}] {got.equity[k]!r} != {want.equity[k]!r}")
    if not np.array_equal(got.n_trades, want.n_trades):
        raise AssertionError(f"{label}: n_trades {got.n_trades.tolist()} != "
                             f"{want.n_trades.tolist()}")
    if not np.array_equal(got.trade_int, want.trade_int):
        k = int(np.flatnonzero((got.trade_int != want.trade_int).any(axis=1))[0])
        raise AssertionError(f"{label}: trade row {k} {got.trade_int[k].tolist()} != "
                             f"{want.trade_int[k].tolist()}")
    scale = np.maximum(np.abs(want.trade_float), 1.0)
    if not np.all(np.abs(got.trade_float - want.trade_float) <= 1e-9 * scale):
        k = int(np.flatnonzero((np.abs(got.trade_float - want.trade_float)
                                > 1e-9 * scale).any(axis=1))[0])
        raise AssertionError(f"{label}: trade row {k} {got.trade_float[k].tolist()} != "
                             f"{want.trade_float[k].tolist()}")
    if not np.allclose(got.stats, want.stats, rtol=1e-9, atol=0.0):
        raise AssertionError(f"{label}: stats {got.stats.tolist()} != {want.stats.tolist()}")
    return bool(np.array_equal(got.equity, want.equity)
                and np.array_equal(got.trade_float, want.trade_float)
                and np.array_equal(got.stats, want.stats))


FILL_NAME = {0: "next-open", 1: "close", 2: "next-open-late"}


def compare_naive(result, packed, cases, series, label):
    """Each trajectory of `result` against tests/naive_simulate.py, in its fill mode."""
    from naive_simulate import naive_simulate

    for i, (pol, s, start, end, cap, com, slip, lo, mode) in enumerate(cases):
        o, c, f, names = series[s]
        cols = [names.index(n) for n in pol.features]
        ref = naive_simulate(pol, o, c, f[:, cols], start, end, cap, com, slip, lo,
                             FILL_NAME[mode])
        a, b = result.traj_eq_off[i], result.traj_eq_off[i + 1]
        eq = result.equity[a:b]
        ref_eq = np.asarray(ref["equity"])
        if eq.shape != ref_eq.shape or not np.allclose(eq, ref_eq, rtol=1e-9,
                                                       atol=1e-9 * cap):
            raise AssertionError(f"{label}: trajectory {i} equity differs from the naive "
                                 f"reference")
        n = int(result.n_trades[i])
        if n != len(ref["trades"]):
            raise AssertionError(f"{label}: trajectory {i} has {n} trades, the naive "
                                 f"reference {len(ref['trades'])}")
        r0 = int(result.traj_trade_off[i])
        for k, want in enumerate(ref["trades"]):
            ti = tuple(int(v) for v in result.trade_int[r0 + k])
            tf = result.trade_float[r0 + k]
            if ti != tuple(want[:3]) or not np.allclose(tf, want[3:], rtol=1e-9,
                                                        atol=1e-9 * cap):
                raise AssertionError(f"{label}: trajectory {i} trade {k} "
                                     f"{ti + tuple(tf.tolist())} != {want}")
        st = result.stats[i]
        if (int(st[0]), int(st[2]), int(st[3])) != (ref["exposure_bars"],
                                                    ref["clipped_shorts"], ref["n_fills"]):
            raise AssertionError(f"{label}: trajectory {i} stats {st.tolist()} differ from "
                                 f"the naive reference")


# ---------------------------------------------------------------------------------
# simulator cases: tiny (the simulator runs each CUDA thread as a Python thread)

def _case_models(rng, kind):
    st = list(STATE)
    if kind == "discrete":
        return [
            (make_policy(rng, 3, (6, 5), window=2, state=st, norm=True,
                         targets=(-1.0, 0.0, 1.0, np.nan)), 0, False),
            (make_policy(rng, 2, (4,), state=st[:1], activation="relu",
                         targets=(-0.5, 0.5, np.nan)), 1, False),
            (make_policy(rng, 4, (7,), window=1, state=st[1:],
                         targets=(1.0, -1.0)), 1, False),
            (make_policy(rng, 3, (8, 8), window=3, state=st, targets=(0.0, 1.0, -1.0)),
             0, False),
            (tied_policy(rng), 0, False),
        ]
    if kind == "long_only":
        return [
            (make_policy(rng, 3, (5,), state=st, targets=(-1.0, -0.5, 0.5, 1.0, np.nan)),
             0, True),
            (make_policy(rng, 2, (4,), state=st[:1], activation="relu",
                         targets=(-1.0, 1.0)), 1, True),
            (make_policy(rng, 2, (4,), state=st[:1], targets=(-1.0, 0.25, 1.0)), 1, False),
        ]
    # continuous, mixed with a discrete model in the same call
    return [
        (make_policy(rng, 3, (6,), window=2, state=st, kind="continuous", low=-1.0,
                     high=1.0, scale=3.0, norm=True), 0, False),
        (make_policy(rng, 2, (5, 4), state=st[:2], kind="continuous", activation="relu",
                     low=-0.5, high=0.8), 1, True),
        (make_policy(rng, 2, (4,), state=st[:1], targets=(-1.0, np.nan, 1.0)), 1, False),
        # no hidden layer: the output layer straight on the observation
        (make_policy(rng, 3, (), state=st[:1], kind="continuous", low=-1.0, high=1.0,
                     scale=4.0), 0, False),
    ]


def _random_models(rng, n_series):
    """2 to 5 models of random shapes and kinds on random series."""
    models = []
    for _ in range(int(rng.integers(2, 6))):
        n_feat = int(rng.integers(1, 5))
        hidden = tuple(int(h) for h in rng.integers(1, 10, size=int(rng.integers(0, 3))))
        state = [s for s in STATE if rng.random() < 0.5]
        common = dict(window=int(rng.integers(1, 4)), state=state, norm=bool(rng.random() < 0.5),
                      activation=str(rng.choice(["tanh", "relu"])),
                      scale=float(rng.uniform(0.5, 4.0)))
        if rng.random() < 0.6:
            targets = rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0, np.nan],
                                 size=int(rng.integers(2, 5)), replace=False)
            pol = make_policy(rng, n_feat, hidden, targets=tuple(targets), **common)
        else:
            low = float(rng.uniform(-1.5, 0.0))
            pol = make_policy(rng, n_feat, hidden, kind="continuous", low=low,
                              high=float(rng.uniform(0.1, 1.5)), **common)
        models.append((pol, int(rng.integers(0, n_series)), bool(rng.random() < 0.4)))
    return models


def _relayout(rng, arrays, cases, layout):
    """The same run with the kernel's other accepted layouts of the outputs."""
    arrays = dict(arrays)
    if layout == "spare_rows":
        # trade capacity beyond end - start per trajectory (the spare rows come back
        # zero), equity offsets left for the wrapper to fill in
        bars = arrays["traj_end"] - arrays["traj_start"]
        spare = rng.integers(0, 4, size=bars.shape[0])
        arrays["traj_trade_off"] = np.concatenate(([0], np.cumsum(bars + spare)))
        arrays["traj_eq_off"] = None
    elif layout == "empty":
        for name in ("traj_model", "traj_series", "traj_start", "traj_end", "traj_capital",
                     "traj_commission", "traj_slippage", "traj_long_only", "fill_mode"):
            arrays[name] = arrays[name][:0]
        arrays["traj_eq_off"] = np.zeros(1, dtype=np.int64)
        arrays["traj_trade_off"] = np.zeros(1, dtype=np.int64)
        cases = []
    return arrays, cases


def sim_case(name, seed, kind, fill, folds=3, n_bars=(60, 75), layout=None, **driver):
    from kernels import gpu_simulate as G
    from kernels.inputs import validate_inputs
    from kernels.simulate import simulate

    rng = np.random.default_rng(seed)
    series = [make_series(rng, n) for n in n_bars]
    models = _random_models(rng, len(series)) if kind == "random" else _case_models(rng, kind)
    batch, packed, cases = build(rng, fill, series, models, folds)
    arrays, cases = _relayout(rng, packed.arrays, cases, layout)
    cpu = simulate(**arrays)
    t0 = time.perf_counter()
    if driver:
        gpu = G._gpu_simulate(G._supported(validate_inputs(dict(arrays))), **driver)
    else:
        gpu = G.gpu_simulate(**arrays)
    seconds = time.perf_counter() - t0
    for out in ("equity", "n_trades", "trade_int", "trade_float", "stats"):
        if getattr(gpu, out).shape != getattr(cpu, out).shape:
            raise AssertionError(f"{name}: {out} has shape {getattr(gpu, out).shape}, the "
                                 f"CPU kernel's {getattr(cpu, out).shape}")
    identical = compare_results(gpu, cpu, arrays["traj_capital"], name)
    compare_naive(gpu, packed, cases, series, name)
    if fill == MIXED:
        identical &= _matches_single_mode_runs(gpu, batch, cases, name)
    tm = gpu.timings
    return {"trajectories": len(cases), "trades": int(gpu.n_trades.sum()),
            "clipped": int(gpu.stats[:, 2].sum()), "bit_identical": identical,
            "blocks": tm["blocks"], "staged_blocks": tm["staged_blocks"],
            "threads_per_block": tm["threads_per_block"], "device": tm["device"],
            "seconds": round(seconds, 2)}


def _matches_single_mode_runs(result, batch, cases, label):
    """A mixed-fill GPU result, trajectory by trajectory, against the CPU kernel run on
    each fill mode's trajectories alone (a batch of one fill mode): bit for bit."""
    import copy

    from kernels.inputs import validate_inputs
    from kernels.simulate import simulate_inputs

    modes = np.array([case[-1] for case in cases])
    if len(set(modes.tolist())) < 2:
        raise AssertionError(f"{label}: the case mixes no fill modes")
    for mode in sorted(set(modes.tolist())):
        ids = np.flatnonzero(modes == mode).tolist()
        single = copy.copy(batch)
        single.trajectories = [dataclasses.replace(batch.trajectories[i], fill_mode=None)
                               for i in range(len(batch.trajectories))]
        single.fill_mode = mode  # the batch's own mode, not each trajectory's
        part = simulate_inputs(validate_inputs(single.pack(ids).arrays))
        for k, i in enumerate(ids):
            got = result.equity[result.traj_eq_off[i]:result.traj_eq_off[i + 1]]
            want = part.equity[part.traj_eq_off[k]:part.traj_eq_off[k + 1]]
            n = int(part.n_trades[k])
            r0, q0 = int(result.traj_trade_off[i]), int(part.traj_trade_off[k])
            same = (np.array_equal(got, want) and int(result.n_trades[i]) == n
                    and np.array_equal(result.trade_int[r0:r0 + n], part.trade_int[q0:q0 + n])
                    and np.array_equal(result.trade_float[r0:r0 + n], part.trade_float[q0:q0 + n])
                    and np.array_equal(result.stats[i], part.stats[k]))
            if not same:
                raise AssertionError(f"{label}: trajectory {i} (fill mode {mode}) differs from "
                                     "a run of its fill mode alone")
    return True


SIM_CASES = {
    # discrete actions with hold, long-short, window 2, every state feature, obs_norm
    "discrete_next_open": dict(seed=11, kind="discrete", fill=0),
    "discrete_close": dict(seed=12, kind="discrete", fill=1),
    # the --stress delay: fills two opens after the decision, `position` the filled one
    "discrete_next_open_late": dict(seed=20, kind="discrete", fill=2),
    "continuous_next_open_late": dict(seed=21, kind="continuous", fill=2),
    # short targets clipped on long-only trajectories, beside long-short ones
    "long_only_next_open": dict(seed=13, kind="long_only", fill=0),
    "long_only_close": dict(seed=14, kind="long_only", fill=1),
    # continuous actions clipped to [low, high], relu, with a discrete model alongside
    "continuous_next_open": dict(seed=15, kind="continuous", fill=0),
    "continuous_close": dict(seed=16, kind="continuous", fill=1),
    # two threads a block and room for one model's weights: some blocks stage their
    # weights in shared memory and some read global memory, and a block spans models
    "blocks_shared_and_global": dict(seed=17, kind="discrete", fill=0, folds=3,
                                     threads_per_block=2, shared_cap_bytes=4 * 120),
    # spare trade rows between trajectories, and a call with no trajectory at all
    "spare_trade_rows": dict(seed=18, kind="long_only", fill=1, layout="spare_rows"),
    "no_trajectories": dict(seed=19, kind="discrete", fill=0, layout="empty"),
    # every trajectory its own fill mode, in one call: each as in a run of its mode alone
    "mixed_fill_modes": dict(seed=22, kind="discrete", fill=MIXED, folds=4),
    "mixed_fill_modes_random": dict(seed=23, kind="random", fill=MIXED, folds=4,
                                    n_bars=(45, 70, 55), threads_per_block=3),
    # random shapes, kinds, sides, windows and normalisation, three threads a block
    **{f"random_{seed}": dict(seed=seed, kind="random", fill=seed % 3, folds=2 + seed % 3,
                              n_bars=(45, 70, 55), threads_per_block=3)
       for seed in range(100, 106)},
}


def run_sim():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        print(json.dumps({"case": "setup", "ok": False,
                          "message": "NUMBA_ENABLE_CUDASIM=1 must be set"}))
        return 1
    from kernels.gpu_simulate import cuda_available, device_name

    # the simulator is no GPU: cuda_available() must say so
    print(json.dumps({"case": "probe", "ok": True, "cuda_available": cuda_available(),
                      "device": device_name()}), flush=True)
    names = sys.argv[2:] or list(SIM_CASES)
    for name in names:
        try:
            info = sim_case(name, **SIM_CASES[name])
            print(json.dumps({"case": name, "ok": True, "message": "", **info}), flush=True)
        except Exception as exc:  # report and go on with the other cases
            msg = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
            print(json.dumps({"case": name, "ok": False, "message": msg}), flush=True)
    return 0


# ---------------------------------------------------------------------------------
# real GPU

def run_probe():
    from kernels.gpu_simulate import cuda_available, device_name

    print(json.dumps({"case": "probe", "ok": True, "cuda_available": cuda_available(),
                      "device": device_name()}))
    return 0


def reference_packed(n_traj, n_bars, seed=7):
    """docs/design.md 10's reference shapes: 2x64 tanh MLP, 16 inputs, 3 discrete actions."""
    sys.path.insert(0, str(HERE.parent / "benchmarks"))
    from sizes import KernelSizes, make_kernel_batch

    sizes = KernelSizes("gpu", n_traj=n_traj, n_bars=n_bars, n_series=8)
    return make_kernel_batch(sizes, seed=seed)[1]


def gpu_parity(n_bars=400, folds=40, repeat=4, reference=(2048, 500)):
    """A larger random case on the real GPU against the CPU kernel: all three kinds
    of model, each fill mode, and all of them mixed in one call (each trajectory its
    own), some 1,700 trajectories of up to 400 bars each time, then the reference
    workload's shapes."""
    from kernels import gpu_simulate as G
    from kernels.simulate import simulate

    rng = np.random.default_rng(2024)
    out = {}
    for fill in (0, 1, 2, MIXED):
        series = [make_series(rng, n_bars) for _ in range(3)]
        models = []
        for kind in ("discrete", "long_only", "continuous"):
            for pol, s, lo in _case_models(rng, kind):
                models.append((pol, int(rng.integers(0, 3)), lo))
        batch, packed, cases = build(rng, fill, series, models * repeat, folds)
        cpu = simulate(**packed.arrays)
        gpu = G.gpu_simulate(**packed.arrays)
        out[f"fill{fill}_bit_identical"] = compare_results(gpu, cpu, packed.capital,
                                                           f"fill {fill}")
        if fill == MIXED:
            out["fillmixed_bit_identical"] &= _matches_single_mode_runs(gpu, batch, cases,
                                                                       "fill mixed")
        out[f"fill{fill}_trajectories"] = len(cases)
    packed = reference_packed(*reference)
    cpu = simulate(**packed.arrays)
    gpu = G.gpu_simulate(**packed.arrays)
    out["reference_bit_identical"] = compare_results(gpu, cpu, packed.capital, "reference")
    if not G.simulating(G.cuda):
        # The policy's float32 multiply-adds are fused on purpose (fmaf_rn, as on the
        # CPU); libNVVM would also fuse any other a*b+c unless the product is mul.rn.
        # The accounting is float64 and has no intended FMA: none may be left there.
        ptx = "\n".join(G._gpu_kernel().inspect_asm().values())
        out["ptx_fma_f32"] = ptx.count("fma.rn.f32")
        out["ptx_fma_f64"] = ptx.count("fma.rn.f64")
        if out["ptx_fma_f64"]:
            raise AssertionError(f"the kernel's PTX has {out['ptx_fma_f64']} float64 "
                                 "fused multiply-adds")
    return out


def gpu_rate(n_traj=4_096, n_bars=1_000, rounds=3):
    """Bar-steps/s of the reference shapes, kernel alone and with transfers."""
    from kernels.gpu_simulate import gpu_simulate

    packed = reference_packed(n_traj, n_bars)
    gpu_simulate(**packed.arrays)  # compile or load from cache
    best = None
    for _ in range(rounds):
        res = gpu_simulate(**packed.arrays)
        if best is None or res.timings["kernel_s"] < best["kernel_s"]:
            best = dict(res.timings)
    steps = n_traj * (n_bars - 1)
    return {"bar_steps": steps, "kernel_s": best["kernel_s"],
            "transfer_s": best["transfer_s"],
            "bar_steps_per_s_kernel": steps / best["kernel_s"],
            "bar_steps_per_s_with_transfers": steps / (best["kernel_s"] + best["transfer_s"]),
            "device": best["device"], "threads_per_block": best["threads_per_block"],
            "staged_blocks": best["staged_blocks"], "blocks": best["blocks"]}


# `gpu --small`: the same code at sizes the simulator gets through in seconds, so the
# GPU-only path is known to run before it meets a GPU
SMALL = {"gpu_parity": dict(n_bars=30, folds=2, repeat=1, reference=(4, 12)),
         "gpu_rate": dict(n_traj=3, n_bars=8, rounds=1)}


def run_gpu():
    args = sys.argv[2:]
    small = "--small" in args
    wanted = [a for a in args if not a.startswith("--")]
    for name, fn in (("gpu_parity", gpu_parity), ("gpu_rate", gpu_rate)):
        if wanted and name not in wanted:
            continue
        try:
            info = fn(**SMALL[name]) if small else fn()
            print(json.dumps({"case": name, "ok": True, "message": "", **info}), flush=True)
        except Exception as exc:
            msg = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
            print(json.dumps({"case": name, "ok": False, "message": msg}), flush=True)
    return 0


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "sim"
    sys.exit({"sim": run_sim, "probe": run_probe, "gpu": run_gpu}[mode]())
