"""Numbered schema steps. Add a new function for every change; never edit an applied one."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlite_utils import Database, Migrations

migrations = Migrations("syncagent")


@migrations(name="0001_initial")
def m0001_initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            message_id TEXT NOT NULL,
            thread_id TEXT,
            date TEXT NOT NULL,
            date_source TEXT NOT NULL DEFAULT 'header',
            arrived_at TEXT,
            from_address TEXT,
            from_name TEXT,
            subject TEXT,
            direction TEXT NOT NULL CHECK (direction IN ('incoming', 'outgoing')),
            automatic INTEGER NOT NULL DEFAULT 0,
            automatic_reason TEXT,
            in_reply_to TEXT,
            refs TEXT,
            list_id TEXT,
            size INTEGER,
            snippet TEXT,
            has_calendar INTEGER NOT NULL DEFAULT 0,
            gmail_id TEXT,
            thread_hint TEXT,
            gone INTEGER NOT NULL DEFAULT 0,
            first_seen_at TEXT NOT NULL,
            UNIQUE (account, message_id)
        );
        CREATE INDEX messages_date ON messages (date);
        CREATE INDEX messages_thread ON messages (thread_id);
        CREATE INDEX messages_from ON messages (from_address);
        CREATE INDEX messages_gmail ON messages (account, gmail_id);

        CREATE TABLE message_addresses (
            message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('from', 'to', 'cc', 'bcc')),
            address TEXT NOT NULL,
            name TEXT,
            PRIMARY KEY (message, role, address)
        );
        CREATE INDEX message_addresses_address ON message_addresses (address);

        CREATE TABLE message_folders (
            account TEXT NOT NULL,
            folder TEXT NOT NULL,
            location TEXT NOT NULL,
            uidvalidity INTEGER,
            uid INTEGER,
            message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            labels TEXT,
            gone INTEGER NOT NULL DEFAULT 0,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (account, folder, location)
        );
        CREATE INDEX message_folders_message ON message_folders (message);

        CREATE TABLE calendar_parts (
            message INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
            ics TEXT NOT NULL
        );

        CREATE TABLE threads (
            id TEXT PRIMARY KEY,
            account TEXT NOT NULL,
            subject TEXT,
            first_date TEXT,
            last_date TEXT,
            message_count INTEGER NOT NULL
        );

        CREATE TABLE folder_state (
            account TEXT NOT NULL,
            folder TEXT NOT NULL,
            uidvalidity INTEGER,
            last_uid INTEGER NOT NULL DEFAULT 0,
            uidnext INTEGER,
            messages INTEGER,
            highestmodseq INTEGER,
            complete INTEGER NOT NULL DEFAULT 0,
            synced_at TEXT,
            PRIMARY KEY (account, folder)
        );

        CREATE TABLE gmail_state (
            account TEXT PRIMARY KEY,
            history_id TEXT,
            pending_history_id TEXT,
            page_token TEXT,
            synced_at TEXT
        );

        CREATE TABLE sync_runs (
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'interrupted')),
            new_messages INTEGER NOT NULL DEFAULT 0,
            error TEXT
        );
        CREATE INDEX sync_runs_account ON sync_runs (account, started_at);

        CREATE TABLE contacts (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            company TEXT,
            title TEXT,
            segment TEXT,
            tags TEXT,
            notes TEXT,
            url TEXT,
            cadence_days REAL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        CREATE TABLE contact_emails (
            address TEXT PRIMARY KEY,
            contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
            position INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX contact_emails_contact ON contact_emails (contact_id);

        CREATE TABLE meetings (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL,
            recurrence_id TEXT NOT NULL DEFAULT '',
            sequence INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'confirmed',
            summary TEXT,
            organizer TEXT,
            start_at TEXT,
            end_at TEXT,
            message INTEGER REFERENCES messages(id),
            UNIQUE (uid, recurrence_id)
        );

        CREATE TABLE meeting_contacts (
            meeting INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
            contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
            PRIMARY KEY (meeting, contact_id)
        );

        CREATE TABLE reminders (
            id INTEGER PRIMARY KEY,
            contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('follow_up', 'thank_you', 'check_in')),
            anchor TEXT NOT NULL,
            due_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'done', 'dismissed', 'snoozed')),
            snoozed_until TEXT,
            created_at TEXT NOT NULL,
            resolved_at TEXT,
            resolved_by INTEGER REFERENCES messages(id),
            reason TEXT,
            notified_at TEXT,
            UNIQUE (contact_id, kind, anchor)
        );
        CREATE INDEX reminders_status ON reminders (status, due_at);

        CREATE TABLE digests (
            week TEXT PRIMARY KEY,
            generated_at TEXT NOT NULL,
            markdown_path TEXT,
            html_path TEXT,
            sent_at TEXT,
            sent_to TEXT
        );
        """
    )


@migrations(name="0002_ledger")
def m0002_ledger(db: Database) -> None:
    # Derived from messages and meetings by ledger_store.recompute; rebuilt whole each time.
    db.executescript(
        """
        CREATE TABLE contact_ledger (
            contact_id INTEGER PRIMARY KEY REFERENCES contacts(id) ON DELETE CASCADE,
            state TEXT,
            first_outreach_at TEXT,
            first_reply_at TEXT,
            first_response_hours REAL,
            median_response_hours REAL,
            replied INTEGER NOT NULL DEFAULT 0,
            messages_sent INTEGER NOT NULL DEFAULT 0,
            messages_received INTEGER NOT NULL DEFAULT 0,
            last_interaction_at TEXT,
            unanswered INTEGER NOT NULL DEFAULT 0,
            computed_at TEXT NOT NULL
        );

        CREATE TABLE replies (
            contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
            message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            asked_at TEXT NOT NULL,
            replied_at TEXT NOT NULL,
            response_hours REAL NOT NULL,
            response_seconds INTEGER NOT NULL,
            PRIMARY KEY (contact_id, message)
        );
        CREATE INDEX replies_replied_at ON replies (replied_at);

        CREATE TABLE contact_messages (
            contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
            message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            direction TEXT NOT NULL CHECK (direction IN ('incoming', 'outgoing')),
            PRIMARY KEY (contact_id, message)
        );
        CREATE INDEX contact_messages_message ON contact_messages (message);
        """
    )


@migrations(name="0003_fts")
def m0003_fts(db: Database) -> None:
    # Full-text search over subjects and snippets (Datasette's search box on messages).
    # The triggers keep the index in step with inserts and the store's ON CONFLICT updates;
    # enable_fts returns early when the index already exists as configured.
    db.table("messages").enable_fts(["subject", "snippet"], create_triggers=True)


@migrations(name="0004_search_index_in_batches")
def m0004_search_index_in_batches(db: Database) -> None:
    # Per-row FTS triggers cost more than half of saving a big first sync, and the
    # update trigger fired on every thread_id or gone change. New rows are now indexed
    # in one INSERT ... SELECT per saved batch (search.catch_up); only a real change
    # of subject or snippet re-indexes a row.
    db.executescript(
        """
        DROP TRIGGER IF EXISTS messages_ai;
        DROP TRIGGER IF EXISTS messages_au;
        CREATE TRIGGER messages_au AFTER UPDATE OF subject, snippet ON messages
        WHEN (old.subject IS NOT new.subject OR old.snippet IS NOT new.snippet)
          -- a row not indexed yet is indexed with its new values by the next catch-up
          AND old.rowid <= (SELECT coalesce(max(id), 0) FROM messages_fts_docsize)
        BEGIN
          INSERT INTO messages_fts (messages_fts, rowid, subject, snippet)
            VALUES ('delete', old.rowid, old.subject, old.snippet);
          INSERT INTO messages_fts (rowid, subject, snippet) VALUES (new.rowid, new.subject, new.snippet);
        END;
        CREATE TABLE pipeline_state (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """
    )


@migrations(name="0005_ids_name_messages")
def m0005_ids_name_messages(db: Database) -> None:
    # An id without "@" names no message (RFC 5322 msg-id), yet rows stored before the
    # parser knew it link through one: git send-email's "In-Reply-To: <yes>" joined
    # unrelated threads. Drop such links, give such a Message-ID the fallback id the
    # parser now gives (so a refetched copy lands on the same row), and re-derive.
    from syncagent.parse.headers import fallback_id, names_message

    conn = db.conn
    rows = conn.execute(
        "SELECT id, message_id, in_reply_to, refs, date, from_address, subject, gmail_id FROM messages "
        "WHERE instr(message_id, '@') = 0 OR instr(in_reply_to, '@') = 0 OR refs IS NOT NULL"
    ).fetchall()
    for pk, mid, irt, refs, date, sender, subject, gmail_id in rows:
        kept = [r for r in (refs or "").split() if names_message(r)]
        new_refs = " ".join(kept) or None
        new_irt = irt if names_message(irt) else (kept[-1] if kept else None)
        if new_refs != refs or new_irt != irt:
            conn.execute("UPDATE messages SET in_reply_to = ?, refs = ? WHERE id = ?", [new_irt, new_refs, pk])
        if not names_message(mid):
            # OR IGNORE: a copy already stored under that id keeps its own row.
            conn.execute("UPDATE OR IGNORE messages SET message_id = ? WHERE id = ?",
                         [fallback_id(date, sender, subject, gmail_id), pk])
    conn.execute("DELETE FROM pipeline_state WHERE name = 'derived'")


@migrations(name="0006_one_address_rule")
def m0006_one_address_rule(db: Database) -> None:
    # Mail and contacts used two address rules that disagreed (a trailing dot on the
    # domain, punycode domains, ...), so a contact could miss their own mail. Rewrite
    # every stored address under the one rule (parse.addresses). Two contacts that
    # now share an address are one person (a contact is found by any of its
    # addresses): they are merged into the older one, keeping every field, address
    # and reminder decision of both. Addresses the rule refuses stay as they were:
    # they can match no contact.
    from syncagent.parse.addresses import normalize_address

    conn = db.conn
    renamed: dict[str, str] = {}
    for sql in ("SELECT DISTINCT address FROM message_addresses",
                "SELECT DISTINCT from_address FROM messages WHERE from_address IS NOT NULL"):
        for (addr,) in conn.execute(sql).fetchall():
            new = normalize_address(addr)
            if new is not None and new != addr:
                renamed[addr] = new
    for old, new in renamed.items():
        conn.execute("UPDATE OR IGNORE message_addresses SET address = ? WHERE address = ?", [new, old])
        conn.execute("DELETE FROM message_addresses WHERE address = ?", [old])  # both spellings in one header
        conn.execute("UPDATE messages SET from_address = ? WHERE from_address = ?", [new, old])

    for (addr,) in conn.execute("SELECT address FROM contact_emails ORDER BY contact_id, position").fetchall():
        new = normalize_address(addr)
        if new is None or new == addr:
            continue
        contact_id = conn.execute("SELECT contact_id FROM contact_emails WHERE address = ?", [addr]).fetchone()[0]
        owner = conn.execute("SELECT contact_id FROM contact_emails WHERE address = ?", [new]).fetchone()
        if owner is None:
            conn.execute("UPDATE contact_emails SET address = ? WHERE address = ?", [new, addr])
            continue
        if owner[0] != contact_id:
            _merge_contacts(conn, min(owner[0], contact_id), max(owner[0], contact_id))
        conn.execute("DELETE FROM contact_emails WHERE address = ?", [addr])
    conn.execute("DELETE FROM pipeline_state WHERE name = 'derived'")


def _merge_contacts(conn: sqlite3.Connection, keep: int, drop: int) -> None:
    """Fold contact ``drop`` into ``keep``: empty fields filled, tags and notes joined, rows moved."""
    cols = [r[1] for r in conn.execute("PRAGMA table_info(contacts)") if r[1] not in ("id", "created_at", "updated_at")]
    mine, theirs = (conn.execute(f"SELECT {', '.join(cols)}, created_at, updated_at FROM contacts WHERE id = ?",
                                 [cid]).fetchone() for cid in (keep, drop))
    merged = {}
    for col, a, b in zip(cols, mine, theirs):
        if col == "tags" and a and b:
            tags = [t.strip() for t in f"{a},{b}".split(",") if t.strip()]
            merged[col] = ", ".join(dict.fromkeys(tags))
        elif col == "notes" and a and b and a != b:
            merged[col] = f"{a}\n\n{b}"
        else:
            merged[col] = a if a not in (None, "") else b
    sets = ", ".join(f"{c} = ?" for c in merged)
    conn.execute(f"UPDATE contacts SET {sets}, created_at = min(created_at, ?), updated_at = max(updated_at, ?) "
                 "WHERE id = ?", [*merged.values(), theirs[-2], theirs[-1], keep])
    start = conn.execute("SELECT coalesce(max(position), -1) + 1 FROM contact_emails WHERE contact_id = ?",
                         [keep]).fetchone()[0]
    conn.execute("UPDATE contact_emails SET contact_id = ?, position = position + ? WHERE contact_id = ?",
                 [keep, start, drop])
    # The same obligation on both: a decision the user made on either one stands.
    conn.execute(
        "UPDATE reminders SET (status, snoozed_until, resolved_at, resolved_by, notified_at) = "
        "(SELECT d.status, d.snoozed_until, d.resolved_at, d.resolved_by, d.notified_at FROM reminders d "
        " WHERE d.contact_id = ? AND d.kind = reminders.kind AND d.anchor = reminders.anchor) "
        "WHERE contact_id = ? AND status = 'open' AND EXISTS (SELECT 1 FROM reminders d WHERE d.contact_id = ? "
        " AND d.kind = reminders.kind AND d.anchor = reminders.anchor AND d.status != 'open')",
        [drop, keep, drop])
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for fk in conn.execute(f'PRAGMA foreign_key_list("{table}")').fetchall():
            if fk[2] == "contacts" and table != "contact_emails":
                col = fk[3]
                conn.execute(f'UPDATE OR IGNORE "{table}" SET "{col}" = ? WHERE "{col}" = ?', [keep, drop])
                conn.execute(f'DELETE FROM "{table}" WHERE "{col}" = ?', [drop])
    conn.execute("DELETE FROM contacts WHERE id = ?", [drop])


@migrations(name="0007_outreach_measures")
def m0007_outreach_measures(db: Database) -> None:
    # Numbers measured at sync time from the user's own sent text (parse.outreach), never
    # the text: one row per outgoing message that was measured.
    db.executescript(
        """
        CREATE TABLE outreach (
            message INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
            words INTEGER NOT NULL,
            questions INTEGER NOT NULL,
            subject_words INTEGER NOT NULL,
            connection INTEGER NOT NULL,
            personalized INTEGER NOT NULL,
            fingerprint INTEGER NOT NULL
        );
        CREATE INDEX outreach_fingerprint ON outreach (fingerprint);
        """
    )


@migrations(name="0008_brief_notices")
def m0008_brief_notices(db: Database) -> None:
    # Which meeting's brief was sent: keyed by the meeting's identity and start, so a
    # meeting moved to another time is announced again and a rebuilt meetings table
    # (its ids are derived) does not lose the record.
    db.executescript(
        """
        CREATE TABLE brief_notices (
            uid TEXT NOT NULL,
            recurrence_id TEXT NOT NULL,
            start_at TEXT NOT NULL,
            contact_id INTEGER NOT NULL,
            sent_at TEXT NOT NULL,
            PRIMARY KEY (uid, recurrence_id, start_at, contact_id)
        );
        """
    )


@migrations(name="0009_stored_figures")
def m0009_stored_figures(db: Database) -> None:
    # Reply rates and response times were computed three ways (stats, the digest,
    # Datasette's query) and disagreed. The derived stage now stores them once, from
    # syncagent.ledger.figures, and every surface reads these tables.
    db.executescript(
        """
        ALTER TABLE contact_ledger ADD COLUMN reached INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE contact_ledger ADD COLUMN first_response_seconds INTEGER;
        UPDATE contact_ledger SET reached = (messages_sent > 0),
            first_response_seconds = (SELECT r.response_seconds FROM replies r
                                      WHERE r.contact_id = contact_ledger.contact_id
                                      ORDER BY r.replied_at, r.message LIMIT 1);

        CREATE TABLE overall_stats (
            period TEXT PRIMARY KEY,
            reached INTEGER NOT NULL,
            replied INTEGER NOT NULL,
            reply_rate REAL,
            median_first_response_hours REAL,
            p90_first_response_hours REAL,
            computed_at TEXT NOT NULL
        );

        CREATE TABLE segment_stats (
            segment TEXT NOT NULL,
            period TEXT NOT NULL,
            reached INTEGER NOT NULL,
            replied INTEGER NOT NULL,
            reply_rate REAL,
            median_first_response_hours REAL,
            p90_first_response_hours REAL,
            computed_at TEXT NOT NULL,
            PRIMARY KEY (segment, period)
        );

        CREATE TABLE weekly_stats (
            week TEXT PRIMARY KEY,
            start_at TEXT NOT NULL,
            end_at TEXT NOT NULL,
            timezone TEXT NOT NULL,
            messages_sent INTEGER NOT NULL,
            asks INTEGER NOT NULL,
            answered INTEGER NOT NULL,
            reply_rate REAL,
            replies INTEGER NOT NULL,
            median_response_hours REAL,
            meetings INTEGER NOT NULL,
            computed_at TEXT NOT NULL
        );

        -- The next pass rebuilds every derived table, filling the new ones.
        DELETE FROM pipeline_state WHERE name = 'derived';
        """
    )


@migrations(name="0010_sync_run_notes")
def m0010_sync_run_notes(db: Database) -> None:
    # A pass that synced what it could but has something to say (a configured folder
    # missing on the server) ends 'ok' with the sentences here, one per line.
    db.execute("ALTER TABLE sync_runs ADD COLUMN notes TEXT")


# --- at most one open reminder per obligation holder -------------------------------
#
# Each entry is one "at most one open row" rule: its index name, the columns that
# name whoever holds the obligation, and the kinds it covers. A kind whose holder is
# not the contact alone (one per introducer and introduced, one per company) gets its
# own entry and its own step calling ``one_open_index``, with the columns it needs.
#
# Snoozed counts as open: a snoozed row is still the obligation owed, only hidden
# until its date, and it wakes back to 'open' without passing through reconcile; if
# it were left out, a second open row could be raised beside it and the wake-up
# would make two.
ACTIVE_STATUSES = ("open", "snoozed")
TURN_KINDS = ("follow_up", "thank_you", "check_in")


def one_open_index(db: Database, name: str, columns: tuple[str, ...], kinds: tuple[str, ...]) -> None:
    """Settle extra active rows per holder (keeping the newest obligation), then index the rule.

    Applied steps call it, so it only ever gains parameters: changing what it does
    would change what an applied step did.
    """
    from syncagent.timeutil import iso, utcnow

    conn = db.conn
    holder = ", ".join(columns)
    of_r = ", ".join(f"r.{c}" for c in columns)
    # SQLite takes no parameters in an index's WHERE, so the rule is spelled out from the constants.
    where = (f"status IN ({', '.join(repr(s) for s in ACTIVE_STATUSES)}) "
             f"AND kind IN ({', '.join(repr(k) for k in kinds)})")
    # The anchor's time orders a holder's rows: the obligation owed now is always counted
    # from the latest event, while a replay of a past instant could add rows with higher
    # ids but older anchors.
    rows = conn.execute(
        f"""SELECT r.id, {of_r}, r.anchor,
                   CASE WHEN r.anchor LIKE 'message:%' THEN
                            (SELECT date FROM messages WHERE id = CAST(substr(r.anchor, 9) AS INTEGER))
                        WHEN r.anchor LIKE 'meeting:%' THEN
                            (SELECT end_at FROM meetings WHERE id = CAST(substr(r.anchor, 9) AS INTEGER))
                   END AS anchor_at
              FROM reminders r
             WHERE ({of_r}) IN (SELECT {holder} FROM reminders WHERE {where}
                                 GROUP BY {holder} HAVING count(*) > 1)
               AND r.id IN (SELECT id FROM reminders WHERE {where})
             ORDER BY {of_r}, anchor_at, r.id"""
    ).fetchall()
    now = iso(utcnow())
    width = len(columns)
    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[1:1 + width]), []).append(row)
    for group in groups.values():
        dated = [row for row in group if row[-1]]
        # A row whose anchor is gone (message deleted) cannot be the obligation owed now.
        undated = [row for row in group if not row[-1]]
        keep = dated[-1] if dated else undated[-1]
        settle: list[tuple[tuple[Any, ...], str | None, int | None]] = [(row, None, None) for row in undated if row is not keep]
        # Each superseded dated row is settled by the next one's anchor: the event that moved
        # the ledger past it (the reply after a follow-up, the thank-you after a reply).
        for older, newer in zip(dated, dated[1:]):
            anchor, anchor_at = newer[-2], newer[-1]
            settle.append((older, anchor_at, int(anchor.split(":", 1)[1]) if anchor.startswith("message:") else None))
        for row, at, by in settle:
            conn.execute(
                "UPDATE reminders SET status = 'done', resolved_at = ?, resolved_by = ?, snoozed_until = NULL "
                "WHERE id = ?",
                [at or now, by, row[0]],
            )
    conn.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {name} ON reminders ({holder}) WHERE {where}")


@migrations(name="0011_one_open_reminder")
def m0011_one_open_reminder(db: Database) -> None:
    # Replays with --now used to insert rows for past obligations that nothing settled,
    # leaving several open reminders for one contact; the turn ledger owes one at a time.
    one_open_index(db, "reminders_one_open_turn", ("contact_id",), TURN_KINDS)


@migrations(name="0012_beyond_the_turn_ledger")
def m0012_beyond_the_turn_ledger(db: Database) -> None:
    # Introductions, out-of-office return dates, responsiveness, and the two reminder
    # kinds whose holder is not one contact alone: close_loop (one open per introducer
    # and introduced) and next_contact (one open per company).
    conn = db.conn
    conn.execute("ALTER TABLE messages ADD COLUMN ooo_until TEXT")  # an auto-reply's stated return date
    conn.execute("ALTER TABLE contact_ledger ADD COLUMN responsiveness TEXT")
    db.executescript(
        """
        CREATE TABLE introductions (
            id INTEGER PRIMARY KEY,
            introducer_address TEXT NOT NULL,
            introducer_name TEXT,
            introducer_contact_id INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
            contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
            message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            converted_at TEXT,
            converted_by TEXT,
            computed_at TEXT NOT NULL,
            UNIQUE (message, contact_id)
        );
        CREATE INDEX introductions_contact ON introductions (contact_id);
        CREATE INDEX introductions_introducer ON introductions (introducer_contact_id);
        """
    )
    # A CHECK constraint cannot be altered in SQLite: the table is rebuilt with the new
    # kinds and columns, and every index it had is made again.
    indexes = [sql for (sql,) in conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'reminders' AND sql IS NOT NULL")]
    db.executescript(
        """
        CREATE TABLE reminders_new (
            id INTEGER PRIMARY KEY,
            contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('follow_up', 'thank_you', 'check_in', 'close_loop', 'next_contact')),
            anchor TEXT NOT NULL,
            due_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'done', 'dismissed', 'snoozed')),
            snoozed_until TEXT,
            created_at TEXT NOT NULL,
            resolved_at TEXT,
            resolved_by INTEGER REFERENCES messages(id),
            reason TEXT,
            notified_at TEXT,
            about_contact_id INTEGER REFERENCES contacts(id) ON DELETE CASCADE,
            company TEXT,
            UNIQUE (contact_id, kind, anchor)
        );
        INSERT INTO reminders_new (id, contact_id, kind, anchor, due_at, status, snoozed_until, created_at,
                                   resolved_at, resolved_by, reason, notified_at)
            SELECT id, contact_id, kind, anchor, due_at, status, snoozed_until, created_at,
                   resolved_at, resolved_by, reason, notified_at FROM reminders;
        DROP TABLE reminders;
        ALTER TABLE reminders_new RENAME TO reminders;
        """
    )
    for sql in indexes:
        conn.execute(sql)
    db.executescript(
        """
        CREATE UNIQUE INDEX reminders_one_open_close_loop ON reminders (contact_id, about_contact_id)
            WHERE kind = 'close_loop' AND status IN ('open', 'snoozed');
        CREATE UNIQUE INDEX reminders_one_open_next_contact ON reminders (company)
            WHERE kind = 'next_contact' AND status IN ('open', 'snoozed');
        -- The next pass derives responsiveness, introductions and the new reminders.
        DELETE FROM pipeline_state WHERE name = 'derived';
        """
    )


@migrations(name="0013_outreach_asks")
def m0013_outreach_asks(db: Database) -> None:
    # Derived: one row per measured ask (an outgoing message that started a new ask), its
    # outcome and its bucket in each dimension, rebuilt by the ledger stage. stats --by,
    # the digest and Datasette's dashboard read it.
    db.executescript(
        """
        CREATE TABLE outreach_asks (
            message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
            asked_at TEXT NOT NULL,
            replied INTEGER NOT NULL,
            response_seconds INTEGER,
            words TEXT NOT NULL,
            questions TEXT NOT NULL,
            personalized TEXT NOT NULL,
            mass TEXT NOT NULL,
            connection TEXT NOT NULL,
            weekday TEXT NOT NULL,
            hour TEXT NOT NULL,
            PRIMARY KEY (message, contact_id)
        );
        CREATE TABLE outreach_buckets (
            dimension TEXT NOT NULL,
            bucket TEXT NOT NULL,
            position INTEGER NOT NULL,
            asks INTEGER NOT NULL,
            replied INTEGER NOT NULL,
            reply_rate REAL,
            median_first_response_hours REAL,
            PRIMARY KEY (dimension, bucket)
        );
        """
    )
    conn = db.conn
    conn.execute("DELETE FROM pipeline_state WHERE name = 'derived'")


@migrations(name="0014_incremental_derivation")
def m0014_incremental_derivation(db: Database) -> None:
    # The derived stages re-derive only the contacts a pass affects. contact_messages
    # keeps each message's week (in the user's zone) and whether it started an ask and
    # was answered, so the weekly figures of the weeks touched are recounted in SQL;
    # contact_ledger keeps the last message's subject, so the reminder list reads stored
    # rows. derived_inputs is what each contact looked like when last derived (to tell
    # which ones an edit touched, deleted ones included); derived_rechecks the next
    # instant at which a holder's derived rows change with the clock alone.
    db.executescript(
        """
        ALTER TABLE contact_messages ADD COLUMN week TEXT;
        ALTER TABLE contact_messages ADD COLUMN ask INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE contact_messages ADD COLUMN answered INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX contact_messages_week ON contact_messages (week);
        ALTER TABLE contact_ledger ADD COLUMN last_subject TEXT;
        CREATE TABLE derived_inputs (
            contact_id INTEGER PRIMARY KEY,
            signature TEXT NOT NULL,
            company_key TEXT,
            addresses TEXT NOT NULL
        );
        CREATE TABLE derived_rechecks (
            holder TEXT PRIMARY KEY,
            at TEXT NOT NULL
        );
        CREATE INDEX derived_rechecks_at ON derived_rechecks (at);
        DELETE FROM pipeline_state WHERE name = 'derived';
        """
    )


@migrations(name="0015_incremental_threads_and_meetings")
def m0015_incremental_threads_and_meetings(db: Database) -> None:
    # The threads and meetings stages keep what they derived from, so a pass costs
    # what changed: the thread graph (every Message-ID an account's mail names, and
    # the component it is in), each parsed invitation, and each meeting's people.
    # Derived: with no 'threads'/'meetings' state the next pass fills them from
    # every stored message (a later step that rewrites stored ids drops that state).
    db.executescript(
        """
        CREATE TABLE thread_components (
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            size INTEGER NOT NULL,
            messages INTEGER NOT NULL,
            first_date TEXT,
            first_message_id TEXT,
            last_date TEXT
        );
        CREATE TABLE thread_nodes (
            account TEXT NOT NULL,
            message_id TEXT NOT NULL,
            component INTEGER NOT NULL,
            PRIMARY KEY (account, message_id)
        ) WITHOUT ROWID;
        CREATE INDEX thread_nodes_component ON thread_nodes (component);
        -- The rows a second copy gave a Gmail thread id after they were threaded by headers.
        CREATE INDEX messages_hint_arrived ON messages (id)
            WHERE thread_hint IS NOT NULL AND thread_id IS NOT thread_hint;

        CREATE TABLE invitations (
            message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            uid TEXT NOT NULL,
            recurrence_id TEXT NOT NULL,
            method TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            status TEXT NOT NULL,
            summary TEXT,
            organizer TEXT,
            start_at TEXT,
            end_at TEXT,
            message_date TEXT NOT NULL,
            people TEXT NOT NULL,
            PRIMARY KEY (message, position)
        );
        CREATE INDEX invitations_uid ON invitations (uid);
        CREATE TABLE meeting_people (
            meeting INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
            address TEXT NOT NULL,
            PRIMARY KEY (meeting, address)
        );
        DELETE FROM pipeline_state WHERE name IN ('threads', 'meetings');
        """
    )


@migrations(name="0016_incremental_pass_indexes")
def m0016_incremental_pass_indexes(db: Database) -> None:
    db.executescript(
        """
        -- An incremental pass reads and replaces the asks of the contacts it re-derives; keyed
        -- (message, contact_id), those reads scanned every ask (1.5 s at 100,000 messages).
        CREATE INDEX IF NOT EXISTS outreach_asks_contact ON outreach_asks (contact_id);
        -- Auto-replies that state a return date are few: reading them from here, not from every
        -- message of the contacts in scope.
        CREATE INDEX messages_away ON messages (id) WHERE automatic = 1 AND ooo_until IS NOT NULL;
        -- A pass recounts the weeks its rows touched from this index alone (a third of the time
        -- the row lookups took).
        DROP INDEX IF EXISTS contact_messages_week;
        CREATE INDEX contact_messages_week ON contact_messages (week, direction, message, ask, answered);
        """
    )


@migrations(name="0017_covering_address_index")
def m0017_covering_address_index(db: Database) -> None:
    db.executescript(
        """
        -- A pass loads the events of the contacts it re-derives by address; with the role and
        -- the message in the index, that join reads no message_addresses row (a third of the
        -- load at 100,000 messages). Queries by address alone use it as before.
        DROP INDEX IF EXISTS message_addresses_address;
        CREATE INDEX message_addresses_address ON message_addresses (address, role, message);
        """
    )


@migrations(name="0018_outreach_bucket_indexes")
def m0018_outreach_bucket_indexes(db: Database) -> None:
    # A pass recounts the buckets of every stored ask: per dimension, the counts from one of
    # these indexes alone and each median from a seek into it, instead of every ask read into
    # Python (0.17-0.26 s of the derived stages after 100 new messages at 100,000).
    db.executescript("\n".join(
        f"CREATE INDEX IF NOT EXISTS outreach_asks_{dim} ON outreach_asks ({dim}, replied, response_seconds);"
        for dim in ("words", "questions", "personalized", "mass", "connection", "weekday", "hour")))


@migrations(name="0019_contact_message_times")
def m0019_contact_message_times(db: Database) -> None:
    # A pass re-derives a contact from its stored rows plus the few messages they cannot hold
    # yet, instead of joining every message of that contact again by address: each row keeps
    # when the message counts and its subject (what the ledger reads of it). The next pass is
    # a full one, which writes the rows again with them.
    db.executescript(
        """
        ALTER TABLE contact_messages ADD COLUMN at TEXT;
        ALTER TABLE contact_messages ADD COLUMN subject TEXT;
        DELETE FROM contact_messages;
        DELETE FROM pipeline_state WHERE name = 'derived';
        """
    )


@migrations(name="0020_meeting_contacts_by_contact")
def m0020_meeting_contacts_by_contact(db: Database) -> None:
    db.executescript(
        """
        -- A pass reads the meetings of the contacts it re-derives; keyed (meeting, contact_id),
        -- that read probed every meeting once per contact in scope.
        CREATE INDEX IF NOT EXISTS meeting_contacts_contact ON meeting_contacts (contact_id, meeting);
        """
    )


@migrations(name="0021_mail_counts")
def m0021_mail_counts(db: Database) -> None:
    # Every pass compares the mail's size with the last pass's, to know whether anything came
    # or went. Counting the rows read a whole index each time (0.15-0.23 s of a pass with
    # nothing new at a million messages); triggers keep the counts instead, whoever writes.
    triggers = []
    for table, column in (("messages", "messages"), ("message_addresses", "addresses"),
                          ("calendar_parts", "calendar_parts")):
        for event, step in (("INSERT", "+"), ("DELETE", "-")):
            triggers.append(
                f"CREATE TRIGGER mail_counts_{table}_{event.lower()} AFTER {event} ON {table} "
                f"BEGIN UPDATE mail_counts SET {column} = {column} {step} 1; END;")
    db.executescript(
        """
        CREATE TABLE mail_counts (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            messages INTEGER NOT NULL,
            addresses INTEGER NOT NULL,
            calendar_parts INTEGER NOT NULL
        );
        INSERT INTO mail_counts VALUES (1, (SELECT count(*) FROM messages),
            (SELECT count(*) FROM message_addresses), (SELECT count(*) FROM calendar_parts));
        """ + "\n".join(triggers))


@migrations(name="0022_outgoing_by_account")
def m0022_outgoing_by_account(db: Database) -> None:
    db.executescript(
        """
        -- Every sync asks whether the account has any mail from the user's own addresses (a
        -- wrong `addresses` makes every message incoming). Counting them read the whole table
        -- (0.25 s at a million messages, seconds with a cold cache, as INBOX comes first).
        CREATE INDEX IF NOT EXISTS messages_outgoing ON messages (account, gone) WHERE direction = 'outgoing';
        """
    )


@migrations(name="0023_folder_counts")
def m0023_folder_counts(db: Database) -> None:
    # A sync that finds new mail checks for expunges by counting the folder's live locations
    # against the server's EXISTS. Counting them read the folder's whole key range (0.19 s for
    # 570,000 in INBOX); triggers keep each folder's count instead, whoever writes.
    db.executescript(
        """
        CREATE TABLE folder_counts (
            account TEXT NOT NULL,
            folder TEXT NOT NULL,
            live INTEGER NOT NULL,
            PRIMARY KEY (account, folder)
        );
        INSERT INTO folder_counts (account, folder, live)
            SELECT account, folder, count(*) FROM message_folders WHERE gone = 0 GROUP BY account, folder;
        CREATE TRIGGER folder_counts_insert AFTER INSERT ON message_folders WHEN NEW.gone = 0
        BEGIN
            INSERT INTO folder_counts (account, folder, live) VALUES (NEW.account, NEW.folder, 1)
                ON CONFLICT (account, folder) DO UPDATE SET live = live + 1;
        END;
        CREATE TRIGGER folder_counts_delete AFTER DELETE ON message_folders WHEN OLD.gone = 0
        BEGIN
            UPDATE folder_counts SET live = live - 1 WHERE account = OLD.account AND folder = OLD.folder;
        END;
        CREATE TRIGGER folder_counts_update AFTER UPDATE OF account, folder, gone ON message_folders
            WHEN OLD.gone != NEW.gone OR OLD.account != NEW.account OR OLD.folder != NEW.folder
        BEGIN
            UPDATE folder_counts SET live = live - 1
                WHERE OLD.gone = 0 AND account = OLD.account AND folder = OLD.folder;
            INSERT INTO folder_counts (account, folder, live) SELECT NEW.account, NEW.folder, 1 WHERE NEW.gone = 0
                ON CONFLICT (account, folder) DO UPDATE SET live = live + 1;
        END;
        """
    )
