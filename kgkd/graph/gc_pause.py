"""Pause Python's cyclic garbage collector while large graphs are built or scanned.

A 20,000-domain graph holds about two million Python objects; every full collection scans
them all, and building the triples and indexes triggers dozens of collections that find
nothing (triples, terms and index tables form no reference cycles). Pausing the collector
for the duration of such a step saves seconds; it is switched back on afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic collector inside the block (restored to its previous state after)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
