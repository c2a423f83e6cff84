"""`foldgate bench`: the reference workload of docs/design.md 10, against torch, in one process."""

from __future__ import annotations

import json

import click
from rich.table import Table

from engine.atomic import atomic_write_text
from engine.bench import BenchConfig, run_bench

from . import output
from .options import DEVICE_CHOICES, positive_int


@click.command()
@click.option("--trajectories", type=int, default=256, show_default=True, callback=positive_int)
@click.option("--bars", type=int, default=2000, show_default=True, callback=positive_int)
@click.option("--repeats", type=int, default=3, show_default=True, callback=positive_int)
@click.option("--tiny", is_flag=True, help="A few trajectories, to check that everything runs.")
@click.option("--no-torch", is_flag=True, help="Skip the torch baselines.")
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="cpu", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the measurements as JSON ('-' for stdout).")
def bench(trajectories, bars, repeats, tiny, no_torch, device, json_path):
    """Bar-steps/s of foldgate's kernel vs a per-step torch loop (batch 1) and torch lockstep."""

    if bars < 3:
        raise click.BadParameter("needs at least 3 bars", param_hint="--bars")
    cfg = BenchConfig.tiny() if tiny else BenchConfig(n_traj=trajectories, n_bars=bars, repeats=repeats)
    with output.status("benchmarking"):
        result = run_bench(cfg, device=device, torch_baselines=not no_torch)
    if json_path == "-":
        click.echo(json.dumps(result, indent=2))
        return
    con = output.console()
    w = result["workload"]
    table = Table(title=f"{w['trajectories']} trajectories x {w['bars']} bars, "
                        f"{w['inputs']}-{'-'.join(map(str, w['hidden']))}-{w['actions']} {w['activation']} MLP "
                        f"on {result['machine']['cpu']} ({result['machine']['cores']} cores)",
                  title_justify="left")
    for col in ("engine", "bar-steps/s", "seconds", "vs torch batch 1"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    for name, r in result["results"].items():
        ratio = r.get("vs_torch_batch1")
        table.add_row(name, f"{r['bar_steps_per_s']:,.0f}", f"{r['seconds']:.4f}",
                      "-" if ratio is None else f"{ratio:.1f}x")
    con.print(table)
    if json_path:
        atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
