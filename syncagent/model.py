"""Plain records passed from sources to the store. Sources never touch SQLite."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Address:
    role: str  # from | to | cc | bcc
    address: str  # normalized, lower-case
    name: str | None = None


@dataclass(frozen=True)
class Message:
    """One message as seen in one folder of one account, normalized."""

    message_id: str  # without angle brackets; a stable hash where the header is missing
    date: str  # ISO 8601 UTC: the Date header, else the arrival time
    date_source: str  # "header" | "arrival"
    arrived_at: str | None
    from_address: str | None
    from_name: str | None
    subject: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    addresses: tuple[Address, ...]
    automatic: bool
    automatic_reason: str | None
    size: int | None = None
    list_id: str | None = None
    thread_hint: str | None = None  # Gmail's thread id where the source has one
    gmail_id: str | None = None  # Gmail's message id (hex) where the source has one
    snippet: str | None = None
    calendar: str | None = None  # the text/calendar part, for meetings
    has_calendar: bool = False
    defects: int = 0
    auto_reply: bool = False  # automatic and written for a person (out of office), not a bounce
    ooo_until: str | None = None  # an auto-reply's stated return date (ISO date), read at sync time
    # Numbers measured from the user's own sent text (parse.outreach.Measures); the text is not kept.
    outreach: Any = None


@dataclass(frozen=True)
class Seen:
    """Where a message was seen: folder plus its location there (UID or local key)."""

    folder: str
    location: str
    uid: int | None = None
    uidvalidity: int | None = None
    labels: tuple[str, ...] = ()


class _Keep:
    """The stored value stays as it is (a cursor that moves only some of its fields)."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


@dataclass(frozen=True)
class FolderCursor:
    """Where a folder pass stands (``folder_state``): IMAP UIDs, or a local folder's message count.

    A field left as KEEP keeps its stored value, so a chunk can move ``last_uid`` alone.
    """

    uidvalidity: int | None = KEEP
    last_uid: int | None = KEEP
    uidnext: int | None = KEEP
    messages: int | None = KEEP
    highestmodseq: int | None = KEEP
    complete: int | None = KEEP  # 1 once a pass over the folder finished

    def values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not KEEP}


@dataclass(frozen=True)
class GmailCursor:
    """Where a Gmail sync stands (``gmail_state``), written whole.

    ``history_id`` after a complete pass; during a full listing ``pending_history_id`` (the
    history id read before it started) and ``page_token`` (where to resume) instead.
    """

    history_id: str | None
    pending_history_id: str | None = None
    page_token: str | None = None


@dataclass
class Batch:
    """What a source hands the store to commit in one transaction.

    ``cursor`` is saved in the same transaction as ``items``, so a sync killed
    between batches resumes exactly after the last committed one.
    """

    items: list[tuple[Message, Seen]] = field(default_factory=list)
    folder: str | None = None
    cursor: FolderCursor | GmailCursor | None = None
    gone: list[str] = field(default_factory=list)  # locations removed from ``folder``
    gone_gmail_ids: list[str] = field(default_factory=list)
    reset_folder: bool = False  # UIDVALIDITY changed: forget the folder's old locations
    total: int | None = None  # how many items the folder pass expects, for progress
    # New Gmail labels of messages already stored, by location in ``folder``
    # (a label-only change: the messages themselves are not refetched).
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
