"""The one builder of `foldgate.report/2` documents, for `gate`, `backtest` and `validate`
alike: the top level (schema, versions, settings, archive) and one entry per model with
every key the schema requires, so the three commands cannot drift apart."""

from __future__ import annotations

import datetime as dt
import os
import platform
from importlib import metadata
from pathlib import Path

from .. import __version__

from .schema_file import SCHEMA_ID

# The simulation settings every report carries; `gate` simulates nothing and writes them null.
SETTING_KEYS = ("days", "walk_forward", "quick_days", "capital", "commission_bps", "slippage_bps",
                "fill", "stress", "checkpoints", "end", "store", "source", "long_only", "bars_per_year", "device")

def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def versions() -> dict:
    out = {"foldgate": __version__, "python": platform.python_version()}
    # from the package metadata: `gate` never needs numba, and a warm run never imports
    # torch (policies come from the cache)
    for dist in ("numpy", "numba", "pyarrow", "torch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def display_path(path, cwd: str | os.PathLike | None = None) -> str | None:
    """A path as the user should read it in a report: relative to the directory the command
    ran in when it lies under it, else as given (absolute paths elsewhere stay absolute)."""
    if path is None:
        return None
    p = Path(path)
    base = Path(cwd) if cwd is not None else Path.cwd()
    try:
        return str(p.resolve().relative_to(base.resolve()))
    except (ValueError, OSError):
        return str(p)


def model_entry(*, symbol=None, timeframe=None, asset_class=None, model_path=None, model_sha256=None,
                long_only=None, error=None, gating=None, backtest=None, folds=(), summary=None,
                profile=None, decision=None, decisions=None, flags=(), reasons=(), cwd=None,
                stress=None, checkpoint=None) -> dict:
    """One model of a report, every key the schema requires present (decisions: both
    profiles' verdicts, each possibly null; flags: [{code, message}])."""
    return {
        "symbol": symbol,
        "timeframe": timeframe,
        "asset_class": asset_class,
        "model_path": display_path(model_path, cwd),
        "model_sha256": model_sha256,
        "long_only": long_only,
        "error": error,
        "gating": gating,
        "backtest": backtest,
        "folds": list(folds),
        "summary": summary,
        "profile": profile,
        "decision": decision,
        "decisions": dict(decisions) if decisions else {"evidence": None, "seed": None},
        "flags": [dict(f) for f in flags],
        "reasons": list(reasons),
        "stress": stress,
        "checkpoint": checkpoint,
    }


def build_report(command: str, models: list[dict], settings: dict | None = None,
                 archive: dict | None = None, cwd=None) -> dict:
    """The report document: `settings` holds the simulation settings (missing keys null:
    a `gate` run simulated nothing) plus anything else the run records (thresholds,
    profile); `archive` the training archive or None."""
    full = dict.fromkeys(SETTING_KEYS)
    full.update(settings or {})
    if archive is not None:
        archive = {"path": display_path(archive.get("path"), cwd), "stamp": archive.get("stamp"),
                   "extract_dir": display_path(archive.get("extract_dir"), cwd)}
    return {
        "schema": SCHEMA_ID,
        "created": now_iso(),
        "command": command,
        "versions": versions(),
        "settings": full,
        "archive": archive,
        "models": models,
    }
