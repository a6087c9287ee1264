"""The weekly digests written and sent (``digests``, one row per ISO week)."""

from __future__ import annotations

from sqlite_utils import Database


def save_digest_written(db: Database, week: str, generated_at: str, markdown_path: str, html_path: str) -> None:
    """Record the files of ``week``'s digest; a rewrite keeps when (and where) it was sent."""
    db.table("digests").upsert({"week": week, "generated_at": generated_at, "markdown_path": markdown_path,
                                "html_path": html_path}, pk="week")


def save_digest_sent(db: Database, week: str, sent_at: str, sent_to: str) -> None:
    """Record where ``week``'s digest (already recorded as written) went."""
    db.execute("UPDATE digests SET sent_at = ?, sent_to = ? WHERE week = ?", [sent_at, sent_to, week])


# --- what the digest reads of the derived tables (when it shows the stored state) -----------

def load_week_reply_seconds(db: Database, start: str, end: str) -> list[tuple[int, int]]:
    """(contact id, response seconds) of each stored reply received in [``start``, ``end``)."""
    return [(int(cid), int(s)) for cid, s in db.execute(
        "SELECT contact_id, response_seconds FROM replies WHERE replied_at >= ? AND replied_at < ?", [start, end])]


def load_quiet_inputs(db: Database) -> list[tuple[int, str | None, str | None, str | None, bool]]:
    """(contact id, state, last interaction, last message's date, replied) of every stored ledger row;
    the last message's date is read only for ACKED rows, the only ones that need it."""
    return [(int(cid), state, last, last_message, bool(replied)) for cid, state, last, last_message, replied in db.execute(
        "SELECT l.contact_id, l.state, l.last_interaction_at, CASE WHEN l.state = 'ACKED' THEN "
        "(SELECT max(m.date) FROM contact_messages cm JOIN messages m ON m.id = cm.message "
        "WHERE cm.contact_id = l.contact_id) END, l.replied FROM contact_ledger l")]
