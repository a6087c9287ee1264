"""The start of a message's first text part, for the few rules that read text at sync time.

Out-of-office return dates and the measures of the user's own outreach read at
most a few KB of the first inline text part (plain, else HTML as text); the text
itself is never stored. Pure: an ``email.message.Message`` in, text out.
"""

from __future__ import annotations

import html
import logging
import re
from email.message import Message

log = logging.getLogger(__name__)

_TAG = re.compile(r"<[^>]*>")
_BLOCK = re.compile(r"<(?:br|/p|/div|/li|/tr|/h\d)\b[^>]*>", re.IGNORECASE)


def html_text(text: str) -> str:
    """HTML as plain text: block ends become line breaks, tags go, entities are decoded."""
    return html.unescape(_TAG.sub(" ", _BLOCK.sub("\n", text)))


def first_text(message: Message, limit: int) -> str | None:
    """The first ``limit`` bytes of the first inline text part, decoded; None when there is none."""
    try:
        found: dict[str, Message] = {}
        for part in message.walk():
            if part.get_content_maintype() != "text" or part.get_content_disposition() == "attachment":
                continue
            sub = part.get_content_subtype()
            if sub in ("plain", "html") and sub not in found:
                found[sub] = part
            if "plain" in found:
                break
        chosen = found.get("plain") or found.get("html")
        if chosen is None:
            return None
        payload = chosen.get_payload(decode=True)
        raw = (payload if isinstance(payload, bytes) else b"")[:limit]
        charset = chosen.get_content_charset() or "utf-8"
        try:
            text = raw.decode(charset, "replace")
        except LookupError:
            text = raw.decode("utf-8", "replace")
        return html_text(text) if chosen.get_content_subtype() == "html" else text
    except Exception:  # broken MIME: no text, the message itself is still stored
        log.debug("no text part read", exc_info=True)
        return None
