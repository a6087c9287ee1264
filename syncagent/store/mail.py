"""Reads over the stored mail headers (``messages``, ``message_addresses``) that are not the ledger's,
and the one derived column of ``messages`` (its direction, from the configured own addresses)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from sqlite_utils import Database

_WANTED = "CASE WHEN from_address IN (SELECT value FROM json_each(:own)) THEN 'outgoing' ELSE 'incoming' END"
_DIRECTION_SQL = f"UPDATE messages SET direction = {_WANTED} WHERE account = :account AND direction != {_WANTED}"


class Correspondence(NamedTuple):
    """One person on one personal message."""

    direction: str  # the message's: outgoing | incoming
    address: str
    name: str | None
    date: str
    subject: str | None


def load_correspondence(db: Database, own: Iterable[str], max_recipients: int) -> list[Correspondence]:
    """Each untracked person on each personal message, oldest first.

    Outgoing: everyone the user addressed (To, Cc, Bcc). Incoming: the sender. A message
    counts when it is not automatic, carries no List-Id and has from 1 to
    ``max_recipients`` recipients; the user's own addresses and tracked contacts are left out.
    """
    sql = """
        WITH personal AS (
            SELECT m.id, m.direction, m.date, m.subject FROM messages m
            WHERE m.automatic = 0 AND m.list_id IS NULL
              AND (SELECT count(*) FROM message_addresses r WHERE r.message = m.id AND r.role IN ('to', 'cc'))
                  BETWEEN 1 AND :max_recipients
        ),
        mine AS (
            SELECT DISTINCT from_address AS address FROM messages
            WHERE direction = 'outgoing' AND from_address IS NOT NULL
        )
        SELECT p.direction, a.address, a.name, p.date, p.subject
        FROM personal p JOIN message_addresses a ON a.message = p.id
        WHERE ((p.direction = 'outgoing' AND a.role IN ('to', 'cc', 'bcc'))
               OR (p.direction = 'incoming' AND a.role = 'from'))
          AND a.address NOT IN (SELECT address FROM contact_emails)
          AND a.address NOT IN (SELECT address FROM mine)
          AND a.address NOT IN (SELECT value FROM json_each(:own))
        ORDER BY p.date, p.id
    """
    own_json = json.dumps(sorted({a.lower() for a in own}))
    rows = db.execute(sql, {"max_recipients": max_recipients, "own": own_json}).fetchall()
    return [Correspondence(*row) for row in rows]


def has_messages(db: Database) -> bool:
    """Whether any message is stored (gone or not)."""
    return bool(db.execute("SELECT EXISTS (SELECT 1 FROM messages)").fetchone()[0])


def save_directions(conn: sqlite3.Connection, account: str, own: list[str]) -> int:
    """Set the direction of ``account``'s messages from their From address against ``own``; return rows changed.

    One statement, writing only the rows whose direction changes.
    """
    return conn.execute(_DIRECTION_SQL, {"account": account, "own": json.dumps(own)}).rowcount
