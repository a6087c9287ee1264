"""The start of a message's first text part, for the few rules that read text at sync time.

Out-of-office return dates and the measures of the user's own outreach read at
most a few KB of the first inline text part (plain, else HTML as text); the text
itself is never stored. Pure: an ``email.message.Message`` in, text out.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable
from email.message import Message
from typing import TypeVar

log = logging.getLogger(__name__)
P = TypeVar("P")  # a MIME part, however a source holds it

_TAG = re.compile(r"<[^>]*>")
_BLOCK = re.compile(r"<(?:br|/p|/div|/li|/tr|/h\d)\b[^>]*>", re.IGNORECASE)


def html_text(text: str) -> str:
    """HTML as plain text: block ends become line breaks, tags go, entities are decoded."""
    return html.unescape(_TAG.sub(" ", _BLOCK.sub("\n", text)))


def pick_text_part(parts: Iterable[tuple[str, P]]) -> tuple[str, P] | None:
    """The first ``plain`` part, else the first ``html`` one, from (text subtype, part) pairs in MIME order.

    Stops reading at the first plain part. Every source chooses a message's text by this one rule.
    """
    html_part: tuple[str, P] | None = None
    for subtype, part in parts:
        if subtype == "plain":
            return subtype, part
        if subtype == "html" and html_part is None:
            html_part = subtype, part
    return html_part


def part_text(raw: bytes, charset: str | None, subtype: str) -> str:
    """A text part's bytes as text: by its charset (UTF-8 when unknown or unheard of), HTML as plain text."""
    try:
        text = raw.decode(charset or "utf-8", "replace")
    except LookupError:
        text = raw.decode("utf-8", "replace")
    return html_text(text) if subtype == "html" else text


def first_text(message: Message, limit: int) -> str | None:
    """The first ``limit`` bytes of the first inline text part, decoded; None when there is none."""
    try:
        picked = pick_text_part(
            (part.get_content_subtype(), part) for part in message.walk()
            if part.get_content_maintype() == "text" and part.get_content_disposition() != "attachment")
        if picked is None:
            return None
        subtype, chosen = picked
        payload = chosen.get_payload(decode=True)
        raw = (payload if isinstance(payload, bytes) else b"")[:limit]
        return part_text(raw, chosen.get_content_charset(), subtype)
    except Exception:  # broken MIME: no text, the message itself is still stored
        log.debug("no text part read", exc_info=True)
        return None
