"""The JSON report and the HTML page written at the same time.

The two writers read the same finished report and share nothing else; on a bulk run
each takes seconds of one core (docs/report.md, "Large reports"). Where the platform
forks cheaply (Linux), a large report's page is written by a forked child, which sees
the report as it is (copy-on-write), while this process writes the JSON: on two cores
the pair takes the time of the slower one. Anywhere else, and for small reports, they
are written one after the other. Either way each file is written atomically, and a
failure in either is raised here, after both have finished."""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

from ..errors import FoldgateError, WriteError
from .html import write_html_report
from .jsonio import write_json_report

FORK_MIN_MODELS = 50
"""Below this many models the page takes a fraction of a second: no child."""

_REPORT_MAX = 1 << 16  # bytes of the child's account of its failure that are read back


def _forks() -> bool:
    # macOS and Windows have no safe fork of a threaded process (numba's, Ray's threads)
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def write_reports(json_path: str | os.PathLike | None, html_path: str | os.PathLike | None,
                  report: Mapping, *, parallel: bool | None = None) -> None:
    """Write the JSON report to `json_path` and the page to `html_path` (either may be
    None). `parallel`: None decides by the report's size and the platform; True forks
    wherever it can (the tests), False never does."""
    if json_path is None or html_path is None:
        if json_path is not None:
            write_json_report(json_path, report)
        if html_path is not None:
            write_html_report(html_path, report)
        return
    if parallel is None:
        models = report.get("models") if isinstance(report, Mapping) else None
        parallel = isinstance(models, (list, tuple)) and len(models) >= FORK_MIN_MODELS
    if not (parallel and _forks()):
        write_json_report(json_path, report)
        write_html_report(html_path, report)
        return
    _write_forked(Path(json_path), Path(html_path), report)


def _write_forked(json_path: Path, html_path: Path, report: Mapping) -> None:
    read_end, write_end = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        with warnings.catch_warnings():
            # Python 3.12 warns that a threaded process forks: the child runs no thread of
            # ours and touches nothing numba, torch or Ray hold, it writes one file and _exits
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError:  # no process to be had (a process limit): one after the other
        os.close(read_end)
        os.close(write_end)
        write_json_report(json_path, report)
        write_html_report(html_path, report)
        return
    if pid == 0:  # the child: the page, then its outcome down the pipe; never returns
        os.close(read_end)
        status = 0
        try:
            write_html_report(html_path, report)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            status = 1
            told = {"type": type(exc).__name__, "message": str(exc),
                    "user_error": isinstance(exc, FoldgateError)}
            try:
                os.write(write_end, json.dumps(told).encode()[:_REPORT_MAX])
            except OSError:
                pass
        finally:
            os._exit(status)  # no atexit handlers, no flushing of the parent's buffers
    os.close(write_end)
    json_error: BaseException | None = None
    try:
        write_json_report(json_path, report)
    except BaseException as exc:  # noqa: BLE001 - raised once the child is done
        json_error = exc
    with os.fdopen(read_end, "rb") as pipe:
        blob = pipe.read(_REPORT_MAX)
    _, status = os.waitpid(pid, 0)
    if json_error is not None:
        raise json_error
    if os.waitstatus_to_exitcode(status) != 0:
        raise _child_error(blob, html_path, status)


def _child_error(blob: bytes, html_path: Path, status: int) -> BaseException:
    """The child's failure as this process raises it: a user error (a file that cannot
    be written) as a WriteError with the child's message, anything else as a
    RuntimeError naming what the child raised."""
    try:
        told = json.loads(blob) if blob else None
    except ValueError:  # cut short
        told = None
    if isinstance(told, dict):
        if told.get("user_error"):
            return WriteError(str(told.get("message")))
        return RuntimeError(f"writing {html_path}: {told.get('type')}: {told.get('message')}")
    code = os.waitstatus_to_exitcode(status)
    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
    return WriteError(f"{html_path}: the process writing the page {how}")
