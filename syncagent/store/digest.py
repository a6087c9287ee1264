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
