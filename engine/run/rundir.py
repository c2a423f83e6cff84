"""A run directory on disk: its manifest, its chunk files, its index and its lock.

    DIR/manifest.json        the run's key and the digests it is made of (written first)
    DIR/index.json           finished chunks: trajectories, kernel seconds, when
    DIR/chunks/chunk-NNNNNN.npz   one chunk's kernel outputs (no pickle)
    DIR/.lock                held while a process works on the run

Every file is written atomically (engine/atomic.py), so a process killed at any
moment leaves whole files or none; the temp files such a kill leaves are removed by
the next process that opens the directory. A chunk file is self-describing (it holds
the run key, its chunk number and its trajectory ids), so the chunk files, not the
index, say what is done.

Chunks are written by one background thread (`write_chunk_soon`) while the next chunk
runs: saving and fsyncing a chunk's tens of MB waits on the disk, not on the GIL. Its
file still follows its kernel call at once, and `flush` (which `close` calls) waits
for every write and raises the first failure."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_open, atomic_write_text, ensure_writable_dir
from ..errors import FoldgateError
from .digest import PART_WORDS, PARTS, RUN_FORMAT

MANIFEST = "manifest.json"
INDEX = "index.json"
CHUNK_DIR = "chunks"
LOCK = ".lock"
_HEADER_SLACK = 4096  # bytes an .npy header may add to its data


@dataclass
class ChunkResult:
    """The kernel's outputs for one chunk of trajectories, trades compacted: trade rows
    of trajectory i are traj_trade_off[i] : traj_trade_off[i] + n_trades[i], with
    traj_trade_off the running sum of n_trades (not the kernel's capacity offsets)."""

    trajectories: np.ndarray  # int64 (n,): Batch trajectory ids
    equity: np.ndarray        # float64
    traj_eq_off: np.ndarray   # int64 (n + 1,)
    n_trades: np.ndarray      # int64 (n,)
    trade_int: np.ndarray     # int64 (sum n_trades, 3)
    trade_float: np.ndarray   # float64 (sum n_trades, 4)
    stats: np.ndarray         # float64 (n, 4)
    kernel_s: float           # seconds inside the simulation call

    @property
    def traj_trade_off(self) -> np.ndarray:
        return np.concatenate(([0], np.cumsum(self.n_trades))).astype(np.int64)

    @classmethod
    def from_simulation(cls, ids, result, kernel_s: float) -> "ChunkResult":
        """Compact a SimulationResult: keep only the trade rows that hold trades."""
        n_trades = np.asarray(result.n_trades, dtype=np.int64)
        starts = np.asarray(result.traj_trade_off, dtype=np.int64)[:-1]
        # row index of every trade: start of its trajectory plus 0..n_trades-1
        rows = np.repeat(starts, n_trades) + (
            np.arange(int(n_trades.sum()), dtype=np.int64)
            - np.repeat(np.cumsum(n_trades) - n_trades, n_trades))
        return cls(np.asarray(ids, dtype=np.int64), np.asarray(result.equity),
                   np.asarray(result.traj_eq_off, dtype=np.int64), n_trades,
                   np.ascontiguousarray(result.trade_int[rows]),
                   np.ascontiguousarray(result.trade_float[rows]),
                   np.asarray(result.stats), float(kernel_s))


_CHUNK_ARRAYS = {  # name: (dtype, ndim)
    "trajectories": (np.int64, 1), "equity": (np.float64, 1), "traj_eq_off": (np.int64, 1),
    "n_trades": (np.int64, 1), "trade_int": (np.int64, 2), "trade_float": (np.float64, 2),
    "stats": (np.float64, 2),
}


def chunk_name(index: int) -> str:
    return f"chunk-{index:06d}.npz"


class RunDir:
    """Opens (and locks) a run directory for one run key; see the module docstring."""

    def __init__(self, path, manifest: dict):
        self.path = Path(path)
        self.manifest = manifest
        self.chunks = self.path / CHUNK_DIR
        self._lock_fh = None
        self._index: dict[str, dict] = {}
        self._writer: ThreadPoolExecutor | None = None
        self._writes: list[Future] = []
        self._write_failed = False
        self._index_lock = threading.Lock()  # the writer thread and read_chunk both fill _index

    # -- opening -----------------------------------------------------------------

    @classmethod
    def open(cls, path, manifest: dict, resume: bool) -> "RunDir":
        """Lock `path`, remove stale temp files, and either continue the run recorded
        there (resume, same run key) or start this one afresh. A run directory of
        another run is refused on resume, never mixed."""
        path = ensure_writable_dir(path)
        rd = cls(path, manifest)
        rd._lock()
        try:
            ensure_writable_dir(rd.chunks)
            rd._remove_temps()
            old = rd._read_manifest()
            if resume and old is not None:
                rd._check_same_run(old)
                rd._index = rd._read_index()
            else:
                rd._clear()
                atomic_write_text(path / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        except BaseException:
            rd.close()
            raise
        return rd

    def _lock(self) -> None:
        try:
            import fcntl  # lazy: POSIX only, and only when a run directory is locked
        except ImportError:  # no advisory locks here (Windows): run unlocked
            return
        fh = open(self.path / LOCK, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise FoldgateError(f"run directory {self.path} is in use by another foldgate "
                                "process") from None
        self._lock_fh = fh

    def close(self, quiet: bool = False) -> None:
        """Wait for the chunks still being written (a failure among them is raised,
        unless `quiet`: the caller is raising another), then release the lock."""
        try:
            if quiet:
                with contextlib.suppress(Exception):
                    self.flush()
            else:
                self.flush()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None
            self._release()

    def _release(self) -> None:
        if self._lock_fh is not None:
            self._lock_fh.close()  # closing the file releases its lock
            self._lock_fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _remove_temps(self) -> None:
        # atomic_open names its temp files ".<name>.<random>.tmp"
        for d in (self.path, self.chunks):
            for p in d.glob(".*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()

    def _clear(self) -> None:
        """Forget a previous run here: its chunk files, index and manifest."""
        for p in self.chunks.glob("chunk-*.npz"):
            p.unlink()
        for name in (INDEX, MANIFEST):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()

    def _read_manifest(self) -> dict | None:
        p = self.path / MANIFEST
        if not p.exists():
            return None
        try:
            old = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FoldgateError(f"{p}: not a readable run manifest ({exc}); remove the "
                                "directory or run without --resume") from None
        if not isinstance(old, dict) or old.get("format") != RUN_FORMAT:
            raise FoldgateError(f"{p}: not a {RUN_FORMAT} run manifest; use another run "
                                "directory or run without --resume")
        return old

    def _check_same_run(self, old: dict) -> None:
        new = self.manifest
        if old.get("run_key") == new["run_key"]:
            if old.get("chunk_size") != new["chunk_size"]:
                raise FoldgateError(
                    f"run directory {self.path} holds chunks of {old.get('chunk_size')} "
                    f"trajectories: resume with --chunk-size {old.get('chunk_size')}")
            return
        differ = [PART_WORDS[p] for p in PARTS
                  if (old.get("digests") or {}).get(p) != new["digests"][p]]
        raise FoldgateError(
            f"run directory {self.path} holds another run ({', '.join(differ) or 'its inputs'} "
            "differ); use another --out, or run without --resume to start it over")

    def _read_index(self) -> dict[str, dict]:
        try:
            data = json.loads((self.path / INDEX).read_text(encoding="utf-8"))
            chunks = data.get("chunks", {}) if data.get("run_key") == self.manifest["run_key"] else {}
            return {str(k): dict(v) for k, v in chunks.items() if isinstance(v, dict)}
        except (OSError, UnicodeDecodeError, ValueError, AttributeError, TypeError):
            return {}  # the chunk files are what counts; the index is rebuilt from them

    # -- chunks ------------------------------------------------------------------

    def write_chunk_soon(self, index: int, chunk: ChunkResult) -> None:
        """`write_chunk` on the writer thread, in the order given; a failed earlier write
        is raised here, before more work is queued behind it. The chunk's arrays must
        not change afterwards (the run only reads them)."""
        self._raise_failed(wait=False)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="foldgate-chunks")
        self._writes.append(self._writer.submit(self._write_unless_failed, index, chunk))

    def _write_unless_failed(self, index: int, chunk: ChunkResult) -> None:
        # after a failed write (a full disk) the later chunks are not tried: the run
        # directory holds the chunks before it, as when each was written in turn
        if self._write_failed:
            return
        try:
            self.write_chunk(index, chunk)
        except BaseException:
            self._write_failed = True
            raise

    def flush(self) -> None:
        """Wait for every queued chunk write; raise the first that failed."""
        self._raise_failed(wait=True)

    def _raise_failed(self, wait: bool) -> None:
        pending = []
        for f in self._writes:
            if wait or f.done():
                exc = f.exception()  # waits for it when wait is set
                if exc is not None:
                    self._writes = []
                    raise exc
            else:
                pending.append(f)
        self._writes = pending

    def write_chunk(self, index: int, chunk: ChunkResult) -> None:
        """The chunk's file, atomically, then the index that lists it."""
        path = self.chunks / chunk_name(index)
        try:
            with atomic_open(path, "wb") as fh:  # np.savez straight into the temp file
                np.savez(fh, run_key=np.array(self.manifest["run_key"]), chunk=np.int64(index),
                         kernel_s=np.float64(chunk.kernel_s),
                         **{name: getattr(chunk, name) for name in _CHUNK_ARRAYS})
            with self._index_lock:
                self._index[f"{index:06d}"] = {
                    "trajectories": int(chunk.trajectories.shape[0]),
                    "trades": int(chunk.n_trades.sum()), "kernel_s": round(chunk.kernel_s, 6),
                    "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
                listed = dict(sorted(self._index.items()))
            # not fsynced: a crash that leaves the index empty or old costs nothing, it is
            # rebuilt from the chunk files, which are
            atomic_write_text(self.path / INDEX, json.dumps(
                {"format": RUN_FORMAT, "run_key": self.manifest["run_key"],
                 "chunks": listed}, indent=1) + "\n", durable=False)
        except OSError as exc:  # a full disk, a directory gone: the earlier chunks stay
            raise FoldgateError(f"{path}: cannot write the chunk ({exc.strerror or exc}); "
                                "free space and run again with --resume") from None

    def read_chunk(self, index: int, ids: np.ndarray, eq_lens: np.ndarray) -> ChunkResult | None:
        """Chunk `index` if its file exists and is this run's, for exactly the ids
        planned; None when it is absent or does not hold what it should (then it is
        simulated again). Sizes are checked against the plan before anything loads."""
        p = self.chunks / chunk_name(index)
        if not p.exists():
            return None
        n = int(ids.shape[0])
        eq_len = int(eq_lens.sum())
        trade_cap = eq_len - n  # a trajectory of k bars has at most k trades
        limits = {"trajectories": 8 * n, "equity": 8 * eq_len, "traj_eq_off": 8 * (n + 1),
                  "n_trades": 8 * n, "trade_int": 24 * trade_cap, "trade_float": 32 * trade_cap,
                  "stats": 32 * n, "run_key": 4 * 64, "chunk": 8, "kernel_s": 8}
        try:
            with zipfile.ZipFile(p) as zf:
                sizes = {i.filename.removesuffix(".npy"): i.file_size for i in zf.infolist()}
            if set(sizes) != set(limits) or any(
                    sizes[k] > limits[k] + _HEADER_SLACK for k in limits):
                return None
            with np.load(p, allow_pickle=False) as z:
                data = {k: z[k] for k in limits}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            return None
        if str(data["run_key"]) != self.manifest["run_key"] or int(data["chunk"]) != index:
            return None
        for name, (dtype, ndim) in _CHUNK_ARRAYS.items():
            if data[name].dtype != dtype or data[name].ndim != ndim:
                return None
        chunk = ChunkResult(kernel_s=float(data["kernel_s"]),
                            **{name: data[name] for name in _CHUNK_ARRAYS})
        off, nt = chunk.traj_eq_off, chunk.n_trades
        if not (np.array_equal(chunk.trajectories, ids) and off.shape == (n + 1,)
                and off[0] == 0 and chunk.equity.shape == (eq_len,)
                and np.array_equal(np.diff(off), eq_lens) and nt.shape == (n,)
                and np.all(nt >= 0) and np.all(nt <= eq_lens - 1)
                and chunk.trade_int.shape == (int(nt.sum()), 3)
                and chunk.trade_float.shape == (int(nt.sum()), 4)
                and chunk.stats.shape == (n, 4)):
            return None
        with self._index_lock:
            self._index.setdefault(f"{index:06d}", {
                "trajectories": n, "trades": int(nt.sum()),
                "kernel_s": round(chunk.kernel_s, 6), "finished": None})
        return chunk
