"""The contacts a user tracks: add/update/find/list (addresses keyed by ``parse.addresses``).

A contact is found by ANY of its addresses, so adding or importing the same
person twice (even under another of their addresses) updates one row and never
makes a second. File readers live in ``contacts.importing``; the rows are read and
written by ``store.contacts``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from syncagent.errors import InputError
from syncagent.parse.addresses import normalize_address
from syncagent.store import contacts as rows
from syncagent.store.contacts import FIELDS, ContactRow
from syncagent.store.db import transaction
from syncagent.timeutil import iso, utcnow

log = logging.getLogger(__name__)

def split_addresses(cell: str | None) -> list[str]:
    """Split a cell holding several addresses: ';' always, ',' only when every piece has an '@'.

    ``"Doe, Jane <jane@x.org>"`` stays one piece because ``"Doe"`` holds no '@'.
    """
    if not cell:
        return []
    pieces: list[str] = []
    for part in cell.split(";"):
        part = part.strip()
        if not part:
            continue
        commas = [p.strip() for p in part.split(",") if p.strip()]
        if len(commas) > 1 and all("@" in p for p in commas):
            pieces.extend(commas)
        else:
            pieces.append(part)
    return pieces


# Google Contacts puts every contact in this group: it says nothing about the person.
_SYSTEM_GROUPS = {"mycontacts"}


def normalize_tags(value) -> str | None:
    """Tags as one ``"a, b"`` text whether given as a list or a ';'/','-separated cell."""
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else re.split(r"[;,]|:::", str(value))
    tags: list[str] = []
    for item in items:
        item = str(item).strip().lstrip("* ").strip()  # Google marks its system groups with "* "
        if item and item.lower() not in _SYSTEM_GROUPS and item not in tags:
            tags.append(item)
    return ", ".join(tags) or None


def parse_cadence(value) -> float | None:
    """A per-contact check-in interval in days; raises ValueError for a non-positive or non-number."""
    if value is None or str(value).strip() == "":
        return None
    days = float(str(value).strip())
    if not days > 0 or days != days or days == float("inf"):
        raise ValueError(value)
    return days


@dataclass
class ContactInput:
    """One person as a reader or the CLI gives it: raw address strings, optional fields."""

    name: str | None = None
    addresses: list[str] = field(default_factory=list)
    company: str | None = None
    title: str | None = None
    segment: str | None = None
    tags: str | None = None
    notes: str | None = None
    url: str | None = None
    cadence_days: float | None = None


class Conflict(Exception):
    """The addresses of one input belong to two different existing contacts."""


class BadInput(Exception):
    """The input has no usable address (the message is the skip reason)."""


def clean_addresses(raw: list[str]) -> list[str]:
    """Normalise and de-duplicate, keeping order; BadInput names the first bad one or says none were given."""
    out: list[str] = []
    for piece in raw:
        addr = normalize_address(piece)
        if addr is None:
            raise BadInput(f"bad address {piece.strip()!r}")
        if addr not in out:
            out.append(addr)
    if not out:
        raise BadInput("no address")
    return out


def upsert(conn, item: ContactInput, now: str | None = None) -> tuple[str, int]:
    """Add or update one contact inside the caller's transaction.

    Returns (``"added"`` | ``"updated"`` | ``"unchanged"``, contact id). Only
    non-empty values overwrite; new addresses are appended after the existing
    ones, so the first (primary) address never changes under the user.
    """
    now = now or iso(utcnow())
    addresses = clean_addresses(item.addresses)
    values = _values(item)
    owners = rows.load_owners(conn, addresses)
    if len(owners) > 1:
        raise Conflict(f"its addresses belong to two contacts ({owners[0]} and {owners[1]})")
    if not owners:
        values.setdefault("name", addresses[0])  # name is required; the address stands in
        return "added", rows.save_new_contact(conn, values, addresses, now)
    contact_id = owners[0]
    current = rows.load_values(conn, contact_id)
    changed = {k: v for k, v in values.items() if current.get(k) != v}
    known = rows.load_positions(conn, contact_id)
    new = [a for a in addresses if a not in known]
    if not changed and not new:
        return "unchanged", contact_id
    rows.save_changes(conn, contact_id, changed, now)
    rows.save_addresses(conn, contact_id, new, start=max(known.values(), default=-1) + 1)
    return "updated", contact_id


def _values(item: ContactInput) -> rows.Values:
    """The non-empty fields of an input, stripped; empty strings never overwrite."""
    out = {}
    for name in FIELDS:
        value = getattr(item, name)
        if isinstance(value, str):
            value = " ".join(value.split()) if name != "notes" else value.strip()
        if value is None or value == "":
            continue
        out[name] = value
    if "tags" in out:
        out["tags"] = normalize_tags(out["tags"])
    return out


def add(db, item: ContactInput) -> tuple[str, int]:
    """Add or update one contact in its own transaction; InputError for a bad address or a conflict."""
    try:
        with transaction(db, "contact") as conn:
            return upsert(conn, item)
    except (BadInput, Conflict) as exc:
        shown = ", ".join(item.addresses) or "(none)"
        raise InputError(f"Cannot add {shown}: {exc}; give at least one valid address that no other contact has.") from None


def find(db, address: str) -> ContactRow | None:
    """The contact holding ``address`` (any of its addresses), or None."""
    addr = normalize_address(address)
    if addr is None:
        return None
    contact_id = rows.load_owner(db, addr)
    return get(db, contact_id) if contact_id is not None else None


def get(db, contact_id: int) -> ContactRow | None:
    found = list_contacts(db, ids=[contact_id])
    return found[0] if found else None


def list_contacts(db, ids: list[int] | None = None) -> list[ContactRow]:
    """Every contact (or those in ``ids``) with its addresses in order and its ledger state if known."""
    return rows.load_contacts(db, ids)
