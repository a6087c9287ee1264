"""Shared fixtures. The Dovecot ones come first; other topics append theirs below."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # so tests can `import dovecot`

import dovecot as _dovecot  # noqa: E402


@pytest.fixture(autouse=True)
def _instant_imap_retries(monkeypatch):
    """IMAP connect retries happen without waiting in tests (the attempts still count)."""
    from syncagent.sources.imap import connect as imap_connect

    monkeypatch.setattr(imap_connect, "CONNECT_WAIT_MAX", 0)


@pytest.fixture(scope="session")
def dovecot_server():
    """One private Dovecot for the session (see tests/dovecot.py)."""
    if not _dovecot.available():
        if os.environ.get("CI") == "true":
            pytest.fail(_dovecot.INSTALL_HINT + " (CI=true: the IMAP tests must run here)")
        pytest.skip(_dovecot.INSTALL_HINT)
    server = _dovecot.Dovecot()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def dovecot_tls():
    """A second private Dovecot that also speaks implicit TLS (self-signed) on ``tls_port``."""
    if not _dovecot.available():
        if os.environ.get("CI") == "true":
            pytest.fail(_dovecot.INSTALL_HINT + " (CI=true: the IMAP tests must run here)")
        pytest.skip(_dovecot.INSTALL_HINT)
    server = _dovecot.Dovecot(tls=True)
    server.start()
    yield server
    server.close()


@pytest.fixture
def dovecot(dovecot_server):
    """The shared Dovecot, running (restarted if a previous test stopped it), commands reset."""
    dovecot_server.start()
    dovecot_server.reset_commands()
    yield dovecot_server
    dovecot_server.start()


@pytest.fixture
def mailbox(dovecot):
    """A fresh user with an empty mailbox on the shared Dovecot."""
    return dovecot.new_user()


@pytest.fixture(autouse=True)
def _fresh_gmail_pacing():
    """Each test starts with an unspent Gmail quota window and no resync spacing (both live for the process)."""
    from syncagent.sources.gmail import api as gmail_api
    from syncagent.sources.gmail import source as gmail_source

    gmail_api._pacers.clear()
    gmail_source._resyncs.clear()
    yield
    gmail_api._pacers.clear()
    gmail_source._resyncs.clear()


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """A HOME holding the database and config `syncagent demo` built (shared: tests only read it)."""
    import subprocess

    home = tmp_path_factory.mktemp("demo-home")
    env = {**os.environ, "HOME": str(home)}
    env.pop("SYNCAGENT_CONFIG", None)
    subprocess.run([sys.executable, "-m", "syncagent", "-q", "demo"], env=env, check=True, capture_output=True,
                   timeout=120)
    return home


@pytest.fixture(scope="session")
def ledger_db(tmp_path_factory) -> Path:
    """The digest scenario's database, in a file deliberately not named syncagent.db (shared: tests only read it)."""
    import digest_scenario as scenario

    from syncagent.store.db import open_db

    tmp = tmp_path_factory.mktemp("ledger")
    path = tmp / "my-ledger.db"
    db = open_db(path)
    scenario.build(db, config=scenario.make_config(tmp))
    db.conn.close()
    return path

