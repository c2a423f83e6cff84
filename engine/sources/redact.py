"""Known secrets kept out of everything foldgate prints or writes.

Alpaca (or a proxy in front of it) may echo a request's headers in an error body;
those bodies end up in messages. Every message of a fetch passes through a Redactor
built from the key id and secret in use, which replaces each of them, in the forms a
server might echo (as sent, URL-encoded, JSON-escaped), with `[REDACTED]`."""

from __future__ import annotations

import contextlib
import json
import warnings
from urllib.parse import quote, quote_plus

from ..errors import FoldgateError

REDACTED = "[REDACTED]"
_MIN_LEN = 4  # shorter values would blank out ordinary words; no Alpaca key is this short


class Redactor:
    def __init__(self, secrets=()):
        forms: set[str] = set()
        for s in secrets:
            if isinstance(s, str) and len(s) >= _MIN_LEN:
                forms |= {s, quote(s, safe=""), quote_plus(s), json.dumps(s)[1:-1], repr(s)[1:-1]}
        self._forms = sorted(forms, key=len, reverse=True)

    @classmethod
    def for_credentials(cls, creds) -> "Redactor":
        return cls(() if creds is None else (creds.key_id, creds.secret))

    @classmethod
    def known(cls, creds=None) -> "Redactor":
        """The secrets of `creds`, else of the keys file or environment (if they load)."""
        if creds is None:
            from .credentials import load_credentials

            with warnings.catch_warnings(), contextlib.suppress(FoldgateError):
                warnings.simplefilter("ignore")
                creds = load_credentials()
        return cls.for_credentials(creds)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def __call__(self, text: str) -> str:
        text = str(text)
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def error(self, exc: FoldgateError) -> FoldgateError:
        """`exc` again (same type) with its message redacted."""
        msg = str(exc)
        clean = self(msg)
        if clean == msg:
            return exc
        try:
            return type(exc)(clean)
        except TypeError:
            from ..errors import SourceError

            return SourceError(clean)
