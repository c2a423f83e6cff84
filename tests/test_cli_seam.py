"""The CLI seam (docs/internals.md): the options backtest and validate share yield ONE
RunConfig, built by cli.options.build_run_config, and the engine's errors about a
setting name its flag, from one table (the commands' own parameters)."""

import ast
import dataclasses
import math
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import cli.backtest
import cli.options
import cli.validate
from cli.main import app
from cli.options import SETTINGS, flag_of
from engine.errors import SettingError
from engine.run_config import FILLED_BY_RUN, RunConfig

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "data" / "bars"
MODEL = ROOT / "data" / "policies" / "BTCUSD_1Hour.pt"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("ALPACA_KEYS_FILE", "FOLDGATE_STORE", "FOLDGATE_ALPACA_DATA_URL"):
        monkeypatch.delenv(var, raising=False)


class Captured(Exception):
    pass


@pytest.fixture
def captured(monkeypatch):
    """Each command's RunConfig as the pipeline receives it; nothing is simulated."""
    seen = []

    def fake_backtest(models, cfg, progress=None):
        seen.append(cfg)
        raise Captured

    def fake_validate(source, cfg, dest_root=None, progress=None):
        seen.append(cfg)
        raise Captured

    monkeypatch.setattr(cli.backtest, "run_backtest", fake_backtest)
    monkeypatch.setattr(cli.validate, "run_validate", fake_validate)
    return seen


def invoke(command, *args, source=None):
    if command == "backtest":
        argv = ["backtest", "--model", str(MODEL), *args]
    else:
        argv = ["validate", str(source), *args]
    return CliRunner().invoke(app, [str(a) for a in argv])


def config_of(captured, command, *args, source):
    r = invoke(command, *args, source=source)
    assert isinstance(r.exception, Captured), r.output
    assert len(captured) == 1
    return captured.pop()


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "training_summary_20260101_000000.json"
    path.write_text("{}")
    return path


@pytest.fixture
def toml(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text("")
    return path


# (flags, the RunConfig fields they set); paths are filled in by the test
SHARED = [
    (["--days", "7"], {"days": 7}),
    (["--walk-forward", "3"], {"walk_forward": 3}),
    (["--out", "{dir}"], {"out_dir": "{dir}"}),
    (["--capital", "5000.5"], {"capital": 5000.5}),
    (["--end", "2026-09-30"], {"end": "2026-09-30"}),
    (["--store", "{dir}"], {"store": "{dir}"}),
    (["--source", "alpaca"], {"source": "alpaca"}),
    (["--data-url", "http://127.0.0.1:9"], {"data_url": "http://127.0.0.1:9"}),
    (["--fill", "close"], {"fill": "close"}),
    (["--commission-bps", "3.5"], {"commission_bps": 3.5}),
    (["--slippage-bps", "0"], {"slippage_bps": 0.0}),
    (["--long-only"], {"long_only": True}),
    (["--allow-short"], {"long_only": False}),
    (["--bars-per-year", "8760"], {"bars_per_year": 8760.0}),
    (["--device", "auto"], {"device": "auto"}),
    (["--config", "{toml}"], {"thresholds": "{toml}"}),
    (["--profile", "seed"], {"profile": "seed"}),
    (["--hurdle-sharpe", "-0.5"], {"hurdle_sharpe": -0.5}),
    (["--resume", "--out", "{dir}"], {"resume": True, "out_dir": "{dir}"}),
    (["--chunk-size", "7"], {"chunk_size": 7}),
    (["--executor", "ray", "--ray-address", "auto"], {"executor": "ray", "ray_address": "auto"}),
    (["--executor", "ray", "--ray-cpus", "2"], {"executor": "ray", "ray_cpus": 2}),
    (["--stress"], {"stress": True}),
]
VALIDATE_ONLY = [
    (["--quick-days", "9"], {"quick_days": 9}),
    (["--force"], {"force": True}),
    (["--checkpoints", "all"], {"checkpoints": "all"}),
]
DEFAULTS = {"backtest": RunConfig(), "validate": RunConfig(days=180, walk_forward=5, quick_days=30, keep_chunks=True)}


def _fill(value, tmp_path, toml):
    if isinstance(value, str):
        return value.replace("{dir}", str(tmp_path / "d")).replace("{toml}", str(toml))
    return value


def test_the_cases_cover_every_setting():
    covered = {f for _, fields in SHARED + VALIDATE_ONLY for f in fields} | {"keep_chunks"}
    assert covered == SETTINGS - FILLED_BY_RUN


@pytest.mark.parametrize("command", ["backtest", "validate"])
def test_without_flags_the_run_config_is_the_commands_defaults(captured, command, source):
    cfg = config_of(captured, command, source=source)
    assert dataclasses.asdict(cfg) == dataclasses.asdict(DEFAULTS[command])


@pytest.mark.parametrize("command, flags, fields", [("backtest", *c) for c in SHARED]
                         + [("validate", *c) for c in SHARED + VALIDATE_ONLY])
def test_each_flag_reaches_its_run_config_field(captured, command, flags, fields, source, toml, tmp_path):
    cfg = config_of(captured, command, *[_fill(a, tmp_path, toml) for a in flags], source=source)
    expected = dataclasses.replace(DEFAULTS[command], **{k: _fill(v, tmp_path, toml) for k, v in fields.items()})
    assert dataclasses.asdict(cfg) == dataclasses.asdict(expected)


@pytest.mark.parametrize("command", ["backtest", "validate"])
def test_the_command_runs_on_the_one_run_config_the_seam_built(captured, command, source, monkeypatch):
    built = []
    real = cli.options.build_run_config

    def spy(settings, **fixed):
        built.append(real(settings, **fixed))
        return built[-1]

    monkeypatch.setattr(cli.options, "build_run_config", spy)
    cfg = config_of(captured, command, "--days", "11", source=source)
    assert len(built) == 1 and cfg is built[0]  # not a RunConfig of the command's own


def test_no_command_builds_a_run_config_itself():
    """RunConfig( is written in cli/ only in options.build_run_config."""
    calls = []
    for path in sorted((ROOT / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name == "RunConfig":
                    calls.append(f"{path.name}:{node.lineno}")
    assert calls == [f"options.py:{_build_line()}"]


def _build_line():
    import inspect

    lines, start = inspect.getsourcelines(cli.options.build_run_config)
    return start + next(i for i, line in enumerate(lines) if "RunConfig(" in line)


# ---------------------------------------------------------------------------------
# errors name their flags


def assert_error(r, code, *words):
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("Error:"), r.output
    for w in words:
        assert w in last, last


BAD_VALUES = [  # (flags, flag named, words of the reason)
    (["--end", "yesterday"], "--end", "cannot read 'yesterday'"),
    (["--end", "9999-12-31"], "--end", "1678-2261"),
    (["--days", "0"], "--days", "must be positive"),
    (["--walk-forward", "0"], "--walk-forward", "at least 1"),
    (["--capital", "0"], "--capital", "must be positive"),
    (["--capital", "inf"], "--capital", "finite"),
    (["--commission-bps", "-1"], "--commission-bps", "at least 0"),
    (["--slippage-bps", "10000"], "--slippage-bps", "below 10000"),
    (["--bars-per-year", "nan"], "--bars-per-year", "finite"),
    (["--hurdle-sharpe", "inf"], "--hurdle-sharpe", "finite"),
    (["--chunk-size", "0"], "--chunk-size", "from 1 to"),
    (["--executor", "ray", "--ray-cpus", "0"], "--ray-cpus", "at least 1"),
    (["--ray-address", "auto"], "--ray-address", "needs --executor ray"),
    (["--ray-cpus", "2"], "--ray-cpus", "needs --executor ray"),
]


@pytest.mark.parametrize("command, flags, flag, words", [("backtest", *c) for c in BAD_VALUES]
                         + [("validate", *c) for c in BAD_VALUES]
                         + [("backtest", ["--resume"], "--resume", "needs --out DIR"),
                            ("validate", ["--quick-days", "0"], "--quick-days", "must be positive")])
def test_a_bad_value_is_a_usage_error_naming_its_flag(captured, command, flags, flag, words, source):
    r = invoke(command, *flags, source=source)
    assert_error(r, 2, f"Invalid value for '{flag}'", words)
    assert captured == []  # refused before any work


def test_more_folds_than_bars_names_walk_forward_with_exit_1():
    r = CliRunner().invoke(app, ["backtest", "--store", str(STORE), "--model",
                                 str(ROOT / "data" / "policies" / "SPY_1Hour.pt"), "--days", "2", "--walk-forward", "50"])
    assert_error(r, 1, "Error: --walk-forward 50: more folds (50) than bars")


@pytest.mark.parametrize("usage, code", [(True, 2), (False, 1)])
@pytest.mark.parametrize("command", ["backtest", "validate"])
def test_an_engine_setting_error_during_the_run_names_the_flags(monkeypatch, command, usage, code, source):
    """Whatever the engine raises about a field, the CLI says the flag (and the flags
    the reason names), from the one table."""
    def fail(*args, **kwargs):
        raise SettingError("thresholds", "does not fit {source} and {out_dir}", usage=usage,
                           value=None if usage else "x.toml")

    monkeypatch.setattr(cli.backtest, "run_backtest", fail)
    monkeypatch.setattr(cli.validate, "run_validate", fail)
    r = invoke(command, source=source)
    head = "Invalid value for '--config': " if usage else "--config x.toml: "
    assert_error(r, code, head + "does not fit --source and --out")


def test_flag_of_reads_the_commands_own_parameters():
    for command in (cli.backtest.backtest, cli.validate.validate):
        assert flag_of("thresholds", command) == "--config"
        assert flag_of("out_dir", command) == "--out"
        assert flag_of("long_only", command) == "--long-only"
        assert flag_of("keep_chunks", command) == "keep_chunks"  # not a flag: the field's name
    assert flag_of("quick_days", cli.validate.validate) == "--quick-days"
    assert flag_of("quick_days", cli.backtest.backtest) == "quick_days"
    # every setting a command takes has its flag
    user = SETTINGS - FILLED_BY_RUN - {"keep_chunks"}
    assert all(flag_of(f, cli.validate.validate).startswith("--") for f in user)
    assert all(flag_of(f, cli.backtest.backtest).startswith("--") for f in user - {"quick_days", "force", "checkpoints"})


# ---------------------------------------------------------------------------------
# the engine's rules, which the CLI only reaches through


@pytest.mark.parametrize("field, bad, good", [
    ("days", [0, -1, math.nan, math.inf, "30", True], [1, 0.5, 180]),
    ("walk_forward", [0, -2, 2.0, True], [None, 1, 5]),
    ("quick_days", [0, math.inf], [None, 1, 30]),
    ("capital", [0, -1.0, math.inf, math.nan, None], [1e-9, 100_000.0]),
    ("commission_bps", [-1e-9, 10_000, math.nan, math.inf], [0, 0.0, 9_999.999]),
    ("slippage_bps", [-1, 10_000.0], [0, 5.0, 9_999]),
    ("fill", ["bogus", "next-open-late", None], ["next-open", "close"]),
    ("end", ["yesterday", "2026-13-01", 5], [None, "2026-09-30", "2026-09-30T12:00:00Z"]),
    ("source", ["s3", ""], [None, "store", "alpaca"]),
    ("long_only", [1, "yes"], [None, True, False]),
    ("bars_per_year", [0, -8760, math.inf], [None, 8760.0]),
    ("device", ["gpu", None], ["cpu", "cuda", "auto"]),
    ("profile", ["strict"], [None, "evidence", "seed"]),
    ("hurdle_sharpe", [math.nan, math.inf], [None, -1.0, 0.0, 2.0]),
    ("chunk_size", [0, -1, 1.5, 10**9], [None, 1, 64]),
    ("executor", ["dask"], ["local", "ray"]),
    ("ray_cpus", [0, 1.0], [None, 1, 8]),
    ("checkpoints", ["best"], ["final", "advised", "all"]),
    ("stress", [None, 1], [True, False]),
    ("force", [None], [True, False]),
    ("resume", ["yes"], [False]),
])
def test_run_config_check_names_the_field(field, bad, good):
    extra = {"executor": "ray"} if field == "ray_cpus" else {}
    for value in good:
        RunConfig(**{field: value}, **extra).check()
    for value in bad:
        with pytest.raises(SettingError) as err:
            RunConfig(**{field: value}, **extra).check()
        assert err.value.field == field and err.value.usage
        assert str(err.value).startswith(f"{field}: ")


def test_cross_field_rules():
    with pytest.raises(SettingError, match=r"^resume: needs out_dir DIR"):
        RunConfig(resume=True).check()
    RunConfig(resume=True, out_dir="x").check()
    RunConfig(resume=True, keep_chunks=True).check()  # validate: its run directory is always there
    for field in ("ray_address", "ray_cpus"):
        with pytest.raises(SettingError, match=rf"^{field}: needs executor ray"):
            RunConfig(**{field: 2}).check()


def test_the_api_refuses_a_bad_setting_before_any_work(tmp_path):
    from engine.pipeline import run_backtest, run_validate

    with pytest.raises(SettingError, match="^fill: must be one of next-open, close, got 'bogus'"):
        run_backtest([str(MODEL)], RunConfig(fill="bogus", store=str(STORE)))
    with pytest.raises(SettingError, match="^checkpoints: "):
        run_validate(tmp_path / "missing.zip", RunConfig(checkpoints="best"))


def test_setting_error_renders_fields_or_flags():
    e = SettingError("resume", "needs {out_dir} and {executor} ray")
    assert str(e) == "resume: needs out_dir and executor ray"
    flags = {"resume": "--resume", "out_dir": "--out", "executor": "--executor"}
    assert e.describe(flags.get) == "needs --out and --executor ray"
    e = SettingError("walk_forward", "more folds", usage=False, value=50)
    assert str(e) == "walk_forward 50: more folds" and isinstance(e, ValueError)


def test_the_cli_choices_are_the_engines():
    from engine.batch import DEVICES
    from engine.gating import PROFILES
    from engine.run.executors import EXECUTORS
    from engine.run_config import DEVICES as RUN_DEVICES
    from engine.run_config import FILLS
    from engine.summary import CHECKPOINT_CHOICES
    from kernels.codes import FILL_NAMES

    params = {p.name: p for p in cli.validate.validate.params}
    assert tuple(params["fill"].type.choices) == FILLS and set(FILLS) < set(FILL_NAMES)
    assert tuple(params["device"].type.choices) == RUN_DEVICES and set(RUN_DEVICES) == set(DEVICES)
    assert tuple(params["profile"].type.choices) == PROFILES
    assert tuple(params["executor"].type.choices) == EXECUTORS
    assert tuple(params["checkpoints"].type.choices) == CHECKPOINT_CHOICES
    assert isinstance(params["long_only"], click.Option) and params["long_only"].secondary_opts == ["--allow-short"]
