"""engine/run with --executor ray: a real local Ray (2 CPUs, 127.0.0.1, no dashboard)
gives the local run's results bit for bit, and puts each series in its object store
once. Skipped where Ray is not installed (it is in the test extra, so CI runs these)."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from engine.errors import FoldgateError  # noqa: E402
from engine.run import RayExecutor, run_chunked  # noqa: E402
from run_fixtures import assert_identical, random_batch  # noqa: E402


@pytest.fixture(scope="module")
def executor():
    ex = RayExecutor(num_cpus=2)
    yield ex
    ex.close()
    assert not ray.is_initialized()  # the executor shut down the Ray it started


def test_ray_results_equal_local_and_each_series_is_put_once(executor, monkeypatch, tmp_path):
    batch = random_batch(seed=4, n_series=3, n_policies=3)
    ids = list(range(len(batch.trajectories)))[::-1]
    bpy = np.full(len(ids), 8766.0)
    want = batch.run(bars_per_year=bpy, trajectories=ids)
    puts = []
    real_put = ray.put
    monkeypatch.setattr(ray, "put", lambda value, **kw: puts.append(value) or real_put(value, **kw))
    before = executor.series_puts
    out = run_chunked(batch, ids, bars_per_year=bpy, chunk_size=4, executor=executor,
                      run_dir=tmp_path)
    assert out.n_chunks >= 9 and out.chunks_run == out.n_chunks
    # 3 series read by 9+ chunks: 3 puts, each one a series' bars
    assert len(puts) == 3 == executor.series_puts - before
    assert sorted(id(p) for p in puts) == sorted(id(s) for s in batch.series)
    assert 0.0 < out.kernel_s
    assert_identical(out.results, want)


def test_a_run_started_locally_resumes_on_ray(executor, tmp_path):
    batch = random_batch(seed=5, n_series=2, n_policies=2)
    want = batch.run()

    def stop(p):
        if p.chunks_done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_chunked(batch, run_dir=tmp_path, chunk_size=3, progress=stop)
    out = run_chunked(batch, run_dir=tmp_path, resume=True, executor=executor)
    assert out.chunks_reused == 2 and out.chunks_run == out.n_chunks - 2
    assert_identical(out.results, want)


def test_a_task_error_is_raised_as_itself(executor):
    batch = random_batch(seed=6, n_series=1, n_policies=1)
    with pytest.raises(FoldgateError, match="device must be one of"):
        run_chunked(batch, chunk_size=2, executor=executor, device="tpu")


def test_a_backtest_report_on_ray_equals_the_local_one(executor, tmp_path, monkeypatch):
    from pathlib import Path

    from engine.pipeline import RunConfig, run_backtest
    from engine.report import report_to_json

    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    root = Path(__file__).resolve().parent.parent
    models = [root / "data" / "policies" / f"{s}_1Hour.pt" for s in ("BTCUSD", "ETHUSD", "AAPL")]
    settings = dict(days=60, walk_forward=4, store=str(root / "data" / "bars"), chunk_size=5)
    local = run_backtest(models, RunConfig(**settings))
    cfg = RunConfig(**settings, executor="ray", ray_cpus=2, out_dir=str(tmp_path / "out"))
    on_ray = run_backtest(models, cfg)
    assert cfg.run_stats["chunks_run"] == cfg.run_stats["chunks"] >= 4
    local.pop("created")
    on_ray.pop("created")
    assert report_to_json(on_ray) == report_to_json(local)
