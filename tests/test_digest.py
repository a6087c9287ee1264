"""The weekly digest on a fixed scenario and a fixed clock (see tests/digest_scenario.py)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import digest_scenario as scenario
import pytest

from syncagent.digest import data as digest
from syncagent.store.db import open_db

SVG = "{http://www.w3.org/2000/svg}svg"


@pytest.fixture
def config(tmp_path):
    return scenario.make_config(tmp_path)


@pytest.fixture
def db(config):
    db = open_db(config.database)
    scenario.build(db, config=config)
    return db


def section(markdown: str, title: str) -> str:
    """The text of one `## title` section."""
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, flags=re.M | re.S)
    assert m, f"no section {title!r}"
    return m.group(1)


def parse_xhtml(text: str) -> ET.Element:
    return ET.fromstring(re.sub(r"^<!DOCTYPE[^>]*>", "", text.lstrip()))


def test_owed_lists_thank_yous_then_follow_ups_then_check_ins(db, config):
    """What is owed now names Alice, Bob and Dan in kind order, with how overdue and the last subject."""
    md = digest.build(db, config, now=scenario.NOW).markdown_path.read_text()
    owed = section(md, "What you owe now")
    assert owed.index("Alice Able (Acme)") < owed.index("Bob Brown (Globex)") < owed.index("Dan Diaz (Hooli)")
    assert "**Alice Able (Acme)**: 25 hours overdue · last: \"Re: Coffee chat?\"" in owed
    assert "**Bob Brown (Globex)**: 6 days overdue · last: \"Open roles on your team\"" in owed
    assert "**Dan Diaz (Hooli)**: 5 days overdue" in owed
    for name in ("Carol", "Erin", "Ivy", "Hank", "Frank", "Gina"):
        assert name not in owed


def test_sections_in_order_with_people_and_numbers(db, config):
    """Every section comes in the promised order with the scenario's people and figures."""
    md = digest.build(db, config, now=scenario.NOW).markdown_path.read_text()
    titles = re.findall(r"^## (.+)$", md, flags=re.M)
    assert titles == [
        "What you owe now", "Coming up in the next 7 days", "The week in numbers", "Reply rate by segment",
        "Responsiveness", "Fastest to answer this week", "Going quiet", "Outreach and replies, last 12 weeks",
    ]
    assert section(md, "Responsiveness").strip() == ("Of the people you wrote to first: 6 boosters (answered within 3 "
        "business days), 0 obligates (answered later), 1 curmudgeons (no answer yet after the follow-up delay).")
    assert md.startswith("# Your networking week 2026-W48 (Mon 23 Nov – Sun 29 Nov 2026)")
    coming = section(md, "Coming up in the next 7 days")
    assert "- Ivy Ito (Initech): thank-you due in 1 hour (Wed 25 Nov)" in coming
    assert "- Erin Evans (Acme): follow-up due in 6 days (Tue 01 Dec)" in coming
    numbers = section(md, "The week in numbers")
    assert "| Outreach sent | 2 | 1 |" in numbers  # W44-W47 sent 0, 0, 1, 3
    assert "| Replies received | 2 | 0.25 |" in numbers  # the auto-reply is not a reply
    assert "| Reply rate (new asks answered) | 100% | 50% |" in numbers
    assert "| Median response time | 37.0 h | 24.0 h |" in numbers  # median of 72 h and 2 h
    assert "| Meetings | 1 | 0 |" in numbers
    segments = section(md, "Reply rate by segment")
    assert "| alumni | 3 | 3 | 100% | 24.0 h |" in segments  # Hank was never asked
    assert "| recruiter | 2 | 0 | 0% | – |" in segments
    assert "| mentor | 2 | 2 | 100% | 24.0 h |" in segments
    fastest = section(md, "Fastest to answer this week")
    assert fastest.strip().splitlines() == ["1. Carol Chen (Initech): 2.0 h", "2. Alice Able (Acme): 3.0 days"]
    quiet = section(md, "Going quiet")
    assert "- Frank Fox (Globex): replied before, silent for 92 days" in quiet
    assert "- Gina Gold (Umbrella): check-in due in 15 days" in quiet
    assert "Dan" not in quiet  # already listed as owed
    chart = section(md, "Outreach and replies, last 12 weeks")
    assert "| 2026-W37 | 2 | 1 |" in chart and "| 2026-W48 | 2 | 2 |" in chart
    assert len(re.findall(r"^\| 2026-W\d\d ", chart, flags=re.M)) == 12


def test_html_is_well_formed_self_contained_and_has_the_chart(db, config):
    """The HTML parses as XML, holds an inline <svg> with 24 bars, and fetches nothing external."""
    result = digest.build(db, config, now=scenario.NOW)
    text = result.html_path.read_text()
    root = parse_xhtml(text)
    svgs = list(root.iter(SVG))
    assert len(svgs) == 1
    bars = [r for r in svgs[0].iter("{http://www.w3.org/2000/svg}rect") if r.find("{http://www.w3.org/2000/svg}title") is not None]
    assert len(bars) == 24  # 12 weeks x (sent, replies)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<script" not in text and "<link" not in text
    body = "".join(root.itertext())
    for name in ("Alice Able (Acme)", "Bob Brown (Globex)", "Dan Diaz (Hooli)", "Ivy Ito (Initech)", "Gina Gold (Umbrella)"):
        assert name in body


def test_names_are_escaped_in_html(tmp_path):
    """A contact named with markup stays text in the HTML."""
    config = scenario.make_config(tmp_path)
    db = open_db(config.database)
    db.execute("INSERT INTO contacts (name, company, created_at, updated_at) VALUES ('<b>Eve</b> & Co', 'X<Y', 'x', 'x')")
    db.execute("INSERT INTO contact_emails (address, contact_id) VALUES ('eve@x.example', 1)")
    db.execute("INSERT INTO messages (account, message_id, date, from_address, subject, direction, first_seen_at) "
               "VALUES ('a', '<0@x>', '2026-11-23T10:00:00Z', 'me@example.com', 'Hi', 'outgoing', 'x')")
    db.execute("INSERT INTO message_addresses (message, role, address) VALUES (1, 'to', 'eve@x.example')")
    db.execute("INSERT INTO messages (account, message_id, date, from_address, subject, direction, first_seen_at) "
               "VALUES ('a', '<1@x>', '2026-11-24T10:00:00Z', 'eve@x.example', '<script>', 'incoming', 'x')")
    db.execute("INSERT INTO message_addresses (message, role, address) VALUES (2, 'from', 'eve@x.example')")
    text = digest.build(db, config, now=scenario.NOW).html_path.read_text()
    root = parse_xhtml(text)
    assert "<b>Eve</b> & Co (X<Y)" in "".join(root.itertext())  # owed a thank-you
    assert "<script>" not in text and "&lt;script&gt;" in text


def test_empty_database_gives_the_friendly_digest(tmp_path):
    """With no contacts the digest is a short note on how to start, in both formats, and no table."""
    config = scenario.make_config(tmp_path)
    db = open_db(config.database)
    result = digest.build(db, config, now=scenario.NOW)
    md = result.markdown_path.read_text()
    assert "Nothing owed this week" in md
    assert "`syncagent contacts import FILE`" in md
    assert "|" not in md and "## " not in md
    root = parse_xhtml(result.html_path.read_text())
    text = "".join(root.itertext())
    assert "Nothing owed this week" in text and "syncagent contacts import FILE" in text
    assert not list(root.iter(SVG))


def test_quiet_week_is_friendly_not_empty(db, config):
    """A week with contacts but no activity says so in words, with no empty tables."""
    now = datetime(2026, 7, 22, 12, tzinfo=timezone.utc)
    md = digest.build(db, config, now=now).markdown_path.read_text()
    assert "2026-W30" in md
    assert "Nothing owed this week" in section(md, "What you owe now")
    assert "A quiet week" in section(md, "The week in numbers")
    assert "No replies this week yet." in section(md, "Fastest to answer this week")
    assert "Nobody is drifting away." in section(md, "Going quiet")


def test_rerun_rewrites_the_same_files_and_row(db, config):
    """Building a week twice rewrites the same two files and keeps one digests row."""
    first = digest.build(db, config, now=scenario.NOW)
    first.markdown_path.write_text("stale")
    second = digest.build(db, config, now=scenario.NOW)
    assert (first.markdown_path, first.html_path) == (second.markdown_path, second.html_path)
    assert first.markdown_path.name == "2026-W48.md" and first.html_path.name == "2026-W48.html"
    assert second.markdown_path.read_text().startswith("# Your networking week 2026-W48")
    assert sorted(p.name for p in first.markdown_path.parent.iterdir()) == ["2026-W48.html", "2026-W48.md"]
    rows = db.execute("SELECT week, markdown_path, html_path, sent_at FROM digests").fetchall()
    assert rows == [("2026-W48", str(second.markdown_path), str(second.html_path), None)]
    assert first.markdown_path.stat().st_mode & 0o077 == 0


def test_explicit_week_uses_that_weeks_numbers(db, config):
    """--week 2026-W47 counts that week's outreach (Bob's is W46) while owed stays as of now."""
    md = digest.build(db, config, week="2026-W47", now=scenario.NOW).markdown_path.read_text()
    assert "| Outreach sent | 3 |" in section(md, "The week in numbers")
    assert "Alice Able" in section(md, "What you owe now")


def test_run_weekly_builds_the_last_completed_week(db, config):
    """The daemon's job on Monday morning writes the week that just ended."""
    monday = datetime(2026, 11, 30, 13, 0, tzinfo=timezone.utc)  # 08:00 in New York
    result = digest.run_weekly(db, config, monday)
    assert result.week == "2026-W48" and result.sent_to is None


def test_week_parsing():
    """ISO weeks parse in both spellings; impossible weeks are a one-sentence InputError."""
    from syncagent.errors import InputError

    assert digest.parse_week("2026-W48") == (2026, 48)
    assert digest.parse_week("2026w05") == (2026, 5)
    with pytest.raises(InputError, match="YYYY-Www"):
        digest.parse_week("2026-W54")


def test_cli_prints_paths_and_rejects_a_bad_week(db, config, tmp_path, capsys):
    """`syncagent digest` prints both paths; a bad --week is an error sentence with exit 1."""
    from syncagent.cli import main

    cfg = tmp_path / "config.toml"
    cfg.write_text(
        'timezone = "America/New_York"\n'
        f'[database]\npath = "{config.database}"\n'
        f'[digest]\noutput_dir = "{config.digest.output_dir}"\n'
    )
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(cfg), "-q", "digest", "--now", "2026-11-25T15:00:00Z"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [str(config.digest.output_dir / "2026-W48.md"), str(config.digest.output_dir / "2026-W48.html")]
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(cfg), "digest", "--week", "48"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err.startswith("Error: '48' is not an ISO week")


def test_the_digest_at_the_clock_reads_what_the_sync_stored(db, config, monkeypatch):
    """Without --now the digest shows the stored ledger and reminders, the same digest as one
    evaluated afresh at that instant, and it reads no message: a million messages' events
    would not fit in the daemon's memory."""
    from syncagent import timeutil
    from syncagent.pipeline import ledger as ledger_stage

    replayed = digest.build(db, config, now=scenario.NOW).markdown_path.read_text()

    def no_mail(*_a, **_kw):
        raise AssertionError("the stored digest read every contact's events")

    monkeypatch.setattr(ledger_stage, "contact_events", no_mail)
    timeutil.set_clock(lambda: scenario.NOW)
    try:
        stored = digest.build(db, config).markdown_path.read_text()
    finally:
        timeutil.set_clock(None)
    assert stored == replayed
    for name in ("Alice Able", "Bob Brown", "Dan Diaz", "Frank Fox", "Gina Gold"):  # owed and going quiet
        assert name in stored
