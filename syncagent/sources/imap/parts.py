"""Body parts for the IMAP source: walking BODYSTRUCTURE, decoding parts, snippets.

Kept apart from ``imap.py`` so the protocol loop stays readable. Nothing here
talks to the server: the source fetches the part these helpers name, and hands
the bytes back to be decoded.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
from collections.abc import Iterator
from html.parser import HTMLParser

MAX_CALENDAR_BYTES = 1_000_000  # an invitation is a few KB; never pull a huge part
SNIPPET_BYTES = 1024  # the partial fetch: enough encoded text for ~200 characters
SNIPPET_CHARS = 200


def text(v) -> str:
    if isinstance(v, bytes):
        return v.decode("ascii", "replace")
    return "" if v is None else str(v)


def label(value) -> str:
    """One X-GM-LABELS entry (modified UTF-7 bytes) as text."""
    from imapclient import imap_utf7

    if isinstance(value, bytes):
        return imap_utf7.decode(value)
    return str(value)


# --- BODYSTRUCTURE ---------------------------------------------------------------

def _leaves(bs, prefix: str = "") -> Iterator[tuple[str, tuple]]:
    """Yield (part number, leaf) depth-first; a message/rfc822 part is a leaf (not descended)."""
    multipart = bs.is_multipart if hasattr(bs, "is_multipart") else isinstance(bs[0], list)
    if multipart:
        for i, sub in enumerate(bs[0], start=1):
            yield from _leaves(sub, f"{prefix}{i}.")
    else:
        yield prefix.rstrip(".") or "1", bs


def _params(leaf) -> dict[str, str]:
    params = leaf[2] if isinstance(leaf[2], tuple) else ()
    return dict(zip([text(p).lower() for p in params[::2]], [text(p) for p in params[1::2]]))


def _is_attachment(leaf) -> bool:
    # A text/* leaf: type, subtype, params, id, description, encoding, size, lines, md5, disposition.
    disp = leaf[9] if len(leaf) > 9 else None
    return isinstance(disp, tuple) and bool(disp) and text(disp[0]).lower() == "attachment"


def find_calendar(bs) -> tuple[str, str, str] | None:
    """Return (part number, transfer encoding, charset) of the first text/calendar part."""
    try:
        for part, leaf in _leaves(bs):
            if text(leaf[0]).lower() == "text" and text(leaf[1]).lower() == "calendar":
                size = leaf[6] if len(leaf) > 6 and isinstance(leaf[6], int) else 0
                if size > MAX_CALENDAR_BYTES:
                    return None
                return part, text(leaf[5]).lower(), _params(leaf).get("charset", "utf-8")
    except (IndexError, TypeError, AttributeError):
        return None  # an odd structure: no calendar, the message itself is still stored
    return None


def find_text(bs) -> tuple[str, str, str, str] | None:
    """Return (part number, subtype, transfer encoding, charset) of the part a snippet comes from.

    The first inline text/plain part, else the first inline text/html part.
    """
    try:
        found: dict[str, tuple[str, str, str, str]] = {}
        for part, leaf in _leaves(bs):
            if text(leaf[0]).lower() != "text" or _is_attachment(leaf):
                continue
            sub = text(leaf[1]).lower()
            if sub in ("plain", "html") and sub not in found:
                found[sub] = (part, sub, text(leaf[5]).lower(), _params(leaf).get("charset", "utf-8"))
            if "plain" in found:
                break
        return found.get("plain") or found.get("html")
    except (IndexError, TypeError, AttributeError):
        return None


# --- decoding --------------------------------------------------------------------

_CUT_QP_ESCAPE = re.compile(rb"=[0-9A-Fa-f]?$")


def decode_part(raw: bytes, encoding: str, charset: str, *, partial: bool = False) -> str:
    """Undo the transfer encoding and the charset; ``partial``: raw is only the start of the part."""
    try:
        if encoding == "base64":
            if partial:
                raw = re.sub(rb"[^A-Za-z0-9+/=]", b"", raw)
                raw = raw[: len(raw) - len(raw) % 4]  # a cut quantum cannot be decoded
            raw = base64.b64decode(raw, validate=False)
        elif encoding == "quoted-printable":
            if partial:
                raw = _CUT_QP_ESCAPE.sub(b"", raw)  # "=E" cut from "=E9"
            raw = quopri.decodestring(raw)
    except (binascii.Error, ValueError):
        pass
    try:
        codecs.lookup(charset or "utf-8")
    except LookupError:
        charset = "utf-8"  # an unknown charset: best effort, never an error
    if partial:
        # final=False drops a multi-byte character cut in half at the end.
        return codecs.getincrementaldecoder(charset or "utf-8")("replace").decode(raw, final=False)
    return raw.decode(charset or "utf-8", "replace")


class _HtmlText(HTMLParser):
    """Visible text of an HTML fragment, quoted replies and scripts left out."""

    SKIP = {"script", "style", "head", "title", "blockquote"}
    BLOCK = {"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag == "blockquote" and not self.skipping:
            self.out.append("\n>\n")  # a quote marker, so make_snippet drops its attribution line
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.out.append(data)


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    try:
        parser.feed(html)  # no close(): the fragment is cut, a half tag at the end is just dropped
    except Exception:  # html.parser is lenient; this is belt and braces for odd input
        pass
    return "".join(parser.out)


# Where the quoted original starts in Outlook-style replies: everything after is old text.
_QUOTE_HEADER = re.compile(r"^(_{8,}|-{3,} ?original message ?-{3,}|-{3,} ?forwarded message ?-{3,})$", re.I)
# How "On Monday, Bob wrote:" ends in common mailers, even where the quote after it was dropped
# (HTML) or lies beyond the first KB; any other line ending in ":" counts only before a "> " line.
_ATTRIBUTION_END = ("wrote:", "writes:", "schrieb:", "a écrit :", "a écrit:", "escribió:", "scrisse:")


def make_snippet(body: str, *, limit: int = SNIPPET_CHARS) -> str | None:
    """About ``limit`` characters of prose: quoted lines, their attribution and the signature dropped."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if line.rstrip() == "--" or _QUOTE_HEADER.match(stripped):  # the "-- " signature delimiter
            break
        if stripped.startswith(">"):
            continue
        nxt = next((x.strip() for x in lines[i + 1:] if x.strip()), "")
        if stripped.endswith(_ATTRIBUTION_END) or (stripped.endswith(":") and nxt.startswith(">")):
            # "On Monday, Bob wrote:" before the quote; its first half when a mailer wrapped it.
            if kept and kept[-1].startswith("On ") and len(stripped) < 40:
                kept.pop()
            continue
        kept.append(stripped)
    snippet = " ".join(" ".join(kept).split())
    if len(snippet) > limit:
        cut = snippet[:limit]
        snippet = (cut.rsplit(" ", 1)[0] if " " in cut[limit // 2:] else cut).rstrip() + "…"
    return snippet or None


def snippet_from(raw: bytes, subtype: str, encoding: str, charset: str) -> str | None:
    """A snippet from the first bytes of a text part."""
    body = decode_part(raw, encoding, charset, partial=True)
    if subtype == "html":
        body = html_to_text(body)
    return make_snippet(body)
