"""A pass hands back what its threads freed: a daemon between polls holds what it uses."""

import platform
import threading

import pytest

from syncagent.pipeline import heap

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")


def _resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def test_memory_freed_by_a_thread_goes_back_to_the_system():
    """What a reader thread allocated and let go (as a sync's fetch does) stays resident in that
    thread's heap until ``heap.release``; then it is returned."""
    kept = []

    def read() -> None:
        blocks = [bytes(1500) + bytes([i % 256]) for i in range(40_000)]  # 60 MB in the thread's own heap
        kept.append(blocks[-1])  # one survives, so the heap's top is in use and a plain free keeps the rest
        del blocks

    worker = threading.Thread(target=read)
    worker.start()
    worker.join()
    held = _resident_mb()
    heap.release()
    assert held - _resident_mb() > 30
    heap.release()  # a second call finds nothing more and is harmless
