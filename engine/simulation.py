"""How a run simulates its jobs: the device, the end of the data, each symbol's bars
and features, the windows of every job, and ONE batched kernel call for all of them
(with buy-and-hold and the --stress scenarios), the results written back per job.
engine/pipeline.py calls `simulate_jobs`; the jobs are its `ModelJob`s.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from kernels.codes import FILL_NAMES
from kernels.cuda_env import cuda_available, device_name, simulator_active
from kernels.gpu_simulate import GpuUnsupportedError

from .batch import Batch
from .data.bars import timeframe_seconds
from .data.store import BarStore
from .data.symbols import guess_asset_class
from .errors import FoldgateError, SettingError
from .features import compute_features, lookback
from .folds import bars_per_year, end_past_last_bar, make_folds, mark_in_sample
from .run import make_executor, run_chunked
from .stress import STRESSED

if TYPE_CHECKING:  # engine/pipeline.py imports this module
    from .pipeline import ModelJob, RunConfig

COUNT_METRICS = {"n_trades", "clipped_shorts", "bars"}


def resolve_device(requested: str) -> tuple[str, str]:
    """(device the kernel runs on, how to describe it): 'auto' takes CUDA when a GPU is
    present; 'cuda' without one is an error, except under NUMBA_ENABLE_CUDASIM=1, where
    'cuda' runs the CUDA kernel on Numba's simulator (slow; it says so) and 'auto'
    keeps to the CPU."""
    if requested == "cpu":
        return "cpu", "cpu"
    try:
        if requested == "cuda" and simulator_active():
            return "cuda", "cuda (CUDA simulator, NUMBA_ENABLE_CUDASIM=1: slow, for tests)"
        if cuda_available():
            return "cuda", f"cuda ({device_name() or 'unknown GPU'})"
    except ImportError:
        pass
    if requested == "cuda":
        raise SettingError("device", "no CUDA GPU is usable here (install foldgate[cuda] on a machine with "
                           "an NVIDIA GPU and driver), or use {device} cpu", usage=False, value="cuda")
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
        raise SettingError("end", f"cannot read {value!r} as an ISO date or time in 1678-2261") from None
    return ns


def _may_fetch(cfg: RunConfig) -> bool:
    """Whether the run may fetch bars from Alpaca: --source alpaca, or no --source with
    ALPACA_KEYS_FILE set (then for the symbols the store lacks)."""
    return cfg.source == "alpaca" or (cfg.source is None and bool(os.environ.get("ALPACA_KEYS_FILE")))


def _read_bars(store, symbol: str, timeframe: str, cfg: RunConfig, warmup_bars: int):
    """Bars of one symbol, fetched from Alpaca first when the run asks for it (once per
    symbol, for all of its models), with room for the warm-up bars before the window."""
    use_alpaca = _may_fetch(cfg) and (cfg.source == "alpaca" or not store.has(symbol, timeframe))
    if use_alpaca:
        from .data.sources.alpaca import ensure_bars  # lazy: the Alpaca client, only when a run fetches

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


class _HoldPolicy:
    """Buy-and-hold as a policy the kernel runs like any other (docs/design.md 6.1): one action,
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

    store = BarStore(cfg.store)
    end_ns = parse_end(cfg.end)
    device, cfg.device_used = resolve_device(cfg.device)
    by_series: dict[tuple[str, str], list[ModelJob]] = {}
    for job in jobs:
        if job.simulated:
            by_series.setdefault((job.symbol, job.timeframe), []).append(job)


    batch = Batch(fill_mode=0 if cfg.fill == "next-open" else 1)
    stress_ids: dict[int, dict[str, int]] = {}  # base trajectory -> {scenario: trajectory}
    costs = dict(capital=cfg.capital, commission=cfg.commission_bps / 1e4, slippage=cfg.slippage_bps / 1e4)
    planned: list[_PlannedWindow] = []
    hold_traj: dict[tuple[int, int, int], int] = {}
    for ((symbol, timeframe), group), prepared in zip(by_series.items(), _prepared_series(store, by_series, cfg)):
        if progress:
            progress(f"features {symbol} {timeframe}")
        try:  # the symbol's bars and features: a failure here fails all of its models
            bars, names, features = prepared.result()
            series_id = batch.add_series(bars.open, bars.close, features, names)
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
                if cfg.stress:  # the late fill is a trajectory's own fill mode, in the same call
                    stress_ids[traj] = {
                        sc.name: batch.add_trajectory(
                            model_id, series_id, window.start, window.end, long_only=job.long_only,
                            capital=cfg.capital, commission=costs["commission"] * sc.cost_multiplier,
                            slippage=costs["slippage"] * sc.cost_multiplier,
                            fill_mode=FILL_NAMES["next-open-late"] if sc.late_fill else None)
                        for sc in STRESSED}

    planned = [p for p in planned if p.job.error is None]
    if not planned:
        return
    if progress:
        progress(f"simulating {len(planned)} trajectories")
    holds = sorted({p.hold for p in planned})
    traj_ids = [p.traj for p in planned] + holds
    hold_bpy = {p.hold: p.bars_per_year for p in planned}
    bpy_list = [p.bars_per_year for p in planned] + [hold_bpy[h] for h in holds]
    # the stress scenarios, the delay one included (its trajectories have their own fill
    # mode), are more trajectories of the same flat list
    stressed = [(p.traj, name, sid) for p in planned for name, sid in stress_ids.get(p.traj, {}).items()]
    traj_ids += [sid for _, _, sid in stressed]
    bpy_list += [p.bars_per_year for p in planned for _ in stress_ids.get(p.traj, {})]
    try:
        result = _run_chunks(batch, traj_ids, bpy_list, device, cfg, progress, run_dir=cfg.run_dir)
    except GpuUnsupportedError as exc:  # a model too wide for the GPU kernel
        if cfg.device == "cuda":
            raise SettingError("device", f"{exc}; use {{device}} cpu or auto", usage=False,
                               value="cuda") from None
        cfg.device_used = f"cpu (auto: {exc})"
        # the GPU's chunks are another run's (the device is part of the run key)
        result = _run_chunks(batch, traj_ids, bpy_list, "cpu", cfg, progress, resume=False,
                             run_dir=cfg.run_dir)
    hold_out = dict(zip(holds, result[len(planned):len(planned) + len(holds)]))
    by_id = dict(zip(traj_ids, result))
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
    the run has one, on the executor the run names (docs/design.md 11)."""

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
                          progress=on_chunk if progress else None,
                          trades=False)  # the report's records read trade_int / trade_float
    finally:
        executor.close()
    cfg.run_stats = {"chunks": out.n_chunks, "chunks_run": out.chunks_run,
                     "chunks_reused": out.chunks_reused, "kernel_s": out.kernel_s,
                     "wall_s": out.wall_s, "run_dir": None if out.run_dir is None else str(out.run_dir)}
    return out.results


def _warmup(job: ModelJob) -> int:
    """Bars a model needs before a window's first bar: its features' lookback and lags."""

    return lookback(job.policy.features) + job.policy.window - 1


def _plan_windows(job: ModelJob, bars, cfg: RunConfig, end_ns: int | None):
    """The model's windows, [("backtest" | "fold", window)], and the bars per year of the
    run's main window (docs/design.md 6: measured once over the whole --days window)."""

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


def _series_inputs(store, symbol: str, timeframe: str, group: list[ModelJob], cfg: RunConfig):
    """(bars, feature names, features) of one series, for all of its models."""
    warmup = max(_warmup(job) for job in group)
    bars = _read_bars(store, symbol, timeframe, cfg, warmup)
    names = list(dict.fromkeys(n for job in group for n in job.policy.features))
    return bars, names, compute_features(bars, names)


SERIES_AHEAD = 4
"""Series whose bars and features are prepared ahead of the one being planned."""


def _prepared_series(store, by_series: dict, cfg: RunConfig):
    """Futures of `_series_inputs`, in by_series' order, two at a time: reading an Arrow
    file and the features kernel run without the GIL, so a second core halves this part
    of a many-symbol run. At most SERIES_AHEAD are held ahead (each is a series' float64
    features). A fetching run (Alpaca) prepares one series at a time, in order."""
    workers = 1 if _may_fetch(cfg) else 2
    keys = list(by_series)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="foldgate-series") as pool:
        pending: deque[Future] = deque()
        try:
            for i in range(len(keys)):
                while len(pending) <= SERIES_AHEAD and i + len(pending) < len(keys):
                    symbol, timeframe = keys[i + len(pending)]
                    pending.append(pool.submit(_series_inputs, store, symbol, timeframe,
                                               by_series[(symbol, timeframe)], cfg))
                yield pending.popleft()
        finally:  # a failed run: the series not yet started are not started
            for f in pending:
                f.cancel()


def _window_record(window, in_sample: bool, out: dict, times: np.ndarray) -> dict:
    """One fold or backtest as the report writes it. Curves stay numpy arrays (the
    report writer converts them in one vectorised pass); `times` are the series' bar
    times as datetime64[s]."""
    bars_ts = times[window.start: window.end]
    ti, tf = out["trade_int"], out["trade_float"]
    n = len(ti)
    # the window's bounds and its trades' entry and exit times, formatted in one call
    iso = iso_list(times[np.concatenate(([window.start, window.end - 1], ti[:, 0], ti[:, 1]))])
    start, end = iso[:2]
    columns = (iso[2:2 + n], iso[2 + n:], ti[:, 2].tolist(), *tf[:, :4].T.tolist())
    # a dict display per trade (TRADE_FIELDS' order, which a test holds it to): about
    # twice as fast as dict(zip(TRADE_FIELDS, row)) over a bulk run's ~700k trades
    trades = [{"entry_time": t0, "exit_time": t1, "direction": d, "entry_price": p0, "exit_price": p1,
               "pnl": pnl, "commission": c} for t0, t1, d, p0, p1, pnl, c in zip(*columns)]
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


TRADE_FIELDS = ("entry_time", "exit_time", "direction", "entry_price", "exit_price", "pnl", "commission")
"""A trade's fields in the report, in order (docs/report.md)."""


def iso_list(times: np.ndarray) -> list[str]:
    """datetime64 array -> ISO strings with a Z, whole seconds. numpy formats each
    distinct day once, Python each distinct time of day once (a bulk run formats 1.4M
    trade times: 0.61-0.83 s as one numpy string per time, 0.50-0.55 s this way; a table
    of all 86,400 times of day would cost every process 50 ms to build)."""
    days, second = np.divmod(times.astype("datetime64[s]").astype(np.int64), 86_400)
    distinct_days, which_day = np.unique(days, return_inverse=True)
    distinct_secs, which_sec = np.unique(second, return_inverse=True)
    day_text = np.datetime_as_string(distinct_days.astype("datetime64[D]"), unit="D").tolist()
    tod_text = [f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in distinct_secs.tolist()]
    return [day_text[d] + tod_text[s] for d, s in zip(which_day.tolist(), which_sec.tolist())]


def _py(value):
    """numpy scalar -> JSON-able Python value, NaN -> None."""
    if type(value) is float:  # metrics_rows' values: the usual case
        return value if math.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    value = float(value)
    return None if not math.isfinite(value) else value
