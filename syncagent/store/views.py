"""Views declared as data and (re)created idempotently after migrations."""

from __future__ import annotations

from sqlite_utils import Database

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
    "COALESCE(l.reached, 0) AS reached, l.responsiveness "
    "FROM contacts c LEFT JOIN contact_ledger l ON l.contact_id = c.id"
)

# One row per target company (the contacts' company, trimmed and compared case-insensitively,
# as ledger/companies.py does): people tracked, reached, replied, reply rate, and what is owed
# to the people there (open reminders due as of the last derived pass, the clock the ledger
# rows were computed at, so the view agrees with the tables it reads).
VIEWS["companies"] = (
    "WITH people AS ("
    " SELECT c.id, trim(c.company) AS company, lower(trim(c.company)) AS company_key,"
    " COALESCE(l.reached, 0) AS reached, COALESCE(l.replied, 0) AS replied"
    " FROM contacts c LEFT JOIN contact_ledger l ON l.contact_id = c.id"
    " WHERE c.company IS NOT NULL AND trim(c.company) != ''), "
    "owed AS ("
    " SELECT p.company_key, count(*) AS owed,"
    " group_concat(r.kind, ', ') AS owed_kinds"
    " FROM reminders r JOIN people p ON p.id = r.contact_id"
    " WHERE r.status = 'open' AND r.due_at <= (SELECT max(computed_at) FROM contact_ledger)"
    " GROUP BY p.company_key) "
    "SELECT (SELECT company FROM people q WHERE q.company_key = p.company_key ORDER BY q.id LIMIT 1) AS company,"
    " p.company_key, count(*) AS tracked, sum(p.reached) AS reached, sum(p.replied) AS replied,"
    " CASE WHEN sum(p.reached) > 0 THEN round(1.0 * sum(p.replied) / sum(p.reached), 4) END AS reply_rate,"
    " COALESCE(o.owed, 0) AS owed, o.owed_kinds "
    "FROM people p LEFT JOIN owed o ON o.company_key = p.company_key "
    "GROUP BY p.company_key ORDER BY company"
)


def ensure(db: Database) -> None:
    current = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'").fetchall())
    for name, select in VIEWS.items():
        wanted = f"CREATE VIEW {name} AS {select}"
        if current.get(name) != wanted:
            with db.conn:
                db.execute(f"DROP VIEW IF EXISTS {name}")
                db.execute(wanted)
