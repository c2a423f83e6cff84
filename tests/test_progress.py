"""The progress bar on stderr (issue 11 item 5): only on a terminal, only on work longer
than a second, fed the runner's chunk counts."""

import io
import time

from rich.console import Console

from cli.output import status
from engine.run import ChunkProgress


def chunk(done, total=10, reused=False):
    return ChunkProgress(chunk=0, n_chunks=5, chunks_done=done // 2, trajectories_done=done,
                         n_trajectories=total, reused=reused, kernel_s=0.0)


def _console():
    buf = io.StringIO()
    return Console(file=buf, force_terminal=True, width=100), buf


def test_bar_shows_the_trajectories_done_once_the_work_is_slow():
    con, buf = _console()
    with status("validating", console=con, after_s=0.0) as progress:
        assert progress.takes_chunks
        progress("features BTCUSD 1Hour")
        progress(chunk(3))
        time.sleep(0.3)  # a refresh of the live display
        progress(chunk(7, reused=True))
        time.sleep(0.3)
    out = buf.getvalue()
    assert "3/10" in out and "7/10" in out and "from the run directory" in out


def test_quick_work_shows_nothing():
    con, buf = _console()
    with status("validating", console=con, after_s=30.0) as progress:
        progress(chunk(10))
    assert buf.getvalue() == ""


def test_not_a_terminal_shows_nothing():
    buf = io.StringIO()
    con = Console(file=buf, force_terminal=False)
    with status("validating", console=con, after_s=0.0) as progress:
        progress("step")
        progress(chunk(5))
        time.sleep(0.2)
    assert buf.getvalue() == ""
