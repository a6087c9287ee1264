"""Private files: everything syncagent writes names people or holds a token, so files are 0600
and the directories syncagent creates are 0700, whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path


def private_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` and its missing parents mode 0700; directories that already exist are left alone.

    ``mkdir(parents=True)`` makes the parents 0777 minus the umask (world-writable
    under umask 000), and ``mode=`` is itself masked, so each directory made
    here is set explicitly.
    """
    path = Path(path).expanduser()
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made meanwhile by another process: it is theirs to keep as it is
        os.chmod(directory, 0o700)
    return path


def write_private(path: str | os.PathLike, text: str | bytes) -> Path:
    """Write ``text`` atomically (a reader never sees half a file) with mode 0600."""
    path = Path(path).expanduser()
    data = text.encode("utf-8") if isinstance(text, str) else text
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)  # in case a stale temporary file had looser bits
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
