"""`foldgate convert`: other policy formats -> a native foldgate.policy/1 checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from engine.errors import FoldgateError
from engine.policies.checkpoint import load_policy, policy_to_checkpoint, save_policy
from engine.policies.fields import policy_from_fields
from engine.policies.reading import malformed
from engine.policies.sb3 import (
    check_obs_norm_size,
    read_sb3_zip,
    read_vecnormalize,
    sb3_checkpoint_fields,
    sidecar_path,
)
from engine.policies.torch_convert import convert_torch


@click.group()
def convert() -> None:
    """Convert policies from other formats into foldgate's native checkpoint."""


@convert.command("sb3")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--features",
    "features",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Sidecar JSON (features, window, state_features, action targets, ...). "
    "Default: MODEL.features.json beside the zip.",
)
@click.option(
    "--vecnormalize",
    type=click.Path(dir_okay=False, path_type=Path),
    help="VecNormalize statistics saved by SB3 (a pickle: needs --trust-pickle).",
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Allow unpickling --vecnormalize. A pickle can run any code: only for files you made.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Native checkpoint to write (e.g. SYMBOL_1Hour.pt).",
)
def sb3(model: Path, features: Path | None, vecnormalize: Path | None, trust_pickle: bool, output: Path) -> None:
    """Convert a stable-baselines3 PPO MODEL.zip (MlpPolicy) into a native checkpoint."""

    if trust_pickle and vecnormalize is None:
        raise click.UsageError("--trust-pickle only applies to --vecnormalize")
    if vecnormalize is not None and not trust_pickle:
        raise click.BadParameter(
            f"{vecnormalize} is a pickle, and loading a pickle can run arbitrary code. "
            "Pass --trust-pickle if you made this file yourself, or put the statistics in the "
            'sidecar as JSON: "obs_norm": {"mean": [...], "var": [...], "epsilon": 1e-8, "clip": 10.0}',
            param_hint="--vecnormalize",
        )
    try:
        with malformed(model):  # a hostile zip or sidecar ends as one line, never a traceback
            written, note = _convert(model, features, vecnormalize, output)
    except FoldgateError as exc:
        raise click.ClickException(str(exc)) from None
    ident = " ".join(x for x in (written.symbol, written.timeframe) if x)
    click.echo(f"Wrote {output}{' (' + ident + ')' if ident else ''}: {written.describe()}{note}")


def _convert(model: Path, features: Path | None, vecnormalize: Path | None, output: Path):
    """Read, validate, write, read back; returns the written policy and a note."""

    net = read_sb3_zip(model)
    obs_norm = None
    note = ""
    if vecnormalize is not None:
        obs_norm = read_vecnormalize(vecnormalize, trust_pickle=True)
        if obs_norm is None:
            note = f"; {vecnormalize.name} did not normalise observations (norm_obs=False)"
        else:
            check_obs_norm_size(obs_norm, net.obs_dim, vecnormalize)
            note = f"; obs_norm from {vecnormalize.name}"
    fields = sb3_checkpoint_fields(model, features, obs_norm, net=net)
    where = features if features is not None else sidecar_path(model)
    policy = policy_from_fields(fields, path=model, source_format="sb3.zip", name_path=model, where=where)
    save_policy(output, **policy_to_checkpoint(policy))
    written = load_policy(output)  # read back exactly as foldgate will
    return written, note


@convert.command("torch")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--features",
    "features",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Sidecar JSON: actor_prefix, activation, features, window, state_features, action, "
    "optionally obs_norm, symbol, timeframe, trained_until, state_dict_key (docs/convert.md).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Native checkpoint to write (e.g. SYMBOL_1Hour.pt).",
)
def torch_cmd(model: Path, features: Path, output: Path) -> None:
    """Convert a PyTorch state_dict of an MLP actor (CleanRL, ElegantRL, your own
    ActorCritic) into a native checkpoint; read with torch.load(weights_only=True)."""

    try:
        written = convert_torch(model, features, output)
    except FoldgateError as exc:
        raise click.ClickException(str(exc)) from None
    ident = " ".join(x for x in (written.symbol, written.timeframe) if x)
    click.echo(f"Wrote {output}{' (' + ident + ')' if ident else ''}: {written.describe()}")
