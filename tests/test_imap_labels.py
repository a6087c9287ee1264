"""Flag and label changes made elsewhere: free on Dovecot (flags are not stored), a CHANGEDSINCE refresh on Gmail."""

from __future__ import annotations

import pytest

from dovecot import make_message
from syncagent import imap_connect
from syncagent.store import open_db
from test_imap_sync import make_config, sync

NOCHANGE = ["CAPABILITY", "LOGIN", "LIST", "STATUS", "STATUS", "LOGOUT"]


@pytest.fixture(autouse=True)
def _no_retry(monkeypatch):
    monkeypatch.setattr(imap_connect, "CONNECT_ATTEMPTS", 1)


def modseq(db, folder="INBOX"):
    return db.execute("SELECT highestmodseq FROM folder_state WHERE folder = ?", [folder]).fetchone()[0]


@pytest.mark.dovecot
def test_flags_changed_elsewhere_cost_nothing(mailbox, tmp_path, monkeypatch):
    """Another client marking \\Seen costs no EXAMINE; the new modseq is saved, so the next sync is STATUS only."""
    mailbox.append_many("INBOX", [make_message(i) for i in range(3)])
    cfg = make_config(mailbox, tmp_path, monkeypatch)
    db = open_db(cfg.database)
    assert sync(db, cfg).new_messages == 3
    old = modseq(db)
    with mailbox.client() as c:
        c.select_folder("INBOX")
        c.add_flags([2], [rb"\Seen"])
        new = c.folder_status("INBOX", ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"]
    assert new != old
    mailbox.server.reset_commands()
    assert sync(db, cfg).new_messages == 0
    assert mailbox.server.commands == NOCHANGE  # no EXAMINE, no SEARCH, no FETCH
    assert modseq(db) == new
    mailbox.server.reset_commands()
    assert sync(db, cfg).new_messages == 0
    assert mailbox.server.commands == NOCHANGE
    assert db.execute("SELECT COUNT(*) FROM messages WHERE gone = 0").fetchone()[0] == 3
