"""The Python API behind `foldgate backtest` and `foldgate validate`.

One run is a flat list of (model, fold) trajectories: every model's quick backtest and
walk-forward folds go into one batched kernel call, and the results are split back per
model. A notebook calls `run_backtest` / `run_validate` exactly as the CLI does."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import FoldgateError
from .policy_cache import load_policy_cached
from .promote import promote  # noqa: F401 - the API's `validate --promote`, in its own module
from .assessment import decide_jobs, summarize_jobs
from .summary import CHECKPOINT_CHOICES

COUNT_METRICS = {"n_trades", "clipped_shorts", "bars"}


@dataclass
class RunConfig:
    """Settings of one backtest or validate run (design.md 5, 6, 9)."""

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
    """Annualisation; None: measured over each symbol's window (design.md 6)."""
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
    of chunk files is its `run/` (design.md 11). backtest: only the run directory's root."""
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
    """--stress: every window also under the scenarios of engine.stress (design.md 11)."""
    run_dir: Path | None = None
    """Filled in by the run from out_dir (and keep_chunks): its run directory, or None."""
    run_stats: dict | None = None
    """Filled in by the run: chunks run and reused, kernel and wall seconds, run directory."""

    def load_thresholds(self):
        """The run's thresholds, with --profile and --hurdle-sharpe laid over the file's."""
        import dataclasses

        from .gating import PROFILES, load_thresholds

        t = load_thresholds(self.thresholds)
        if self.profile is not None:
            if self.profile not in PROFILES:
                raise FoldgateError(f"--profile must be one of {', '.join(PROFILES)}, got {self.profile!r}")
            t = dataclasses.replace(t, profile=self.profile)
        if self.hurdle_sharpe is not None:
            if not np.isfinite(self.hurdle_sharpe):
                raise FoldgateError(f"--hurdle-sharpe must be a finite number, got {self.hurdle_sharpe}")
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
    """Buy-and-hold's bar returns over the same folds (design.md 6.1 benchmark)."""
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


def resolve_device(requested: str) -> tuple[str, str]:
    """(device the kernel runs on, how to describe it): 'auto' takes CUDA when a GPU is
    present; 'cuda' without one is an error, except under NUMBA_ENABLE_CUDASIM=1, where
    'cuda' runs the CUDA kernel on Numba's simulator (slow; it says so) and 'auto'
    keeps to the CPU."""
    if requested == "cpu":
        return "cpu", "cpu"
    try:
        from kernels.cuda_env import cuda_available, device_name, simulator_active

        if requested == "cuda" and simulator_active():
            return "cuda", "cuda (CUDA simulator, NUMBA_ENABLE_CUDASIM=1: slow, for tests)"
        if cuda_available():
            return "cuda", f"cuda ({device_name() or 'unknown GPU'})"
    except ImportError:
        pass
    if requested == "cuda":
        raise FoldgateError("--device cuda: no CUDA GPU is usable here (install foldgate[cuda] on a "
                            "machine with an NVIDIA GPU and driver), or use --device cpu")
    return "cpu", "cpu (auto: no CUDA GPU found)"


def parse_end(value: str | None) -> int | None:
    """ISO date or time (UTC unless it says otherwise) -> int64 ns; a bare date means the
    end of that day, so `--end 2026-11-01` includes all of 1 November."""
    if value is None:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
            stamp = day + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
        else:
            stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=dt.timezone.utc)
        ns = int(stamp.timestamp() * 1_000_000) * 1_000
        np.datetime64(ns, "ns")  # inside the range of the store's timestamps?
    except (ValueError, OverflowError):
        raise FoldgateError(f"--end: cannot read {value!r} as an ISO date or time in 1678-2261") from None
    return ns


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
    from .policy import parse_filename

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


def _read_bars(store, symbol: str, timeframe: str, cfg: RunConfig, warmup_bars: int):
    """Bars of one symbol, fetched from Alpaca first when the run asks for it (once per
    symbol, for all of its models), with room for the warm-up bars before the window."""
    use_alpaca = cfg.source == "alpaca" or (
        cfg.source is None and os.environ.get("ALPACA_KEYS_FILE") and not store.has(symbol, timeframe)
    )
    if use_alpaca:
        from .sources.alpaca import ensure_bars
        from .store import timeframe_seconds
        from .symbols import guess_asset_class

        now = dt.datetime.now(dt.timezone.utc)
        end_ns = parse_end(cfg.end)
        end = min(dt.datetime.fromtimestamp(end_ns / 1e9, dt.timezone.utc), now) if end_ns else now
        # equities trade ~6.5 of 24 hours on 5 of 7 days: their warm-up spans more calendar time
        stretch = 1.0 if guess_asset_class(symbol) == "crypto" else (24 / 6.5) * (7 / 5)
        warmup_days = warmup_bars * timeframe_seconds(timeframe) / 86_400 * stretch
        days = max(cfg.days, cfg.quick_days or 0) + warmup_days + 5  # 5: holidays, holes
        ensure_bars(store, symbol, timeframe, start=end - dt.timedelta(days=days), end=end,
                    data_url=cfg.data_url)
        cfg.fetched = True
    return store.read(symbol, timeframe)


# ---------------------------------------------------------------------------------
# simulation


class _HoldPolicy:
    """Buy-and-hold as a policy the kernel runs like any other (design.md 6.1): one action,
    target 1, from the first decision; same fills and costs as the models it benchmarks.
    Its only input is the position state, so it reads no features."""

    features: list = []
    window = 1
    state_features = ["position"]
    obs_norm = None
    layers = [(np.zeros((1, 1), dtype=np.float32), np.zeros(1, dtype=np.float32))]
    activation = "tanh"
    action_kind = "discrete"
    targets = np.array([1.0])
    low = high = None


HOLD_POLICY = _HoldPolicy()


@dataclass(frozen=True)
class _PlannedWindow:
    """One window of a job that simulate_jobs sends to the kernel, and where its
    results go."""

    job: ModelJob
    kind: str  # "backtest" | "fold"
    window: object  # the window of engine/folds.py (start, end bar)
    in_sample: bool  # the window overlaps the policy's training period
    traj: int  # the job's trajectory
    hold: int  # the buy-and-hold trajectory over the same bars
    bars_per_year: float
    times: np.ndarray  # the series' bar times, datetime64[s]


def simulate_jobs(jobs: list[ModelJob], cfg: RunConfig, strict: bool = True,
                  progress: Callable[[str], None] | None = None) -> None:
    """Backtest and walk-forward every simulated job, and buy-and-hold over the same
    windows (once per symbol and window, shared by its models), in ONE batched kernel call."""
    from kernels.codes import FILL_NAMES
    from kernels.gpu_simulate import GpuUnsupportedError

    from .batch import Batch
    from .features import compute_features
    from .folds import end_past_last_bar, mark_in_sample
    from .store import BarStore

    store = BarStore(cfg.store)
    end_ns = parse_end(cfg.end)
    device, cfg.device_used = resolve_device(cfg.device)
    by_series: dict[tuple[str, str], list[ModelJob]] = {}
    for job in jobs:
        if job.simulated:
            by_series.setdefault((job.symbol, job.timeframe), []).append(job)

    from .stress import LATE_RUN_SUBDIR, STRESSED

    batch = Batch(fill_mode=0 if cfg.fill == "next-open" else 1)
    stress_ids: dict[int, dict[str, int]] = {}  # base trajectory -> {cost scenario: trajectory}
    costs = dict(capital=cfg.capital, commission=cfg.commission_bps / 1e4, slippage=cfg.slippage_bps / 1e4)
    planned: list[_PlannedWindow] = []
    hold_traj: dict[tuple[int, int, int], int] = {}
    for (symbol, timeframe), group in by_series.items():
        if progress:
            progress(f"features {symbol} {timeframe}")
        try:  # the symbol's bars and features: a failure here fails all of its models
            warmup = max(_warmup(job) for job in group)
            bars = _read_bars(store, symbol, timeframe, cfg, warmup)
            names = list(dict.fromkeys(n for job in group for n in job.policy.features))
            series_id = batch.add_series(bars.open, bars.close, compute_features(bars, names), names)
        except FoldgateError as exc:
            if strict:
                raise
            for job in group:
                job.error = str(exc)
            continue
        past_end = end_past_last_bar(bars.timestamp, max(cfg.days, cfg.quick_days or 0), end_ns)
        for job in group if past_end else ():
            job.flag("END_PAST_LAST_BAR", f"{symbol}: {past_end}")
        times = bars.timestamp.astype("datetime64[ns]").astype("datetime64[s]")
        hold_id = batch.add_model(HOLD_POLICY, series_id)
        for job in group:
            try:  # the model's windows: a failure here (too few warm-up bars) fails it alone
                windows, bpy = _plan_windows(job, bars, cfg, end_ns)
            except FoldgateError as exc:
                if strict:
                    raise
                job.error = str(exc)
                continue
            job.asset_class = bars.asset_class
            job.long_only = cfg.long_only if cfg.long_only is not None else bars.asset_class == "crypto"
            job.bars_per_year = bpy
            trained_until = getattr(job.policy, "trained_until", None)
            tu_ns = int(trained_until.timestamp() * 1e9) if trained_until else None
            in_sample = mark_in_sample([w for _, w in windows], tu_ns, job.train_periods)
            model_id = batch.add_model(job.policy, series_id)
            for (kind, window), flagged in zip(windows, in_sample):
                traj = batch.add_trajectory(model_id, series_id, window.start, window.end,
                                            long_only=job.long_only, **costs)
                key = (series_id, window.start, window.end)
                if key not in hold_traj:  # target 1 is never short: long_only does not change it
                    hold_traj[key] = batch.add_trajectory(hold_id, series_id, window.start, window.end,
                                                          long_only=True, **costs)
                planned.append(_PlannedWindow(job, kind, window, bool(flagged), traj, hold_traj[key], bpy, times))
                if cfg.stress:
                    stress_ids[traj] = {
                        sc.name: batch.add_trajectory(
                            model_id, series_id, window.start, window.end, long_only=job.long_only,
                            capital=cfg.capital, commission=costs["commission"] * sc.cost_multiplier,
                            slippage=costs["slippage"] * sc.cost_multiplier)
                        for sc in STRESSED if not sc.late_fill}

    planned = [p for p in planned if p.job.error is None]
    if not planned:
        return
    if progress:
        progress(f"simulating {len(planned)} trajectories")
    holds = sorted({p.hold for p in planned})
    traj_ids = [p.traj for p in planned] + holds
    hold_bpy = {p.hold: p.bars_per_year for p in planned}
    bpy_list = [p.bars_per_year for p in planned] + [hold_bpy[h] for h in holds]
    # the cost scenarios are more trajectories of the same list; the delay scenario is
    # the base trajectories again under the late fill mode (one per kernel call)
    stressed = [(p.traj, name, sid) for p in planned for name, sid in stress_ids.get(p.traj, {}).items()]
    traj_ids += [sid for _, _, sid in stressed]
    bpy_list += [p.bars_per_year for p in planned for _ in stress_ids.get(p.traj, {})]
    runs = [(batch, traj_ids, bpy_list, cfg.run_dir)]
    if cfg.stress and any(sc.late_fill for sc in STRESSED):
        import copy

        late = copy.copy(batch)  # the same series, models and trajectories
        late.fill_mode = FILL_NAMES["next-open-late"]
        runs.append((late, [p.traj for p in planned], [p.bars_per_year for p in planned],
                     None if cfg.run_dir is None else cfg.run_dir / LATE_RUN_SUBDIR))
    results, stats = [], []
    for sim, ids, bpys, run_dir in runs:
        try:
            results.append(_run_chunks(sim, ids, bpys, device, cfg, progress, run_dir=run_dir))
        except GpuUnsupportedError as exc:  # a model too wide for the GPU kernel
            if cfg.device == "cuda":
                raise FoldgateError(f"--device cuda: {exc}; use --device cpu or auto") from None
            cfg.device_used = f"cpu (auto: {exc})"
            device = "cpu"
            # the GPU's chunks are another run's (the device is part of the run key)
            results.append(_run_chunks(sim, ids, bpys, "cpu", cfg, progress, resume=False, run_dir=run_dir))
        stats.append(cfg.run_stats)
    if len(stats) > 1:  # one run as the report tells it: the delay scenario's chunks counted in
        cfg.run_stats = {k: (sum(s[k] for s in stats) if k != "run_dir" else stats[0][k]) for k in stats[0]}
    result = results[0]
    hold_out = dict(zip(holds, result[len(planned):len(planned) + len(holds)]))
    by_id = dict(zip(traj_ids, result))
    late_out = dict(zip(runs[1][1], results[1])) if len(runs) > 1 else {}
    for p, out in zip(planned, result):
        job, kind, traj = p.job, p.kind, p.traj
        record = _window_record(p.window, p.in_sample, out, p.times)
        bench = hold_out[p.hold]
        record["buy_and_hold"] = {
            "metrics": {k: (int(v) if k in COUNT_METRICS else _py(v)) for k, v in bench["metrics"].items()},
            "equity": np.asarray(bench["equity"], dtype=np.float64),
        }
        if kind == "backtest":
            job.backtest = record
        else:
            record["index"] = len(job.folds)
            job.folds.append(record)
            job.fold_returns.append(out["returns"])
            job.hold_returns.append(bench["returns"])
        if cfg.stress:
            outs = {name: by_id[sid] for name, sid in stress_ids[traj].items()}
            outs.update({sc.name: late_out[traj] for sc in STRESSED if sc.late_fill})
            for name, o in outs.items():
                metrics = {k: (int(v) if k in COUNT_METRICS else _py(v)) for k, v in o["metrics"].items()}
                run = job.stress_runs.setdefault(name, {"folds": [], "backtest": None})
                if kind == "backtest":
                    run["backtest"] = metrics
                else:
                    run["folds"].append((metrics, o["returns"]))


RUN_SUBDIR = "run"
"""The run directory's name inside the report directory (--out)."""


def report_dir(out_dir, stamp: str | None) -> Path:
    """validate's report directory: --out, else validation_reports/<archive stamp>/."""
    return Path(out_dir) if out_dir else Path("validation_reports") / (stamp or "run")


def _run_chunks(batch, traj_ids, bpy_list, device, cfg: RunConfig, progress, resume=None,
                run_dir: Path | None = None) -> list[dict]:
    """The trajectories through engine.run: chunk by chunk, into the run directory when
    the run has one, on the executor the run names (design.md 11)."""
    from .run import make_executor, run_chunked

    def on_chunk(p):
        if getattr(progress, "takes_chunks", False):  # a progress bar: the counts themselves
            progress(p)
            return
        progress(f"simulating: chunk {p.chunks_done}/{p.n_chunks}, {p.trajectories_done:,} of "
                 f"{p.n_trajectories:,} trajectories" + (" (from the run directory)" if p.reused else ""))

    executor = make_executor(cfg.executor, cfg.ray_address, cfg.ray_cpus)
    try:
        out = run_chunked(batch, traj_ids, bars_per_year=bpy_list, device=device,
                          run_dir=run_dir,
                          resume=cfg.resume if resume is None else resume,
                          chunk_size=cfg.chunk_size, executor=executor,
                          progress=on_chunk if progress else None)
    finally:
        executor.close()
    cfg.run_stats = {"chunks": out.n_chunks, "chunks_run": out.chunks_run,
                     "chunks_reused": out.chunks_reused, "kernel_s": out.kernel_s,
                     "wall_s": out.wall_s, "run_dir": None if out.run_dir is None else str(out.run_dir)}
    return out.results


def _warmup(job: ModelJob) -> int:
    """Bars a model needs before a window's first bar: its features' lookback and lags."""
    from .features import lookback

    return lookback(job.policy.features) + job.policy.window - 1


def _plan_windows(job: ModelJob, bars, cfg: RunConfig, end_ns: int | None):
    """The model's windows, [("backtest" | "fold", window)], and the bars per year of the
    run's main window (design.md 6: measured once over the whole --days window)."""
    from .folds import bars_per_year, make_folds

    warmup = _warmup(job)
    if cfg.walk_forward:
        main = make_folds(bars.timestamp, cfg.days, cfg.walk_forward, end=end_ns, warmup=warmup)
        windows = [("fold", f) for f in main]
        if cfg.quick_days:
            quick = make_folds(bars.timestamp, cfg.quick_days, 1, end=end_ns, warmup=warmup)
            windows.insert(0, ("backtest", quick[0]))
    else:
        main = make_folds(bars.timestamp, cfg.days, 1, end=end_ns, warmup=warmup)
        windows = [("backtest", main[0])]
    bpy = cfg.bars_per_year or bars_per_year(bars.timestamp[main[0].start: main[-1].end])
    return windows, bpy


def _window_record(window, in_sample: bool, out: dict, times: np.ndarray) -> dict:
    """One fold or backtest as the report writes it. Curves stay numpy arrays (the
    report writer converts them in one vectorised pass); `times` are datetime64[s]."""
    bars_ts = times[window.start: window.end]
    ti, tf = out["trade_int"], out["trade_float"]
    entry_times = iso_list(times[ti[:, 0]])
    exit_times = iso_list(times[ti[:, 1]])
    trades = [
        {"entry_time": entry_times[k], "exit_time": exit_times[k], "direction": int(ti[k, 2]),
         "entry_price": float(tf[k, 0]), "exit_price": float(tf[k, 1]), "pnl": float(tf[k, 2]),
         "commission": float(tf[k, 3])}
        for k in range(len(ti))
    ]
    start, end = iso_list(times[[window.start, window.end - 1]])
    return {
        "start": start,
        "end": end,
        "bars": int(window.end - window.start),
        "in_sample": in_sample,
        "metrics": {k: (int(v) if k in COUNT_METRICS else _py(v)) for k, v in out["metrics"].items()},
        "equity": np.asarray(out["equity"], dtype=np.float64),
        "timestamps": bars_ts,
        "trades": trades,
    }


def iso_list(times: np.ndarray) -> list[str]:
    """datetime64 array -> ISO strings with a Z, in one vectorised call."""
    return [t + "Z" for t in np.datetime_as_string(times.astype("datetime64[s]"), unit="s").tolist()]


def _py(value):
    """numpy scalar -> JSON-able Python value, NaN -> None."""
    if isinstance(value, (np.integer,)):
        return int(value)
    value = float(value)
    return None if not np.isfinite(value) else value


# ---------------------------------------------------------------------------------
# report


def build_report(command: str, jobs: list[ModelJob], cfg: RunConfig, archive: dict | None = None,
                 thresholds=None) -> dict:
    from .report.build import build_report as build

    settings = cfg.settings_dict()
    if thresholds is not None:
        settings["thresholds"] = thresholds.to_dict()
        settings["thresholds_file"] = thresholds.source
        settings["profile"] = thresholds.profile
        settings["hurdle_sharpe"] = thresholds.evidence.hurdle_sharpe
    return build(command, [model_entry(job) for job in jobs], settings, archive)


def model_entry(job: ModelJob) -> dict:
    from .report.build import model_entry as entry

    return entry(symbol=job.symbol, timeframe=job.timeframe, asset_class=job.asset_class,
                 model_path=job.model_path, model_sha256=getattr(job.policy, "sha256", None),
                 long_only=job.long_only, error=job.error, gating=job.gating, backtest=job.backtest,
                 folds=job.folds, summary=job.summary, profile=job.profile, decision=job.decision,
                 decisions=job.decisions, flags=job.flags, reasons=job.reasons, stress=job.stress,
                 checkpoint=job.checkpoint_info)


def run_backtest(model_paths: list, cfg: RunConfig, progress=None, *, strict: bool | None = None) -> dict:
    """`foldgate backtest`: every model in one batched call. One model: a bad one is an
    error; several: a bad one fails alone (its error in the report), as in validate."""
    if cfg.walk_forward is not None and cfg.walk_forward < 1:
        raise FoldgateError("--walk-forward must be at least 1")
    thresholds = cfg.load_thresholds()
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
    """The models of a report that could not be evaluated (design.md 9: exit status 1)."""
    return [m for m in report["models"] if m.get("error")]



# ---------------------------------------------------------------------------------
# validate: the seed's whole workflow


def run_validate(source, cfg: RunConfig, *, dest_root="training_archives", thresholds_path=None,
                 progress=None) -> tuple[dict, list[ModelJob]]:
    """Extract, gate, backtest + walk-forward every model gating lets through (one batched
    call), decide. Returns the report and the jobs."""
    from . import archive as archive_mod
    from . import gating as gating_mod
    from . import summary as summary_mod

    if thresholds_path is not None:
        cfg.thresholds = thresholds_path
    thresholds = cfg.load_thresholds()
    if progress:
        progress("extracting")
    root, summary_path, stamp = archive_mod.open_training_source(source, dest_root=dest_root)
    records = summary_mod.parse_summary(summary_path, root)

    if cfg.checkpoints not in CHECKPOINT_CHOICES:
        raise FoldgateError(f"--checkpoints must be one of {', '.join(CHECKPOINT_CHOICES)}, got {cfg.checkpoints!r}")
    jobs: list[ModelJob] = []
    for rec in records:
        job = ModelJob(model_path=rec.model_path, symbol=rec.symbol, timeframe=rec.timeframe or "1Hour")
        jobs.append(job)
        if rec.error:
            job.error = rec.error
            continue
        job.gating, job.gating_class = gate_record(rec, thresholds)
        job.train_periods = _train_periods(rec)
        if rec.model_missing:  # design.md 7: gated and flagged, not backtested, not an error
            flag = gating_mod.Flag("MODEL_MISSING", f"{rec.model_missing}; not backtested.")
            job.gating["flags"].append(flag.to_dict())
            job.reasons = [rec.model_missing]
            continue
        if job.gating_class == "DROP" and not cfg.force:
            continue
        for k, (path, info, missing) in enumerate(checkpoint_variants(rec, job.gating, cfg.checkpoints)):
            if k:  # another variant of the symbol: gated as the symbol is, simulated on its own
                import copy

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
    from .gating import gate_metrics

    result = gate_metrics(rec.metrics, rec.checkpoints, thresholds).to_dict()
    return result, result["classification"]


def _train_periods(rec) -> list[tuple[int | None, int | None]]:
    """The training period named in the archive, for in-sample marking."""
    from .folds import to_ns

    start, end = getattr(rec, "train_start", None), getattr(rec, "train_end", None)
    if not start and not end:
        return []
    return [(to_ns(start), to_ns(end))]
