"""The full-text index over message subjects and snippets (Datasette's search box)."""

from __future__ import annotations

from sqlite_utils import Database


def catch_up(db: Database) -> int:
    """Index the messages added since the last pass; return how many.

    Messages are never deleted and ids only grow, so the rows past the index's
    highest rowid are exactly the new ones. Subject or snippet changes are kept
    in step by the ``messages_au`` trigger.
    """
    conn = db.conn
    # The index reads its rows from `messages` (external content), so what it holds is
    # told by its own shadow table, one row per indexed message.
    last = conn.execute("SELECT coalesce(max(id), 0) FROM messages_fts_docsize").fetchone()[0]
    cur = conn.execute(
        "INSERT INTO messages_fts (rowid, subject, snippet) SELECT id, subject, snippet FROM messages WHERE id > ?",
        [last],
    )
    return max(int(cur.rowcount), 0)
