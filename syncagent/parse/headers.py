"""Raw headers (bytes from IMAP or a file, or Gmail's header pairs) -> a normalized Message.

Mail in the wild is broken in every way, so nothing here raises: undecodable
bytes become readable text, unparsable dates fall back to the arrival time, and
a missing Message-ID (or one without an "@", which names no message) becomes a
stable hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from email.header import decode_header
from email.utils import getaddresses, parsedate_tz
from functools import lru_cache

from syncagent.model import Address, Message
from syncagent.parse.addresses import normalize_address
from syncagent.parse.automatic import classify, is_auto_reply
from syncagent.timeutil import iso

_ANGLE_ID = re.compile(r"<([^<>\s]+)>")
_BARE_ID = re.compile(r"[^\s<>\"]+@[^\s<>\"]+")
_WS = re.compile(r"\s+")
MAX_ADDRESSES = 10_000
MAX_REFERENCES = 1_000
MAX_TEXT = 2_000


def parse_message(raw: bytes, *, arrived_at: datetime | None = None, size: int | None = None,
                  thread_hint: str | None = None, gmail_id: str | None = None) -> Message:
    """Parse a header block (or a whole message: only headers are read)."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0] if raw else b""
    headers = _plain_headers(head)
    defects = 0
    if headers is None:
        raw_pairs, defects = split_headers(head)
        headers = {}
        for name, value in raw_pairs:
            headers.setdefault(name.lower(), []).append(_header_text(value))
    return _message(headers, arrived_at, size, thread_hint, gmail_id, defects)


def parse_header_pairs(pairs: Iterable[tuple[str, str]], *, arrived_at: datetime | None = None, size: int | None = None,
                       thread_hint: str | None = None, gmail_id: str | None = None,
                       defects: int = 0) -> Message:
    """Build a Message from (name, text) header pairs; text may still hold RFC 2047 words."""
    headers: dict[str, list[str]] = {}
    for name, value in pairs:
        headers.setdefault(name.strip().lower(), []).append(value if isinstance(value, str) else _header_text(value))
    return _message(headers, arrived_at, size, thread_hint, gmail_id, defects)


def _message(headers: dict[str, list[str]], arrived_at: datetime | None, size: int | None,
             thread_hint: str | None, gmail_id: str | None, defects: int) -> Message:
    """The Message of a header map (lower-case name -> values in order)."""
    get = headers.get
    addresses: list[Address] = []
    for role in ("from", "to", "cc", "bcc"):
        values = get(role)
        if values:
            for value in values:
                addresses.extend(_role_addresses(role, value) if len(value) <= _CACHE_LIMIT
                                 else _role_addresses_uncached(role, value))
    if len(addresses) > 1:
        addresses = _unique_addresses(addresses)
    sender = addresses[0] if addresses and addresses[0].role == "from" else None
    if sender is None:
        # Some bounces and drafts carry only Sender or Return-Path.
        for display, addr in _addresses(get("sender", []) + get("return-path", [])):
            sender = Address("from", addr, display)
            addresses.insert(0, sender)
            break
    values = get("subject")
    subject = _clip(_decode_words(values[0])) if values else None
    values = get("date")
    date, date_source = _date(values[0] if values else None, arrived_at)
    values = get("references")
    refs = _ids(" ".join(values) if len(values) > 1 else values[0])[-MAX_REFERENCES:] if values else []
    values = get("in-reply-to")
    in_reply_to_ids = _ids(values[0]) if values else []
    in_reply_to = in_reply_to_ids[-1] if in_reply_to_ids else (refs[-1] if refs else None)
    values = get("message-id")
    message_id = _message_id(values[0] if values else None, date, sender, subject, gmail_id)
    if message_id in refs:
        refs = [r for r in refs if r != message_id]
    if in_reply_to == message_id:
        in_reply_to = None
    values = get("list-id")
    list_id = values[0] if values else None
    from_address = sender.address if sender else None
    auto, reason = classify(headers, from_address, subject)
    auto_reply = auto and is_auto_reply(headers, from_address, subject)
    return Message(
        message_id=message_id,
        date=date,
        date_source=date_source,
        arrived_at=iso(arrived_at) if arrived_at else None,
        from_address=from_address,
        from_name=sender.name if sender else None,
        subject=subject,
        in_reply_to=in_reply_to,
        references=tuple(refs),
        addresses=tuple(addresses),
        automatic=auto,
        automatic_reason=reason,
        size=size,
        list_id=_clip(_decode_words(list_id)) if list_id else None,
        thread_hint=thread_hint,
        gmail_id=gmail_id,
        defects=defects,
        auto_reply=auto_reply,
    )


def _unique_addresses(addresses: list[Address]) -> list[Address]:
    """The first of each (role, address), at most MAX_ADDRESSES."""
    seen: set[tuple[str, str]] = set()
    out: list[Address] = []
    for a in addresses:
        key = (a.role, a.address)
        if key in seen:
            continue
        seen.add(key)
        out.append(a)
        if len(out) >= MAX_ADDRESSES:
            break
    return out


def _role_addresses_uncached(role: str, value: str) -> tuple[Address, ...]:
    return tuple(Address(role, addr, display) for display, addr in _address_value(value))


# Address records are immutable, so the ones of a recurring From or To value are shared.
_role_addresses = lru_cache(maxsize=16384)(_role_addresses_uncached)

# The shape of nearly every header block: each line a header (a name of printable ASCII but
# ":", then its value) or the continuation of one. Such a block is read by two regular
# expressions instead of line by line; anything else (an mbox "From " line, a line that is
# not a header, a continuation with nothing to continue) goes through ``split_headers``.
_NAME = r"[!-9;-~]+"
_VALUE = r"[^\r\n]*+(?:(?:\r\n|\r|\n)[ \t][^\r\n]*+)*+"
_PLAIN_BLOCK = re.compile(rf"(?:{_NAME}:{_VALUE}(?:\r\n|\r|\n))*+(?:{_NAME}:{_VALUE})?")
_PLAIN_LINE = re.compile(rf"({_NAME}):[ \t]*+({_VALUE})")


def _plain_headers(head: bytes) -> dict[str, list[str]] | None:
    """The header map of a block of the common shape, as ``split_headers`` + ``_header_text`` give it; else None.

    A value keeps its raw line breaks here where ``split_headers`` joins lines with "\n":
    ``_header_text`` unfolds both alike.
    """
    text = head.decode("ascii", "surrogateescape")
    if _PLAIN_BLOCK.fullmatch(text) is None:
        return None
    headers: dict[str, list[str]] = {}
    for name, value in _PLAIN_LINE.findall(text):
        key = name.lower()
        if not value.isascii() or "\n" in value or "\r" in value:
            value = _header_text(value)
        values = headers.get(key)
        if values is None:
            headers[key] = [value]
        else:
            values.append(value)
    return headers


_LINE_END = re.compile(r"\r\n|\r|\n")
_HEADER_NAME = re.compile(r"[\041-\071\073-\176]+")


def split_headers(head: bytes) -> tuple[list[tuple[str, str]], int]:
    """A header block -> [(name, raw value)] and a count of defects, as ``email`` (compat32) reads it.

    Why not ``email.message_from_bytes``: it builds a whole Message object and
    was half the parse time (360 us of ~740 us per message, bench/sync_bench.py).
    Same rules: 8-bit bytes kept as surrogates (``_header_text`` decodes them),
    continuation lines appended with their newline, a leading "From " line
    skipped, a line that is not a header ending the block.
    """
    text = head.decode("ascii", "surrogateescape")
    pairs: list[list[str]] = []
    defects = 0
    for i, line in enumerate(_LINE_END.split(text)):
        if not line:
            if i == 0:
                continue
            break
        if line[0] in " \t":
            if pairs:
                pairs[-1][1] += "\n" + line
            else:
                defects += 1  # a continuation line with nothing to continue
            continue
        if i == 0 and line.startswith("From "):
            continue  # an mbox envelope line
        colon = line.find(":")
        if colon <= 0 or not _HEADER_NAME.fullmatch(line, 0, colon):
            defects += 1
            if line.startswith("From ") or colon == 0:
                continue
            break  # not a header: compat32 reads the rest as body
        pairs.append([line[:colon], line[colon + 1:].lstrip(" \t")])
    return [(name, value) for name, value in pairs], defects


_FOLD = re.compile(r"\r?\n(?=[ \t])")


def _header_text(value: object) -> str:
    """A raw header value as text, unfolded: stray 8-bit bytes read as UTF-8, else Windows-1252."""
    if isinstance(value, str) and value.isascii() and "\n" not in value and "\r" not in value:
        return value  # the common case, and nothing to do
    return _FOLD.sub("", _raw_text(value)).replace("\r", "").replace("\n", " ")


def _raw_text(value: object) -> str:
    if isinstance(value, bytes):
        data = value
    else:
        value = str(value)
        try:
            return value.encode("ascii").decode("ascii") if value.isascii() else _from_surrogates(value)
        except UnicodeError:
            return _from_surrogates(value)
    return _bytes_text(data)


def _from_surrogates(value: str) -> str:
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return _bytes_text(data)


def _bytes_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def _decode_words(text: str | None) -> str:
    """Decode RFC 2047 encoded words, tolerating unknown charsets and bad encodings."""
    if not text:
        return text or ""
    text = text.replace("\x00", "")
    if "=?" not in text:
        return _WS.sub(" ", text).strip()
    if len(text) <= _CACHE_LIMIT:
        return _decode_encoded_cached(text)
    return _decode_encoded(text)


# Names and subjects recur across a mailbox (the same people, "Re:" threads), so their
# decoding is cached; long values are not, to keep the cache small.
_CACHE_LIMIT = 512


def _decode_encoded(text: str) -> str:
    try:
        parts = decode_header(text)
    except Exception:
        return _WS.sub(" ", text).strip()
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        out.append(_decode_chunk(chunk, charset))
    # decode_header keeps the whitespace between plain and encoded words inconsistently.
    return _WS.sub(" ", "".join(out)).strip()


_decode_encoded_cached = lru_cache(maxsize=16384)(_decode_encoded)


def _decode_chunk(chunk: bytes, charset: str | None) -> str:
    for cs in (charset, "utf-8", "cp1252"):
        if not cs or cs.lower() in ("unknown-8bit", "x-unknown"):
            continue
        try:
            return chunk.decode(cs)
        except (LookupError, UnicodeDecodeError):
            continue
    return chunk.decode("utf-8", "replace")


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.replace("\x00", "")
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _addresses(values: list[str]) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    for value in values:
        out.extend(_address_value_cached(value) if len(value) <= _CACHE_LIMIT else _address_value(value))
    return out


def _address_value(value: str) -> tuple[tuple[str | None, str], ...]:
    """One address header's value -> ((name, normalized address), ...)."""
    value = value.replace("\x00", "")
    if len(value) > 1_000_000:
        value = value[:1_000_000]
    try:
        parsed = _simple_addresses(value)
        if parsed is None:
            parsed = getaddresses([value])
    except Exception:
        parsed = [("", m) for m in _BARE_ID.findall(value)]
    out: list[tuple[str | None, str]] = []
    for name, raw_addr in parsed:
        addr = normalize_address(raw_addr)
        if not addr:
            continue
        decoded = _decode_words(name) if name else None
        out.append((_clip(decoded) or None, addr))
    return tuple(out)


# The same From and To values recur across a mailbox.
_address_value_cached = lru_cache(maxsize=16384)(_address_value)


_ADDR = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_ATOM = r"[^\s()<>@,;:\\\".\[\]]+"
_SIMPLE_ADDRESS = re.compile(
    rf'[ \t]*(?:(?:"([^"\\\r\n]*)"|({_ATOM}(?:[ \t]+{_ATOM})*))?[ \t]*<({_ADDR})>|({_ADDR}))[ \t]*')


def _simple_addresses(value: str) -> list[tuple[str, str]] | None:
    """The common shapes (``a@b``, ``Name <a@b>``, ``"Name" <a@b>``, lists of them) without
    ``getaddresses``, which was a third of the parse time; None sends anything else to it.
    Gives exactly what ``getaddresses`` gives for these shapes (checked over the corpora)."""
    pieces = [value] if '"' in value else value.split(",")
    out = []
    for piece in pieces:
        m = _SIMPLE_ADDRESS.fullmatch(piece)
        if m is None:
            return None
        quoted, phrase, routed, bare = m.groups()
        if bare:
            out.append(("", bare))
        else:
            name = quoted if quoted is not None else " ".join(phrase.split()) if phrase else ""
            out.append((name, routed))
    return out


def names_message(msg_id: str | None) -> bool:
    """Could this id name a message? RFC 5322: msg-id = "<" id-left "@" id-right ">".

    Tools put other things in these headers (git send-email's ``In-Reply-To: <yes>``
    answers its own prompt): such a token is shared by unrelated mail, so it must
    never link two messages.
    """
    if not msg_id:
        return False
    left, at, right = msg_id.rpartition("@")
    return bool(at and left and right)


def _ids(text: str) -> list[str]:
    """The msg-ids in a Message-ID / In-Reply-To / References value, in order, without repeats."""
    ids = _ANGLE_ID.findall(text)
    if not ids:
        ids = _BARE_ID.findall(text)
    out, seen = [], set()
    for i in ids:
        if i not in seen and names_message(i):
            seen.add(i)
            out.append(i)
    return out


def _message_id(value: str | None, date: str, sender: Address | None, subject: str | None,
                gmail_id: str | None) -> str:
    ids = _ids(value or "")
    if ids:
        return ids[0][:995]
    return fallback_id(date, sender.address if sender else None, subject, gmail_id)


def fallback_id(date: str, from_address: str | None, subject: str | None, gmail_id: str | None) -> str:
    """The id of a message whose Message-ID is missing or names no message: stable across copies.

    Its "@syncagent.invalid" right part can name no real message, so it joins no thread.
    """
    if gmail_id:
        return f"gmail-{gmail_id}@syncagent.invalid"
    basis = "\x1f".join([date, from_address or "", subject or ""])
    return "sha1-" + hashlib.sha1(basis.encode("utf-8", "replace")).hexdigest() + "@syncagent.invalid"


def _date(value: str | None, arrived_at: datetime | None) -> tuple[str, str]:
    parsed = _parse_date(value) if value else None
    if parsed is not None:
        return parsed, "header"
    if arrived_at is not None:
        return iso(arrived_at), "arrival"
    return "1970-01-01T00:00:00Z", "missing"


_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                        "nov", "dec"), 1)}
# "Mon, 2 Nov 2026 10:00:00 -0500" (RFC 5322's own form, most mail): read without parsedate_tz.
_COMMON_DATE = re.compile(
    r"\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{2}):(\d{2}):(\d{2})\s+([+-])(\d{2})(\d{2})"
    r"(?:\s*\([^()]*\))?\s*")


def _parse_date(value: str) -> str | None:
    m = _COMMON_DATE.fullmatch(value)
    if m is not None:
        day, month, year, hh, mm, ss, sign, oh, om = m.groups()
        month_number = _MONTHS.get(month.lower())
        if month_number is not None and int(ss) <= 59:
            try:
                dt = datetime(int(year), month_number, int(day), int(hh), int(mm), int(ss), tzinfo=timezone.utc)
                offset = (int(oh) * 3600 + int(om) * 60) * (-1 if sign == "-" else 1)
                dt -= timedelta(seconds=offset)
            except (ValueError, OverflowError):
                return None
            return iso(dt) if 1900 <= dt.year <= 9999 else None
    try:
        tup = parsedate_tz(value.replace("\x00", ""))
    except Exception:
        return None
    if tup is None:
        return None
    try:
        year = tup[0]
        if year < 1900 or year > 9999:
            return None
        offset = tup[9] or 0
        dt = datetime(year, tup[1], tup[2], tup[3], tup[4], min(tup[5], 59), tzinfo=timezone.utc)
        dt = dt - timedelta(seconds=offset)
        if dt.year < 1900 or dt.year > 9999:
            return None
        return iso(dt)
    except (ValueError, OverflowError, TypeError):
        return None
