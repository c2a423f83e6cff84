"""engine/report/together.py: the JSON report and the page written at once, by a forked
child for the page where the platform forks, give the very files the writers give one
after the other, and a failure on either side is raised after both have finished."""

from __future__ import annotations

import os
import sys

import pytest
from report_fixtures import make_report

import engine.report as R
from engine.errors import WriteError
from engine.report import together

forking = pytest.mark.skipif(not together._forks(), reason="the forked page writer is Linux-only")


@pytest.fixture(scope="module")
def rep() -> dict:
    return make_report(n_models=7, n_folds=3, bars_per_fold=48, backtest_bars=48)


def _sequential(tmp_path, rep):
    R.write_json_report(tmp_path / "seq.json", rep)
    R.write_html_report(tmp_path / "seq.html", rep)
    return (tmp_path / "seq.json").read_bytes(), (tmp_path / "seq.html").read_bytes()


@forking
def test_forked_writes_equal_sequential_ones(tmp_path, rep, monkeypatch):
    forks = []
    real_fork = os.fork
    monkeypatch.setattr(together.os, "fork", lambda: forks.append(1) or real_fork())
    together.write_reports(tmp_path / "r.json", tmp_path / "r.html", rep, parallel=True)
    assert forks == [1]
    json_text, page = _sequential(tmp_path, rep)
    assert (tmp_path / "r.json").read_bytes() == json_text
    assert (tmp_path / "r.html").read_bytes() == page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json", "seq.html", "seq.json"]


def test_small_reports_and_other_platforms_do_not_fork(tmp_path, rep, monkeypatch):
    def no_fork():
        raise AssertionError("forked")

    monkeypatch.setattr(together.os, "fork", no_fork)
    together.write_reports(tmp_path / "a.json", tmp_path / "a.html", rep)  # 7 < FORK_MIN_MODELS
    monkeypatch.setattr(together, "_forks", lambda: False)
    together.write_reports(tmp_path / "b.json", tmp_path / "b.html", rep, parallel=True)
    json_text, page = _sequential(tmp_path, rep)
    for stem in "ab":
        assert (tmp_path / f"{stem}.json").read_bytes() == json_text
        assert (tmp_path / f"{stem}.html").read_bytes() == page


@forking
def test_large_reports_fork_by_default(tmp_path, monkeypatch):
    big = make_report(n_models=together.FORK_MIN_MODELS, n_folds=2, bars_per_fold=8, backtest_bars=8,
                      trades=False)
    forks = []
    real_fork = os.fork
    monkeypatch.setattr(together.os, "fork", lambda: forks.append(1) or real_fork())
    together.write_reports(tmp_path / "r.json", tmp_path / "r.html", big)
    assert forks == [1]
    assert (tmp_path / "r.html").read_bytes() == R.render_html(big).encode("utf-8")


def test_one_path_writes_one_file(tmp_path, rep):
    together.write_reports(tmp_path / "only.json", None, rep)
    together.write_reports(None, tmp_path / "only.html", rep)
    json_text, page = _sequential(tmp_path, rep)
    assert (tmp_path / "only.json").read_bytes() == json_text
    assert (tmp_path / "only.html").read_bytes() == page


@forking
def test_a_page_that_cannot_be_written_is_the_error_and_the_json_is_still_written(tmp_path, rep):
    (tmp_path / "r.html").mkdir()  # a directory where the page goes: the child's rename fails
    with pytest.raises(WriteError) as err:
        together.write_reports(tmp_path / "r.json", tmp_path / "r.html", rep, parallel=True)
    assert "r.html" in str(err.value)
    assert (tmp_path / "r.json").read_bytes() == R.report_to_json(rep).encode("utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json"]  # no temp left
    assert list((tmp_path / "r.html").iterdir()) == []


@forking
def test_a_json_that_cannot_be_written_is_the_error_and_the_child_is_waited_for(tmp_path, rep):
    (tmp_path / "r.json").mkdir()
    with pytest.raises(WriteError, match="r.json"):
        together.write_reports(tmp_path / "r.json", tmp_path / "r.html", rep, parallel=True)
    assert (tmp_path / "r.html").read_bytes() == R.render_html(rep).encode("utf-8")
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child of this process is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json"]


@forking
def test_a_bug_in_the_child_names_what_it_raised(tmp_path):
    broken = make_report(n_models=2, n_folds=2, bars_per_fold=24, backtest_bars=24)
    broken["models"][1]["summary"]["psr"] = object()
    with pytest.raises((TypeError, RuntimeError)) as err:
        together.write_reports(tmp_path / "r.json", tmp_path / "r.html", broken, parallel=True)
    assert "psr" in str(err.value)  # the parent's JSON writer fails first, naming the path
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_child_killed_without_a_word_is_a_write_error(tmp_path):
    err = together._child_error(b"", tmp_path / "r.html", 9)  # waitpid's status for SIGKILL
    assert isinstance(err, WriteError)
    assert "killed by signal 9" in str(err) and "r.html" in str(err)
    err = together._child_error(b'{"type": "TypeError", "message": "x", "user_error": false}',
                                tmp_path / "r.html", 256)
    assert isinstance(err, RuntimeError) and "TypeError: x" in str(err)
    err = together._child_error(b'{"type": "Write', tmp_path / "r.html", 256)  # cut short
    assert isinstance(err, WriteError) and "exited with status 1" in str(err)


@pytest.mark.skipif(sys.platform != "linux", reason="Linux")
def test_the_platform_rule():
    assert together._forks()


def test_no_process_to_fork_writes_one_after_the_other(tmp_path, rep, monkeypatch):
    def refused():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(together.os, "fork", refused)
    together.write_reports(tmp_path / "r.json", tmp_path / "r.html", rep, parallel=True)
    json_text, page = _sequential(tmp_path, rep)
    assert (tmp_path / "r.json").read_bytes() == json_text
    assert (tmp_path / "r.html").read_bytes() == page
