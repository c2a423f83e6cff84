"""Chunked, resumable runs of a Batch's trajectories (docs/design.md 11).

    from engine.run import run_chunked, make_executor
    out = run_chunked(batch, ids, bars_per_year=bpy, run_dir="out/run", resume=True,
                      chunk_size=256, executor=make_executor("ray"), progress=print)
    out.results        # == batch.run(bars_per_year=bpy, trajectories=ids), bit for bit

The trajectory ids are cut into chunks of `chunk_size` consecutive ids. Each chunk is
packed and simulated on its own (by the executor: this process or Ray tasks); with a
run directory, its outputs are written there atomically as soon as they exist, and a
resumed run reads the chunks already there instead of simulating them again. The
results are split per trajectory exactly as Batch.run splits them."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from kernels.simulate import SimulationResult

from ..batch import PackedBatch, split_result
from ..errors import FoldgateError, SettingError
from .digest import RUN_FORMAT, run_digests, run_key
from .executors import EXECUTORS, LocalExecutor, RayExecutor, make_executor
from .rundir import ChunkResult, RunDir

DEFAULT_CHUNK_SIZE = 512
"""Trajectories per chunk: enough prange units to keep a node's cores busy, small
enough that a killed run loses little and a progress bar moves."""
MAX_CHUNK_SIZE = 1_000_000
PAUSE_ENV = "FOLDGATE_CHUNK_PAUSE_S"
"""Seconds to wait after each chunk is written: lets a test (or a demo of --resume)
kill a run at a known moment. Unset in normal use."""


@dataclass(frozen=True)
class ChunkProgress:
    """Handed to the progress callback once per chunk, finished or found on disk."""

    chunk: int
    n_chunks: int
    chunks_done: int
    trajectories_done: int
    n_trajectories: int
    reused: bool
    kernel_s: float


@dataclass
class RunOutput:
    results: list[dict]
    """One dict per trajectory, as Batch.run returns them, in the order asked."""
    n_chunks: int
    chunks_run: int
    """Chunks simulated by this call."""
    chunks_reused: int
    """Chunks read from the run directory (resume)."""
    kernel_s: float
    """Seconds inside the simulation kernel for the chunks this call ran (summed over
    Ray tasks, which run side by side)."""
    wall_s: float
    """Seconds this call took, packing, writing and merging included."""
    run_key: str | None
    """sha256 of the run's inputs (None without a run directory: nothing to key)."""
    run_dir: Path | None
    chunk_size: int


def plan_chunks(ids: list[int], chunk_size: int) -> list[tuple[int, list[int]]]:
    """(chunk index, trajectory ids) of consecutive slices of `ids`."""
    return [(k, ids[a:a + chunk_size]) for k, a in enumerate(range(0, len(ids), chunk_size))]


def check_chunk_size(chunk_size) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or not (
            1 <= chunk_size <= MAX_CHUNK_SIZE):
        raise SettingError("chunk_size", f"must be a whole number from 1 to {MAX_CHUNK_SIZE:,}, "
                                         f"got {chunk_size!r}")
    return int(chunk_size)


def run_chunked(batch, trajectories=None, *, bars_per_year=None, device: str = "cpu",
                run_dir=None, resume: bool = False, chunk_size: int | None = None,
                executor=None, progress: Callable[[ChunkProgress], None] | None = None,
                trades: bool = True) -> RunOutput:
    """Simulate trajectory ids `trajectories` (all by default) of `batch` chunk by
    chunk; see the module docstring. `bars_per_year` as in Batch.run. `chunk_size`
    None: the size a resumed run directory records, else DEFAULT_CHUNK_SIZE.
    `executor`: a LocalExecutor (default) or RayExecutor; it is not closed here.
    `trades`: each result's `trades` tuples too, as Batch.run gives them (the arrays
    `trade_int` and `trade_float` hold the same)."""
    t_start = time.perf_counter()
    ids = list(range(len(batch.trajectories))) if trajectories is None else [
        int(t) for t in trajectories]
    bad = next((t for t in ids if not 0 <= t < len(batch.trajectories)), None)
    if bad is not None:
        raise ValueError(f"no trajectory {bad}")
    if resume and run_dir is None:
        raise FoldgateError("--resume needs a run directory (--out)")
    rd, key = None, None
    if run_dir is not None:
        digests = run_digests(batch, ids, device)
        key = run_key(digests)
        if chunk_size is None and resume:
            chunk_size = _recorded_chunk_size(run_dir, key)
        size = check_chunk_size(DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size)
        manifest = {"format": RUN_FORMAT, "run_key": key, "digests": digests,
                    "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "n_trajectories": len(ids), "chunk_size": size,
                    "n_chunks": len(plan_chunks(ids, size)), "device": device}
        rd = RunDir.open(run_dir, manifest, resume)
    else:
        size = check_chunk_size(DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size)
    try:
        chunks = plan_chunks(ids, size)
        done: dict[int, ChunkResult] = {}
        counts = {"chunks": 0, "trajectories": 0}

        def report(index, chunk, reused):
            counts["chunks"] += 1
            counts["trajectories"] += int(chunk.trajectories.shape[0])
            if progress:
                progress(ChunkProgress(index, len(chunks), counts["chunks"],
                                       counts["trajectories"], len(ids), reused, chunk.kernel_s))

        if rd is not None and resume:
            for index, chunk_ids in chunks:
                found = rd.read_chunk(index, np.asarray(chunk_ids, dtype=np.int64),
                                      _equity_lengths(batch, chunk_ids))
                if found is not None:
                    done[index] = found
                    report(index, found, True)
        reused = len(done)
        todo = [c for c in chunks if c[0] not in done]
        kernel_s = 0.0
        pause = _pause_seconds()
        if todo:
            ex = executor if executor is not None else LocalExecutor()
            for index, chunk in ex.run_chunks(batch, todo, device):
                if rd is not None:  # on the run directory's writer thread, while the next runs
                    rd.write_chunk_soon(index, chunk)
                done[index] = chunk
                kernel_s += chunk.kernel_s
                report(index, chunk, False)
                if pause:
                    time.sleep(pause)
        if rd is not None:
            rd.flush()  # every chunk on disk (or its write's failure raised) before the merge
        results = _merge(batch, [done[index] for index, _ in chunks], ids, bars_per_year, trades)
    except BaseException:
        if rd is not None:
            rd.close(quiet=True)  # the error in flight, not a later write's, is the one raised
        raise
    else:
        if rd is not None:
            rd.close()
    return RunOutput(results, len(chunks), len(chunks) - reused, reused, kernel_s,
                     time.perf_counter() - t_start, key, None if rd is None else rd.path, size)


def _pause_seconds() -> float:
    try:
        return max(0.0, min(float(os.environ.get(PAUSE_ENV, "0") or 0), 60.0))
    except ValueError:
        return 0.0


def _recorded_chunk_size(run_dir, key: str) -> int | None:
    """The chunk size of the same run recorded in `run_dir`, if there is one."""
    try:
        old = json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if isinstance(old, dict) and old.get("run_key") == key:
        size = old.get("chunk_size")
        if isinstance(size, int) and 1 <= size <= MAX_CHUNK_SIZE:
            return size
    return None


def _equity_lengths(batch, ids) -> np.ndarray:
    """Equity slot length of each trajectory: its bars plus the starting capital."""
    return np.array([batch.trajectories[t].end - batch.trajectories[t].start + 1 for t in ids],
                    dtype=np.int64)


def _merge(batch, chunks: list[ChunkResult], ids: list[int], bars_per_year, trades: bool = True) -> list[dict]:
    """Split every chunk per trajectory as Batch.run does, and concatenate."""
    n = len(ids)
    bpy = None
    if bars_per_year is not None:
        bpy = np.broadcast_to(np.asarray(bars_per_year, dtype=np.float64), (n,))
    out, at = [], 0
    for chunk in chunks:
        k = int(chunk.trajectories.shape[0])
        part = chunk.trajectories.tolist()
        capital = np.array([batch.trajectories[t].capital for t in part], dtype=np.float64)
        result = SimulationResult(chunk.equity, chunk.n_trades, chunk.trade_int,
                                  chunk.trade_float, chunk.stats, chunk.traj_eq_off,
                                  chunk.traj_trade_off)
        out.extend(split_result(result, PackedBatch({}, part, capital),
                                None if bpy is None else bpy[at:at + k], trades))
        at += k
    return out


__all__ = ["run_chunked", "RunOutput", "ChunkProgress", "ChunkResult", "plan_chunks",
           "make_executor", "LocalExecutor", "RayExecutor", "EXECUTORS", "DEFAULT_CHUNK_SIZE",
           "MAX_CHUNK_SIZE", "check_chunk_size"]
