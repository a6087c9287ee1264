"""`syncagent serve` as a real server in its own process, for the tests that talk to it over HTTP."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from dovecot import free_port

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def served(db_path: Path, tmp_path: Path, *extra: str) -> Iterator[tuple[str, int, Path]]:
    """`syncagent serve` on a free loopback port until the block ends: (base URL, port, its log)."""
    import httpx

    cfg = tmp_path / "serve-config.toml"
    cfg.write_text(f'[database]\npath = "{db_path}"\n')
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "syncagent", "--config", str(cfg), "serve", "--port", str(port),
                                 *extra], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/-/versions.json", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        yield base, port, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)
