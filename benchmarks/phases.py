"""Where the wall time of one foldgate command goes, without a profiler's overhead:
wraps the pipeline's main steps with timers, runs the command in this process, and
prints seconds per step (steps nest: a step's time includes the steps it calls).

    python benchmarks/phases.py validate ARCHIVE --store STORE --days 180 \\
        --walk-forward 5 --out /tmp/phases --stress
    python benchmarks/phases.py backtest --model data/policies/UNIUSD_1Hour.pt --days 180 --walk-forward 5

benchmarks/bulk_validate.py builds a 1,000-model archive and store (its --workdir
keeps them); docs/scale.md quotes this script's figures for it.
"""

from __future__ import annotations

import atexit
import collections
import functools
import importlib
import sys
import time
from pathlib import Path

T0 = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# (module, function) or (module, class, method): each is timed where it is defined and
# wherever another module imported it by name
STEPS = [
    ("engine.pipeline", "run_validate"), ("engine.pipeline", "run_backtest"),
    ("engine.simulation", "simulate_jobs"), ("engine.simulation", "_read_bars"),
    ("engine.simulation", "_window_record"), ("engine.features", "compute_features"),
    ("engine.policies.policy_cache", "load_policy_cached"), ("engine.run", "run_chunked"),
    ("engine.run.digest", "run_digests"), ("engine.batch", "split_result"),
    ("engine.batch", "Batch", "pack"), ("engine.batch", "Batch", "simulate_packed"),
    ("engine.run.rundir", "RunDir", "write_chunk"),
    ("engine.assessment", "summarize_jobs"), ("engine.assessment", "decide_jobs"),
    ("engine.metrics.evidence", "evidence_summaries"), ("engine.metrics", "walk_forward_summary"),
    ("engine.report.jsonio", "write_json_report"), ("engine.report.html", "write_html_report"),
    ("cli.output", "print_validate"), ("cli.output", "print_backtest"),
]
seconds: collections.Counter = collections.Counter()


def _timed(f, name):
    @functools.wraps(f)
    def timed(*args, **kwargs):
        t = time.perf_counter()
        try:
            return f(*args, **kwargs)
        finally:
            seconds[name] += time.perf_counter() - t
    return timed


def install() -> None:
    import cli.main  # noqa: F401 - every module the commands use, imported now

    wrapped = {}
    for step in STEPS:
        module = importlib.import_module(step[0])
        owner = getattr(module, step[1]) if len(step) == 3 else module
        attr = step[-1]
        original = getattr(owner, attr)
        wrapped[id(original)] = _timed(original, ".".join(step[1:]))
        setattr(owner, attr, wrapped[id(original)])
    for module in list(sys.modules.values()):  # names imported with `from x import f`
        if getattr(module, "__name__", "").startswith(("engine", "cli")):
            for attr, value in list(vars(module).items()):
                if id(value) in wrapped:
                    setattr(module, attr, wrapped[id(value)])


def report() -> None:
    wall = time.perf_counter() - T0
    print(f"\nwall {wall:.2f} s, of which (steps nest):", file=sys.stderr)
    for name, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"{s:8.3f}  {name}", file=sys.stderr)


def main() -> None:
    install()
    seconds["imports"] = time.perf_counter() - T0
    atexit.register(report)
    from cli.main import main as cli_main

    sys.argv = ["foldgate"] + sys.argv[1:]
    cli_main()


if __name__ == "__main__":
    main()
