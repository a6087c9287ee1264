"""Pausing Python's cycle collector while a pass builds many small objects that hold no cycles.

A derived pass holds tens of thousands of events, ledgers and row tuples at once, all
acyclic; CPython's generational collector still walks every one of them each time
enough new objects pile up, which cost a tenth of the derived stages after 100 new
messages at 100,000 (bench/). Reference counting frees them all the same; the
collector is back on when the pass ends, however it ends, and finds any cycle then.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cycle collector off (as it was before, after)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
