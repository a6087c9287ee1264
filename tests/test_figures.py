"""Every figure is the same on every surface: stats, the digest, Datasette, contact_summary and the demo.

Two mailboxes: the bundled demo, and a small multi-segment one synced from mbox
files below. On each, the reply figures (reached, replied, reply rate, median and
p90 first response, overall and per segment, all time and last 90 days) and the
weekly figures are read through every surface and compared.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import statistics
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncagent import config as config_mod
from syncagent import timeutil
from syncagent.cli import cli
from syncagent.digest import data as digest
from syncagent.digest import render
from syncagent.ledger.figures import NO_SEGMENT, percentile, segment_label
from syncagent.serve import datasette as serve
from syncagent.setup.demo import DEMO_NOW
from syncagent.store.db import open_db

ME = "me@example.com"
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=timezone.utc)  # Wednesday of 2026-W48 in New York
PERIODS = ("all_time", "last_90_days")
FIELDS = ("reached", "replied", "reply_rate", "median_first_response_hours", "p90_first_response_hours")

CONTACTS = """name,email,company,title,segment
Ann Archer,ann@a.example,Acme,,alumni
Ben Brook,ben@b.example,Acme,, alumni
Cat Cole,cat@c.example,Globex,,recruiter
Dan Dale,dan@d.example,Globex,,recruiter
Eve East,eve@e.example,Initech,,mentor
Fay Fern,fay@f.example,Hooli,,
Gus Gray,gus@g.example,Hooli,,
Hal Hunt,hal@h.example,Umbrella,,cold
Ivy Ives,ivy@i.example,Umbrella,,cold
Jo Jones,jo@j.example,Umbrella,,cold
"""

# (date, from, to, cc, subject, extra headers). Ann: a follow-up, then a reply 192 h after
# the first ask. Ben (" alumni "): replied in 2 h in June, outside the 90 days. Cat wrote
# first and was answered: reached, never replied to an ask. Dan: only an auto-reply. Eve:
# two asks answered in 24 h and 48 h, and a meeting. Fay (blank segment) and Gus (none):
# one mail to both, only Fay answers (Gus is Cc'd on her answer, which is not his reply).
# Hal: never written to. Ivy's reply is dated after NOW. Jo: 48 h in September.
MAIL = [
    ("2026-06-01T09:00:00Z", ME, "ben@b.example", None, "Hello from an alum", {}),
    ("2026-06-01T11:00:00Z", "ben@b.example", ME, None, "Re: Hello from an alum", {}),
    ("2026-09-01T14:00:00Z", ME, "jo@j.example", None, "Your talk", {}),
    ("2026-09-03T14:00:00Z", "jo@j.example", ME, None, "Re: Your talk", {}),
    ("2026-10-01T14:00:00Z", ME, "eve@e.example", None, "Mentoring?", {}),
    ("2026-10-02T14:00:00Z", "eve@e.example", ME, None, "Re: Mentoring?", {}),
    ("2026-10-02T15:00:00Z", ME, "eve@e.example", None, "Thank you", {}),
    ("2026-11-02T09:00:00Z", ME, "ann@a.example", None, "Coffee?", {}),
    ("2026-11-03T10:00:00Z", "cat@c.example", ME, None, "A role for you", {}),
    ("2026-11-04T10:00:00Z", ME, "cat@c.example", None, "Re: A role for you", {}),
    ("2026-11-05T10:00:00Z", "cat@c.example", ME, None, "Re: A role for you", {}),
    ("2026-11-09T09:00:00Z", ME, "ann@a.example", None, "Coffee? (bump)", {}),
    ("2026-11-10T09:00:00Z", "ann@a.example", ME, None, "Re: Coffee?", {}),
    ("2026-11-10T12:00:00Z", ME, "ann@a.example", None, "Thanks!", {}),
    ("2026-11-16T14:00:00Z", ME, "dan@d.example", None, "Open roles", {}),
    ("2026-11-16T14:01:00Z", "dan@d.example", ME, None, "Out of office", {"Auto-Submitted": "auto-replied"}),
    ("2026-11-18T14:00:00Z", ME, "eve@e.example", None, "Next step", {}),
    ("2026-11-20T14:00:00Z", "eve@e.example", ME, None, "Re: Next step", {}),
    ("2026-11-20T16:00:00Z", ME, "fay@f.example", "gus@g.example", "Both of you", {}),
    ("2026-11-21T16:00:00Z", "fay@f.example", ME, "gus@g.example", "Re: Both of you", {}),
    ("2026-11-23T14:00:00Z", ME, "ivy@i.example", None, "Quick question", {}),
    ("2026-11-27T14:00:00Z", "ivy@i.example", ME, None, "Re: Quick question", {}),
]
INVITE = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
          "UID:eve-coffee@example.com\r\nSEQUENCE:0\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261124T150000Z\r\n"
          "DTEND:20261124T160000Z\r\nORGANIZER:mailto:me@example.com\r\nATTENDEE;CN=Eve:mailto:eve@e.example\r\n"
          "SUMMARY:Coffee with Eve\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")

# What a person counts by hand in MAIL (all time / last 90 days), per segment.
EXPECTED = {
    "alumni": {"all_time": (2, 2, 1.0, 97.0, 173.0), "last_90_days": (1, 1, 1.0, 192.0, 192.0)},
    "cold": {"all_time": (2, 1, 0.5, 48.0, 48.0), "last_90_days": (2, 1, 0.5, 48.0, 48.0)},
    "mentor": {"all_time": (1, 1, 1.0, 24.0, 24.0), "last_90_days": (1, 1, 1.0, 24.0, 24.0)},
    "recruiter": {"all_time": (2, 0, 0.0, None, None), "last_90_days": (2, 0, 0.0, None, None)},
    NO_SEGMENT: {"all_time": (2, 1, 0.5, 24.0, 24.0), "last_90_days": (2, 1, 0.5, 24.0, 24.0)},
}


def _message(i: int, date: str, sender: str, to: str, cc: str | None, subject: str, extra: dict) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    if cc:
        msg["Cc"] = cc
    msg["Date"] = format_datetime(datetime.fromisoformat(date.replace("Z", "+00:00")))
    msg["Message-ID"] = f"<m{i}@figures.example>"
    for name, value in extra.items():
        msg[name] = value
    msg.set_content("Hello.\n")
    return msg.as_bytes()


def _mbox(messages: list[bytes]) -> bytes:
    out = b""
    for raw in messages:
        body = re.sub(rb"^(>*From )", rb">\1", raw.replace(b"\r\n", b"\n"), flags=re.M)
        out += b"From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n" + body.rstrip(b"\n") + b"\n\n"
    return out


@pytest.fixture(scope="module")
def mailbox(tmp_path_factory):
    """The multi-segment mailbox, contacts imported and synced at NOW; returns the config path."""
    tmp = tmp_path_factory.mktemp("figures")
    mail = tmp / "mail"
    mail.mkdir()
    inbox = [_message(i, *m) for i, m in enumerate(MAIL) if m[1] != ME]
    sent = [_message(i, *m) for i, m in enumerate(MAIL) if m[1] == ME]
    invite = EmailMessage()
    invite["From"], invite["To"], invite["Subject"] = ME, "eve@e.example", "Invitation: Coffee with Eve"
    invite["Date"], invite["Message-ID"] = "Fri, 20 Nov 2026 18:00:00 +0000", "<invite@figures.example>"
    invite.set_content(INVITE, subtype="calendar", params={"method": "REQUEST"})
    sent.append(invite.as_bytes())
    (mail / "INBOX.mbox").write_bytes(_mbox(inbox))
    (mail / "Sent.mbox").write_bytes(_mbox(sent))
    (tmp / "contacts.csv").write_text(CONTACTS, encoding="utf-8")
    path = tmp / "config.toml"
    path.write_text(
        'timezone = "America/New_York"\n'
        f'[database]\npath = "{tmp / "ledger.db"}"\n'
        f'[[accounts]]\nname = "home"\nkind = "mbox"\npath = "{mail}"\naddresses = ["{ME}"]\n'
        f'[digest]\noutput_dir = "{tmp / "digests"}"\n',
        encoding="utf-8",
    )
    config = config_mod.load(path)
    from syncagent.contacts import importing
    from syncagent.pipeline.sync import sync_all

    db = open_db(config.database)
    importing.import_file(db, tmp / "contacts.csv")
    assert all(r.ok for r in sync_all(db, config, now=NOW))
    db.conn.close()
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`syncagent demo` in a fresh HOME; returns its config path and what it printed."""
    home = tmp_path_factory.mktemp("home")
    result = CliRunner(env={"HOME": str(home), "SYNCAGENT_CONFIG": None}).invoke(cli, ["demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return home / ".local/share/syncagent/demo/config.toml", result.output


# --- each surface, read as a user or a script would --------------------------------

def _cli(config_path: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config_path), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _as_table(report: dict) -> dict:
    """{segment or "(all)": {period: (reached, replied, rate, median, p90)}} from a stats-shaped object."""
    table = {"(all)": {p: tuple(report["overall"][p][f] for f in FIELDS) for p in PERIODS}}
    for group in report["groups"]:
        table[group["segment"]] = {p: tuple(group[p][f] for f in FIELDS) for p in PERIODS}
    return table


def _datasette(db_path: Path) -> dict:
    """The reply_rate_by_segment canned query (both periods) and overall_stats, from a real Datasette."""
    ds = serve.make_datasette(db_path)

    async def get(path: str):
        response = await ds.client.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    async def go():
        await ds.invoke_startup()
        name = db_path.stem
        by_period = {p: await get(f"/{name}/reply_rate_by_segment.json?_shape=array&period={p}") for p in PERIODS}
        overall = await get(f"/{name}/overall_stats.json?_shape=array")
        weeks = await get(f"/{name}/weekly_stats.json?_shape=array&_size=max")
        canned = await get(f"/{name}/week_in_numbers.json?_shape=array")
        assert canned == [{k: w[k] for k in ("week", "messages_sent", "asks", "answered", "replies",
                                              "median_response_hours", "meetings")}
                          | {"reply_rate_percent": None if w["reply_rate"] is None else round(100 * w["reply_rate"], 1)}
                          for w in sorted(weeks, key=lambda w: w["week"], reverse=True)[:12]]
        return by_period, overall, weeks

    by_period, overall, weeks = asyncio.run(go())
    table: dict = {"(all)": {r["period"]: tuple(r[f] for f in FIELDS) for r in overall}}
    for period, rows in by_period.items():
        for r in rows:
            rate = None if r["reply_rate_percent"] is None else round(r["reply_rate_percent"] / 100, 4)
            table.setdefault(r["segment"], {})[period] = (
                r["reached"], r["replied"], rate, r["median_first_response_hours"], r["p90_first_response_hours"])
    return {"segments": table, "weeks": {w["week"]: w for w in weeks}}


def _contact_summary(db, now: datetime) -> dict:
    """The per-contact rows of contact_summary, added up by segment as the README defines the figures."""
    rows = db.execute("SELECT segment, reached, replied, first_outreach_at, first_response_hours "
                      "FROM contact_summary WHERE reached = 1").fetchall()
    since = now.timestamp() - 90 * 86400
    out: dict = {}
    for label in {"(all)", *(segment_label(r[0]) for r in rows)}:
        mine = [r for r in rows if label == "(all)" or segment_label(r[0]) == label]
        out[label] = {}
        for period in PERIODS:
            chosen = [r for r in mine if period == "all_time" or timeutil.parse_iso(r[3]).timestamp() >= since]
            firsts = [r[4] for r in chosen if r[2]]
            assert all(r[4] is not None for r in chosen if r[2])  # replied implies a first response time
            out[label][period] = (len(chosen), len(firsts), round(len(firsts) / len(chosen), 4) if chosen else None,
                                  percentile(firsts, 0.5), percentile(firsts, 0.9))
    return out


def _digest_markdown_rows(markdown: str) -> dict:
    section = markdown.split("## Reply rate by segment", 1)[1].split("## ", 1)[0]
    rows = re.findall(r"^\| (.+?) \| (\d+) \| (\d+) \| (\S+) \| (.+?) \|$", section, flags=re.M)
    return {seg.replace("\\", ""): (int(a), int(b), rate, median) for seg, a, b, rate, median in rows}


def _demo_rows(output: str) -> dict:
    """The segment lines the demo printed: segment -> (reached, replied, rate, median shown)."""
    block = output.split("median reply", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^  (\S+)\s+(\d+)\s+(\d+)\s+(\d+%)\s+(.+?)\s*$", block, flags=re.M)
    return {seg: (int(a), int(b), rate, median) for seg, a, b, rate, median in rows}


def _derived_dump(db_path: Path) -> str:
    db = open_db(db_path)
    try:
        text = "".join(
            repr(db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall())
            for t in ("contact_ledger", "replies", "overall_stats", "segment_stats", "weekly_stats", "reminders")
        )
    finally:
        db.conn.close()
    return hashlib.sha1(text.encode()).hexdigest()


def _close(a: tuple, b: tuple) -> bool:
    """Equal, hours within 0.01 (contact_summary keeps each contact's hours to two decimals)."""
    return a[:3] == b[:3] and all((x is None and y is None) or (x is not None and y is not None and abs(x - y) <= 0.011)
                                  for x, y in zip(a[3:], b[3:]))


def check_every_surface(config_path: Path, now: datetime, demo_output: str | None = None) -> dict:
    """Read the figures through every surface at ``now`` (the instant of the last sync) and assert they agree."""
    config = config_mod.load(config_path)
    db_path = config.database
    before = _derived_dump(db_path)

    stored = json.loads(_cli(config_path, "stats", "--json", "--by", "segment"))
    replayed = json.loads(_cli(config_path, "stats", "--json", "--by", "segment", "--now", timeutil.iso(now)))
    assert stored["now"] == replayed["now"] == timeutil.iso(now)
    figures = _as_table(stored)
    assert _as_table(replayed) == figures

    db = open_db(db_path)
    try:
        replay = digest.gather(db, config, now=now)
        timeutil.set_clock(lambda: now)
        try:
            current = digest.gather(db, config)
        finally:
            timeutil.set_clock(None)
        summary = _contact_summary(db, now)
    finally:
        db.conn.close()
    for data in (replay, current):
        assert {s["segment"]: {"all_time": tuple(s[f] for f in FIELDS)} for s in data.segments} == {
            name: {"all_time": g["all_time"]} for name, g in figures.items() if name != "(all)"}
    assert [(w.week, w.messages_sent, w.asks, w.answered, w.replies, w.response_seconds, w.meetings)
            for w in replay.history] == [
           (w.week, w.messages_sent, w.asks, w.answered, w.replies, w.response_seconds, w.meetings)
            for w in current.history]

    markdown = render.markdown(replay)
    shown = {name: (g["all_time"][0], g["all_time"][1], render.percent(g["all_time"][2]), render.hours(g["all_time"][3]))
             for name, g in figures.items() if name != "(all)"}
    assert _digest_markdown_rows(markdown) == shown

    served = _datasette(db_path)
    # The canned query shows the rate as a percentage to one decimal (6 of 13 is 46.2%).
    assert served["segments"].keys() == figures.keys()
    for name, periods in figures.items():
        assert served["segments"][name].keys() == periods.keys()
        for period, g in periods.items():
            got = served["segments"][name][period]
            assert got[:2] == g[:2] and got[3:] == g[3:], (name, period)
            assert (got[2] is None) == (g[2] is None) and (g[2] is None or abs(got[2] - g[2]) < 0.00051), (name, period)
    for w in replay.history:
        row = served["weeks"].get(w.week)
        if row is None:
            assert (w.messages_sent, w.asks, w.replies, w.meetings) == (0, 0, 0, 0)
        else:
            assert (row["messages_sent"], row["asks"], row["answered"], row["replies"], row["meetings"],
                    row["median_response_hours"]) == (w.messages_sent, w.asks, w.answered, w.replies, w.meetings,
                                                      w.median_response_hours)

    assert summary.keys() == figures.keys()
    for name in figures:
        for period in PERIODS:
            assert _close(summary[name][period], figures[name][period]), (name, period)

    if demo_output is not None:
        printed = _demo_rows(demo_output)
        assert printed == {name: (g["all_time"][0], g["all_time"][1], f"{g['all_time'][2]:.0%}",
                                  _demo_hours(g["all_time"][3])) for name, g in figures.items() if name != "(all)"}

    assert _derived_dump(db_path) == before  # no read above, --now or not, wrote a derived row
    return figures


def _demo_hours(value: float | None) -> str:
    from syncagent.cli.demo import _hours

    return _hours(value)


# --- the tests -------------------------------------------------------------------

def test_demo_figures_agree_on_every_surface(demo):
    """On the demo, stats (stored and --now), the digest, Datasette, contact_summary and the demo's summary agree."""
    config_path, output = demo
    figures = check_every_surface(config_path, DEMO_NOW, output)
    assert figures["recruiter"]["all_time"][:3] == (5, 3, 0.6)  # the recruiter who wrote first counts as reached
    assert figures["warm"]["all_time"][3] == 16.74  # median of first replies (the digest said 15.1 h, Datasette 52.9 h)
    assert figures["(all)"]["all_time"][:3] == (38, 26, 0.6842)


def test_multi_segment_figures_agree_on_every_surface(mailbox):
    """On a mailbox with five segments, every surface shows the figures counted by hand."""
    figures = check_every_surface(mailbox, NOW)
    assert {name: figures[name] for name in EXPECTED} == EXPECTED
    assert set(figures) == {"(all)", *EXPECTED}  # " alumni" is alumni; blank and missing are one "(none)"
    assert figures["(all)"]["all_time"][:3] == (9, 5, 0.5556)


def test_multi_segment_weeks(mailbox):
    """The week in numbers counts a mail to two contacts once, asks answered, replies and the meeting."""
    config = config_mod.load(mailbox)
    db = open_db(config.database)
    this = digest.gather(db, config, now=NOW).history[-1]
    assert (this.week, this.messages_sent, this.asks, this.answered, this.replies, this.meetings) == (
        "2026-W48", 1, 1, 0, 0, 1)  # Ivy asked Mon 23 Nov; her answer is after NOW; Eve's coffee Tue 24
    last = digest.gather(db, config, now=NOW).history[-2]
    # Dan, Eve, Fay and Gus (one mail), the invitation to Eve; four asks, Eve and Fay answered
    assert (last.week, last.messages_sent, last.asks, last.answered, last.replies) == ("2026-W47", 4, 4, 2, 2)
    assert last.median_response_hours == statistics.median([48.0, 24.0])


def test_upgrade_fills_the_new_columns_and_rebuilds_the_figures(tmp_path):
    """A database from before stored figures keeps its ledger rows, gains reached and exact first
    response times, and its next sync rebuilds every figure."""
    from syncagent.store.migrations import migrations

    path = tmp_path / "old.db"
    db = open_db(path, migrate=False)
    migrations.apply(db, stop_before="0009_stored_figures")
    stamp = "2026-11-01T00:00:00Z"
    db.execute("INSERT INTO contacts (id, name, created_at, updated_at) VALUES (1, 'Ann', ?, ?), (2, 'Ben', ?, ?)",
               [stamp] * 4)
    db.execute("INSERT INTO messages (id, account, message_id, date, direction, first_seen_at) "
               "VALUES (1, 'a', '<r@x>', '2026-11-02T11:00:00Z', 'incoming', ?)", [stamp])
    db.execute("INSERT INTO contact_ledger (contact_id, state, first_outreach_at, first_reply_at, first_response_hours, "
               "median_response_hours, replied, messages_sent, messages_received, computed_at) VALUES "
               "(1, 'REPLIED', '2026-11-02T09:00:00Z', '2026-11-02T11:00:00Z', 2.0, 2.0, 1, 1, 1, ?), "
               "(2, 'INBOUND', NULL, NULL, NULL, NULL, 0, 0, 1, ?)", [stamp, stamp])
    db.execute("INSERT INTO replies VALUES (1, 1, '2026-11-02T09:00:00Z', '2026-11-02T11:00:00Z', 2.0, 7200)")
    db.execute("INSERT INTO pipeline_state VALUES ('derived', '{}')")
    db.conn.close()

    db = open_db(path)
    assert db.execute("SELECT contact_id, reached, first_response_seconds FROM contact_ledger ORDER BY 1").fetchall() == [
        (1, 1, 7200), (2, 0, None)]
    assert db.execute("SELECT contact_id, reached, replied FROM contact_summary ORDER BY 1").fetchall() == [
        (1, 1, 1), (2, 0, 0)]
    assert db.execute("SELECT count(*) FROM pipeline_state WHERE name = 'derived'").fetchone() == (0,)
    from syncagent.pipeline import stages

    stages.after_sync(db, config_mod.parse({"database": {"path": str(path)}}, tmp_path / "c.toml"), now=NOW)
    assert db.execute("SELECT period, reached, computed_at FROM overall_stats ORDER BY 1").fetchall() == [
        ("all_time", 0, "2026-11-25T15:00:00Z"), ("last_90_days", 0, "2026-11-25T15:00:00Z")]


def test_a_quiet_sync_moves_the_90_day_window(tmp_path):
    """A sync that brings nothing new still re-dates the stored figures, so "last 90 days" follows the clock."""
    import digest_scenario as scenario

    from syncagent.pipeline import stages, stats

    config = scenario.make_config(tmp_path)
    db = open_db(config.database)
    scenario.build(db, config=config)
    stages.after_sync(db, config, now=scenario.NOW)
    before = stats.load(db)
    later = datetime(2027, 3, 1, tzinfo=timezone.utc)
    stages.after_sync(db, config, now=later)
    after = stats.load(db)
    assert before.overall["last_90_days"]["reached"] == 6
    assert (after.now, after.overall["last_90_days"]["reached"]) == (later, 0)
    assert after.overall["all_time"] == before.overall["all_time"]
    assert stats.report(after, "segment") == stats.report(stats.evaluate(db, later), "segment")
