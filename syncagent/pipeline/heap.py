"""Handing the memory a pass freed back to the system, where the C library keeps it.

A sync pass reads on one thread and saves on another while the main one parses, and glibc
gives each thread its own heap: what a thread frees stays mapped in it, reusable by that
thread only. The derived stages after a first sync of a million messages then grew the
process from the sync's high-water mark, not from what it still held (18 of the 96 MB
after the sync were free memory of that kind; bench/README.md), and a daemon kept what
a full pass had freed until the next one. ``malloc_trim`` returns the free pages of
every heap, in microseconds when there are few. Without glibc this does nothing.
"""

from __future__ import annotations

from typing import Any

_trim: Any = None  # glibc's malloc_trim once looked up; False where there is none


def release() -> None:
    """Return the free pages of the C library's heaps to the system (glibc only)."""
    global _trim
    if _trim is None:
        try:
            import ctypes

            _trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to hand back
            _trim = False
    if _trim:
        _trim(0)
