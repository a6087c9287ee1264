"""The bulk FETCH of new messages: one imaplib round trip, a purpose-built scanner.

Why: imapclient turns every FETCH response into Python objects through a
general tokenizer, BODYSTRUCTURE included, and that alone cost about as much
as the whole rest of an initial sync. The source needs five plain values per
message (UID, INTERNALDATE, RFC822.SIZE, the header literal, Gmail's ids and
labels) and the BODYSTRUCTURE only for messages with a calendar part (or for
every message with ``fetch_snippets``). So the command is sent the way
imapclient itself sends it (``client._imap._command``: same tag sequence, same
error checks), and the raw answer is read by ``scan`` below: values are found
with a few regular expressions and parenthesized lists are only skipped,
their raw bytes kept for imapclient's own parser when they are wanted.

Correctness never depends on this path: an answer the scanner cannot read,
or one that lacks an item for a requested UID (an unsolicited FLAGS update
for a message whose data never came), makes the chunk go through
``client.fetch`` instead. The command stays a read-only UID FETCH with
BODY.PEEK, exactly what imapclient would send.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone

log = logging.getLogger(__name__)

ENABLED = True  # tests switch it off to compare with imapclient's own reader


class ScanError(ValueError):
    """A FETCH response the scanner does not understand (the caller falls back to imapclient)."""


# `<seq> (` at the start of a FETCH response (imaplib already stripped "* " and "FETCH").
_HEAD = re.compile(rb"(\d+) FETCH \(|(\d+) \(")
# An attribute name: an atom, or BODY[...]<n> whose brackets hold spaces and parens.
_KEY = re.compile(rb"([A-Za-z0-9.\-]+(?:\[[^\]]*\](?:<\d+>)?)?) ")
_QUOTED = re.compile(rb'"([^"\\\r\n]*+(?:\\.[^"\\\r\n]*+)*+)"')  # unrolled: one C loop per run
_LITERAL = re.compile(rb"\{(\d+)\}\r\n")
_LIST_STOP = re.compile(rb'[()"{]')


def _nested_list_pattern(depth: int) -> bytes:
    """A regex matching a list nested at most ``depth`` deep, without literals.

    Lets the common BODYSTRUCTURE be skipped in one C-level match; possessive
    quantifiers keep it linear. Deeper lists or ones holding a literal fall back
    to ``_skip_list``'s loop.
    """
    quoted = rb'"(?:[^"\\\r\n]++|\\.)*+"'
    pattern = rb'\((?:' + quoted + rb'|[^()"{]++)*+\)'
    for _ in range(depth - 1):
        pattern = rb'\((?:' + quoted + rb'|[^()"{]++|' + pattern + rb')*+\)'
    return pattern


_LIST = re.compile(_nested_list_pattern(12))
# One whole attribute in one match: name, then an atom (2), a quoted string (3), a literal's
# length (4) or a list without literals (5).
_ATTR = re.compile(rb'([A-Za-z0-9.\-]+(?:\[[^\]]*\](?:<\d+>)?)?) (?:([^ ()"{\r\n]+)|"([^"\\\r\n]*+(?:\\.[^"\\\r\n]*+)*+)"'
                   rb'|\{(\d+)\}\r\n|(' + _nested_list_pattern(12) + rb'))')
_ESCAPE = re.compile(rb"\\(.)")
_DATE = re.compile(rb"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-]\d{4})$")
_MONTHS = {m: i for i, m in enumerate(
    (b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"), 1)}
_ZONES: dict[bytes, timezone] = {}

class RawList:
    """A parenthesized value kept as raw bytes (literals inlined as ``{n}\\r\\n<bytes>``).

    ``literals`` lists (start of ``{``, start of data, end of data) relative to
    ``raw``, so the value can be handed back to imapclient's parser in imaplib's
    (line, literal) form.
    """

    __slots__ = ("raw", "literals")

    def __init__(self, raw: bytes, literals: list[tuple[int, int, int]] | None):
        self.raw = raw
        self.literals = literals or []

    def imaplib_form(self) -> list:
        """The value as imaplib delivers it: (line ending in {n}, literal) tuples, then the rest."""
        out: list = []
        pos = 0
        for _brace, start, end in self.literals:
            out.append((self.raw[pos:start - 2], self.raw[start:end]))  # the line ends with {n}
            pos = end
        out.append(self.raw[pos:])
        return out

    def parse(self):
        """The value as imapclient parses it (a tuple of atoms, bytes, ints and tuples)."""
        if not self.literals:
            lean = _lean_list(self.raw)
            if lean is not None:
                return lean
        from imapclient.response_parser import parse_response

        parsed = parse_response(self.imaplib_form())
        if len(parsed) != 1:
            raise ScanError(f"one list expected, got {len(parsed)} values")
        return parsed[0]

    def __repr__(self):
        return f"RawList({self.raw!r})"


# The tokens of a list without literals, as imapclient's lexer splits it: "(", ")", a quoted
# string (its body, then the closing quote), an atom that whitespace or a parenthesis ends, or any
# other byte (group 6), which sends the value to imapclient's own parser. imapclient reads a
# character at a time in Python; one findall is a C loop, and BODYSTRUCTURE is the bulk of it
# (every sent message's, for the outreach measures: 1.7 s of the wire thread in a first sync at 100,000).
_TOKEN = re.compile(rb'[ \t\r\n]*+(?:(\()|(\))|"((?:[^"\\\r\n]++|\\.)*+)(")'
                    rb'|([^\x00-\x20()%"\[\]{}\\\x7f]++)(?=[ \t\r\n()]|$)|(.))', re.S)
_QUOTED_ESCAPE = re.compile(rb'\\(["\\])')
_LEAN_DEPTH = 40  # deeper (hostile) nesting is left to imapclient, which gives up on it as before


def _lean_list(raw: bytes):
    """``raw`` (one parenthesized list, no literals) as imapclient's ``parse_response`` gives it,
    or None where it holds anything but lists, quoted strings, NIL, numbers and plain atoms."""
    stack: list[list] = []
    current: list = []
    for opened, closed, body, quote, word, _other in _TOKEN.findall(raw):
        if opened:
            if len(stack) >= _LEAN_DEPTH:
                return None
            stack.append(current)
            current = []
        elif closed:
            if not stack:
                return None
            done = tuple(current)
            current = stack.pop()
            current.append(done)
        elif quote:
            # imapclient unescapes \" and \\ only; any other backslash stays as it came.
            current.append(_QUOTED_ESCAPE.sub(rb"\1", body) if b"\\" in body else body)
        elif word:
            if word == b"NIL":
                current.append(None)
            elif word.isdigit() and (word[:1] != b"0" or len(word) == 1):  # "0123" stays bytes, as there
                current.append(int(word))
            else:
                current.append(word)
        else:
            return None
    if stack or len(current) != 1:
        return None
    return current[0]


# --- scanning ------------------------------------------------------------------------

def responses(data: list) -> list[bytes]:
    """Group imaplib's FETCH data into whole responses, literals inlined as on the wire.

    imaplib delivers a response whose line ends in a literal as a (line, literal) tuple
    followed by the rest of the response (again a tuple if another literal follows).
    """
    out: list[bytes] = []
    parts: list[bytes] = []
    for item in data:
        if isinstance(item, tuple):
            parts += (item[0], b"\r\n", item[1])
            continue
        if item is None:
            continue
        if parts:
            parts.append(item)
            out.append(b"".join(parts))
            parts = []
        else:
            out.append(item)
    if parts:
        raise ScanError("a FETCH response ends inside a literal")
    return out


def _skip_list(buf: bytes, pos: int) -> tuple[int, list | None]:
    """End of the balanced list starting at ``pos`` and where its literals lie."""
    depth = 0
    literals = None
    search = _LIST_STOP.search
    while True:
        m = search(buf, pos)
        if m is None:
            raise ScanError("unbalanced list")
        p = m.start()
        c = buf[p]
        if c == 0x28:  # (
            depth += 1
            pos = p + 1
        elif c == 0x29:  # )
            depth -= 1
            pos = p + 1
            if depth == 0:
                return pos, literals
        elif c == 0x22:  # "
            q = _QUOTED.match(buf, p)
            if q is None:
                raise ScanError("unterminated quoted string")
            pos = q.end()
        else:  # {
            lit = _LITERAL.match(buf, p)
            if lit is None:
                raise ScanError("bad literal")
            start = lit.end()
            pos = start + int(lit[1])
            if pos > len(buf):
                raise ScanError("literal longer than the response")
            literals = (literals or []) + [(p, start, pos)]


def _unquote(value: bytes) -> bytes:
    return _ESCAPE.sub(rb"\1", value) if b"\\" in value else value


def scan(buf: bytes) -> tuple[int, dict]:
    """One FETCH response -> (sequence number, {ATTRIBUTE: raw value}).

    Values: bytes for atoms, quoted strings and literals; None for NIL; a
    ``RawList`` for parenthesized lists. Numbers stay bytes (see ``convert``).
    """
    m = _HEAD.match(buf)
    if m is None:
        raise ScanError(f"not a FETCH response: {buf[:40]!r}")
    seq = int(m[1] or m[2])
    pos = m.end()
    end = len(buf) - 1  # the closing parenthesis
    if buf[end] != 0x29:
        raise ScanError("response ends before its closing parenthesis")
    out: dict = {}
    attr = _ATTR.match
    while pos < end:
        m = attr(buf, pos, end)
        if m is None:  # a list holding a literal or nested very deep, or an error
            key, value, pos = _slow_attr(buf, pos, end)
        else:
            key = m[1].upper()
            i = m.lastindex
            pos = m.end()
            if i == 2:
                value = m[2]
                if value == b"NIL":
                    value = None
            elif i == 5:
                value = RawList(m[5], None)
            elif i == 3:
                value = _unquote(m[3])
            else:
                start, pos = pos, pos + int(m[4])
                if pos > end:
                    raise ScanError("literal longer than the response")
                value = buf[start:pos]
        out[key] = value
        if buf[pos] == 0x20:
            pos += 1
    if pos != end:
        raise ScanError("data after the end of a response")
    return seq, out


def _slow_attr(buf: bytes, pos: int, end: int) -> tuple[bytes, object, int]:
    """One attribute, piece by piece: lists with literals inside are skipped by length."""
    k = _KEY.match(buf, pos, end)
    if k is None:
        raise ScanError(f"bad attribute name at {buf[pos:pos + 30]!r}")
    key = k[1].upper()
    pos = k.end()
    if pos >= end:
        raise ScanError("attribute without a value")
    c = buf[pos]
    if c == 0x28:  # (
        stop, literals = _skip_list(buf, pos)
        if stop > end:
            raise ScanError("a list runs past the end of the response")
        return key, RawList(buf[pos:stop], literals and [(a - pos, b - pos, e - pos) for a, b, e in literals]), stop
    if c == 0x22:  # "
        q = _QUOTED.match(buf, pos, end)
        if q is None:
            raise ScanError("unterminated quoted string")
        return key, _unquote(q[1]), q.end()
    if c == 0x7B:  # {
        lit = _LITERAL.match(buf, pos, end)
        if lit is None:
            raise ScanError("bad literal")
        stop = lit.end() + int(lit[1])
        if stop > end:
            raise ScanError("literal longer than the response")
        return key, buf[lit.end():stop], stop
    raise ScanError(f"bad value at {buf[pos:pos + 30]!r}")


# --- values ----------------------------------------------------------------------------

def internaldate(value: bytes | None) -> datetime | None:
    """``25-Nov-2026 10:00:00 +0000`` -> an aware datetime, as imapclient gives it (None if unreadable)."""
    if value is None:
        return None
    m = _DATE.match(value)
    month = _MONTHS.get(m[2].lower()) if m else None
    if m is None or month is None:
        from imapclient.datetime_util import parse_to_datetime

        try:  # anything unusual: imapclient's own reading
            return parse_to_datetime(value, normalise=False)
        except ValueError:
            return None
    zone = _ZONES.get(m[7])
    if zone is None:
        sign, hh, mm = m[7][:1], m[7][1:3], m[7][3:]
        delta = timedelta(hours=int(hh), minutes=int(mm))
        zone = _ZONES[m[7]] = timezone(-delta if sign == b"-" else delta)
    try:
        return datetime(int(m[3]), month, int(m[1]), int(m[4]), int(m[5]), int(m[6]), tzinfo=zone)
    except ValueError:
        return None


_FLAT = re.compile(rb'\s*(?:"([^"\\\r\n]*+(?:\\.[^"\\\r\n]*+)*+)"|\{(\d+)\}\r\n|([^ ()"{\r\n]+))')


def flat_list(value: object) -> tuple[bytes | None, ...] | None:
    """A list of atoms/strings such as X-GM-LABELS -> tuple of bytes (None for NIL)."""
    if value is None:
        return None
    if not isinstance(value, RawList):
        raise ScanError("a list was expected")
    raw = value.raw
    if raw[:1] != b"(" or raw[-1:] != b")":
        raise ScanError("a list was expected")
    pos, end = 1, len(raw) - 1
    out: list[bytes | None] = []
    while True:
        while pos < end and raw[pos] == 0x20:
            pos += 1
        if pos >= end:
            return tuple(out)
        m = _FLAT.match(raw, pos, end)
        if m is None:
            raise ScanError("a nested list where a flat one was expected")
        if m[1] is not None:
            out.append(_unquote(m[1]))
            pos = m.end()
        elif m[2] is not None:
            pos = m.end() + int(m[2])
            out.append(raw[m.end():pos])
        else:
            out.append(None if m[3] == b"NIL" else m[3])
            pos = m.end()


def convert(attrs: dict, want_structure) -> dict:
    """Raw scanned values -> what imapclient's ``fetch`` gives for the same keys.

    BODYSTRUCTURE is parsed (into imapclient's ``BodyData``) only when
    ``want_structure(raw bytes)`` says so; otherwise its raw form is kept under
    ``UNPARSED_STRUCTURE`` for ``structure``.
    """
    out = {}
    for key, value in attrs.items():
        how = _CONVERT.get(key)
        if how is not None:
            out[key] = how(value)
        elif key == b"BODYSTRUCTURE":
            if isinstance(value, RawList):
                if want_structure(value.raw):
                    from imapclient.response_types import BodyData

                    out[key] = BodyData.create(value.parse())
                else:
                    out[UNPARSED_STRUCTURE] = value
        elif key[:5] == b"BODY[":
            out[key] = value
    return out


# The raw BODYSTRUCTURE of a message whose structure was not wanted up front, for ``structure``
# to parse later if a rule needs it after all (a key no server sends: it holds a space).
UNPARSED_STRUCTURE = b"BODYSTRUCTURE (unparsed)"


def structure(value: object):
    """A BODYSTRUCTURE left unparsed by ``convert``, as imapclient gives it; None if it cannot be read."""
    if not isinstance(value, RawList):
        return None
    from imapclient.response_types import BodyData

    try:
        return BodyData.create(value.parse())
    except Exception:  # the caller asks the server for it again instead
        log.debug("an unparsed BODYSTRUCTURE could not be read", exc_info=True)
        return None


def _int(value):
    return None if value is None else int(value)


_CONVERT = {b"UID": _int, b"RFC822.SIZE": _int, b"X-GM-MSGID": _int, b"X-GM-THRID": _int,
            b"INTERNALDATE": internaldate, b"X-GM-LABELS": flat_list}


# --- the command ---------------------------------------------------------------------

def _has_calendar(raw: bytes) -> bool:
    return b"calendar" in raw.lower()


def fetch(client, uids: list[int], items: list[str], *, structures: str = "calendar") -> dict[int, dict]:
    """UID FETCH ``items`` for ``uids``; returns {uid: {ITEM: value}} like ``client.fetch``.

    ``structures``: "calendar" parses BODYSTRUCTURE only where it names a calendar
    part, "all" parses every one. Falls back to ``client.fetch`` for the whole chunk
    whenever the answer is not what the scanner expects.
    """
    if not uids:
        return {}
    want = (lambda raw: True) if structures == "all" else _has_calendar
    data = raw_uid_fetch(client, uids, items)
    try:
        result = _read(data, uids, items, want)
    except Exception as exc:  # the reader is pure: whatever it trips on, imapclient's reader decides
        log.debug("fast FETCH reader gave up on %d UIDs (%s); using imapclient's reader", len(uids), exc)
        return client.fetch(uids, items)
    return result


# imapclient releases whose private API ``raw_uid_fetch`` was checked against (tests/test_imap_fetch.py
# pins this): imaplib's ``_command``/``_command_complete``/``_untagged_response`` through ``client._imap``
# and imapclient's ``_checkok``. A new release is re-read and added here, or the fallback is used.
VERIFIED_IMAPCLIENT = ("3.0", "3.1", "4.0", "4.1")


def raw_uid_fetch(client, uids: list[int], items: list[str]) -> list:
    """Send UID FETCH exactly as ``client.fetch`` does and return imaplib's raw untagged data.

    The one place that touches imapclient's and imaplib's private API, so an upgrade that
    changes it breaks here and nowhere else.
    """
    from imapclient.imapclient import join_message_ids, seq_to_parenstr_upper

    imap = client._imap
    # imapclient sets imaplib's debug level to 5, which formats a repr of every line,
    # every literal and finally the whole answer even when nobody logs them: as costly
    # as reading it. Off for this command unless imapclient's wire log is on (-vvv).
    level = imap.debug
    if level and not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        imap.debug = 0
    try:
        # Exactly what imapclient.fetch sends and checks, so errors and state are the same.
        tag = imap._command("UID", "FETCH", join_message_ids(uids), seq_to_parenstr_upper(items))
        typ, data = imap._command_complete("FETCH", tag)
        client._checkok("fetch", typ, data)
        typ, data = imap._untagged_response(typ, data, "FETCH")
    finally:
        imap.debug = level
    return data


def _required(items: list[str]) -> tuple[set[bytes], bool]:
    """The response keys each requested message must carry, and whether a BODY[...] is among them."""
    names = {item.upper().encode() for item in items}
    body = any(n.startswith((b"BODY[", b"BODY.PEEK[")) for n in names)
    return {n for n in names if b"[" not in n}, body


def _read(data: list, uids: list[int], items: list[str], want) -> dict[int, dict]:
    if data == [None] or not data:
        return {}
    wanted = set(uids)
    merged: dict[int, dict] = {}
    for buf in responses(data):
        _seq, attrs = scan(buf)
        uid = attrs.get(b"UID")
        if uid is None:
            continue  # an unsolicited update without a UID: nothing of ours
        uid = int(uid)
        if uid not in wanted:
            continue
        if uid in merged:
            merged[uid].update(attrs)
        else:
            merged[uid] = attrs
    plain, body = _required(items)
    out = {}
    for uid, attrs in merged.items():
        if not plain <= attrs.keys():
            raise ScanError(f"UID {uid}: {sorted(plain - attrs.keys())} missing from the answer")
        if body and not any(k[:5] == b"BODY[" for k in attrs):
            raise ScanError(f"UID {uid}: no BODY[...] in the answer")
        out[uid] = convert(attrs, want)
    return out
