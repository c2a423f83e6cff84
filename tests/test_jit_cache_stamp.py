"""Numba cache entries of foldgate's kernels are stamped with the whole package's
source (kernels/jit_cache.py): an edit to kernels/mlp.py alone, which _simulate_nb
inlines, must make the cached simulation kernel stale."""

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from numba.core import caching
from numba.core.registry import CPUDispatcher

import kernels.jit_cache as jc

KERNELS = Path(jc.KERNELS_DIR)
MODULES = tuple(f"kernels.{p.stem}" for p in sorted(KERNELS.glob("*.py")) if p.stem != "__init__")


def _cached_dispatchers():
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in vars(module).values():
            if isinstance(attr, CPUDispatcher) and attr.__module__ == name and attr._cache is not None \
                    and getattr(attr._cache, "_impl", None) is not None:
                yield name, attr


def test_every_cached_kernel_is_stamped_with_the_package_source():
    seen = list(_cached_dispatchers())
    assert any(d.__name__ == "_simulate_nb" for _, d in seen)
    for name, d in seen:
        locator = d._cache._impl.locator
        assert getattr(type(locator), "_foldgate_stamp", False), (name, d.__name__, type(locator))
        assert locator.get_source_stamp() == jc.kernels_source_stamp()
        assert d._cache._cache_file._source_stamp == jc.kernels_source_stamp()


def test_the_stamp_changes_when_any_kernel_module_changes(tmp_path, monkeypatch):
    for p in sorted(os.listdir(jc.KERNELS_DIR)):
        if p.endswith(".py"):
            shutil.copy(os.path.join(jc.KERNELS_DIR, p), tmp_path / p)
    monkeypatch.setattr(jc, "KERNELS_DIR", str(tmp_path))
    jc.kernels_source_stamp.cache_clear()
    try:
        before = jc.kernels_source_stamp()
        jc.kernels_source_stamp.cache_clear()
        assert jc.kernels_source_stamp() == before  # content, not time
        (tmp_path / "mlp.py").write_text((tmp_path / "mlp.py").read_text() + "\n# an edit\n")
        jc.kernels_source_stamp.cache_clear()
        after_mlp = jc.kernels_source_stamp()
        assert after_mlp != before
        (tmp_path / "extra_kernel.py").write_text("x = 1\n")
        jc.kernels_source_stamp.cache_clear()
        assert jc.kernels_source_stamp() != after_mlp
    finally:
        monkeypatch.undo()
        jc.kernels_source_stamp.cache_clear()


def test_functions_outside_the_package_keep_numbas_own_stamp(tmp_path):
    def f(x):
        return x + 1

    stamped = [c for c in caching.CacheImpl._locator_classes if getattr(c, "_foldgate_stamp", False)]
    assert len(stamped) == 2
    assert all(c.from_function(f, __file__) is None for c in stamped)
    assert jc.stamp_kernel_caches(caching) is True  # a second call adds nothing
    assert len([c for c in caching.CacheImpl._locator_classes if getattr(c, "_foldgate_stamp", False)]) == 2


def test_an_unknown_cache_module_is_left_alone():
    class Odd:
        pass

    assert jc.stamp_kernel_caches(Odd) is False


def test_the_cuda_kernel_is_stamped_with_the_package_source_too():
    """numba-cuda keeps its own copy of Numba's cache locators (stamped with the file's
    mtime and size): the GPU kernel bakes in kernels/activations.py's and codes.py's
    constants, so it must go stale with them. Building the dispatcher compiles nothing
    and needs no GPU; a child process, since numba.cuda must be imported fresh."""
    code = ("import kernels.gpu_simulate as g, kernels.jit_cache as jc\n"
            "k = g._gpu_kernel()\n"
            "loc = k._cache._impl.locator\n"
            "print(type(loc)._foldgate_stamp, loc.get_source_stamp() == jc.kernels_source_stamp())\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = str(KERNELS.parent) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=KERNELS.parent, timeout=300)
    if "numba-cuda is not installed" in out.stderr or "GpuUnavailableError" in out.stderr:
        pytest.skip("numba-cuda is not installed")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "True"]
