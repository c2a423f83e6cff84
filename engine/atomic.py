"""Atomic file writes: a temp file in the destination's directory, fsync, rename;
and a per-file lock for read-modify-write cycles.

A reader never sees a half-written file, and an interrupted write leaves the old
file (or nothing) in place. A temp file is named `.<name>.<pid>.<random>.tmp`, so the
next writer of the same target can tell one a killed process left (its pid is gone)
from one still being written, and removes it."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator

from .errors import FoldgateError, WriteError

# A temp file without a pid in its name (an older foldgate) is stale after this long.
_STALE_UNNAMED_SECONDS = 3600.0


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create `path` if needed and check that files can be written in it."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FoldgateError(f"cannot create directory {p}: a file of that name exists") from None
    except OSError as exc:
        raise FoldgateError(f"cannot create directory {p}: {exc.strerror}") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise FoldgateError(f"directory {p} is not writable")
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: assume it is writing
    return True


def remove_stale_temps(path: str | os.PathLike, all_of_them: bool = False) -> int:
    """Remove the temp files an interrupted write of `path` left beside it; the number
    removed. `all_of_them`: the caller holds `file_lock(path)`, so no temp of this
    target can still be in progress."""
    dest = Path(path)
    prefix, n = f".{dest.name}.", 0
    try:
        entries = list(os.scandir(dest.parent if str(dest.parent) else "."))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        middle = name[len(prefix):-len(".tmp")]
        pid_text = middle.split(".", 1)[0]
        stale = all_of_them
        if not stale:
            if pid_text.isdigit() and "." in middle:
                stale = int(pid_text) != os.getpid() and not _pid_alive(int(pid_text))
            else:
                with contextlib.suppress(OSError):
                    stale = time.time() - entry.stat(follow_symlinks=False).st_mtime > _STALE_UNNAMED_SECONDS
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                n += 1
    return n


def _write_error(dest: Path, exc: OSError) -> WriteError:
    why = exc.strerror or str(exc) or type(exc).__name__
    hint = "; free some space or write elsewhere" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return WriteError(f"cannot write {dest}: {why}{hint}")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", locked: bool = False,
                durable: bool = True) -> Iterator[IO]:
    """Open a temp file beside `path`; on clean exit it replaces `path` atomically,
    on an exception it is removed and `path` is untouched. An OSError (a full disk)
    comes out as WriteError naming `path`. `locked`: the caller holds
    `file_lock(path)`, so every temp file of `path` found beside it is stale.
    `durable=False` skips the fsync before the rename: for a file that is rebuilt
    from others when a crash leaves it empty (a run directory's index), where the
    fsync would only cost time."""
    dest = Path(path)
    ensure_writable_dir(dest.parent if str(dest.parent) else ".")
    remove_stale_temps(dest, all_of_them=locked)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=dest.parent if str(dest.parent) else ".")
    except OSError as exc:
        raise _write_error(dest, exc) from None
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        # mkstemp makes the file 0600; give it the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, FoldgateError):
            raise _write_error(dest, exc) from None
        raise


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock for a read-modify-write cycle of `path`, so two processes
    never lose each other's changes. The lock is the kernel's (flock) on `path`'s
    directory: the file itself is replaced by each write (a lock on it would guard the
    old inode), and a sidecar lock file would stay behind. A killed holder releases
    it. Writers of other files in the same directory wait too; each holds it briefly."""
    dest = Path(path)
    parent = ensure_writable_dir(dest.parent if str(dest.parent) else ".")
    try:
        import fcntl  # lazy: POSIX only; see the except
    except ImportError:  # not POSIX: no advisory locks; writes stay atomic
        yield
        return
    try:
        fd = os.open(parent, os.O_RDONLY)
    except OSError as exc:
        raise _write_error(dest, exc) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise _write_error(dest, exc) from None
            # a file system without locks (some network mounts): writes stay atomic,
            # only concurrent writers are not serialised
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    with atomic_open(path, "wb", durable=durable) as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), durable=durable)
