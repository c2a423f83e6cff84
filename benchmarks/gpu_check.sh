#!/usr/bin/env bash
# The prepared device check of issue 13: on a machine with a real NVIDIA GPU, run the
# GPU parity tests, the whole `--device cuda` CLI path against `--device cpu`, and the
# rate benchmark at 10,240 trajectories x 2,000 bars, and write what they found.
#
#     bash benchmarks/gpu_check.sh            # results in $OUT, else /tmp/gpu_check_results
#     GPU_CHECK_NO_INSTALL=1 bash benchmarks/gpu_check.sh   # dry run: no pip install
#     GPU_CHECK_SIM=1 GPU_CHECK_NO_INSTALL=1 bash ...         # and the CLI step on the simulator
#
# Written for the lent GPU machines: CUDA 13, Python 3.12, with numba, numba-cuda,
# torch, pyarrow, scipy, click, rich and pytest installed and no network. It installs
# foldgate itself with `pip install --no-deps -e .` (what `foldgate[cuda13]` would add
# is numba-cuda[cu13], already there) and brings only what is missing for the tests
# from wheels carried with the tree in .whl/ (gitignored), prepared beforehand on a
# machine with PyPI:
#
#     pip download --only-binary=:all: --python-version 3.12 \
#         --platform manylinux2014_x86_64 --implementation cp -d .whl \
#         "hypothesis==6.170.17" "pytest-benchmark==5.2.3"
#
# (tests/conftest.py imports hypothesis; the benchmark needs pytest-benchmark. The
# kernel path imports neither alpaca-py nor anything else outside that list.)
#
# Time: every step has its own timeout and the whole script stops starting steps at
# 330 s, so it ends within 6 minutes and a 15-minute lease can run it twice.
#
# Writes to the results directory:
#   results.json / results.md   parity outcome, GPU bar-steps/s (kernel alone and with
#                               transfers), the CPU kernel's rate measured in this same
#                               script, the transfer share of GPU time, the device
#   env.txt                     python, packages, nvidia-smi
#   parity.txt, parity.xml      pytest -m gpu tests/test_gpu_simulate.py
#   cli.txt, cli_*.json         the tiny backtest with --device cuda and --device cpu
#   bench.txt, bench.json       pytest benchmarks/test_bench_gpu.py --benchmark-enable
#   gpu_check.log               everything printed
# Exit status: 0 when parity held and the benchmark ran, 1 otherwise.

set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
RES="${OUT:-${TMPDIR:-/tmp}/gpu_check_results}"
mkdir -p "$RES"
exec > >(tee -a "$RES/gpu_check.log") 2>&1
T0=$(date +%s)
DEADLINE=330
PY=${PYTHON:-python3}

elapsed() { echo $(( $(date +%s) - T0 )); }
step() {  # step NAME TIMEOUT CMD...: runs CMD unless the script's deadline is near
    local name=$1 limit=$2
    shift 2
    local left=$(( DEADLINE - $(elapsed) ))
    if (( left < 15 )); then
        echo "== $name: SKIPPED (deadline, $(elapsed) s in)"
        echo "skipped" > "$RES/$name.rc"
        return 99
    fi
    (( limit > left )) && limit=$left
    echo "== $name (timeout ${limit} s, $(elapsed) s in)"
    timeout --kill-after=10 "$limit" "$@"
    local rc=$?
    echo "$rc" > "$RES/$name.rc"
    echo "== $name: rc $rc ($(elapsed) s in)"
    return $rc
}

if [ "${GPU_CHECK_SIM:-0}" = "1" ]; then
    # dry run without a GPU: the CLI step runs the CUDA kernel on Numba's simulator
    # (seconds for this tiny backtest); the GPU-only steps skip
    export NUMBA_ENABLE_CUDASIM=1
else
    unset NUMBA_ENABLE_CUDASIM
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export FOLDGATE_CACHE_DIR="${TMPDIR:-/tmp}/foldgate-gpu-check-cache"
export PYTHONDONTWRITEBYTECODE=1

{
    echo "date: $(date -u +%FT%TZ)"
    $PY -V
    $PY -c "import numba, numpy; print('numba', numba.__version__, 'numpy', numpy.__version__)"
    $PY -c "import importlib.metadata as m; print('numba-cuda', m.version('numba-cuda'))" 2>&1
    timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    nproc
} > "$RES/env.txt" 2>&1
cat "$RES/env.txt"

# -- install: foldgate without its dependencies, test tools from the carried wheels
missing=()
$PY -c "import hypothesis" 2>/dev/null || missing+=("hypothesis")
$PY -c "import pytest_benchmark" 2>/dev/null || missing+=("pytest-benchmark")
if (( ${#missing[@]} )); then
    if [ -d "$ROOT/.whl" ]; then
        step install_wheels 60 $PY -m pip install -q --no-index --find-links "$ROOT/.whl" "${missing[@]}"
    else
        echo "missing ${missing[*]} and no .whl/ to install them from (see this script's header)"
    fi
fi
if [ "${GPU_CHECK_NO_INSTALL:-0}" = "1" ]; then  # a dry run in a shared venv
    echo "== install_foldgate: skipped (GPU_CHECK_NO_INSTALL=1), running from the tree"
else
    step install_foldgate 90 $PY -m pip install -q --no-deps --no-build-isolation -e "$ROOT" \
        || echo "pip install -e failed: running from the tree (PYTHONPATH) instead"
fi

# -- is there a GPU at all?
step probe 120 $PY tests/gpu_sim_worker.py probe | tee "$RES/probe.json"

# -- parity: the GPU kernel against the CPU kernel, bit for bit
step parity 200 $PY -m pytest -m gpu tests/test_gpu_simulate.py -q -rA -p no:cacheprovider \
    --junitxml="$RES/parity.xml" > "$RES/parity.txt" 2>&1
tail -20 "$RES/parity.txt"

# -- the whole --device cuda path: CLI -> pipeline -> batch -> GPU kernel -> report
for device in cuda cpu; do
    step "cli_$device" 60 $PY -m cli.main backtest --model data/policies/UNIUSD_1Hour.pt \
        --store data/bars --days 30 --walk-forward 3 --device "$device" \
        --json "$RES/cli_$device.json" >> "$RES/cli.txt" 2>&1
done
tail -5 "$RES/cli.txt"

# -- rate: 10,240 trajectories x 2,000 bars, with the CPU kernel's rate in the same run
step bench 150 $PY -m pytest benchmarks/test_bench_gpu.py -m gpu --benchmark-enable \
    --benchmark-json="$RES/bench.json" -q -s -p no:cacheprovider > "$RES/bench.txt" 2>&1
tail -8 "$RES/bench.txt"

# -- summary
RES="$RES" ELAPSED="$(elapsed)" $PY - <<'EOF'
import json, os
from pathlib import Path

res = Path(os.environ["RES"])

def rc(name):
    p = res / f"{name}.rc"
    return p.read_text().strip() if p.exists() else "not run"

out = {"elapsed_s": int(os.environ["ELAPSED"]), "steps": {n: rc(n) for n in
       ("install_foldgate", "probe", "parity", "cli_cuda", "cli_cpu", "bench")}}
try:
    probe = json.loads([l for l in (res / "probe.json").read_text().splitlines()
                        if l.startswith("{")][-1])
    out["device"] = probe.get("device")
    out["cuda_available"] = probe.get("cuda_available")
except Exception as exc:
    out["probe_error"] = str(exc)
try:
    import xml.etree.ElementTree as ET

    suite = ET.parse(res / "parity.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
except Exception:
    counts = None
out["parity_tests"] = counts
if counts and counts["tests"] and not (counts["failures"] or counts["errors"] or counts["skipped"]):
    out["parity"] = "passed"
elif counts and counts["skipped"] and not (counts["failures"] or counts["errors"]):
    out["parity"] = "SKIPPED (no usable GPU)"
else:
    out["parity"] = f"FAILED (rc {rc('parity')}, see parity.txt)"
try:
    a = json.loads((res / "cli_cuda.json").read_text())
    b = json.loads((res / "cli_cpu.json").read_text())
    same = all(fa["metrics"] == fb["metrics"] and fa["equity"] == fb["equity"]
               for ma, mb in zip(a["models"], b["models"])
               for fa, fb in zip(ma["folds"], mb["folds"]))
    out["cli_cuda_vs_cpu"] = "identical folds" if same else "FOLDS DIFFER"
    out["cli_device"] = a["settings"].get("device_used")
except Exception as exc:
    out["cli_cuda_vs_cpu"] = f"not compared: {exc}"
try:
    bench = json.loads((res / "bench.json").read_text())["benchmarks"][0]["extra_info"]
    kernel, transfer = bench["kernel_s"], bench["transfer_s"]
    out.update({
        "trajectories": bench["trajectories"], "bars": bench["bars"],
        "gpu_bar_steps_per_s_kernel": bench["bar_steps_per_s_kernel"],
        "gpu_bar_steps_per_s_call": bench["bar_steps_per_s_call"],
        "cpu_bar_steps_per_s": bench["cpu_bar_steps_per_s"],
        "gpu_kernel_vs_cpu": bench["speedup_kernel_vs_cpu"],
        "transfer_share": transfer / (kernel + transfer),
        "kernel_s": kernel, "h2d_s": bench["h2d_s"], "d2h_s": bench["d2h_s"],
        "first_call_s": bench["first_call_s"],
        "target_5e8": bench["bar_steps_per_s_kernel"] >= 5e8,
    })
except Exception as exc:
    out["bench_error"] = f"{type(exc).__name__}: {exc}"
(res / "results.json").write_text(json.dumps(out, indent=2) + "\n")
lines = ["| what | value |", "|---|---|"] + [f"| {k} | {v:,.4g} |" if isinstance(v, float)
                                           else f"| {k} | {v} |" for k, v in out.items()]
(res / "results.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
ok = out["parity"] == "passed" and "gpu_bar_steps_per_s_kernel" in out
raise SystemExit(0 if ok else 1)
EOF
rc=$?
echo "gpu_check: done in $(elapsed) s, exit $rc"
exit $rc
