"""The contact book's tables: ``contacts`` and the addresses that find them (``contact_emails``).

The rules (what an input means, which values overwrite, when two contacts
conflict) live in ``syncagent.contacts``; this module only reads and writes
rows. The writes run on the caller's connection inside its transaction, so an
import of tens of thousands of rows stays one transaction of plain statements.
"""

from __future__ import annotations

import sqlite3
from typing import NotRequired, TypedDict, cast

from sqlite_utils import Database

# The fields a user can set, in display order. ``url`` comes from LinkedIn exports.
FIELDS = ("name", "company", "title", "segment", "tags", "notes", "url", "cadence_days")
_SETTABLE = frozenset(FIELDS)

# A contact's settable fields that have a value (column -> value).
Values = dict[str, str | float | None]


class ContactRow(TypedDict):
    """One contact as every surface shows it (``contacts list --json``), in this key order."""

    id: int
    name: str
    company: str | None
    title: str | None
    segment: str | None
    tags: str | None
    notes: str | None
    url: str | None
    cadence_days: float | None
    created_at: str
    updated_at: str
    emails: list[str]
    email: str | None
    # Present once the ledger stage has run (or a command computed them for --now).
    state: NotRequired[str | None]
    responsiveness: NotRequired[str | None]


class ContactBasics(TypedDict):
    """What the digest needs of a contact."""

    id: int
    name: str
    company: str | None
    segment: str | None
    cadence_days: float | None


def _columns(values: Values) -> list[str]:
    unknown = set(values) - _SETTABLE
    if unknown:  # column names are spliced into SQL: only the known fields may ever get there
        raise ValueError(f"not contact fields: {sorted(unknown)}")
    return list(values)


# --- reads -------------------------------------------------------------------

def load_owners(conn: sqlite3.Connection, addresses: list[str]) -> list[int]:
    """The ids of the contacts holding any of these (normalized) addresses, ascending."""
    marks = ",".join("?" for _ in addresses)
    rows = conn.execute(f"SELECT contact_id FROM contact_emails WHERE address IN ({marks})", addresses)
    return sorted({int(r[0]) for r in rows})


def load_owner(db: Database | sqlite3.Connection, address: str) -> int | None:
    """The id of the contact holding this (normalized) address, or None."""
    row = db.execute("SELECT contact_id FROM contact_emails WHERE address = ?", [address]).fetchone()
    return int(row[0]) if row else None


def load_values(conn: sqlite3.Connection, contact_id: int) -> dict[str, object]:
    """The settable fields of one contact as stored (None where empty)."""
    row = conn.execute(f"SELECT {', '.join(FIELDS)} FROM contacts WHERE id = ?", [contact_id]).fetchone()
    return dict(zip(FIELDS, row))


def load_positions(conn: sqlite3.Connection, contact_id: int) -> dict[str, int]:
    """A contact's addresses mapped to their position (0 is the primary address)."""
    return {str(r[0]): int(r[1]) for r in conn.execute(
        "SELECT address, position FROM contact_emails WHERE contact_id = ?", [contact_id])}


def load_contacts(db: Database, ids: list[int] | None = None) -> list[ContactRow]:
    """Every contact (or those in ``ids``) by id, with its addresses in order and its ledger state if known."""
    where, args = "", []
    if ids is not None:
        where = f"WHERE id IN ({', '.join('?' for _ in ids)})"
        args = list(ids)
    cur = db.execute(f"SELECT id, {', '.join(FIELDS)}, created_at, updated_at FROM contacts {where} ORDER BY id", args)
    cols = [d[0] for d in cur.description]
    rows = [cast(ContactRow, dict(zip(cols, r))) for r in cur.fetchall()]
    emails: dict[int, list[str]] = {}
    for contact_id, address in db.execute(
        "SELECT contact_id, address FROM contact_emails ORDER BY contact_id, position, address"
    ):
        emails.setdefault(contact_id, []).append(address)
    states = load_ledger_states(db)
    for row in rows:
        row["emails"] = emails.get(row["id"], [])
        row["email"] = row["emails"][0] if row["emails"] else None
        if states is not None:
            row["state"], row["responsiveness"] = states.get(row["id"], (None, None))
    return rows


def load_ledger_states(db: Database) -> dict[int, tuple[str | None, str | None]] | None:
    """contact id -> (ledger state, responsiveness), from ``contact_ledger`` when the ledger stage made it."""
    cols = {r[1] for r in db.execute("PRAGMA table_info(contact_ledger)").fetchall()}
    if not {"contact_id", "state", "responsiveness"} <= cols:
        return None
    return {int(cid): (state, cls) for cid, state, cls in
            db.execute("SELECT contact_id, state, responsiveness FROM contact_ledger").fetchall()}


def load_names(db: Database) -> list[tuple[int, str]]:
    """(id, name) of every contact, by id."""
    return [(int(r[0]), str(r[1])) for r in db.execute("SELECT id, name FROM contacts ORDER BY id")]


def load_basics(db: Database) -> dict[int, ContactBasics]:
    """Every contact's name, company, segment and cadence, by id."""
    rows = db.execute("SELECT id, name, company, segment, cadence_days FROM contacts").fetchall()
    return {r[0]: {"id": r[0], "name": r[1], "company": r[2], "segment": r[3], "cadence_days": r[4]} for r in rows}


def count_contacts(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM contacts").fetchone()[0])


# --- writes (inside the caller's transaction) --------------------------------

def save_new_contact(conn: sqlite3.Connection, values: Values, addresses: list[str], now: str) -> int:
    """Insert a contact with its addresses (the first one primary); returns its id."""
    cols = [*_columns(values), "created_at", "updated_at"]
    cur = conn.execute(
        f"INSERT INTO contacts ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
        [*values.values(), now, now],
    )
    contact_id = int(cur.lastrowid or 0)
    save_addresses(conn, contact_id, addresses, start=0)
    return contact_id


def save_changes(conn: sqlite3.Connection, contact_id: int, changed: Values, now: str) -> None:
    """Set these fields (none: only ``updated_at``) of one contact."""
    sets = "".join(f"{k} = ?, " for k in _columns(changed))
    conn.execute(f"UPDATE contacts SET {sets}updated_at = ? WHERE id = ?", [*changed.values(), now, contact_id])


def save_addresses(conn: sqlite3.Connection, contact_id: int, addresses: list[str], start: int) -> None:
    """Give a contact these new addresses, at positions ``start``, ``start + 1``, ..."""
    conn.executemany(
        "INSERT INTO contact_emails (address, contact_id, position) VALUES (?, ?, ?)",
        [(a, contact_id, start + i) for i, a in enumerate(addresses)],
    )


def save_merged_address(conn: sqlite3.Connection, contact_id: int, address: str, now: str) -> None:
    """Add one address after a contact's others (kept as it is if the contact has it already)."""
    start = conn.execute("SELECT coalesce(max(position), -1) + 1 FROM contact_emails WHERE contact_id = ?",
                         [contact_id]).fetchone()[0]
    conn.execute("INSERT OR IGNORE INTO contact_emails (address, contact_id, position) VALUES (?, ?, ?)",
                 [address, contact_id, start])
    save_changes(conn, contact_id, {}, now)


def load_people(conn: sqlite3.Connection) -> list[tuple[int, str, str | None]]:
    """(id, name, company) of every contact, by id."""
    return conn.execute("SELECT id, name, company FROM contacts ORDER BY id").fetchall()


def load_address_owners(conn: sqlite3.Connection) -> dict[str, int]:
    """Every tracked address -> its contact's id."""
    return dict(conn.execute("SELECT address, contact_id FROM contact_emails").fetchall())


def load_ordered_addresses(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    """(contact id, address) of every tracked address, each contact's in their order (first is the main one)."""
    return conn.execute("SELECT contact_id, address FROM contact_emails ORDER BY contact_id, position, address").fetchall()
