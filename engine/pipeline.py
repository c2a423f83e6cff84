"""The Python API behind `foldgate backtest` and `foldgate validate`.

One run is a flat list of (model, fold) trajectories: every model's quick backtest and
walk-forward folds go into one batched kernel call, and the results are split back per
model. A notebook calls `run_backtest` / `run_validate` exactly as the CLI does."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import archive as archive_mod
from . import gating as gating_mod
from . import summary as summary_mod
from .assessment import decide_jobs, summarize_jobs
from .errors import FoldgateError
from .folds import to_ns
from .policies.fields import parse_filename
from .policies.policy_cache import load_policy_cached
from .promote import promote  # noqa: F401 - the API's `validate --promote`, in its own module
from .run_config import RunConfig  # noqa: F401 - the public path engine.pipeline.RunConfig
# the simulation's names stay importable from here (the API before the split)
from .simulation import (COUNT_METRICS, RUN_SUBDIR, iso_list, parse_end,  # noqa: F401
                         report_dir, resolve_device, simulate_jobs)


@dataclass
class ModelJob:
    """One model of a run and everything learnt about it on the way."""

    model_path: Path | None
    symbol: str | None = None
    timeframe: str | None = None
    policy: object | None = None
    gating: dict | None = None
    gating_class: str | None = None
    train_periods: list[tuple[int, int]] = field(default_factory=list)
    error: str | None = None
    asset_class: str | None = None
    long_only: bool | None = None
    backtest: dict | None = None
    folds: list[dict] = field(default_factory=list)
    fold_returns: list[np.ndarray] = field(default_factory=list)
    hold_returns: list[np.ndarray] = field(default_factory=list)
    """Buy-and-hold's bar returns over the same folds (docs/design.md 6.1 benchmark)."""
    bars_per_year: float | None = None
    oos_positive_folds: int = 0
    summary: dict | None = None
    profile: str | None = None
    decision: str | None = None
    decisions: dict = field(default_factory=dict)
    flags: list[dict] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    stress_runs: dict = field(default_factory=dict)
    """--stress: {scenario: {"folds": [(metrics, returns)], "backtest": metrics}}."""
    stress: dict | None = None
    """--stress: the report's `stress` section (engine.stress.stress_section)."""
    checkpoint: str | None = None
    """validate --checkpoints advised|all: the checkpoint's file name (promote names it)."""
    checkpoint_info: dict | None = None
    """validate --checkpoints advised|all: the report's `checkpoint` {kind, index, file}."""

    @property
    def simulated(self) -> bool:
        return self.policy is not None and self.error is None

    def flag(self, code: str, message: str) -> None:
        if all(f["code"] != code for f in self.flags):
            self.flags.append({"code": code, "message": message})


# ---------------------------------------------------------------------------------
# loading


def load_jobs(paths: list[str | os.PathLike], strict: bool = True) -> list[ModelJob]:
    """Load each model; with strict=False a bad model becomes a job with an error."""
    jobs = []
    for path in expand_model_paths(paths, strict=strict):
        job = ModelJob(model_path=Path(path))
        try:
            job.policy = load_policy_cached(path)
            job.symbol = job.policy.symbol
            job.timeframe = job.policy.timeframe or "1Hour"
            if job.symbol is None:
                raise FoldgateError(f"{path}: no symbol in the checkpoint or its file name (SYMBOL_TIMEFRAME.pt)")
            check_name_symbol(job)
        except FoldgateError as exc:
            if strict:
                raise
            job.error = str(exc)
        jobs.append(job)
    return jobs


def check_name_symbol(job: ModelJob) -> None:
    """Flag a checkpoint whose `symbol` differs from the one in its file name (issue 8
    item 7): it runs on the checkpoint's symbol, and the report says so."""
    name_symbol, _ = parse_filename(job.model_path)
    if name_symbol and job.policy.symbol and name_symbol != job.policy.symbol:
        job.flag("SYMBOL_MISMATCH",
                 f"{job.model_path.name}: the checkpoint says symbol {job.policy.symbol} but its file name says "
                 f"{name_symbol}; it was run on {job.policy.symbol}, the checkpoint's")


def expand_model_paths(paths, strict: bool = True) -> list[Path]:
    """Model files, with directories expanded to the checkpoints they hold. With
    strict=False a missing file is kept, for its job to fail alone when it is loaded."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix in (".pt", ".zip") and q.is_file())
            if not found:
                raise FoldgateError(f"{p}: no .pt or .zip models in this directory")
            out.extend(found)
        elif not p.exists() and strict:
            raise FoldgateError(f"{p}: no such model file")
        else:
            out.append(p)
    return out


# ---------------------------------------------------------------------------------
# report


def build_report(command: str, jobs: list[ModelJob], cfg: RunConfig, archive: dict | None = None,
                 thresholds=None) -> dict:
    settings = cfg.settings_dict()
    if thresholds is not None:
        settings["thresholds"] = thresholds.to_dict()
        settings["thresholds_file"] = thresholds.source
        settings["profile"] = thresholds.profile
        settings["hurdle_sharpe"] = thresholds.evidence.hurdle_sharpe
    # lazy: engine.report loads the HTML/SVG/JSON writers (~50 ms) that `foldgate --help` never needs
    from .report import build as report_build

    return report_build.build_report(command, [model_entry(job) for job in jobs], settings, archive)


def model_entry(job: ModelJob) -> dict:
    from .report import build as report_build  # lazy: as in build_report

    return report_build.model_entry(
        symbol=job.symbol, timeframe=job.timeframe, asset_class=job.asset_class, model_path=job.model_path,
        model_sha256=getattr(job.policy, "sha256", None), long_only=job.long_only, error=job.error,
        gating=job.gating, backtest=job.backtest, folds=job.folds, summary=job.summary, profile=job.profile,
        decision=job.decision, decisions=job.decisions, flags=job.flags, reasons=job.reasons,
        stress=job.stress, checkpoint=job.checkpoint_info)


def run_backtest(model_paths: list, cfg: RunConfig, progress=None, *, strict: bool | None = None) -> dict:
    """`foldgate backtest`: every model in one batched call. One model: a bad one is an
    error; several: a bad one fails alone (its error in the report), as in validate."""
    thresholds = cfg.load_thresholds()  # checks every setting first
    if strict is None:  # one model: its failure is the run's; several: each fails alone
        strict = len(expand_model_paths(model_paths, strict=False)) == 1
    jobs = load_jobs(model_paths, strict=strict)
    cfg.run_dir = Path(cfg.out_dir) / RUN_SUBDIR if cfg.out_dir else None
    simulate_jobs(jobs, cfg, strict=strict, progress=progress)
    summarize_jobs(jobs, thresholds)
    if cfg.walk_forward:
        decide_jobs(jobs, thresholds)
    else:
        for job in jobs:
            job.profile = thresholds.profile
            if job.error:
                job.reasons = [job.error]
    return build_report("backtest", jobs, cfg, thresholds=thresholds)


def failed_models(report: dict) -> list[dict]:
    """The models of a report that could not be evaluated (docs/design.md 9: exit status 1)."""
    return [m for m in report["models"] if m.get("error")]



# ---------------------------------------------------------------------------------
# validate: the seed's whole workflow


def run_validate(source, cfg: RunConfig, *, dest_root="training_archives", thresholds_path=None,
                 progress=None) -> tuple[dict, list[ModelJob]]:
    """Extract, gate, backtest + walk-forward every model gating lets through (one batched
    call), decide. Returns the report and the jobs."""
    if thresholds_path is not None:
        cfg.thresholds = thresholds_path
    thresholds = cfg.load_thresholds()  # checks every setting first
    if progress:
        progress("extracting")
    root, summary_path, stamp = archive_mod.open_training_source(source, dest_root=dest_root)
    records = summary_mod.parse_summary(summary_path, root)

    jobs: list[ModelJob] = []
    for rec in records:
        job = ModelJob(model_path=rec.model_path, symbol=rec.symbol, timeframe=rec.timeframe or "1Hour")
        jobs.append(job)
        if rec.error:
            job.error = rec.error
            continue
        job.gating, job.gating_class = gate_record(rec, thresholds)
        job.train_periods = _train_periods(rec)
        if rec.model_missing:  # docs/design.md 7: gated and flagged, not backtested, not an error
            flag = gating_mod.Flag("MODEL_MISSING", f"{rec.model_missing}; not backtested.")
            job.gating["flags"].append(flag.to_dict())
            job.reasons = [rec.model_missing]
            continue
        if job.gating_class == "DROP" and not cfg.force:
            continue
        for k, (path, info, missing) in enumerate(checkpoint_variants(rec, job.gating, cfg.checkpoints)):
            if k:  # another variant of the symbol: gated as the symbol is, simulated on its own
                job = ModelJob(model_path=path, symbol=rec.symbol, timeframe=job.timeframe,
                               gating=copy.deepcopy(job.gating), gating_class=job.gating_class,
                               train_periods=list(job.train_periods))
                jobs.append(job)
            job.model_path, job.checkpoint_info = path, info
            job.checkpoint = None if info is None or path is None else path.name
            if missing:
                job.error = missing
                continue
            try:
                job.policy = load_policy_cached(path)
                if job.policy.symbol and job.policy.symbol != job.symbol:
                    raise FoldgateError(
                        f"{path}: checkpoint is for {job.policy.symbol}, the summary says {job.symbol}")
                check_name_symbol(job)
            except FoldgateError as exc:
                job.error = str(exc)
                job.policy = None

    cfg.run_dir = (report_dir(cfg.out_dir, stamp) / RUN_SUBDIR
                   if cfg.out_dir or cfg.keep_chunks else None)
    simulate_jobs(jobs, cfg, strict=False, progress=progress)
    summarize_jobs(jobs, thresholds)
    decide_jobs(jobs, thresholds)
    archive_info = {"path": str(source), "stamp": stamp, "extract_dir": str(root)}
    report = build_report("validate", jobs, cfg, archive=archive_info, thresholds=thresholds)
    return report, jobs


def checkpoint_variants(rec, gating: dict, choice: str) -> list[tuple[Path | None, dict | None, str | None]]:
    """The models to validate for one summary record: [(file, report `checkpoint` or
    None, why it cannot run or None)]. final: the summary's model. advised: gating's
    advised checkpoint (use_checkpoint, checkpoint_index into the record's `checkpoints`,
    aligned with fitness_score), else the final model. all: every listed checkpoint
    file, then the final model unless it is one of them; each is a variant (6.1)."""
    files = rec.checkpoint_files or []
    if choice == "final":
        return [(rec.model_path, None, None)]
    final = (rec.model_path, {"kind": "final", "index": None, "file": rec.model_path.name}, None)
    if choice == "advised":
        k = gating.get("checkpoint_index")
        if not gating.get("use_checkpoint") or k is None:
            return [final]
        if k >= len(files):
            return [(None, {"kind": "advised", "index": k, "file": None},
                     f"checkpoint {k}: gating advises it, but the summary lists no file for it")]
        path, why = files[k]
        return [(path, {"kind": "advised", "index": k, "file": None if path is None else path.name}, why)]
    out, seen = [], set()
    for k, (path, why) in enumerate(files):
        if path is not None:
            if path in seen:
                continue  # one file listed twice is one variant
            seen.add(path)
        out.append((path, {"kind": "listed", "index": k, "file": None if path is None else path.name}, why))
    if rec.model_path not in seen:
        out.append(final)
    return out


def gate_record(rec, thresholds) -> tuple[dict, str]:
    """Gating of one summary record, as the report writes it."""
    result = gating_mod.gate_metrics(rec.metrics, rec.checkpoints, thresholds).to_dict()
    return result, result["classification"]


def _train_periods(rec) -> list[tuple[int | None, int | None]]:
    """The training period named in the archive, for in-sample marking."""
    start, end = getattr(rec, "train_start", None), getattr(rec, "train_end", None)
    if not start and not end:
        return []
    return [(to_ns(start), to_ns(end))]
