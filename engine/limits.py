"""Bounds on untrusted input (docs/security.md): every size is checked against one of
these before anything of that size is allocated or parsed.

Each bound has a default and an environment variable that raises (or lowers) it for a
run, e.g. `FOLDGATE_MAX_POLICY_PARAMS=50000000 foldgate backtest --model big.pt`. The
variables are read when a bound is used, not at import, so a test or a notebook can set
them at any time."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

MiB = 1024 * 1024


@dataclass(frozen=True)
class Bound:
    env: str
    default: int
    what: str  # for messages and docs: "parameters in a policy"
    scale: int = 1  # the variable is given in units of `scale` bytes (1 MiB for sizes)

    def value(self) -> int:
        """The bound in its own unit times `scale` (bytes for sizes)."""
        raw = os.environ.get(self.env)
        if raw is None or not raw.strip():
            return self.default * self.scale
        try:
            v = int(raw.strip())
        except ValueError:
            raise ConfigError(f"${self.env}: {raw.strip()[:40]!r} is not a whole number") from None
        if not 1 <= v <= 10**12:
            raise ConfigError(f"${self.env}: {v} is out of range (1 to 10**12)")
        return v * self.scale

    def advice(self) -> str:
        """How to raise it, for the end of a refusal."""
        unit = " (in MiB)" if self.scale == MiB else ""
        return f"${self.env}{unit} raises the bound"


POLICY_PARAMS = Bound("FOLDGATE_MAX_POLICY_PARAMS", 16_000_000, "parameters in a policy")
LAYER_WIDTH = Bound("FOLDGATE_MAX_LAYER_WIDTH", 4096, "units per layer (inputs included)")
POLICY_FILE = Bound("FOLDGATE_MAX_POLICY_MB", 256, "per policy file", MiB)
SIDECAR_FILE = Bound("FOLDGATE_MAX_SIDECAR_MB", 16, "per SB3 sidecar or data JSON", MiB)
SUMMARY_FILE = Bound("FOLDGATE_MAX_SUMMARY_MB", 64, "per training summary", MiB)
CONFIG_FILE = Bound("FOLDGATE_MAX_CONFIG_MB", 1, "per thresholds file", MiB)

ALL = (POLICY_PARAMS, LAYER_WIDTH, POLICY_FILE, SIDECAR_FILE, SUMMARY_FILE, CONFIG_FILE)


def file_size_error(path, size: int, bound: Bound) -> str:
    """The message for a file over a size bound (one wording everywhere)."""
    return f"{path}: {size:,} bytes, over the bound of {bound.value():,} bytes {bound.what}; {bound.advice()}"


def one_line(s: str) -> str:
    """Any whitespace run (newlines too) as one space: a message stays one line."""
    return " ".join(s.split())


def show(value, most: int = 60) -> str:
    """A value from an untrusted file as a message shows it: one line, at most `most`
    characters, and never itself an error (repr of an integer past Python's digit
    limit raises; a foreign object's __repr__ may)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    try:
        r = repr(value)
    except Exception:  # noqa: BLE001 - a hostile object's __repr__ can fail in any way
        r = f"<{type(value).__name__}>"
    r = " ".join(r.split())
    return r if len(r) <= most else r[: most - 3] + "..."


def read_bounded(path, bound: Bound, error: type[Exception], what: str = "") -> bytes:
    """The bytes of `path`, refused with `error` before reading when the file is over
    `bound` (and, should it grow meanwhile, after reading at most one byte more).
    OSError is left to the caller, which words it for its file."""

    p = Path(path)
    limit = bound.value()
    size = p.stat().st_size
    shown = f"{what} {p}".strip()
    if size > limit:
        raise error(file_size_error(shown, size, bound))
    with open(p, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise error(file_size_error(shown, len(data), bound))
    return data


def parse_json(text: str | bytes, where: str, error: type[Exception], invalid: str = "invalid JSON"):
    """json.loads whose every failure on hostile text is one `error` line: invalid JSON,
    nesting deeper than the parser's recursion limit, integers past Python's digit
    limit."""

    try:
        return json.loads(text)
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply to read") from None
    except UnicodeDecodeError:
        raise error(f"{where}: not UTF-8 text") from None
    except ValueError as exc:  # JSONDecodeError, and int() past its 4300-digit limit
        msg = " ".join(str(exc).split())[:160]
        raise error(f"{where}: {invalid} ({msg})") from None
