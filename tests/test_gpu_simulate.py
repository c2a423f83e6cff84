"""The CUDA twin (kernels/gpu_simulate.py) against the CPU kernel and the naive
reference (tests/naive_simulate.py).

Numba picks CUDA or its simulator when numba.cuda is first imported, once per
process. So nothing here imports numba.cuda into the pytest process: the simulator
runs in a child process (tests/gpu_sim_worker.py with NUMBA_ENABLE_CUDASIM=1), which
leaves every other test module free to use either. The tests marked `gpu` probe for
a real GPU the same way (in a child without the simulator) and skip where there is
none; they have not yet run on real hardware.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gpu_sim_worker import SIM_CASES, make_policy, make_series

TESTS = Path(__file__).resolve().parent
WORKER = TESTS / "gpu_sim_worker.py"


def run_worker(mode, *args, simulator, timeout):
    """{case: its JSON line} from one run of the worker."""
    env = dict(os.environ)
    if simulator:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    else:
        env.pop("NUMBA_ENABLE_CUDASIM", None)
    proc = subprocess.run([sys.executable, str(WORKER), mode, *args], env=env,
                          cwd=TESTS.parent, capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        pytest.fail(f"gpu_sim_worker.py {mode} exited {proc.returncode}:\n"
                    f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return {line["case"]: line for line in lines}


# ---------------------------------------------------------------------------------
# simulator: the CUDA kernel's code, run as Python, must give the CPU kernel's numbers

@pytest.fixture(scope="module")
def simulated():
    return run_worker("sim", simulator=True, timeout=600)


def test_simulator_is_not_a_gpu(simulated):
    probe = simulated["probe"]
    assert probe["cuda_available"] is False
    assert probe["device"] == "CUDA simulator"


@pytest.mark.parametrize("case", list(SIM_CASES))
def test_simulated_kernel_matches_cpu_and_naive(simulated, case):
    r = simulated[case]
    assert r["ok"], r["message"]
    # the simulator does the same IEEE operations in the same order as the CPU kernel
    assert r["bit_identical"]
    assert r["device"] == "CUDA simulator"
    if SIM_CASES[case].get("layout") == "empty":
        assert r["trajectories"] == 0 and r["trades"] == 0
    else:
        assert r["trades"] > r["trajectories"]  # the policies do trade, often


def test_the_gpu_only_checks_run_in_the_simulator_at_small_sizes():
    # the code behind the `gpu` tests below, incl. the 2x64 reference MLP, so that
    # it is known to run before it first meets a GPU
    results = run_worker("gpu", "--small", simulator=True, timeout=600)
    for name in ("gpu_parity", "gpu_rate"):
        assert results[name]["ok"], results[name]["message"]
        assert results[name].get("device", "CUDA simulator") == "CUDA simulator"
    assert results["gpu_parity"]["reference_bit_identical"]
    # every trajectory its own fill mode in one launch: as each mode's run alone
    assert results["gpu_parity"]["fillmixed_bit_identical"]
    assert results["gpu_parity"]["fillmixed_trajectories"] > 0


def test_simulated_cases_cover_clipping_and_both_memory_paths(simulated):
    assert simulated["long_only_next_open"]["clipped"] > 0
    assert simulated["long_only_close"]["clipped"] > 0
    assert simulated["continuous_close"]["clipped"] > 0
    blocks = simulated["blocks_shared_and_global"]
    assert blocks["blocks"] > 1
    assert 0 < blocks["staged_blocks"] < blocks["blocks"]


# ---------------------------------------------------------------------------------
# in this process: everything that happens before numba.cuda is imported

def packed_batch(hidden=(4,), n_features=3):
    from engine.batch import Batch

    rng = np.random.default_rng(3)
    o, c, f, names = make_series(rng, 40, n_features)
    pol = make_policy(rng, n_features, hidden, state=["position"])
    batch = Batch(fill_mode=0)
    sid = batch.add_series(o, c, f, names)
    mid = batch.add_model(pol, sid)
    batch.add_trajectory(mid, sid, 0, 40, capital=1e5)
    return batch.pack().arrays


def test_a_model_wider_than_the_kernel_is_refused_for_the_cpu():
    from kernels.gpu_simulate import GPU_MAX_WIDTH, GpuUnsupportedError, gpu_simulate

    arrays = packed_batch(hidden=(GPU_MAX_WIDTH + 1,))
    with pytest.raises(GpuUnsupportedError, match=f"at most {GPU_MAX_WIDTH}.*CPU"):
        gpu_simulate(**arrays)
    assert issubclass(GpuUnsupportedError, ValueError)


def test_bad_inputs_are_refused_as_the_cpu_wrapper_refuses_them():
    from kernels.gpu_simulate import gpu_simulate
    from kernels.simulate import simulate

    arrays = packed_batch()
    arrays["traj_end"] = arrays["traj_end"] + 5  # past the series' last bar
    with pytest.raises(ValueError) as cpu_err:
        simulate(**arrays)
    with pytest.raises(ValueError) as gpu_err:
        gpu_simulate(**arrays)
    assert str(gpu_err.value) == str(cpu_err.value)


def test_same_signature_as_the_cpu_wrapper():
    import inspect

    from kernels.gpu_simulate import gpu_simulate
    from kernels.simulate import simulate

    cpu = inspect.signature(simulate).parameters
    gpu = inspect.signature(gpu_simulate).parameters
    assert list(gpu) == list(cpu)
    assert [p.default for p in gpu.values()] == [p.default for p in cpu.values()]


def test_imports_and_answers_without_numba_cuda():
    # numba.cuda set to None in sys.modules makes its import fail, as on a CPU-only
    # install; the module must import, say "no GPU", and refuse to run
    code = (
        "import sys; sys.modules['numba.cuda'] = None\n"
        "import kernels.gpu_simulate as g\n"
        "assert g.cuda_available() is False and g.device_name() is None\n"
        "try:\n"
        "    g._gpu_kernel()\n"
        "except g.GpuUnavailableError as e:\n"
        "    print('refused:', e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=TESTS.parent,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "refused: numba-cuda is not installed" in proc.stdout


def test_importing_the_module_leaves_numba_cuda_unimported():
    code = ("import sys, kernels.gpu_simulate\n"
            "print('numba.cuda' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=TESTS.parent, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


# ---------------------------------------------------------------------------------
# real GPU only

@pytest.fixture(scope="module")
def real_gpu():
    probe = run_worker("probe", simulator=False, timeout=300)["probe"]
    if not probe["cuda_available"]:
        pytest.skip("no CUDA GPU here (numba-cuda finds no device or driver)")
    return probe["device"]


@pytest.mark.gpu
def test_gpu_parity_on_a_larger_random_case(real_gpu):
    r = run_worker("gpu", "gpu_parity", simulator=False, timeout=600)["gpu_parity"]
    assert r["ok"], r["message"]


@pytest.mark.gpu
def test_gpu_throughput_run(real_gpu):
    r = run_worker("gpu", "gpu_rate", simulator=False, timeout=600)["gpu_rate"]
    assert r["ok"], r["message"]
    assert r["bar_steps_per_s_kernel"] > 0
    print(f"\n{real_gpu}: {r['bar_steps_per_s_kernel']:,.0f} bar-steps/s in the kernel, "
          f"{r['bar_steps_per_s_with_transfers']:,.0f} with transfers")


# ---------------------------------------------------------------------------------
# the whole --device cuda path (CLI -> pipeline -> batch -> CUDA kernel -> report) on
# the simulator, against --device cpu

def _cli_backtest(tmp_path, device, simulator):
    out = tmp_path / f"{device}-{int(simulator)}.json"
    env = dict(os.environ, PYTHONPATH=str(TESTS.parent),
               FOLDGATE_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if simulator:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "backtest",
         "--model", str(TESTS.parent / "data" / "policies" / "UNIUSD_1Hour.pt"),
         "--store", str(TESTS.parent / "data" / "bars"), "--days", "8",
         "--walk-forward", "2", "--device", device, "--json", str(out)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    # rich wraps long lines at the terminal width
    return json.loads(out.read_text()), " ".join((proc.stdout + proc.stderr).split())


def test_cli_backtest_on_the_simulator_matches_the_cpu(tmp_path):
    sim, sim_text = _cli_backtest(tmp_path, "cuda", simulator=True)
    cpu, _ = _cli_backtest(tmp_path, "cpu", simulator=False)
    # the output and the report say that the simulator ran it
    assert "CUDA simulator" in sim_text
    assert "CUDA simulator" in json.dumps(sim["settings"])
    assert "simulator" not in json.dumps(cpu["settings"]).lower()
    (ms,), (mc,) = sim["models"], cpu["models"]
    assert ms["error"] is None and len(ms["folds"]) == 2
    assert (ms["backtest"] is None) == (mc["backtest"] is None)
    pairs = list(zip(ms["folds"], mc["folds"]))
    if ms["backtest"] is not None:
        pairs.append((ms["backtest"], mc["backtest"]))
    for part_s, part_c in pairs:
        assert part_s["metrics"] == part_c["metrics"]
        assert part_s["equity"] == part_c["equity"]
        assert part_s["trades"] == part_c["trades"]
    assert sum(len(f["trades"]) for f in ms["folds"]) > 0  # it really traded
    assert ms["summary"] == mc["summary"]
    assert ms["decision"] == mc["decision"]


def test_auto_never_picks_the_simulator(tmp_path):
    sim, _ = _cli_backtest(tmp_path, "auto", simulator=True)
    assert "simulator" not in json.dumps(sim["settings"]).lower()


def test_gpu_tanh_gives_the_cpu_tanh_bits(monkeypatch):
    """The CUDA twin's tanh, run as the Python it is with the simulator's exact
    multiply-add, against the CPU kernel's on inputs from every binade and around its
    switch points (no numba.cuda import needed: the helpers are swapped in directly)."""
    from kernels import gpu_simulate as G
    from kernels.activations import TANH_SMALL, tanh_f32_array_nb

    for name in ("_gpu_fmul", "_gpu_dmul", "_gpu_pow2", "_gpu_ffma"):
        monkeypatch.setattr(G, name, getattr(G, name + "_sim"))
    rng = np.random.default_rng(5)
    x = np.concatenate([
        rng.integers(0, 2**32, 3000, dtype=np.uint64).astype(np.uint32).view(np.float32),
        rng.uniform(-10, 10, 3000).astype(np.float32),
        TANH_SMALL + np.arange(-50, 50, dtype=np.float32) * np.spacing(TANH_SMALL),
        np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, 9.01, 20.0], np.float32),
    ])
    want = tanh_f32_array_nb(x)
    # the unused branch overflows for huge |x| (a select drops it, as on a GPU)
    with np.errstate(over="ignore", invalid="ignore"):
        got = np.array([G._gpu_tanh_f32(v) for v in x], dtype=np.float32)
    nan = np.isnan(x)
    assert np.isnan(got[nan]).all()
    assert got[~nan].tobytes() == want[~nan].tobytes()
