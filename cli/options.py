"""The options commands share, each defined once, and the CLI's one seam to the engine's
run settings (docs/internals.md, The CLI seam):

- every option that sets a field of engine.run_config.RunConfig is named after that
  field (`--config` -> `thresholds`, `--out` -> `out_dir`, ...), so the field -> flag
  table is the command's own parameters (`flag_of`);
- `run_config_options` adds the options `backtest` and `validate` share and hands the
  command ONE RunConfig, built by `build_run_config` from the parsed options;
- `setting_errors` turns an engine SettingError about a field into a click error naming
  its flag: exit status 2 when the value itself is wrong, 1 when it does not fit the
  data or the machine (more folds than bars, `--device cuda` without a GPU).
The values' rules are the engine's (RunConfig.check): the options only parse types."""

from __future__ import annotations

import contextlib
import dataclasses
import functools

import click

from engine.errors import SettingError
from engine.gating import PROFILES
from engine.run import DEFAULT_CHUNK_SIZE
from engine.run.executors import EXECUTORS
from engine.run_config import DEVICES, FILLS, SOURCES, RunConfig

SETTINGS = frozenset(f.name for f in dataclasses.fields(RunConfig))
"""RunConfig's fields: the options of these names go into the command's RunConfig."""

DEVICE_CHOICES = list(DEVICES)


def positive_int(ctx, param, value):
    """A count of a command's own (not a run setting: those are RunConfig.check's)."""
    if value is not None and value < 1:
        raise click.BadParameter(f"must be at least 1, got {value}", ctx=ctx, param=param)
    return value


def _stack(f, decorators):
    return functools.reduce(lambda acc, dec: dec(acc), reversed(decorators), f)


# ---------------------------------------------------------------------------------
# the options, each once


def store_option(f):
    return click.option(
        "--store", "store", type=click.Path(file_okay=False), envvar="FOLDGATE_STORE", default=None,
        show_envvar=True, help="Bar store directory [default: ./data/bars].")(f)


def config_option(f):
    """--config FILE: the thresholds TOML (gating bounds and decision rules)."""
    return click.option(
        "--config", "thresholds", type=click.Path(exists=True, dir_okay=False), default=None,
        help="Thresholds TOML [default: engine/defaults/thresholds.toml, the seed's v2.4.5 table and "
             "the evidence rule].")(f)


def window_options(*, days: int, days_help: str, walk_forward: int | None, walk_forward_help: str,
                   out_help: str):
    """--days, --walk-forward and --out: what backtest and validate share, with each one's
    defaults and words."""
    return [
        click.option("--days", "days", type=int, default=days, show_default=True, help=days_help),
        click.option("--walk-forward", "walk_forward", type=int, default=walk_forward,
                     show_default=walk_forward is not None, metavar="K", help=walk_forward_help),
        click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False), help=out_help),
    ]


def simulation_options(f):
    """Capital, costs, fills, shorting, end date, source and device."""
    return _stack(f, [
        click.option("--capital", "capital", type=float, default=100_000.0, show_default=True,
                     help="Starting capital of every fold."),
        click.option("--end", "end", default=None, metavar="DATE",
                     help="Last bar of the window (ISO date or time, UTC; a date includes its whole day) "
                          "[default: the last stored bar]."),
        store_option,
        click.option("--source", "source", type=click.Choice(SOURCES), default=None,
                     help="Where bars come from [default: the store; Alpaca when ALPACA_KEYS_FILE "
                          "is set and the store lacks bars]."),
        click.option("--data-url", "data_url", envvar="FOLDGATE_ALPACA_DATA_URL", default=None, hidden=True),
        click.option("--fill", "fill", type=click.Choice(FILLS), default="next-open", show_default=True,
                     help="Fill at the next bar's open, or at the deciding bar's close (optimistic)."),
        click.option("--commission-bps", "commission_bps", type=float, default=10.0, show_default=True,
                     help="Commission per fill, in basis points of notional."),
        click.option("--slippage-bps", "slippage_bps", type=float, default=5.0, show_default=True,
                     help="Slippage per fill, in basis points of price."),
        click.option("--long-only/--allow-short", "long_only", default=None,
                     help="Clip short targets to flat, or allow them [default: long-only for crypto]."),
        click.option("--bars-per-year", "bars_per_year", type=float, default=None,
                     help="Annualisation of Sharpe and Sortino [default: measured over the window]."),
        click.option("--device", "device", type=click.Choice(DEVICES), default="cpu", show_default=True,
                     help="Run the simulation kernel on the CPU or a CUDA GPU (auto: CUDA when present)."),
    ])


def decision_options(f):
    """--config, --profile and --hurdle-sharpe: which rule decides, on what thresholds."""
    return _stack(f, [
        config_option,
        click.option("--profile", "profile", type=click.Choice(PROFILES), default=None,
                     help="Decision rule: evidence (PSR, MinTRL, fold consistency; docs/design.md 8) or seed "
                          "(the seed's fold table) [default: the thresholds file's, evidence]."),
        click.option("--hurdle-sharpe", "hurdle_sharpe", type=float, default=None, metavar="X",
                     help="Annual Sharpe ratio that LIVE must beat with PSR >= the LIVE level "
                          "[default: the thresholds file's, 0]."),
    ])


def run_options(f):
    """--resume, --chunk-size, --executor, --ray-address, --ray-cpus, --stress (docs/design.md 11)."""
    return _stack(f, [
        click.option("--resume", "resume", is_flag=True,
                     help="Reuse the chunks a killed run of the same inputs left in the run "
                          "directory (--out DIR/run); simulate only the rest."),
        click.option("--chunk-size", "chunk_size", type=int, default=None, metavar="N",
                     help=f"Trajectories per chunk of the run [default: {DEFAULT_CHUNK_SIZE}, or what "
                          "the resumed run used]."),
        click.option("--executor", "executor", type=click.Choice(EXECUTORS), default="local",
                     show_default=True,
                     help="Run chunks in this process, or as Ray tasks (pip install 'foldgate[ray]')."),
        click.option("--ray-address", "ray_address", default=None, metavar="ADDR",
                     help="Ray cluster to join: auto, ray://host:10001, host:6379 [default: start "
                          "a local Ray]."),
        click.option("--ray-cpus", "ray_cpus", type=int, default=None, metavar="N",
                     help="CPUs of the local Ray started without --ray-address [default: all]."),
        click.option("--stress", "stress", is_flag=True,
                     help="Also run every window with commission and slippage x2 and x3, and with "
                          "fills one bar later; report how each model's statistics move (decisions "
                          "stay on the base costs)."),
    ])


def report_options(f):
    return _stack(f, [
        click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
                     help="Write the foldgate.report/2 JSON report here."),
        click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
                     help="Write the self-contained HTML report here."),
    ])


# ---------------------------------------------------------------------------------
# the seam: parsed options -> one RunConfig; engine errors about a field -> its flag


def build_run_config(settings: dict, **fixed) -> RunConfig:
    """THE RunConfig of a command: its parsed options named after RunConfig's fields,
    plus what the command fixes (validate's keep_chunks), every value checked."""
    return RunConfig(**settings, **fixed).check()


def flag_of(field: str, command: click.Command | None) -> str:
    """The flag that sets RunConfig field `field` on `command` (the field's own name
    when the command has none, e.g. one it fixes)."""
    for param in command.params if command is not None else ():
        if param.name == field and isinstance(param, click.Option):
            return param.opts[0]
    return field


def setting_error(exc: SettingError, ctx: click.Context | None) -> click.ClickException:
    """The click error for an engine SettingError, naming the flag: a usage error (exit
    status 2) when the value itself is wrong, else one line, exit status 1."""
    command = ctx.command if ctx is not None else None

    def name(field):
        return flag_of(field, command)

    if not exc.usage:
        return click.ClickException(exc.render(name))
    param = next((p for p in (command.params if command else ()) if p.name == exc.field), None)
    if param is None:
        return click.UsageError(exc.render(name), ctx=ctx)
    return click.BadParameter(exc.describe(name), ctx=ctx, param=param)


@contextlib.contextmanager
def setting_errors(ctx: click.Context | None = None):
    """Inside, an engine SettingError leaves as setting_error's click error."""
    try:
        yield
    except SettingError as exc:
        raise setting_error(exc, ctx or click.get_current_context(silent=True)) from None


def with_run_config(**fixed):
    """The command receives `cfg`, the RunConfig build_run_config makes from its options
    named after RunConfig's fields (they are taken out of its other arguments); the
    engine's SettingErrors in the command name their flags."""
    def decorate(f):
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            settings = {k: kwargs.pop(k) for k in list(kwargs) if k in SETTINGS}
            with setting_errors():
                cfg = build_run_config(settings, **fixed)
                return f(*args, cfg=cfg, **kwargs)
        return wrapper
    return decorate


def run_config_options(*, days: int, days_help: str, walk_forward: int | None, walk_forward_help: str,
                       out_help: str, **fixed):
    """Every option backtest and validate share (window, simulation, decision, run
    directory and executor), and the one RunConfig they make (with_run_config)."""
    def decorate(f):
        decorators = [*window_options(days=days, days_help=days_help, walk_forward=walk_forward,
                                      walk_forward_help=walk_forward_help, out_help=out_help),
                      simulation_options, decision_options, run_options]
        return _stack(with_run_config(**fixed)(f), decorators)
    return decorate
