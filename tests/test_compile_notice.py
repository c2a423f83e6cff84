"""A cold start says that it compiles the kernels, before the pause and after it
(docs/design.md 10); a warm one says nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.batch import CompileNotice
from kernels import jit_cache
from kernels.jit_cache import is_cached

ROOT = Path(__file__).resolve().parent.parent


def test_is_cached_flips_when_numba_writes_the_cache(tmp_path, monkeypatch):
    (tmp_path / "cold_mod.py").write_text(textwrap.dedent("""
        from numba import njit

        @njit(cache=True)
        def twice_nb(x):
            return 2 * x

        @njit
        def uncached_nb(x):
            return x
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import cold_mod

    assert not is_cached(cold_mod.twice_nb)
    assert cold_mod.twice_nb(3) == 6
    assert is_cached(cold_mod.twice_nb)
    assert not is_cached(cold_mod.uncached_nb)  # no cache at all: it compiles every run
    assert not is_cached(object())  # not a dispatcher: never raises


def test_notice_before_and_after_only_when_cold(monkeypatch):
    said = []
    cold = [[("kernels.simulate._simulate_nb", 7.0), ("kernels.features.features_nb", 3.0)]]
    monkeypatch.setattr(jit_cache, "cold_kernels", lambda: cold[0])
    n = CompileNotice(write=said.append)
    n.start()
    assert said == ["compiling kernels (once, ~10 s)..."]  # all cold kernels counted
    n.start()  # once per process
    assert len(said) == 1
    cold[0] = []
    n.finish()
    assert len(said) == 2 and said[1].startswith("kernels compiled in ")
    n.finish()
    assert len(said) == 2

    warm = CompileNotice(write=said.append)
    warm.start()
    warm.finish()
    assert len(said) == 2

    # only kernels a Batch may not call are cold (a benchmark that never computes
    # features): nothing to announce
    cold[0] = [("kernels.features.features_nb", 3.0)]
    other = CompileNotice(write=said.append)
    other.start()
    other.finish()
    assert len(said) == 2

    monkeypatch.setenv("FOLDGATE_COMPILE_NOTICE", "0")
    quiet = CompileNotice(write=said.append)
    cold[0] = [("kernels.simulate._simulate_nb", 7.0)]
    quiet.start()
    quiet.finish()
    assert len(said) == 2


def _backtest(tmp_path, numba_cache):
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=str(numba_cache),
               FOLDGATE_CACHE_DIR=str(tmp_path / "policies"))
    env.pop("FOLDGATE_COMPILE_NOTICE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "backtest",
         "--model", str(ROOT / "data" / "policies" / "UNIUSD_1Hour.pt"),
         "--store", str(ROOT / "data" / "bars"), "--days", "8", "--walk-forward", "2"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="needs the JIT")
def test_first_cli_run_says_it_compiles_and_the_second_is_silent(tmp_path):
    cache = tmp_path / "numba"
    first = _backtest(tmp_path, cache)
    lines = [line for line in first.splitlines() if line.startswith("foldgate: ")]
    assert lines[0].startswith("foldgate: compiling kernels (once, ~")
    assert lines[1].startswith("foldgate: kernels compiled in ")
    assert "later runs load them from the cache" in lines[1]
    second = _backtest(tmp_path, cache)
    assert "compiling kernels" not in second and "compiled in" not in second
