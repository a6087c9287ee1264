"""`syncagent brief` on the demo, and the brief the service sends before each meeting."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from syncagent import config as config_mod
from syncagent.store.db import open_db

NOW = "2026-11-13T21:00:00Z"


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home), "SYNCAGENT_CONFIG": str(home / ".local/share/syncagent/demo/config.toml")}
    return subprocess.run([sys.executable, "-m", "syncagent", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_brief_tells_the_story_in_order(demo_home):
    """The brief names the person, their company and tags, each turn with its date, and the thank-you owed."""
    out = _cli(demo_home, "brief", "Renée Fontaine", "--now", NOW)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Renée Fontaine — Head of Data, Lumière Analytics <renee.fontaine@lumiere.example.org>"
    assert "state MET" in lines[1] and "tags friend, paris" in lines[1]
    story = lines[lines.index("The story") + 1: lines.index("Owed now") - 1]
    assert story[0] == "  Wed 4 Nov 2026  first outreach: 'Coffee chat?'"
    assert story[1] == "  Wed 4 Nov 2026  reply after 5.0 h: 'Re: Coffee chat?'"
    assert story[-1] == "  Wed 11 Nov 2026  meeting: 'Alex / Renée chat'"
    owed = lines[lines.index("Owed now") + 1]
    assert "thank-you: Met Renée Fontaine 2 days ago ('Alex / Renée chat'); no thank-you sent" in owed


def test_brief_json_matches_the_ledger(demo_home):
    """--json gives the same story with response times, by address as by name, and writes nothing."""
    db = demo_home / ".local/share/syncagent/demo/demo.db"
    before = db.read_bytes()
    by_name = json.loads(_cli(demo_home, "brief", "Renée Fontaine", "--json", "--now", NOW).stdout)
    by_mail = json.loads(_cli(demo_home, "brief", "RENEE.FONTAINE@lumiere.example.org", "--json", "--now", NOW).stdout)
    assert by_name == by_mail
    assert [s["what"] for s in by_name["story"]][:2] == ["outreach", "reply"]
    assert by_name["story"][1]["response_hours"] == 5.0
    assert by_name["owed"][0]["kind"] == "thank_you"
    assert db.read_bytes() == before


def test_brief_refuses_unknown_or_ambiguous_people(demo_home):
    """Nobody matching, or a name part matching several contacts, is one sentence and exit 1."""
    none = _cli(demo_home, "brief", "Nobody Anywhere")
    assert none.returncode == 1
    assert none.stderr.strip() == ("Error: No tracked contact matches 'Nobody Anywhere'; "
                                   "run `syncagent contacts list` to see who is tracked.")
    many = _cli(demo_home, "brief", "a")
    assert many.returncode == 1 and "give their email address instead" in many.stderr


def test_service_sends_each_meeting_brief_once_a_day_ahead(demo_home, tmp_path, monkeypatch):
    """24 hours before a meeting its brief goes to notify-send once; none before that, none again, none when off."""
    shutil.copy(demo_home / ".local/share/syncagent/demo/demo.db", tmp_path / "demo.db")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "notified.txt"
    script = bindir / "notify-send"
    script.write_text(f'#!/bin/sh\nprintf "%s\\0" "$@" >> "{record}"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
    from syncagent.notify import briefs

    def cfg(hours):
        return config_mod.parse({"timezone": "America/New_York", "database": {"path": str(tmp_path / "demo.db")},
                                 "notify": {"desktop": True, "brief_hours_before": hours}}, tmp_path / "c.toml")

    db = open_db(tmp_path / "demo.db")
    # "Alex / Renée chat" starts Wed 11 Nov 2026 11:00 in New York (16:00 UTC).
    assert briefs.notify_briefs(db, cfg(24), datetime(2026, 11, 10, 15, 59, tzinfo=timezone.utc)) == 0
    assert briefs.notify_briefs(db, cfg(0), datetime(2026, 11, 10, 17, 0, tzinfo=timezone.utc)) == 0
    assert briefs.notify_briefs(db, cfg(24), datetime(2026, 11, 10, 17, 0, tzinfo=timezone.utc)) == 1
    assert briefs.notify_briefs(db, cfg(24), datetime(2026, 11, 10, 18, 0, tzinfo=timezone.utc)) == 0
    args = record.read_text().split("\0")
    assert args[1] == "Brief: Renée Fontaine, Wed 11 Nov 11:00"
    assert args[2].startswith("Renée Fontaine — Head of Data, Lumière Analytics")
    assert "The story" in args[2]


def test_a_brief_at_the_clock_reads_one_contact_and_the_stored_reminders(demo_home, monkeypatch):
    """The brief the daemon, the digest and `syncagent brief` make at the clock is the one evaluated
    at that instant, read from one contact's mail and the reminders the sync stored: it does not
    evaluate every contact (minutes at a million messages)."""
    from syncagent.pipeline import ledger as ledger_stage
    from syncagent.pipeline import reminders
    from syncagent.reports import brief
    from syncagent.store.db import open_for_reading

    config = config_mod.load(demo_home / ".local/share/syncagent/demo/config.toml")
    db = open_for_reading(config.database)
    now = datetime(2026, 11, 13, 21, 0, tzinfo=timezone.utc)  # the instant the demo was derived at
    evaluated = brief.build(db, config, "Renée Fontaine", now)
    loads = []
    events = ledger_stage.contact_events

    def one_contact(db_, now_, ids=None):
        loads.append(ids)
        return events(db_, now_, ids)

    def everyone(*_a, **_kw):
        raise AssertionError("the brief evaluated every contact's reminders")

    monkeypatch.setattr(ledger_stage, "contact_events", one_contact)
    monkeypatch.setattr(reminders, "listing", everyone)
    at_clock = brief.build(db, config, "Renée Fontaine", now, stored=True)
    assert at_clock == evaluated
    assert at_clock["owed"] and at_clock["owed"][0]["kind"] == "thank_you"
    assert loads and all(ids is not None and len(ids) == 1 for ids in loads)
