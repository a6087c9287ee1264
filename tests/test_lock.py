"""The write lock: one syncagent process writes to a database at a time."""

import subprocess
import sys

import pytest

from syncagent.errors import LockedError
from syncagent.store import lock


def test_second_process_refused_with_the_sentence(tmp_path):
    """While one process holds the lock, another is refused with the documented sentence and its pid."""
    db = tmp_path / "s.db"
    with lock.held(db):
        code = ("import sys; from syncagent.store import lock\n"
                "try:\n    lock.acquire(sys.argv[1])\nexcept Exception as e:\n    print(e); sys.exit(1)\n")
        done = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=60)
    import os

    assert done.returncode == 1
    assert done.stdout.strip() == (
        f"Another syncagent process (pid {os.getpid()}) is writing to {db}; wait for it to finish or stop it "
        "(`systemctl --user stop syncagent`).")


def test_released_lock_can_be_taken_again(tmp_path):
    """After release (or process exit) the lock is free; the file stays, holding the last pid."""
    db = tmp_path / "s.db"
    first = lock.acquire(db)
    with pytest.raises(LockedError):
        lock.acquire(db)
    first.release()
    with lock.held(db):
        pass
    assert lock.lock_path(db).exists()


def test_lock_of_a_dead_process_is_free(tmp_path):
    """A process that died holding the lock leaves nothing stale: the kernel drops flock on exit."""
    db = tmp_path / "s.db"
    code = "import sys, os; from syncagent.store import lock; lock.acquire(sys.argv[1]); os._exit(3)"
    assert subprocess.run([sys.executable, "-c", code, str(db)], timeout=60).returncode == 3
    with lock.held(db):
        pass


def test_accepts_a_config(tmp_path):
    """`lock.acquire(config)` works with a Config as well as a path."""
    from syncagent import config

    cfg = config.parse({"database": {"path": str(tmp_path / "x.db")}}, None)
    with lock.held(cfg) as held:
        assert held.path == tmp_path / "x.db.lock"
