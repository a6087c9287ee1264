"""Flag and label changes made elsewhere: free on Dovecot (flags are not stored), a CHANGEDSINCE refresh on Gmail."""

from __future__ import annotations

import pytest
from dovecot import make_message
from test_imap_sync import make_config, sync

from syncagent.sources.imap import connect as imap_connect
from syncagent.store.db import open_db

NOCHANGE = ["CAPABILITY", "LOGIN", "STATUS", "LIST", "STATUS", "LOGOUT"]  # INBOX first (test_imap_sync)


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


# --- Gmail over IMAP: a scripted server (Dovecot has no X-GM-EXT-1) ------------------------

class FakeGmail:
    """A tiny IMAP server on 127.0.0.1 answering like Gmail's All Mail, with labels and modseqs.

    Only what the IMAP source sends is understood; every command line is recorded (tag
    stripped) in ``lines`` so tests can check exactly what was asked.
    """

    FOLDER = "[Gmail]/All Mail"
    user, password = "me@gmail.example", "pw"

    def __init__(self, caps="IMAP4rev1 CONDSTORE X-GM-EXT-1"):
        import socket
        import threading

        self.caps, self.server = caps, self
        self.msgs: dict[int, dict] = {}
        self.modseq, self.lines = 100, []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self):
        self._sock.close()

    def add(self, n: int, labels: tuple[str, ...]) -> int:
        uid = max(self.msgs, default=0) + 1
        self.modseq += 1
        self.msgs[uid] = {"raw": make_message(n), "labels": labels, "modseq": self.modseq}
        return uid

    def relabel(self, uid: int, labels: tuple[str, ...]):
        self.modseq += 1
        self.msgs[uid].update(labels=labels, modseq=self.modseq)

    @property
    def commands(self):
        return [" ".join(line.split()[:2]) if line.startswith("UID ") else line.split()[0] for line in self.lines]

    def _serve(self):
        import threading

        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        f = conn.makefile("rwb")
        out = lambda s: f.write(s if isinstance(s, bytes) else s.encode() + b"\r\n")  # noqa: E731
        out(f"* OK [CAPABILITY {self.caps}] Gimap ready")
        f.flush()
        for raw in f:
            tag, _, rest = raw.decode().rstrip("\r\n").partition(" ")
            self.lines.append(rest if not rest.upper().startswith("LOGIN") else "LOGIN ***")
            words = rest.split(" ")
            cmd = (words[0] + (" " + words[1] if words[0].upper() == "UID" else "")).upper()
            if cmd == "LOGOUT":
                out("* BYE")
                out(f"{tag} OK bye")
                f.flush()
                break
            self._answer(cmd, rest, out)
            out(f"{tag} OK {cmd} done")
            f.flush()
        conn.close()

    def _answer(self, cmd, rest, out):
        import re

        n, uidnext = len(self.msgs), max(self.msgs, default=0) + 1
        if cmd == "CAPABILITY":
            out(f"* CAPABILITY {self.caps}")
        elif cmd == "LIST":
            out('* LIST (\\HasNoChildren) "/" "INBOX"')
            out(f'* LIST (\\All \\HasNoChildren) "/" "{self.FOLDER}"')
        elif cmd == "STATUS":
            out(f'* STATUS "{self.FOLDER}" (MESSAGES {n} UIDNEXT {uidnext} UIDVALIDITY 7 HIGHESTMODSEQ {self.modseq})')
        elif cmd == "EXAMINE":
            out(f"* {n} EXISTS")
            out(f"* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT {uidnext}] ok\r\n* OK [HIGHESTMODSEQ {self.modseq}] ok")
        elif cmd == "UID SEARCH":
            low = int(m.group(1)) if (m := re.search(r"UID (\d+):\*", rest)) else 1
            out("* SEARCH " + " ".join(str(u) for u in self.msgs if u >= low or u == max(self.msgs)))
        elif cmd == "UID FETCH":
            uids = [int(u) for u in rest.split(" ")[2].split(",")]
            since = int(m.group(1)) if (m := re.search(r"CHANGEDSINCE (\d+)", rest)) else None
            for seq, uid in enumerate(self.msgs, start=1):
                msg = self.msgs[uid]
                if uid not in uids or (since is not None and msg["modseq"] <= since):
                    continue
                labels = " ".join(f'"{x}"' if " " in x else x for x in msg["labels"])
                items = f"UID {uid} X-GM-LABELS ({labels}) FLAGS () MODSEQ ({msg['modseq']})"
                if "HEADER.FIELDS" in rest:
                    hdr = msg["raw"].split(b"\r\n\r\n")[0] + b"\r\n\r\n"
                    out(f"* {seq} FETCH ({items} X-GM-MSGID {9000 + uid} X-GM-THRID {8000 + uid} "
                        f'INTERNALDATE "16-Nov-2026 10:00:00 +0000" RFC822.SIZE {len(msg["raw"])} '
                        'BODYSTRUCTURE ("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 8 1 NIL NIL NIL NIL) '
                        f"BODY[HEADER.FIELDS (FROM)] {{{len(hdr)}}}\r\n".encode() + hdr + b")\r\n")
                else:
                    out(f"* {seq} FETCH ({items})")


@pytest.fixture
def fake_gmail():
    """Start scripted Gmail-like servers; their listening sockets close after the test."""
    made = []

    def make(**kw):
        made.append(FakeGmail(**kw))
        return made[-1]

    yield make
    for gm in made:
        gm.close()


def labels_of(db):
    return dict(db.execute("SELECT location, labels FROM message_folders ORDER BY location").fetchall())


def test_gmail_label_change_is_refreshed_with_changedsince(fake_gmail, tmp_path, monkeypatch):
    """On a Gmail-like server a label-only change costs one EXAMINE and one CHANGEDSINCE FETCH, and updates labels."""
    gm = fake_gmail()
    for i in range(3):
        gm.add(i, ("\\Inbox",))
    cfg = make_config(gm, tmp_path, monkeypatch)
    db = open_db(cfg.database)
    assert sync(db, cfg).new_messages == 3
    assert labels_of(db) == {"1": "\\Inbox", "2": "\\Inbox", "3": "\\Inbox"}
    stored = modseq(db, gm.FOLDER)
    assert stored == gm.modseq
    gm.relabel(2, ("\\Inbox", "Job search"))
    gm.relabel(3, ())  # archived: no label left
    gm.lines.clear()
    assert sync(db, cfg).new_messages == 0
    assert f"UID FETCH 1,2,3 (X-GM-LABELS FLAGS) (CHANGEDSINCE {stored})" in gm.lines
    assert [c for c in gm.commands if c not in ("CAPABILITY", "LOGIN")] == [
        "LIST", "STATUS", "EXAMINE", "UID FETCH", "LOGOUT"]
    assert labels_of(db) == {"1": "\\Inbox", "2": "\\Inbox Job search", "3": None}
    assert modseq(db, gm.FOLDER) == gm.modseq
    gm.lines.clear()
    assert sync(db, cfg).new_messages == 0
    assert "EXAMINE" not in gm.commands and "UID FETCH" not in gm.commands


def test_gmail_labels_refreshed_alongside_new_mail(fake_gmail, tmp_path, monkeypatch):
    """A label change that arrives with new mail is not lost: known UIDs are checked in chunks, new ones fetched whole."""
    from syncagent.sources.imap import source as imap

    monkeypatch.setattr(imap, "LABEL_CHUNK", 2)
    gm = fake_gmail()
    for i in range(5):
        gm.add(i, ("\\Inbox",))
    cfg = make_config(gm, tmp_path, monkeypatch)
    db = open_db(cfg.database)
    assert sync(db, cfg).new_messages == 5
    stored = modseq(db, gm.FOLDER)
    gm.relabel(4, ("Mentors",))
    gm.add(5, ("\\Inbox", "\\Important"))
    gm.lines.clear()
    assert sync(db, cfg).new_messages == 1
    label_fetches = [line for line in gm.lines if "CHANGEDSINCE" in line]
    assert label_fetches == [f"UID FETCH {s} (X-GM-LABELS FLAGS) (CHANGEDSINCE {stored})"
                             for s in ("1,2", "3,4", "5")]
    assert labels_of(db)["4"] == "Mentors" and labels_of(db)["6"] == "\\Inbox \\Important"
    assert db.execute("SELECT gmail_id FROM messages WHERE message_id = 'msg5@example.org'").fetchone()[0] == \
        format(9006, "x")


def test_no_label_fetch_without_gmail_extension(fake_gmail, tmp_path, monkeypatch):
    """A CONDSTORE server without X-GM-EXT-1 gets no label FETCH and no EXAMINE for a flags-only change."""
    gm = fake_gmail(caps="IMAP4rev1 CONDSTORE")
    gm.add(0, ())
    cfg = make_config(gm, tmp_path, monkeypatch, folders=[FakeGmail.FOLDER])
    db = open_db(cfg.database)
    assert sync(db, cfg).new_messages == 1
    gm.relabel(1, ())  # a flag change: only the modseq moves
    gm.lines.clear()
    assert sync(db, cfg).ok
    assert not any(c in gm.commands for c in ("EXAMINE", "UID FETCH", "UID SEARCH"))
    assert modseq(db, gm.FOLDER) == gm.modseq


def test_batch_labels_update_only_named_locations(tmp_path):
    """store.save_batch applies Batch.labels to the named locations of the folder and leaves the rest alone."""
    from syncagent.model import Batch, Seen
    from syncagent.parse import headers as parse
    from syncagent.store import db as store

    db = open_db(tmp_path / "db.sqlite")
    items = [(parse.parse_message(make_message(i)), Seen(folder="F", location=str(i), uid=i, labels=("a",)))
             for i in (1, 2)]
    store.save_batch(db, "acct", [], Batch(items=items, folder="F"))
    store.save_batch(db, "acct", [], Batch(folder="F", labels={"2": ("b", "c"), "9": ("x",)}))
    store.save_batch(db, "acct", [], Batch(folder="G", labels={"1": ("z",)}))
    assert labels_of(db) == {"1": "a", "2": "b c"}
