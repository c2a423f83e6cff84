"""Run directories through the CLI (docs/design.md 11): `foldgate validate` killed with
SIGKILL at several moments and resumed gives the uninterrupted run's report; backtest
keeps its chunks with --out; the run options' errors are one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import app
from engine.sample import build_sample_archive

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "data" / "bars"
POLICIES = ROOT / "data" / "policies"
SHORT = ["--days", "60", "--walk-forward", "3", "--quick-days", "10"]


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ALPACA_KEYS_FILE", raising=False)
    monkeypatch.delenv("FOLDGATE_STORE", raising=False)
    monkeypatch.chdir(tmp_path)


def without_created(path) -> dict:
    report = json.loads(Path(path).read_text())
    report.pop("created")
    return report


def chunk_files(run_dir: Path) -> int:
    return len(list((run_dir / "chunks").glob("chunk-*.npz")))


class Validate:
    """`python -m cli.main validate` in a child process, as a user runs it."""

    def __init__(self, archive, cwd: Path):
        self.archive, self.cwd = archive, cwd
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), FOLDGATE_CACHE_DIR=str(cwd / "cache"))

    def cmd(self, out, *extra):
        return [sys.executable, "-m", "cli.main", "validate", str(self.archive), "--store", str(STORE),
                "--dest", str(self.cwd / "extracts"), "--out", str(out), "--chunk-size", "6", *SHORT,
                *extra]

    def run(self, out, *extra):
        return subprocess.run(self.cmd(out, *extra), cwd=self.cwd, env=self.env, capture_output=True,
                              text=True, timeout=300)

    def kill_when(self, out, ready, *extra, pause=0.4):
        """Start a run that pauses after each chunk; SIGKILL it once ready(run_dir)."""
        env = dict(self.env, FOLDGATE_CHUNK_PAUSE_S=str(pause))
        proc = subprocess.Popen(self.cmd(out, *extra), cwd=self.cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 240
        try:
            while not ready(Path(out) / "run"):
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "the run never got there"
                time.sleep(0.01)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_validate_killed_at_several_moments_resumes_to_the_same_report(tmp_path):
    archive = build_sample_archive(tmp_path / "archive", STORE)
    v = Validate(archive, tmp_path)
    ref = v.run(tmp_path / "whole")
    assert ref.returncode == 1, ref.stderr  # the sample archive has one broken entry
    want = without_created(tmp_path / "whole" / "report.json")

    out = tmp_path / "killed"
    run_dir = out / "run"
    # killed before any chunk was written: the manifest alone is there
    v.kill_when(out, lambda d: (d / "manifest.json").exists())
    n_chunks = json.loads((run_dir / "manifest.json").read_text())["n_chunks"]
    assert n_chunks >= 6 and chunk_files(run_dir) < n_chunks
    # resumed and killed again after one chunk, then after several, then after all of
    # them but before the reports
    for at in (1, n_chunks // 2, n_chunks - 1, n_chunks):
        if chunk_files(run_dir) >= at:
            continue  # an earlier kill landed later than asked: this moment is past
        # the last stage (one chunk left) pauses longer after it, so that the kill lands
        # before the reports are written
        v.kill_when(out, lambda d, at=at: chunk_files(d) >= at, "--resume",
                    pause=2.0 if at == n_chunks else 0.4)
        assert at <= chunk_files(run_dir) <= n_chunks
        assert not (out / "report.json").exists()
    assert chunk_files(run_dir) == n_chunks
    done = v.run(out, "--resume")
    assert done.returncode == 1, done.stderr
    assert f"Resumed: {n_chunks} of {n_chunks} chunks" in done.stderr
    assert without_created(out / "report.json") == want
    assert not list(run_dir.rglob("*.tmp"))


def test_validate_resume_refuses_the_run_directory_of_another_run(tmp_path):
    archive = build_sample_archive(tmp_path / "archive", STORE)
    args = ["validate", str(archive), "--store", str(STORE), "--out", str(tmp_path / "o"), *SHORT]
    first = CliRunner().invoke(app, args + ["--chunk-size", "50"])
    assert first.exit_code == 1 and (tmp_path / "o" / "run" / "manifest.json").exists()
    r = CliRunner().invoke(app, args + ["--resume", "--commission-bps", "20"])
    assert r.exit_code == 1
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert line == [f"Error: run directory {tmp_path / 'o' / 'run'} holds another run (the folds, "
                    "capital or costs differ); use another --out, or run without --resume to start "
                    "it over"]
    assert "Traceback" not in r.output


def test_backtest_keeps_its_chunks_with_out_and_resumes_from_them(tmp_path):
    models = ["--model", str(POLICIES / "BTCUSD_1Hour.pt"), "--model", str(POLICIES / "ETHUSD_1Hour.pt")]
    args = ["backtest", "--store", str(STORE), *models, "--days", "60", "--walk-forward", "4",
            "--out", str(tmp_path / "bt"), "--chunk-size", "3"]
    first = CliRunner().invoke(app, args + ["--json", str(tmp_path / "a.json")])
    assert first.exit_code == 0, first.output
    index = json.loads((tmp_path / "bt" / "run" / "index.json").read_text())
    # 2 models x 4 folds and 4 buy-and-hold folds per symbol: 16 trajectories
    assert len(index["chunks"]) == 6
    again = CliRunner().invoke(app, args + ["--resume", "--json", str(tmp_path / "b.json")])
    assert again.exit_code == 0, again.output
    assert "Resumed: 6 of 6 chunks" in again.stderr
    # nothing was simulated again: the index is as the first run left it
    assert json.loads((tmp_path / "bt" / "run" / "index.json").read_text()) == index
    assert without_created(tmp_path / "a.json") == without_created(tmp_path / "b.json")
    plain = CliRunner().invoke(app, args[:-4] + ["--json", str(tmp_path / "c.json")])
    assert plain.exit_code == 0 and without_created(tmp_path / "c.json") == without_created(tmp_path / "a.json")


@pytest.mark.parametrize("extra, message", [
    (["--resume"], "Invalid value for '--resume': needs --out DIR"),
    (["--ray-address", "auto"], "Invalid value for '--ray-address': needs --executor ray"),
    (["--ray-cpus", "2"], "Invalid value for '--ray-cpus': needs --executor ray"),
    (["--chunk-size", "0"], "must be a whole number from 1 to 1,000,000"),
    (["--executor", "dask"], "'dask' is not one of 'local', 'ray'"),
])
def test_run_option_errors_are_usage_errors(extra, message):
    r = CliRunner().invoke(app, ["backtest", "--store", str(STORE), "--model",
                                 str(POLICIES / "BTCUSD_1Hour.pt"), *extra])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
