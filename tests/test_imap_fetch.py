"""The bulk FETCH reader gives exactly what imapclient's reader gives, and falls back to it when unsure."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dovecot import make_message
from hypothesis import given, settings
from hypothesis import strategies as st
from test_imap_sync import make_config

from syncagent.sources.imap import connect as imap_connect
from syncagent.sources.imap import fetch as imap_fetch
from syncagent.sources.imap.source import BASE_ITEMS, GMAIL_ITEMS, ImapSource

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"


@pytest.fixture(autouse=True)
def _no_retry(monkeypatch):
    monkeypatch.setattr(imap_connect, "CONNECT_ATTEMPTS", 1)


def imapclient_reads(data: list, uids) -> dict:
    """What imapclient.fetch makes of the same imaplib data (its own parser, times not normalised)."""
    from imapclient.response_parser import parse_fetch_response

    parsed = parse_fetch_response(data, False, True)
    return {u: parsed[u] for u in uids if u in parsed}


def same_as_imapclient(data: list, uids, items=BASE_ITEMS):
    """Read ``data`` both ways (every BODYSTRUCTURE parsed) and assert each value matches."""
    ours = imap_fetch._read(data, list(uids), list(items), lambda raw: True)
    theirs = imapclient_reads(data, uids)
    assert set(ours) == set(theirs)
    for uid, values in theirs.items():
        for key, value in values.items():
            if key in (b"SEQ", b"FLAGS", b"MODSEQ"):
                continue  # not read by the source
            assert ours[uid][key] == value, (uid, key)
    return ours


# --- the scanner on raw bytes ------------------------------------------------------------

HEADER = b"From: a@example.org\r\nSubject: x\r\n\r\n"
KEY = b"BODY[HEADER.FIELDS (FROM SUBJECT)]"


def test_quoted_strings_with_escapes_and_parens():
    """Escaped quotes, backslashes and parentheses inside quoted strings do not unbalance a list."""
    bs = (b'BODYSTRUCTURE ("text" "plain" ("name" "a \\"(b)\\" \\\\ c)") NIL "desc ((" "7bit" 8 1 NIL '
          b'("attachment" ("filename" "x).txt")) NIL NIL)')
    line = b'7 (UID 12 INTERNALDATE " 5-Nov-2026 09:08:07 -0500" RFC822.SIZE 99 ' + bs + b" " + KEY + b" {%d}" % len(HEADER)
    data = [(line, HEADER), b")"]
    seq, attrs = imap_fetch.scan(imap_fetch.responses(data)[0])
    assert seq == 7 and attrs[b"UID"] == b"12" and attrs[KEY] == HEADER
    assert attrs[b"BODYSTRUCTURE"].raw.endswith(b"NIL NIL)")
    ours = same_as_imapclient(data, [12])
    assert ours[12][b"INTERNALDATE"] == datetime(2026, 11, 5, 9, 8, 7, tzinfo=timezone(timedelta(hours=-5)))
    assert ours[12][b"BODYSTRUCTURE"][2] == (b"name", b'a "(b)" \\ c)')


def test_literals_inside_bodystructure():
    """A non-ASCII filename sent as a literal inside BODYSTRUCTURE is skipped by length and parsed like imapclient."""
    name = "r\u00e9sum\u00e9 \"x\" (1).pdf".encode()
    data = [
        (b"1 (UID 3 RFC822.SIZE 10 INTERNALDATE \"25-Nov-2026 10:00:00 +0000\" BODYSTRUCTURE ((\"text\" \"plain\" "
         b"(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 2 0 NIL NIL NIL NIL)(\"application\" \"pdf\" (\"name\" {%d}" % len(name),
         name),
        (b') NIL NIL "base64" 2 NIL ("attachment" ("filename" {3}', b')("'),
        (b')) NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL) ' + KEY + b" {%d}" % len(HEADER), HEADER),
        b")",
    ]
    ours = same_as_imapclient(data, [3])
    parts = ours[3][b"BODYSTRUCTURE"][0]
    assert parts[1][2] == (b"name", name)
    assert parts[1][8] == (b"attachment", (b"filename", b')("'))


def test_nested_lists_nil_and_gmail_items():
    """Nested multiparts, NIL values and Gmail's ids and labels (quoted, escaped, empty) read like imapclient."""
    leaf = b'("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 40 2 NIL NIL NIL NIL)'
    bs = b"(((" + leaf + leaf + b' "alternative" NIL NIL NIL NIL)' + leaf + b' "mixed" NIL NIL NIL NIL)'
    labels = b'("\\\\Important" "Job \\"search\\"" Work/Caf&AOk-)'
    line = (b'1 (X-GM-THRID 1750000000000000001 X-GM-MSGID 1750000000000000002 X-GM-LABELS ' + labels +
            b' UID 40 MODSEQ (12345) FLAGS (\\Seen $Forwarded) INTERNALDATE "01-Jan-2027 00:00:00 +1400" '
            b'RFC822.SIZE 5 BODYSTRUCTURE ' + bs[1:] + b' ' + KEY + b' NIL)')
    empty = (b'2 (UID 41 X-GM-LABELS () X-GM-MSGID 1 X-GM-THRID 2 INTERNALDATE "01-Jan-2027 00:00:00 +0000" '
             b'RFC822.SIZE 6 BODYSTRUCTURE ' + leaf + b' ' + KEY + b' "")')
    ours = same_as_imapclient([line, empty], [40, 41], BASE_ITEMS + GMAIL_ITEMS)
    assert ours[40][b"X-GM-LABELS"] == (b"\\Important", b'Job "search"', b"Work/Caf&AOk-")
    assert ours[40][b"X-GM-THRID"] == 1750000000000000001
    assert ours[40][KEY] is None and ours[41][KEY] == b""
    assert ours[41][b"X-GM-LABELS"] == ()


def test_bodystructure_parsed_only_for_calendars():
    """By default BODYSTRUCTURE is parsed only where it names a calendar part; other messages skip it."""
    plain = b'("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 8 1 NIL NIL NIL NIL)'
    cal = b'(("text" "plain" NIL NIL NIL "7bit" 2 0 NIL NIL NIL NIL)("TEXT" "CALENDAR" ("method" "REQUEST") NIL NIL ' \
          b'"base64" 300 4 NIL NIL NIL NIL) "alternative" ("boundary" "b") NIL NIL NIL)'
    data = [b'%d (UID %d INTERNALDATE "25-Nov-2026 10:00:00 +0000" RFC822.SIZE 9 BODYSTRUCTURE %s %s "")'
            % (i, i, bs, KEY) for i, bs in ((1, plain), (2, cal))]
    out = imap_fetch._read(data, [1, 2], BASE_ITEMS, imap_fetch._has_calendar)
    assert b"BODYSTRUCTURE" not in out[1]
    assert out[2][b"BODYSTRUCTURE"].is_multipart


def test_unsolicited_flag_updates_are_ignored():
    """FETCH responses with only FLAGS (with or without UID, or for other UIDs) do not disturb the answer."""
    full = b'1 (UID 5 INTERNALDATE "25-Nov-2026 10:00:00 +0000" RFC822.SIZE 9 BODYSTRUCTURE ("text" "plain" NIL NIL NIL "7bit" 1 1 NIL NIL NIL NIL) ' + KEY + b' "")'
    data = [b"3 (FLAGS (\\Seen))", b"1 (UID 5 FLAGS (\\Deleted))", full, b"9 (UID 99 FLAGS ())"]
    out = same_as_imapclient(data, [5])
    assert list(out) == [5] and out[5][b"RFC822.SIZE"] == 9


def test_missing_items_or_garbage_make_the_reader_give_up():
    """A requested UID with only a flag update, or bytes the scanner cannot read, raise ScanError (so imapclient reads)."""
    with pytest.raises(imap_fetch.ScanError):
        imap_fetch._read([b"1 (UID 5 FLAGS (\\Seen))"], [5], BASE_ITEMS, imap_fetch._has_calendar)
    for bad in (b'1 (UID 5 BODYSTRUCTURE ("text" "plain"', b'1 (UID 5 X "unterminated)', b"1 UID 5", b"1 (UID 5) x",
                b"1 (UID 5 RFC822.SIZE {99}\r\nshort)"):
        with pytest.raises(imap_fetch.ScanError):
            imap_fetch.scan(bad)
    with pytest.raises(imap_fetch.ScanError):
        imap_fetch.responses([(b"1 (UID 5 " + KEY + b" {2}", b"ab")])  # ends inside a literal


# Pieces a server could put in a list, the awkward ones included: escapes, %, brackets, braces,
# leading zeros, 8-bit bytes, control characters, whitespace of every kind or none.
_PIECES = [b"(", b")", b"((", b"))", b" ", b"  ", b"\t", b"\r\n", b"NIL", b"nil", b"0", b"007", b"42",
           b"18446744073709551616", b'"', b'""', b'"TEXT"', b'"a b"', b'"\\"', b'"\\\\"', b'"\\n"',
           b'"x\\"y"', b"\\", b"TEXT", b"BODY[1]", b"]", b"%", b"{", b"{3}", b"\x00", b"\x1f", b"\x7f",
           b"\xe9", b"caf\xc3\xa9", b"7BIT", b"(\"CHARSET\" \"utf-8\")"]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30))
def test_the_lean_list_reader_reads_a_list_as_imapclient_does_or_leaves_it_to_imapclient(pieces):
    """Whatever bytes a list holds, the lean reader gives exactly imapclient's value, or None (imapclient then reads)."""
    from imapclient.response_parser import parse_response

    raw = b"(" + b"".join(pieces) + b")"
    lean = imap_fetch._lean_list(raw)
    if lean is None:
        return
    parsed = parse_response([raw])
    assert len(parsed) == 1 and lean == parsed[0]
    assert type(lean) is type(parsed[0])


def test_the_lean_list_reader_takes_the_usual_bodystructures_itself():
    """The structures of ordinary mail are read without imapclient; literals and odd bytes are left to it."""
    leaf = b'("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 120 3 NIL NIL NIL NIL)'
    usual = [leaf, b"(" + leaf + leaf.replace(b'"PLAIN"', b'"HTML"') + b' "ALTERNATIVE" ("BOUNDARY" "=_b\\"1") NIL NIL NIL)',
             b'("application" "pdf" ("name" "cv 2026.pdf") NIL NIL "base64" 40960 NIL ("attachment" ("filename" "cv.pdf")) NIL NIL)']
    from imapclient.response_parser import parse_response

    for raw in usual:
        assert imap_fetch._lean_list(raw) is not None
        assert imap_fetch.RawList(raw, None).parse() == parse_response([raw])[0]
    for odd in (b'("a" {3}\r\nabc)', b"(BODY[1] 2)", b"(%)", b'(a"b")', b"(" * 41 + b")" * 41, b"(x)(y)"):
        assert imap_fetch._lean_list(odd) is None, odd


def test_internaldate_matches_imapclient():
    """The fast INTERNALDATE reading equals imapclient's for usual, odd and invalid dates."""
    from imapclient.datetime_util import parse_to_datetime

    for value in (b"25-Nov-2026 10:00:00 +0000", b" 1-Feb-2026 23:59:59 -0930", b"01-Jan-1970 00:00:00 +1400",
                  b"29-Feb-2024 12:00:00 +0100"):
        assert imap_fetch.internaldate(value) == parse_to_datetime(value, normalise=False)
        assert imap_fetch.internaldate(value).utcoffset() == parse_to_datetime(value, normalise=False).utcoffset()
    assert imap_fetch.internaldate(b"30-Feb-2026 10:00:00 +0000") is None
    assert imap_fetch.internaldate(b"nonsense") is None
    assert imap_fetch.internaldate(None) is None


# --- against Dovecot: the whole source, both readers -----------------------------------------

def _varied_messages() -> list[bytes]:
    import base64

    ics = ("BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:x1\r\nSUMMARY:Caf\u00e9\r\n"
           "DTSTART:20261201T100000Z\r\nDTEND:20261201T110000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    head = ("From: Zo\u00eb <zoe@example.org>\r\nTo: me@example.test\r\nSubject: Gr\u00fc\u00dfe \"q\" (p) \\ x\r\n"
            "Date: Tue, 17 Nov 2026 10:00:00 +0100\r\nMessage-ID: <{n}@varied.example>\r\nMIME-Version: 1.0\r\n")
    attach = (head.format(n="attach") + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
              "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi \u00e9\r\n"
              "--b\r\nContent-Type: application/pdf; name=\"r\u00e9sum\u00e9 \\\"x\\\" (1).pdf\"\r\n"
              "Content-Disposition: attachment; filename=\"a\\\")(b.pdf\"\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n")
    invite = (head.format(n="invite") + 'Content-Type: multipart/alternative; boundary="c"\r\n\r\n'
              "--c\r\nContent-Type: text/plain\r\n\r\nsee invite\r\n"
              "--c\r\nContent-Type: text/calendar; charset=utf-8; method=REQUEST; name=\"\u00e9v\u00e9nement.ics\"\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\n"
              + base64.encodebytes(ics.encode()).decode().replace("\n", "\r\n") + "--c--\r\n")
    latin1 = (b"From: Jos\xe9 <jose@example.org>\r\nSubject: Forma\xe7\xe3o\r\nMessage-ID: <latin@varied.example>\r\n"
              b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nOl\xe1\r\n")
    no_header = b"\r\nbody only\r\n"
    return [attach.encode(), invite.encode(), latin1, no_header] + [make_message(i) for i in range(3)]


def _corpus_messages() -> list[bytes]:
    from test_imap_sync import _corpus_files

    return [p.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") for p in _corpus_files()]


def _read_all(mailbox, tmp_path, monkeypatch, fast: bool, **extra):
    """Every message of INBOX through ImapSource._fetch, with the fast reader on or off."""
    monkeypatch.setattr(imap_fetch, "ENABLED", fast)
    cfg = make_config(mailbox, tmp_path, monkeypatch, **extra)
    src = ImapSource(cfg.accounts[0])
    src.client = imap_connect.connect(cfg.accounts[0])
    try:
        src.gmail = False
        src.client.select_folder("INBOX", readonly=True)
        uids = sorted(src.client.search(["ALL"]))
        size = cfg.accounts[0].batch_size
        out = []
        for i in range(0, len(uids), size):
            out += src._fetch("INBOX", uids[i:i + size], 1)
        return out
    finally:
        src.close()


def assert_same_records(fast, slow):
    assert len(fast) == len(slow)
    for (m1, s1), (m2, s2) in zip(fast, slow):
        assert s1 == s2
        for field in dataclasses.fields(m1):
            assert getattr(m1, field.name) == getattr(m2, field.name), (s1.location, field.name)


@pytest.mark.dovecot
@pytest.mark.parametrize("snippets", [False, True])
def test_same_records_as_imapclient(mailbox, tmp_path, monkeypatch, snippets):
    """Varied messages (literal filenames, calendar invites, 8-bit headers, corpora) give identical Message/Seen records."""
    raws = _varied_messages() + _corpus_messages()
    mailbox.append_many("INBOX", raws)
    before = mailbox.flags("INBOX")
    fast = _read_all(mailbox, tmp_path / "fast", monkeypatch, True, fetch_snippets=snippets, batch_size=50)
    slow = _read_all(mailbox, tmp_path / "slow", monkeypatch, False, fetch_snippets=snippets, batch_size=50)
    assert len(fast) == len(raws)
    assert_same_records(fast, slow)
    assert sum(1 for m, _s in fast if m.calendar) >= (16 if CORPORA.is_dir() else 1)
    assert mailbox.flags("INBOX") == before
    lines = [line for line in mailbox.server.command_lines if line.startswith("UID FETCH")]
    assert all("BODY.PEEK[HEADER.FIELDS" in line or "BODY.PEEK[" in line for line in lines)
    assert not any("BODY[" in line for line in lines)


@pytest.mark.dovecot
def test_unreadable_answer_falls_back_to_imapclient(mailbox, tmp_path, monkeypatch):
    """When the scanner gives up, the chunk is fetched again through imapclient and the records are the same."""
    mailbox.append_many("INBOX", _varied_messages())
    slow = _read_all(mailbox, tmp_path / "slow", monkeypatch, False)

    def broken(buf):
        raise imap_fetch.ScanError("test")

    monkeypatch.setattr(imap_fetch, "scan", broken)
    mailbox.server.reset_commands()
    fast = _read_all(mailbox, tmp_path / "fast", monkeypatch, True)
    assert_same_records(fast, slow)
    assert mailbox.server.commands.count("UID FETCH") == 2 * 2  # headers, then the calendar part: each tried twice


@pytest.mark.dovecot
def test_flag_change_during_the_fetch(mailbox, tmp_path, monkeypatch):
    """Flags changed by another client between EXAMINE and FETCH (unsolicited FETCH responses) change no record."""
    mailbox.append_many("INBOX", [make_message(i) for i in range(4)])
    monkeypatch.setattr(imap_fetch, "ENABLED", True)
    cfg = make_config(mailbox, tmp_path, monkeypatch)
    src = ImapSource(cfg.accounts[0])
    src.client = imap_connect.connect(cfg.accounts[0])
    try:
        src.gmail = False
        src.client.select_folder("INBOX", readonly=True)
        with mailbox.client() as other:
            other.select_folder("INBOX")
            other.add_flags([2, 3], [rb"\Flagged"])
        mailbox.server.reset_commands()
        got = src._fetch("INBOX", [1, 2, 3, 4], 1)
    finally:
        src.close()
    assert mailbox.server.commands.count("UID FETCH") == 1  # Dovecot's `* 2 FETCH (FLAGS ...)` needs no fallback
    assert [s.uid for _m, s in got] == [1, 2, 3, 4]
    assert [m.message_id for m, _s in got] == [f"msg{i}@example.org" for i in range(4)]


@pytest.mark.dovecot
def test_wire_log_kept_when_asked_for(mailbox, caplog):
    """imaplib's costly line-by-line debug output is off for the bulk FETCH unless imapclient's wire log is on (-vvv)."""
    import logging

    mailbox.append("INBOX", make_message(1))
    with mailbox.client() as c:
        c.select_folder("INBOX", readonly=True)
        with caplog.at_level(logging.INFO, logger="imapclient.imaplib"):
            assert imap_fetch.fetch(c, [1], BASE_ITEMS)[1][b"RFC822.SIZE"] > 0
        assert c._imap.debug == 5  # imapclient's level is back
        with caplog.at_level(logging.DEBUG, logger="imapclient.imaplib"):
            imap_fetch.fetch(c, [1], BASE_ITEMS)
        assert [r for r in caplog.records if "msg1@example.org" in r.getMessage()]


def test_private_imapclient_api_is_pinned_to_verified_releases():
    """The bulk FETCH's private imapclient/imaplib calls were checked on this imapclient release.

    raw_uid_fetch is the one function using them; a new imapclient release fails this test
    until someone reads its fetch() again and adds the release to VERIFIED_IMAPCLIENT.
    """
    import imaplib

    import imapclient

    release = ".".join(imapclient.__version__.split(".")[:2])
    assert release in imap_fetch.VERIFIED_IMAPCLIENT, f"imapclient {imapclient.__version__} is not verified"
    for name in ("_command", "_command_complete", "_untagged_response"):
        assert callable(getattr(imaplib.IMAP4, name)), name
    assert callable(imapclient.IMAPClient._checkok)
    import ast

    tree = ast.parse(Path(imap_fetch.__file__).read_text())
    private = {"_imap", "_checkok", "_command", "_command_complete", "_untagged_response"}
    users = {fn.name for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)
             for node in ast.walk(fn) if isinstance(node, ast.Attribute) and node.attr in private}
    assert users == {"raw_uid_fetch"}


@pytest.mark.dovecot
def test_sent_mail_and_auto_replies_read_without_a_second_structure_fetch(mailbox, tmp_path, monkeypatch):
    """The user's own mail is measured and an auto-reply's return date read from the one bulk FETCH's structures."""
    own = [make_message(i, sender="me@example.test", to=f"p{i}@corp.example",
                        subject=f"Question {i}?") for i in range(6)]
    away = [make_message(10, subject="Out of office", extra="Auto-Submitted: auto-replied\r\n")
            .replace(b"Body 10", b"I am away until 2026-12-01.")]
    mailbox.append_many("INBOX", own + away)
    slow = _read_all(mailbox, tmp_path / "slow", monkeypatch, False)
    mailbox.server.reset_commands()
    fast = _read_all(mailbox, tmp_path / "fast", monkeypatch, True)
    assert_same_records(fast, slow)
    assert sum(1 for m, _s in fast if m.outreach is not None) == 6
    assert [m.ooo_until for m, _s in fast if m.auto_reply] == [slow[-1][0].ooo_until] != [None]
    lines = [line for line in mailbox.server.command_lines if line.startswith("UID FETCH")]
    assert not any(line.endswith("(BODYSTRUCTURE)") for line in lines), lines
