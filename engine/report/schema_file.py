"""The report schema's identity and file: what the JSON writer (its key order and
integer fields) and the validator both read, so neither imports the other's module."""

from __future__ import annotations

import functools
import json
from pathlib import Path

SCHEMA_ID = "foldgate.report/2"
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "report.schema.json"


@functools.lru_cache(maxsize=1)
def load_schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return json.load(fh)
