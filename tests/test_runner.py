"""engine/run: chunked runs give exactly Batch.run's results; chunk files are written
atomically as they finish; resume reads them instead of simulating again; a run
directory of another run is refused; stale temp files are removed."""

from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pytest

from engine.errors import FoldgateError
from engine.run import ChunkProgress, LocalExecutor, make_executor, plan_chunks, run_chunked
from engine.run.digest import RUN_FORMAT
from engine.run.rundir import RunDir
from run_fixtures import assert_identical, random_batch


class CountingExecutor(LocalExecutor):
    """The local executor, recording which chunks it was asked to simulate."""

    def __init__(self):
        self.ran = []

    def run_chunks(self, batch, chunks, device):
        for index, chunk in super().run_chunks(batch, chunks, device):
            self.ran.append(index)
            yield index, chunk


class Killed(Exception):
    pass


def kill_after(n):
    """A progress callback that stops the run after n chunks have finished."""
    def progress(p: ChunkProgress):
        if not p.reused and p.chunks_done >= n:
            raise Killed
    return progress


@pytest.fixture(scope="module")
def batch():
    return random_batch(seed=1)


@pytest.fixture(scope="module")
def order(batch):
    ids = list(range(len(batch.trajectories)))
    np.random.default_rng(2).shuffle(ids)
    return ids[:-3]  # a subset, out of order


@pytest.fixture(scope="module")
def reference(batch, order):
    bpy = np.linspace(500.0, 9000.0, len(order))
    return bpy, batch.run(bars_per_year=bpy, trajectories=order)


@pytest.mark.parametrize("size", [1, 4, 7, 1000])
def test_chunked_results_are_batch_run_bit_for_bit(batch, order, reference, size):
    bpy, want = reference
    out = run_chunked(batch, order, bars_per_year=bpy, chunk_size=size)
    assert out.n_chunks == math.ceil(len(order) / size) and out.chunks_run == out.n_chunks
    assert_identical(out.results, want)


def test_without_bars_per_year_there_are_no_metrics(batch, order):
    want = batch.run(trajectories=order[:5])
    got = run_chunked(batch, order[:5], chunk_size=2).results
    assert "metrics" not in got[0]
    assert_identical(got, want)


def test_chunks_are_consecutive_slices_of_the_ids():
    assert plan_chunks([5, 1, 9, 2, 7], 2) == [(0, [5, 1]), (1, [9, 2]), (2, [7])]
    assert plan_chunks([], 3) == []


def test_each_chunk_is_a_file_read_without_pickle(batch, order, reference, tmp_path):
    bpy, want = reference
    out = run_chunked(batch, order, bars_per_year=bpy, run_dir=tmp_path, chunk_size=8)
    assert_identical(out.results, want)
    files = sorted((tmp_path / "chunks").glob("chunk-*.npz"))
    assert len(files) == out.n_chunks == math.ceil(len(order) / 8)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["run_key"] == out.run_key and manifest["chunk_size"] == 8
    assert manifest["n_trajectories"] == len(order)
    index = json.loads((tmp_path / "index.json").read_text())
    assert sorted(index["chunks"]) == [f"{k:06d}" for k in range(out.n_chunks)]
    with np.load(files[1], allow_pickle=False) as z:
        assert list(z["trajectories"]) == order[8:16]
        assert int(z["chunk"]) == 1 and str(z["run_key"]) == out.run_key
        assert z["equity"].shape[0] == sum(len(w["equity"]) for w in want[8:16])
        assert z["trade_int"].shape[0] == sum(len(w["trades"]) for w in want[8:16])
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_killed_run_resumes_from_its_finished_chunks(batch, order, reference, tmp_path):
    bpy, want = reference
    with pytest.raises(Killed):
        run_chunked(batch, order, bars_per_year=bpy, run_dir=tmp_path, chunk_size=5,
                    progress=kill_after(3))
    assert len(list((tmp_path / "chunks").glob("chunk-*.npz"))) == 3
    ex = CountingExecutor()
    seen = []
    out = run_chunked(batch, order, bars_per_year=bpy, run_dir=tmp_path, resume=True,
                      executor=ex, progress=seen.append)  # chunk size from the manifest
    assert out.chunk_size == 5 and out.chunks_reused == 3
    assert sorted(ex.ran) == list(range(3, out.n_chunks)) and out.chunks_run == out.n_chunks - 3
    assert [p.reused for p in seen] == [True] * 3 + [False] * (out.n_chunks - 3)
    assert [p.chunks_done for p in seen] == list(range(1, out.n_chunks + 1))
    assert seen[-1].trajectories_done == len(order) == seen[-1].n_trajectories
    assert_identical(out.results, want)
    again = run_chunked(batch, order, bars_per_year=bpy, run_dir=tmp_path, resume=True,
                        executor=CountingExecutor())
    assert again.chunks_run == 0 and again.kernel_s == 0.0
    assert_identical(again.results, want)


def test_a_damaged_chunk_file_is_simulated_again(batch, order, reference, tmp_path):
    bpy, want = reference
    run_chunked(batch, order, bars_per_year=bpy, run_dir=tmp_path, chunk_size=6)
    chunk = tmp_path / "chunks" / "chunk-000002.npz"
    chunk.write_bytes(chunk.read_bytes()[:200])  # cut short
    other = tmp_path / "chunks" / "chunk-000001.npz"
    data = dict(np.load(other, allow_pickle=False))
    data["trajectories"] = data["trajectories"][::-1].copy()  # not the planned ids
    np.savez(other, **data)
    ex = CountingExecutor()
    out = run_chunked(batch, order, bars_per_year=bpy, run_dir=tmp_path, resume=True,
                      executor=ex)
    assert sorted(ex.ran) == [1, 2]
    assert_identical(out.results, want)


def test_a_chunk_declaring_more_than_planned_is_not_loaded(batch, order, tmp_path):
    run_chunked(batch, order, run_dir=tmp_path, chunk_size=6)
    chunk = tmp_path / "chunks" / "chunk-000000.npz"
    data = dict(np.load(chunk, allow_pickle=False))
    data["equity"] = np.zeros(10 ** 6)  # far past what six trajectories hold
    np.savez(chunk, **data)
    ex = CountingExecutor()
    run_chunked(batch, order, run_dir=tmp_path, resume=True, executor=ex)
    assert ex.ran == [0]


def test_resume_refuses_the_run_directory_of_another_run(batch, order, tmp_path):
    run_chunked(batch, order, run_dir=tmp_path, chunk_size=6)
    costly = random_batch(seed=1, commission=0.002)
    with pytest.raises(FoldgateError, match=r"holds another run \(the folds, capital or costs "
                                            r"differ\)"):
        run_chunked(costly, order, run_dir=tmp_path, resume=True)
    other_bars = random_batch(seed=1, bars=241)
    with pytest.raises(FoldgateError, match="the bars or their features"):
        run_chunked(other_bars, order, run_dir=tmp_path, resume=True)
    with pytest.raises(FoldgateError, match="holds another run"):
        run_chunked(batch, order[:-1], run_dir=tmp_path, resume=True)
    with pytest.raises(FoldgateError, match="resume with --chunk-size 6"):
        run_chunked(batch, order, run_dir=tmp_path, resume=True, chunk_size=7)
    with pytest.raises(FoldgateError, match="another run"):
        run_chunked(batch, order, run_dir=tmp_path, resume=True, device="cuda")
    # the refused runs changed nothing: the first run still resumes in full
    assert run_chunked(batch, order, run_dir=tmp_path, resume=True).chunks_run == 0


def test_a_fresh_run_replaces_what_another_run_left(batch, order, tmp_path):
    run_chunked(batch, order, run_dir=tmp_path, chunk_size=3)
    costly = random_batch(seed=1, commission=0.002)
    out = run_chunked(costly, order, run_dir=tmp_path, chunk_size=10)
    assert len(list((tmp_path / "chunks").glob("chunk-*.npz"))) == out.n_chunks
    assert json.loads((tmp_path / "manifest.json").read_text())["run_key"] == out.run_key
    assert_identical(out.results, costly.run(trajectories=order))


def test_stale_temp_files_are_removed_and_other_files_kept(batch, order, tmp_path):
    (tmp_path / "chunks").mkdir()
    stale = [tmp_path / "chunks" / ".chunk-000001.npz.x1y2.tmp",
             tmp_path / ".manifest.json.abc.tmp", tmp_path / ".index.json.q.tmp"]
    for p in stale:
        p.write_bytes(b"half")
    (tmp_path / "notes.txt").write_text("mine")
    run_chunked(batch, order[:4], run_dir=tmp_path, chunk_size=2)
    assert not any(p.exists() for p in stale)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_run_directory_in_use_is_refused(batch, order, tmp_path):
    holder = RunDir.open(tmp_path, {"format": RUN_FORMAT, "run_key": "x",
                                    "digests": {}, "chunk_size": 1}, resume=False)
    try:
        with pytest.raises(FoldgateError, match="in use by another foldgate process"):
            run_chunked(batch, order[:2], run_dir=tmp_path)
    finally:
        holder.close()
    assert len(run_chunked(batch, order[:2], run_dir=tmp_path).results) == 2


def test_kernel_time_is_recorded_per_run(batch, order, tmp_path):
    out = run_chunked(batch, order, run_dir=tmp_path, chunk_size=9)
    assert 0.0 < out.kernel_s <= out.wall_s
    index = json.loads((tmp_path / "index.json").read_text())
    assert all(c["kernel_s"] >= 0 for c in index["chunks"].values())
    with zipfile.ZipFile(tmp_path / "chunks" / "chunk-000000.npz") as zf:
        assert "kernel_s.npy" in zf.namelist()


def test_bad_settings_are_one_line_errors(batch, order, tmp_path):
    with pytest.raises(FoldgateError, match="--resume needs a run directory"):
        run_chunked(batch, order, resume=True)
    for size in (0, -1, 2.5, True):
        with pytest.raises(FoldgateError, match="chunk_size: must be a whole number"):
            run_chunked(batch, order, chunk_size=size)
    with pytest.raises(FoldgateError, match="--executor must be one of local, ray"):
        make_executor("dask")
    with pytest.raises(FoldgateError, match="--ray-address needs --executor ray"):
        make_executor("local", address="auto")
    with pytest.raises(ValueError, match="no trajectory"):
        run_chunked(batch, [len(batch.trajectories)])


def test_an_empty_run_has_no_chunks(batch, tmp_path):
    out = run_chunked(batch, [], run_dir=tmp_path)
    assert out.results == [] and out.n_chunks == 0


def test_a_chunk_that_cannot_be_written_is_a_one_line_error(batch, order, reference, tmp_path,
                                                            monkeypatch):
    import errno

    import engine.run.rundir as rundir

    real = rundir.atomic_open
    calls = []

    def full_disk(path, mode="wb"):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, mode)

    monkeypatch.setattr(rundir, "atomic_open", full_disk)
    with pytest.raises(FoldgateError, match=r"chunk-000002\.npz: cannot write the chunk \(No space "
                                            r"left on device\); free space and run again with --resume"):
        run_chunked(batch, order, run_dir=tmp_path, chunk_size=5)
    monkeypatch.setattr(rundir, "atomic_open", real)
    ex = CountingExecutor()
    bpy, want = reference
    out = run_chunked(batch, order, bars_per_year=bpy, run_dir=tmp_path, resume=True, executor=ex)
    assert out.chunks_reused == 2 and 0 not in ex.ran and 1 not in ex.ran
    assert_identical(out.results, want)


def test_the_last_chunk_failing_to_write_is_raised_too(batch, order, tmp_path, monkeypatch):
    """Chunks are written behind the run (engine/run/rundir.py's writer thread): the
    last one's failure surfaces before run_chunked returns, and the earlier ones stay."""
    import errno

    import engine.run.rundir as rundir

    real = rundir.atomic_open
    last = f"chunk-{(len(order) - 1) // 5:06d}.npz"

    def full_disk(path, mode="wb"):
        if str(path).endswith(last):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, mode)

    monkeypatch.setattr(rundir, "atomic_open", full_disk)
    with pytest.raises(FoldgateError, match=last.replace(".", r"\.") + ": cannot write the chunk"):
        run_chunked(batch, order, run_dir=tmp_path, chunk_size=5)
    written = sorted(p.name for p in (tmp_path / "chunks").glob("chunk-*.npz"))
    assert written == [f"chunk-{i:06d}.npz" for i in range((len(order) - 1) // 5)]
    assert not [p for p in (tmp_path / "chunks").iterdir() if p.suffix == ".tmp"]


def test_chunks_are_fsynced_and_the_index_is_not(batch, order, tmp_path, monkeypatch):
    """A chunk file is what a resume trusts, so it reaches the disk before it is named;
    the index is rebuilt from the chunk files, so it is not worth an fsync per chunk."""
    import os

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to name an fd's file")
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    run_chunked(batch, order, run_dir=tmp_path, chunk_size=9)
    chunks = sorted((tmp_path / "chunks").glob("chunk-*.npz"))
    assert len(chunks) >= 2
    assert sum(".chunk-" in s for s in synced) == len(chunks)
    assert not any(".index.json" in s for s in synced)
    index = json.loads((tmp_path / "index.json").read_text())
    assert len(index["chunks"]) == len(chunks)
    (tmp_path / "index.json").write_text("")  # a crash's leftover: the chunks still count
    again = run_chunked(batch, order, run_dir=tmp_path, chunk_size=9, resume=True)
    assert again.chunks_reused == len(chunks) and again.chunks_run == 0


def test_results_without_trade_tuples_are_the_same_otherwise(batch, order):
    """trades=False (the pipeline's) leaves out only the tuples: the arrays hold the
    same trades, row for row."""
    full = run_chunked(batch, order, chunk_size=7, bars_per_year=8760.0).results
    lean = run_chunked(batch, order, chunk_size=7, bars_per_year=8760.0, trades=False).results
    assert len(full) == len(lean)
    seen = 0
    for f, g in zip(full, lean):
        assert "trades" not in g and set(f) - set(g) == {"trades"}
        assert f["metrics"].keys() == g["metrics"].keys()
        assert all(a == b or (a != a and b != b) for a, b in zip(f["metrics"].values(), g["metrics"].values()))
        assert np.array_equal(f["equity"], g["equity"])
        rows = [tuple(a) + tuple(b) for a, b in zip(g["trade_int"].tolist(), g["trade_float"].tolist())]
        assert f["trades"] == rows
        seen += len(rows)
    assert seen > 0
