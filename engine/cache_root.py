"""Where foldgate caches (policies, feature verdicts): a directory private to this
user, since whoever can write there could plant an entry. $FOLDGATE_CACHE_DIR, else
~/.cache/foldgate, else a per-user directory under the temp directory."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path


def _uid() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def _private_dir(d: Path, *, recreate: bool) -> Path | None:
    """`d` created with mode 0700, or checked when it exists: a real directory (not a
    link), owned by this user, writable by no one else. A loose one of ours is emptied
    and tightened when `recreate`; one owned by someone else is never used (None)."""
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(d)
    except OSError:
        return None
    uid = _uid()
    if not stat.S_ISDIR(st.st_mode) or (uid is not None and st.st_uid != uid):
        return None
    if uid is not None and st.st_mode & 0o022:
        if not recreate:
            return None
        # others could have planted entries: none of them is kept
        try:
            shutil.rmtree(d)
            d.mkdir(mode=0o700)
        except OSError:
            return None
    if uid is not None and stat.S_IMODE(os.lstat(d).st_mode) != 0o700:
        try:
            os.chmod(d, 0o700)
        except OSError:
            return None
    return d if os.access(d, os.W_OK | os.X_OK) else None


def temp_cache_root() -> Path:
    """The per-user fallback under the temp directory, e.g. /tmp/foldgate-1000."""
    uid = _uid()
    return Path(tempfile.gettempdir()) / f"foldgate-{uid if uid is not None else 'user'}"


def usable_cache_dir() -> Path | None:
    """The policies directory to use, or None when no private one can be had (the run
    then stays cold; it never fails for it)."""
    if os.environ.get("FOLDGATE_CACHE_DIR"):
        return _private_dir(Path(os.environ["FOLDGATE_CACHE_DIR"]) / "policies", recreate=False)
    home = Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "foldgate" / "policies"
    found = _private_dir(home, recreate=False)
    if found is not None:
        return found
    root = _private_dir(temp_cache_root(), recreate=True)
    return _private_dir(root / "policies", recreate=True) if root is not None else None


def cache_dir() -> Path:
    """$FOLDGATE_CACHE_DIR/policies, else ~/.cache/foldgate/policies; a read-only home
    falls back to the per-user temp directory so warm runs stay warm."""
    found = usable_cache_dir()
    if found is not None:
        return found
    if os.environ.get("FOLDGATE_CACHE_DIR"):
        return Path(os.environ["FOLDGATE_CACHE_DIR"]) / "policies"
    return temp_cache_root() / "policies"
