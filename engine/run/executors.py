"""Where a run's chunks are simulated: in this process (`local`) or as Ray tasks (`ray`).

An executor takes a Batch and a list of (chunk index, trajectory ids) and yields
(chunk index, ChunkResult) as each chunk finishes, in any order. A chunk is simulated
from the arrays `Batch.pack(ids)` gives, so where it runs cannot change its result
(docs/design.md 1: any subset simulates anywhere and merges by concatenation)."""

from __future__ import annotations

import os
import time
from typing import Iterator

import numba

import engine
from kernels.inputs import MARKET_INPUTS

from ..batch import Batch, PackedBatch, _pack_series

from ..errors import FoldgateError
from .rundir import ChunkResult

EXECUTORS = ("local", "ray")


def simulate_chunk(batch, ids: list[int], device: str, scratch: dict | None = None) -> ChunkResult:
    """Pack and simulate trajectories `ids` of `batch`; time the kernel call alone.
    `scratch`: Batch.pack's, kept by a caller that simulates chunks one at a time."""
    packed = batch.pack(ids, scratch)
    t0 = time.perf_counter()
    result = batch.simulate_packed(packed, device=device)
    return ChunkResult.from_simulation(ids, result, time.perf_counter() - t0)


class LocalExecutor:
    """Chunks one after another in this process (the kernel itself uses every core)."""

    name = "local"

    def run_chunks(self, batch, chunks, device: str) -> Iterator[tuple[int, ChunkResult]]:
        scratch: dict = {}  # one chunk's market arrays at a time: their buffers are reused
        for index, ids in chunks:
            yield index, simulate_chunk(batch, ids, device, scratch)

    def close(self) -> None:
        pass


def _ray_chunk(rest: dict, fill_mode: int, device: str, ids: list[int], task_cpus: int,
               *series) -> ChunkResult:
    """A Ray task: the chunk's market arrays rebuilt from the series in the object store
    (Ray hands them in zero-copy), then the same kernel call as a local run."""
    # the task holds task_cpus of the node's CPUs: more kernel threads would only
    # fight the node's other tasks for them
    numba.set_num_threads(max(1, min(int(task_cpus), numba.config.NUMBA_NUM_THREADS)))
    arrays = dict(rest)
    arrays.update(_pack_series(list(series)))
    packed = PackedBatch(arrays, list(ids), arrays["traj_capital"].copy())
    sim = Batch(fill_mode=fill_mode)
    t0 = time.perf_counter()
    result = sim.simulate_packed(packed, device=device)
    return ChunkResult.from_simulation(ids, result, time.perf_counter() - t0)


class RayExecutor:
    """Chunks as Ray tasks. `address`: a cluster to join ("auto", "ray://host:10001",
    "host:6379"); None starts a local Ray on this machine with `num_cpus` CPUs (all by
    default), shut down again by `close`. Each series' bars go into Ray's object
    store once per run and every chunk task that reads the series shares them."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 task_cpus: int = 1, max_in_flight: int | None = None):
        if num_cpus is not None and num_cpus < 1:
            raise FoldgateError(f"--ray-cpus must be at least 1, got {num_cpus}")
        if task_cpus < 1:
            raise FoldgateError(f"CPUs per Ray task must be at least 1, got {task_cpus}")
        self.address = address or None
        self.num_cpus = num_cpus
        self.task_cpus = int(task_cpus)
        self.max_in_flight = max_in_flight
        self._ray = None
        self._remote = None
        self._started = False
        self.series_puts = 0  # series put into the object store (once per series and run)

    def _connect(self):
        if self._ray is not None:
            return self._ray
        try:
            import ray  # lazy: an optional extra, and ~2 s to import
        except ImportError:
            raise FoldgateError("--executor ray needs Ray: pip install 'foldgate[ray]'") from None
        if not ray.is_initialized():
            try:
                if self.address:
                    ray.init(address=self.address, log_to_driver=False)
                else:
                    ray.init(num_cpus=self.num_cpus, include_dashboard=False,
                             _node_ip_address="127.0.0.1", log_to_driver=False,
                             runtime_env={"env_vars": _worker_env()})
                    self._started = True
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.address or "a local Ray"
                raise FoldgateError(f"--executor ray: cannot start or reach {where}: "
                                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                                    ) from None
        self._ray = ray
        self._remote = ray.remote(num_cpus=self.task_cpus)(_ray_chunk)
        return ray

    def run_chunks(self, batch, chunks, device: str) -> Iterator[tuple[int, ChunkResult]]:
        # the kernel's inputs made from the series alone: Ray tasks get those from the
        # object store
        market_keys = MARKET_INPUTS
        ray = self._connect()
        chunks = list(chunks)
        refs: dict[int, object] = {}  # series id -> ObjectRef, one put per series
        cpus = int(ray.cluster_resources().get("CPU", 1))
        limit = self.max_in_flight or max(2, 2 * cpus // self.task_cpus)
        pending: dict[object, int] = {}
        todo = iter(chunks)

        def submit(index, ids):
            packed = batch.pack(ids)
            rest = {k: v for k, v in packed.arrays.items() if k not in market_keys}
            series_ids = sorted({batch.trajectories[t].series for t in ids})
            for s in series_ids:
                if s not in refs:
                    refs[s] = ray.put(batch.series[s])
                    self.series_puts += 1
            ref = self._remote.remote(rest, batch.fill_mode, device, list(ids), self.task_cpus,
                                      *(refs[s] for s in series_ids))
            pending[ref] = index

        for index, ids in todo:
            submit(index, ids)
            if len(pending) >= limit:
                break
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                index = pending.pop(done[0])
                yield index, _unwrap(ray, done[0], index)
                for nxt in todo:
                    submit(*nxt)
                    break
        finally:
            for ref in pending:  # an error or a closed generator: stop the rest
                try:
                    ray.cancel(ref)
                except Exception:  # already finished or gone
                    pass

    def close(self) -> None:
        if self._started and self._ray is not None:
            self._ray.shutdown()
        self._ray = self._remote = None
        self._started = False


def _unwrap(ray, ref, index: int):
    """ray.get, with a task's own exception raised as itself (a FoldgateError or the
    GPU kernel's refusal stays what it was); Ray's own failures (a lost worker or node)
    as one-line errors: the chunks already written stay for --resume."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise
    except ray.exceptions.RayError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FoldgateError(f"--executor ray: chunk {index} failed ({first}); the finished "
                            "chunks are kept, run again with --resume") from None


def _worker_env() -> dict:
    """Environment a local Ray's workers need to import this very foldgate (a checkout
    run with PYTHONPATH as much as an installed one) and share its Numba cache."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(engine.__file__)))
    path = os.environ.get("PYTHONPATH", "")
    env = {"PYTHONPATH": root + (os.pathsep + path if path else "")}
    for name in ("NUMBA_CACHE_DIR", "FOLDGATE_CACHE_DIR", "NUMBA_THREADING_LAYER"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def make_executor(name: str = "local", address: str | None = None,
                  num_cpus: int | None = None):
    """The executor a run's settings name: "local" or "ray"."""
    if name == "local":
        if address:
            raise FoldgateError("--ray-address needs --executor ray")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address=address, num_cpus=num_cpus)
    raise FoldgateError(f"--executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
