"""Alpaca API keys: from the file named by `ALPACA_KEYS_FILE`, else from the
`APCA_API_KEY_ID` / `APCA_API_SECRET_KEY` environment variables.

A keys file may hold
- `KEY=VALUE` lines (`APCA_API_KEY_ID`, `APCA_API_SECRET_KEY` and the usual variants:
  `ALPACA_API_KEY`, `ALPACA_SECRET_KEY`, `API_KEY`, `SECRET_KEY`, `key_id`, `secret`, ...),
  optionally with `export `, quotes, `KEY: VALUE`, comments and blank lines;
- two bare lines, the key id then the secret;
- a JSON object with such keys (flat, or one level down).

The secret never appears in a message, a repr or an exception: a file that does not
parse is reported by line number only, because the offending line may be the secret.
"""

from __future__ import annotations

import json
import os
import re
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..errors import SourceError

KEYS_FILE_ENV = "ALPACA_KEYS_FILE"
KEY_ID_ENV = "APCA_API_KEY_ID"
SECRET_ENV = "APCA_API_SECRET_KEY"

# Names compared after lower-casing and dropping everything but letters and digits,
# so APCA_API_KEY_ID, apca-api-key-id and apcaApiKeyId are one name.
_KEY_ID_NAMES = frozenset({
    "apcaapikeyid", "apcakeyid", "apcaapikey",
    "alpacaapikeyid", "alpacaapikey", "alpacakeyid", "alpacakey",
    "apikeyid", "apikey", "keyid", "key",
})
_SECRET_NAMES = frozenset({
    "apcaapisecretkey", "apcasecretkey", "apcaapisecret",
    "alpacaapisecretkey", "alpacasecretkey", "alpacaapisecret", "alpacasecret",
    "apisecretkey", "apisecret", "secretkey", "secret",
})

# Alpaca key ids and secrets are URL-safe tokens; anything with spaces or quotes
# left inside is a parse error, not a key.
_TOKEN = re.compile(r"^[A-Za-z0-9_\-+/=.~]+$")
_ASSIGN = re.compile(r"^(?:export\s+|set\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*[=:]\s*(.*)$")


class KeysFileWarning(UserWarning):
    """A keys file that others can read."""


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _mask(value: str) -> str:
    return f"…{value[-4:]}" if len(value) > 8 else "…"


@dataclass(frozen=True)
class Credentials:
    """An Alpaca key pair. `repr`/`str` show where it came from and the last
    characters of the key id, never the secret."""

    key_id: str
    secret: str = field(repr=False)
    source: str = ""

    def __repr__(self) -> str:
        return f"Credentials(key_id='{_mask(self.key_id)}', secret=<hidden>, source={self.source!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    def __reduce__(self):
        # Pickling would carry the secret into caches and worker logs.
        raise TypeError("Credentials are not picklable")


def _strip_value(raw: str) -> str | None:
    """The value of KEY=VALUE without quotes or a trailing comment; None if malformed."""
    value = raw.strip()
    if value[:1] in ("'", '"'):
        q = value[0]
        end = value.find(q, 1)
        if end < 0:
            return None
        rest = value[end + 1:].strip()
        if rest and not rest.startswith("#"):
            return None
        value = value[1:end]
    else:
        value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        if value.endswith(",") or value.endswith(";"):
            value = value[:-1].rstrip()
    return value


def _pick(pairs: Mapping[str, str]) -> tuple[str | None, str | None]:
    key_id = secret = None
    for name, value in pairs.items():
        n = _norm(name)
        if n in _KEY_ID_NAMES and key_id is None:
            key_id = value
        elif n in _SECRET_NAMES and secret is None:
            secret = value
    return key_id, secret


def _parse_json(text: str, path: Path) -> tuple[str | None, str | None]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        # exc.msg describes the syntax only; exc.doc would hold the secret.
        raise SourceError(f"keys file {path} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise SourceError(f"keys file {path}: the JSON is nested too deep; a keys file is one "
                          "object of strings") from None
    except ValueError:  # an integer past Python's digit limit; its text may be the secret
        raise SourceError(f"keys file {path}: the JSON holds a number too long to read; the key "
                          "id and secret are strings") from None
    if not isinstance(obj, dict):
        raise SourceError(f"keys file {path}: the JSON must be an object with the key id and secret")
    flat = {k: v for k, v in obj.items() if isinstance(v, str)}
    key_id, secret = _pick(flat)
    if key_id is None or secret is None:
        for v in obj.values():
            if isinstance(v, dict):
                k2, s2 = _pick({k: x for k, x in v.items() if isinstance(x, str)})
                key_id, secret = key_id or k2, secret or s2
    return key_id, secret


def _parse_lines(text: str, path: Path) -> tuple[str | None, str | None]:
    pairs: dict[str, str] = {}
    bare: list[tuple[int, str]] = []
    any_assign = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#") or s.startswith("//") or s.startswith(";"):
            continue
        m = _ASSIGN.match(s)
        if m:
            any_assign = True
            if _norm(m.group(1)) not in _KEY_ID_NAMES | _SECRET_NAMES:
                continue  # e.g. APCA_API_BASE_URL: not ours to judge
            value = _strip_value(m.group(2))
            if value is None or (value and not _TOKEN.match(value)):
                raise SourceError(f"keys file {path} line {lineno}: cannot read this KEY=VALUE line "
                                  "(unbalanced quotes or spaces inside the value)")
            pairs.setdefault(m.group(1), value)
            continue
        token = s.strip("'\"")
        if not _TOKEN.match(token):
            raise SourceError(f"keys file {path} line {lineno}: expected KEY=VALUE or a bare key "
                              "(the line has spaces or characters no Alpaca key has)")
        bare.append((lineno, token))

    if any_assign and bare:
        raise SourceError(f"keys file {path} line {bare[0][0]}: a bare value among KEY=VALUE lines; "
                          "write it as APCA_API_KEY_ID=... or APCA_API_SECRET_KEY=...")
    if bare:
        if len(bare) != 2:
            line = bare[2][0] if len(bare) > 2 else bare[0][0]
            raise SourceError(f"keys file {path} line {line}: expected exactly two bare lines "
                              f"(key id, then secret), found {len(bare)}")
        return bare[0][1], bare[1][1]
    return _pick(pairs)


def parse_keys_text(text: str, path: str | os.PathLike = "<keys>") -> Credentials:
    """Credentials from the contents of a keys file (any of the accepted formats)."""
    p = Path(path)
    if text.startswith("\ufeff"):
        text = text[1:]
    if text.lstrip().startswith("{"):
        key_id, secret = _parse_json(text, p)
    else:
        key_id, secret = _parse_lines(text, p)
    if not key_id:
        raise SourceError(f"keys file {p} has no key id: write APCA_API_KEY_ID=<key id> "
                          "(or the key id on the first of two lines)")
    if not secret:
        raise SourceError(f"keys file {p} has no secret: write APCA_API_SECRET_KEY=<secret> "
                          "(or the secret on the second of two lines)")
    return Credentials(key_id=key_id, secret=secret, source=f"keys file {p}")


def read_keys_file(path: str | os.PathLike) -> Credentials:
    """Credentials from a keys file; warns (KeysFileWarning) when group or others can read it."""
    p = Path(path).expanduser()
    try:
        st = p.stat()
        raw = p.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"keys file {p} (from {KEYS_FILE_ENV}) does not exist") from None
    except IsADirectoryError:
        raise SourceError(f"keys file {p} is a directory") from None
    except OSError as exc:
        raise SourceError(f"cannot read keys file {p}: {exc.strerror}") from None
    if os.name == "posix" and stat.S_IMODE(st.st_mode) & 0o077:
        warnings.warn(KeysFileWarning(
            f"keys file {p} is readable by other users (mode {stat.S_IMODE(st.st_mode):o}); "
            f"run: chmod 600 {p}"), stacklevel=2)
    if len(raw) > 64 * 1024:
        raise SourceError(f"keys file {p} is {len(raw)} bytes; a keys file is a few lines")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = raw[: exc.start].count(b"\n") + 1
        raise SourceError(f"keys file {p} line {lineno}: not UTF-8 text") from None
    return parse_keys_text(text, p)


def load_credentials(env: Mapping[str, str] | None = None) -> Credentials | None:
    """Keys from `ALPACA_KEYS_FILE` when set (it names foldgate's keys explicitly, so it
    wins), else from `APCA_API_KEY_ID` / `APCA_API_SECRET_KEY`; None when neither is set.
    Raises SourceError for a keys file that is missing or does not parse, or for one of
    the two variables set without the other."""
    env = os.environ if env is None else env
    keys_file = env.get(KEYS_FILE_ENV, "").strip()
    if keys_file:
        return read_keys_file(keys_file)
    key_id = env.get(KEY_ID_ENV, "").strip()
    secret = env.get(SECRET_ENV, "").strip()
    if key_id and secret:
        return Credentials(key_id=key_id, secret=secret, source=f"${KEY_ID_ENV} / ${SECRET_ENV}")
    if key_id or secret:
        missing = SECRET_ENV if key_id else KEY_ID_ENV
        raise SourceError(f"{missing} is not set (its partner is): set both, or point "
                          f"{KEYS_FILE_ENV} at a keys file")
    return None


MISSING_KEYS_HINT = (f"set {KEYS_FILE_ENV} to a keys file (APCA_API_KEY_ID=... and "
                     f"APCA_API_SECRET_KEY=... lines), or set the {KEY_ID_ENV} and {SECRET_ENV} "
                     "environment variables")
