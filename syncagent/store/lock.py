"""One writer at a time: an advisory lock file beside the database.

``syncagent run`` holds it for its whole life and ``syncagent sync`` for one
pass, so two syncs never interleave their cursors. ``fcntl.flock`` is released
by the kernel when the process dies, so a crash never leaves a stale lock; the
file itself stays (deleting it would race with the next process) and only
records the holder's pid for the error message.

    with lock.held(config.database):
        ...
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from syncagent.errors import LockedError, StoreError
from syncagent.files import private_dir


def lock_path(database: Path) -> Path:
    database = Path(getattr(database, "database", database)).expanduser()
    return database.with_name(database.name + ".lock")


class Lock:
    """A held lock; ``release()`` (or process exit) frees it."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    def release(self) -> None:
        if self.fd >= 0:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = -1

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire(database: Path) -> Lock:
    """Take the write lock for ``database`` (a path, or a Config) or raise LockedError at once."""
    db_path = Path(getattr(database, "database", database)).expanduser()
    path = lock_path(db_path)
    try:
        private_dir(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"Cannot create the lock file {path}: {exc.strerror}; check the permissions of its folder.") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(fd)
        os.close(fd)
        who = f" (pid {holder})" if holder else ""
        raise LockedError(
            f"Another syncagent process{who} is writing to {db_path}; wait for it to finish or stop it "
            "(`systemctl --user stop syncagent`)."
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return Lock(path, fd)


@contextlib.contextmanager
def held(database: Path) -> Iterator[Lock]:
    """``with held(config.database): ...`` holds the lock for the block."""
    lock = acquire(database)
    try:
        yield lock
    finally:
        lock.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
