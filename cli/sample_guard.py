"""The guard of the shipped sample store, shared by `data import` and `data fetch`
(its own module, so cli/fetch.py need not import cli/data.py, which registers it)."""

from __future__ import annotations

import click

from engine.data.store import BarStore, is_shipped_sample


def guard_shipped_sample(st: BarStore, verb: str) -> None:
    """Issue 8: a `data import` (or fetch) into the default store, run from inside a
    source checkout, would change the sample data that ships with foldgate."""
    if not st.explicit and is_shipped_sample(st.root):
        raise click.UsageError(
            f"refusing to {verb} into the default store {st.root}: in a source checkout it holds "
            "the sample data that ships with foldgate; pass --store DIR (or set FOLDGATE_STORE) "
            f"for your own store, or --store {st.root} to change the sample data on purpose"
        )
