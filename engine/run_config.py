"""The settings of one backtest or validate run (`RunConfig`, public path
`engine.pipeline.RunConfig`) and every check on their values, written once: the Python
API and the CLI both go through `RunConfig.check()`, which raises
engine.errors.SettingError naming the field (the CLI turns the field into its flag)."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import SettingError
from .gating import PROFILES, load_thresholds
from .run import check_chunk_size
from .run.executors import EXECUTORS
from .simulation import parse_end
from .summary import CHECKPOINT_CHOICES

FILLS = ("next-open", "close")
"""The fills a run may ask for (kernels.codes.FILL_NAMES also has --stress's late fill)."""
DEVICES = ("auto", "cpu", "cuda")
SOURCES = ("store", "alpaca")
MAX_BPS = 10_000
"""Costs are below 100%: at 10,000 bps a sell would fill at price 0."""


@dataclass
class RunConfig:
    """Settings of one backtest or validate run (docs/design.md 5, 6, 9)."""

    days: int = 30
    """Length of the evaluation window, in days, ending at `end`."""
    walk_forward: int | None = None
    """K out-of-sample folds over the window; None runs one simple backtest instead."""
    quick_days: int | None = None
    """validate: also a simple backtest over the last `quick_days` days (None: skip)."""
    capital: float = 100_000.0
    """Starting capital of every fold."""
    commission_bps: float = 10.0
    """Commission per fill, basis points of the fill's notional."""
    slippage_bps: float = 5.0
    """Slippage per fill, basis points of the raw price (buys pay more, sells get less)."""
    fill: str = "next-open"
    """'next-open' (default) or 'close' (optimistic: fills at the deciding bar's close)."""
    end: str | None = None
    """Last bar of the window, ISO date or time in UTC; None: the last stored bar."""
    store: str | None = None
    """Bar store directory; None: $FOLDGATE_STORE or ./data/bars."""
    source: str | None = None
    """'store', 'alpaca', or None (Alpaca only when ALPACA_KEYS_FILE is set and bars are missing)."""
    data_url: str | None = None
    """Override of Alpaca's market-data URL (tests, proxies)."""
    long_only: bool | None = None
    """Force long-only (True) or allow shorts (False); None: long-only for crypto only."""
    bars_per_year: float | None = None
    """Annualisation; None: measured over each symbol's window (docs/design.md 6)."""
    device: str = "cpu"
    """'cpu', 'cuda' or 'auto'."""
    force: bool = False
    """validate: backtest models that gating dropped, too (their decision stays DROP)."""
    device_used: str | None = None
    """Filled in by the run: the device the kernel ran on, e.g. 'cuda (NVIDIA H100)'."""
    profile: str | None = None
    """Decision profile, 'evidence' or 'seed'; None: the thresholds file's ([decision] profile)."""
    hurdle_sharpe: float | None = None
    """Annual Sharpe ratio LIVE must beat; None: the thresholds file's ([decision.evidence])."""
    thresholds: str | os.PathLike | None = None
    """Thresholds TOML (gating bounds and decision rules); None: engine/defaults/thresholds.toml."""
    fetched: bool = False
    """Filled in by the run: some bars were fetched from Alpaca for it."""
    out_dir: str | os.PathLike | None = None
    """Report directory (validate; None: validation_reports/<stamp>/); the run directory
    of chunk files is its `run/` (docs/design.md 11). backtest: only the run directory's root."""
    keep_chunks: bool = False
    """validate: write the run directory even without out_dir (the CLI always does)."""
    resume: bool = False
    """Reuse the chunks a killed run of the same inputs left in the run directory."""
    chunk_size: int | None = None
    """Trajectories per chunk; None: engine.run's default (or what a resumed run recorded)."""
    executor: str = "local"
    """Where chunks run: 'local' (this process) or 'ray'."""
    ray_address: str | None = None
    """--executor ray: the cluster to join; None starts a local Ray on demand."""
    ray_cpus: int | None = None
    """--executor ray without an address: CPUs of the local Ray (None: all)."""
    checkpoints: str = "final"
    """validate --checkpoints: 'final', 'advised' or 'all' (CHECKPOINT_CHOICES)."""
    stress: bool = False
    """--stress: every window also under the scenarios of engine.stress (docs/design.md 11)."""
    run_dir: Path | None = None
    """Filled in by the run from out_dir (and keep_chunks): its run directory, or None."""
    run_stats: dict | None = None
    """Filled in by the run: chunks run and reused, kernel and wall seconds, run directory."""


    def check(self) -> "RunConfig":
        """Every setting's value checked (docs/design.md 5, 6, 9, 11); the first bad one
        raises SettingError naming its field. Returns self."""
        for f in dataclasses.fields(self):
            rule = _RULES.get(f.name)
            why = rule(getattr(self, f.name)) if rule else None
            if why:
                raise SettingError(f.name, why)
        if self.executor != "ray":
            for name in ("ray_address", "ray_cpus"):
                if getattr(self, name):
                    raise SettingError(name, "needs {executor} ray")
        if self.resume and not (self.out_dir or self.keep_chunks):
            raise SettingError("resume", "needs {out_dir} DIR (the run directory's root)")
        return self

    def load_thresholds(self):
        """The run's thresholds, with `profile` and `hurdle_sharpe` laid over the file's."""
        self.check()
        t = load_thresholds(self.thresholds)
        if self.profile is not None:
            t = dataclasses.replace(t, profile=self.profile)
        if self.hurdle_sharpe is not None:
            t = dataclasses.replace(t, evidence=dataclasses.replace(t.evidence, hurdle_sharpe=float(self.hurdle_sharpe)))
        return t

    def settings_dict(self) -> dict:
        return {
            "days": self.days,
            "walk_forward": self.walk_forward,
            "quick_days": self.quick_days,
            "capital": self.capital,
            "commission_bps": self.commission_bps,
            "slippage_bps": self.slippage_bps,
            "fill": self.fill,
            "stress": self.stress,
            "checkpoints": self.checkpoints,
            "end": self.end,
            "store": str(self.store) if self.store else None,
            "source": "alpaca" if self.fetched else (self.source or "store"),
            "long_only": self.long_only,
            "bars_per_year": self.bars_per_year,
            "device": self.device,
            "device_used": self.device_used,
        }


# --------------------------------------------------------------------------------
# the rule of each field: value -> None when usable, else why not


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _count(v):
    if not _is_int(v):
        return f"must be a whole number, got {v!r}"
    if v < 1:
        return f"must be at least 1, got {v}"
    return None


def _optional(rule):
    return lambda v: None if v is None else rule(v)


def _finite(v):
    if not _is_real(v) or not math.isfinite(v):
        return f"must be a finite number, got {v!r}"
    return None


def _positive(v):
    return _finite(v) or (None if v > 0 else f"must be positive, got {v!r}")


def _bps(v):
    return _finite(v) or (None if 0 <= v < MAX_BPS else f"must be at least 0 and below {MAX_BPS} bps, got {v!r}")


def _one_of(choices, optional: bool = False):
    def rule(v):
        if (optional and v is None) or v in choices:
            return None
        return f"must be one of {', '.join(choices)}, got {v!r}"
    return rule


def _flag(optional: bool = False):
    return lambda v: None if isinstance(v, bool) or (optional and v is None) else f"must be true or false, got {v!r}"


def _end(v):
    if v is None:
        return None
    if not isinstance(v, str):
        return f"must be an ISO date or time as text, got {v!r}"
    try:
        parse_end(v)
    except SettingError as exc:
        return exc.reason
    return None


def _chunk_size(v):
    if v is None:
        return None
    try:
        check_chunk_size(v)
    except SettingError as exc:  # engine.run's rule
        return exc.reason
    return None


_RULES = {
    "days": _positive,
    "walk_forward": _optional(_count),
    "quick_days": _optional(_positive),
    "capital": _positive,
    "commission_bps": _bps,
    "slippage_bps": _bps,
    "fill": _one_of(FILLS),
    "end": _end,
    "source": _one_of(SOURCES, optional=True),
    "long_only": _flag(optional=True),
    "bars_per_year": _optional(_positive),
    "device": _one_of(DEVICES),
    "force": _flag(),
    "profile": _one_of(PROFILES, optional=True),
    "hurdle_sharpe": _optional(_finite),
    "keep_chunks": _flag(),
    "resume": _flag(),
    "chunk_size": _chunk_size,
    "executor": _one_of(EXECUTORS),
    "ray_cpus": _optional(_count),
    "checkpoints": _one_of(CHECKPOINT_CHOICES),
    "stress": _flag(),
}
"""The rule of each setting a user gives (store, data_url, thresholds and out_dir are
paths, checked when they are used)."""

FILLED_BY_RUN = frozenset({"device_used", "fetched", "run_dir", "run_stats"})
"""RunConfig's fields that the run fills in, not the user."""
