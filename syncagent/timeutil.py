"""ISO 8601 UTC text, the one timestamp format of the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

# Tests inject a clock here (``set_clock``) so nothing they assert depends on today's date.
_clock: Callable[[], datetime] | None = None


def utcnow() -> datetime:
    return _clock() if _clock is not None else datetime.now(timezone.utc)


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """Make ``utcnow`` read ``clock`` (None: the system clock again)."""
    global _clock
    _clock = clock


def iso(dt: datetime) -> str:
    """``2026-11-20T17:00:00Z``: naive datetimes are taken as UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    elif dt.tzinfo is not timezone.utc:
        dt = dt.astimezone(timezone.utc)
    # Formatted by hand: strftime was a tenth of parsing a message's headers.
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}Z"


def parse_iso(text: str) -> datetime:
    """Parse ISO 8601 (``Z`` or an offset; a date alone is midnight UTC) into aware UTC."""
    text = text.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)
