"""Views declared as data and (re)created idempotently after migrations."""

from __future__ import annotations

# name -> SELECT. Views only read tables, so replacing them is always safe.
VIEWS: dict[str, str] = {}

# One row per contact (DESIGN.md contract): contacts without any mail show reached and
# replied 0, zero counts and no state. Every figure is the stored contact_ledger's
# (syncagent.ledger.figures.of_contact), never worked out here.
VIEWS["contact_summary"] = (
    "SELECT c.id AS contact_id, c.name, c.company, c.segment, "
    "l.first_outreach_at, l.first_reply_at, l.first_response_hours, l.median_response_hours, "
    "COALESCE(l.replied, 0) AS replied, COALESCE(l.messages_sent, 0) AS messages_sent, "
    "COALESCE(l.messages_received, 0) AS messages_received, l.last_interaction_at, l.state, "
    "COALESCE(l.reached, 0) AS reached "
    "FROM contacts c LEFT JOIN contact_ledger l ON l.contact_id = c.id"
)


def ensure(db) -> None:
    current = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'").fetchall())
    for name, select in VIEWS.items():
        wanted = f"CREATE VIEW {name} AS {select}"
        if current.get(name) != wanted:
            with db.conn:
                db.execute(f"DROP VIEW IF EXISTS {name}")
                db.execute(wanted)
