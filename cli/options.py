"""Options shared by `backtest`, `validate`, `gate` and `bench`, defined once."""

from __future__ import annotations

import functools
import math

import click

FILL_CHOICES = ["next-open", "close"]
DEVICE_CHOICES = ["auto", "cpu", "cuda"]


def _positive_int(ctx, param, value):
    if value is not None and value < 1:
        raise click.BadParameter(f"must be at least 1, got {value}", ctx=ctx, param=param)
    return value


def _finite(ctx, param, value):
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"must be a finite number, got {value}", ctx=ctx, param=param)
    return value


def _bps(ctx, param, value):
    """A cost in basis points: 0 <= x < 10,000 (at 100% a sell would fill at price 0)."""
    value = _finite(ctx, param, value)
    if value is not None and not 0 <= value < 10_000:
        raise click.BadParameter(f"must be at least 0 and below 10000 bps, got {value}", ctx=ctx, param=param)
    return value


def _positive_float(ctx, param, value):
    value = _finite(ctx, param, value)
    if value is not None and not value > 0:
        raise click.BadParameter(f"must be positive, got {value}", ctx=ctx, param=param)
    return value


def store_option(f):
    return click.option(
        "--store",
        type=click.Path(file_okay=False),
        envvar="FOLDGATE_STORE",
        default=None,
        show_envvar=True,
        help="Bar store directory [default: ./data/bars].",
    )(f)


def simulation_options(f):
    """Capital, costs, fills, shorting, end date, source and device."""
    decorators = [
        click.option("--capital", type=float, default=100_000.0, show_default=True,
                     callback=_positive_float, help="Starting capital of every fold."),
        click.option("--end", "end", default=None, metavar="DATE",
                     help="Last bar of the window (ISO date or time, UTC; a date includes its whole day) "
                          "[default: the last stored bar]."),
        store_option,
        click.option("--source", "data_source", type=click.Choice(["store", "alpaca"]), default=None,
                     help="Where bars come from [default: the store; Alpaca when ALPACA_KEYS_FILE "
                          "is set and the store lacks bars]."),
        click.option("--data-url", envvar="FOLDGATE_ALPACA_DATA_URL", default=None, hidden=True),
        click.option("--fill", type=click.Choice(FILL_CHOICES), default="next-open", show_default=True,
                     help="Fill at the next bar's open, or at the deciding bar's close (optimistic)."),
        click.option("--commission-bps", type=float, default=10.0, show_default=True,
                     callback=_bps, help="Commission per fill, in basis points of notional."),
        click.option("--slippage-bps", type=float, default=5.0, show_default=True,
                     callback=_bps, help="Slippage per fill, in basis points of price."),
        click.option("--long-only/--allow-short", "long_only", default=None,
                     help="Clip short targets to flat, or allow them [default: long-only for crypto]."),
        click.option("--bars-per-year", type=float, default=None, callback=_positive_float,
                     help="Annualisation of Sharpe and Sortino [default: measured over the window]."),
        click.option("--device", type=click.Choice(DEVICE_CHOICES), default="cpu", show_default=True,
                     help="Run the simulation kernel on the CPU or a CUDA GPU (auto: CUDA when present)."),
    ]
    return functools.reduce(lambda acc, dec: dec(acc), reversed(decorators), f)


PROFILE_CHOICES = ["evidence", "seed"]


def config_option(f):
    """--config FILE: the thresholds TOML (gating bounds and decision rules)."""
    return click.option(
        "--config", "thresholds_path", type=click.Path(exists=True, dir_okay=False), default=None,
        help="Thresholds TOML [default: engine/defaults/thresholds.toml, the seed's v2.4.5 table and "
             "the evidence rule].")(f)


def decision_options(f):
    """--config, --profile and --hurdle-sharpe: which rule decides, on what thresholds."""
    decorators = [
        config_option,
        click.option("--profile", type=click.Choice(PROFILE_CHOICES), default=None,
                     help="Decision rule: evidence (PSR, MinTRL, fold consistency; docs/design.md 8) or seed "
                          "(the seed's fold table) [default: the thresholds file's, evidence]."),
        click.option("--hurdle-sharpe", type=float, default=None, callback=_finite, metavar="X",
                     help="Annual Sharpe ratio that LIVE must beat with PSR >= the LIVE level "
                          "[default: the thresholds file's, 0]."),
    ]
    return functools.reduce(lambda acc, dec: dec(acc), reversed(decorators), f)


def report_options(f):
    decorators = [
        click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
                     help="Write the foldgate.report/2 JSON report here."),
        click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
                     help="Write the self-contained HTML report here."),
    ]
    return functools.reduce(lambda acc, dec: dec(acc), reversed(decorators), f)


EXECUTOR_CHOICES = ["local", "ray"]


def _chunk_size(ctx, param, value):
    if value is None:
        return value
    from engine.errors import FoldgateError
    from engine.run import check_chunk_size

    try:
        return check_chunk_size(value)
    except FoldgateError as exc:
        raise click.BadParameter(str(exc).removeprefix("--chunk-size "), ctx=ctx, param=param) from None


def run_options(f):
    """--resume, --chunk-size, --executor, --ray-address, --ray-cpus, --stress (docs/design.md
    11); the command receives them as one dict, `run_opts`, of RunConfig's field names."""
    from engine.run import DEFAULT_CHUNK_SIZE
    @functools.wraps(f)
    def wrapper(*args, resume, chunk_size, executor, ray_address, ray_cpus, stress, **kwargs):
        if executor != "ray" and (ray_address or ray_cpus):
            raise click.UsageError("--ray-address and --ray-cpus need --executor ray")
        run_opts = dict(resume=resume, chunk_size=chunk_size, executor=executor,
                        ray_address=ray_address, ray_cpus=ray_cpus, stress=stress)
        return f(*args, run_opts=run_opts, **kwargs)

    decorators = [
        click.option("--resume", is_flag=True,
                     help="Reuse the chunks a killed run of the same inputs left in the run "
                          "directory (--out DIR/run); simulate only the rest."),
        click.option("--chunk-size", type=int, default=None, callback=_chunk_size, metavar="N",
                     help=f"Trajectories per chunk of the run [default: {DEFAULT_CHUNK_SIZE}, or what "
                          "the resumed run used]."),
        click.option("--executor", type=click.Choice(EXECUTOR_CHOICES), default="local",
                     show_default=True,
                     help="Run chunks in this process, or as Ray tasks (pip install 'foldgate[ray]')."),
        click.option("--ray-address", default=None, metavar="ADDR",
                     help="Ray cluster to join: auto, ray://host:10001, host:6379 [default: start "
                          "a local Ray]."),
        click.option("--ray-cpus", type=int, default=None, callback=_positive_int, metavar="N",
                     help="CPUs of the local Ray started without --ray-address [default: all]."),
        click.option("--stress", is_flag=True,
                     help="Also run every window with commission and slippage x2 and x3, and with "
                          "fills one bar later; report how each model's statistics move (decisions "
                          "stay on the base costs)."),
    ]
    return functools.reduce(lambda acc, dec: dec(acc), reversed(decorators), wrapper)


positive_int = _positive_int
