"""Reply-rate statistics: the figures, the 90-day window, segments, and the `stats` command."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from syncagent.cli import cli
from syncagent.model import Batch, Seen
from syncagent.parse.headers import parse_message
from syncagent.pipeline import ledger as ledger_store
from syncagent.pipeline import stats
from syncagent.store import db as store

ME = "me@example.com"
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)

# (id, name, segment, address)
CONTACTS = [
    (1, "Ann", "alumni", "ann@a.example"),
    (2, "Ben", "alumni", "ben@b.example"),
    (3, "Cat", "recruiter", "cat@c.example"),
    (4, "Dan", None, "dan@d.example"),
    (5, "Eve", "", "eve@e.example"),
    (6, "Fay", "alumni", "fay@f.example"),
    (7, "Gus", None, "gus@g.example"),
]
# (from, to, date): Ann replied in 2 h (June, outside the 90 days); Ben in 192 h after a
# follow-up; Cat never; Dan in 1 h; Eve wrote first (reached, no reply to an ask);
# Fay has no mail; Gus's reply is dated after NOW.
MAIL = [
    (ME, "ann@a.example", "2026-06-01T09:00:00Z"), ("ann@a.example", ME, "2026-06-01T11:00:00Z"),
    (ME, "ben@b.example", "2026-10-01T09:00:00Z"), (ME, "ben@b.example", "2026-10-08T09:00:00Z"),
    ("ben@b.example", ME, "2026-10-09T09:00:00Z"),
    (ME, "cat@c.example", "2026-11-20T09:00:00Z"),
    (ME, "dan@d.example", "2026-11-25T09:00:00Z"), ("dan@d.example", ME, "2026-11-25T10:00:00Z"),
    ("eve@e.example", ME, "2026-11-01T09:00:00Z"), (ME, "eve@e.example", "2026-11-02T09:00:00Z"),
    (ME, "gus@g.example", "2026-11-28T09:00:00Z"), ("gus@g.example", ME, "2026-12-05T09:00:00Z"),
]

ALL_TIME = {"reached": 6, "replied": 3, "reply_rate": 0.5,
            "median_first_response_hours": 2.0, "p90_first_response_hours": 154.0}
RECENT = {"reached": 5, "replied": 2, "reply_rate": 0.4,
          "median_first_response_hours": 96.5, "p90_first_response_hours": 172.9}


def fill(db) -> None:
    for cid, name, segment, address in CONTACTS:
        db.execute("INSERT INTO contacts (id, name, segment, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                   [cid, name, segment, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"])
        db.execute("INSERT INTO contact_emails (address, contact_id) VALUES (?, ?)", [address, cid])
    items = []
    for i, (frm, to, date) in enumerate(MAIL):
        when = datetime.fromisoformat(date.replace("Z", "+00:00"))
        raw = (f"From: {frm}\r\nTo: {to}\r\nSubject: s{i}\r\nMessage-ID: <m{i}@x>\r\n"
               f"Date: {when:%a, %d %b %Y %H:%M:%S} +0000\r\n\r\nbody\r\n").encode()
        items.append((parse_message(raw), Seen(folder="INBOX", location=str(i))))
    store.save_batch(db, "main", [ME], Batch(items=items, folder="INBOX"))


@pytest.fixture
def db(tmp_path):
    """A database holding the seven contacts and their mail above."""
    db = store.open_db(tmp_path / "x.db")
    fill(db)
    return db


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([], 0.5, None),
    ([5.0], 0.9, 5.0),
    ([1.0, 2.0, 192.0], 0.5, 2.0),
    ([1.0, 2.0, 192.0], 0.9, 154.0),
    ([4.0, 1.0, 3.0, 2.0], 0.5, 2.5),
    ([float(i) for i in range(1, 11)], 0.9, 9.1),
])
def test_percentile(values, q, expected):
    """Percentiles interpolate linearly between closest ranks, like numpy's default."""
    result = stats.percentile(values, q)
    assert result == expected if expected is None else result == pytest.approx(expected)


def test_overall_and_last_90_days(db):
    """Reached, replied, rate, median and p90 of first replies, all time and for recent first outreach."""
    report = stats.summarize(stats.from_ledgers(db, ledger_store.ledgers(db, NOW)), NOW)
    assert report == {"now": "2026-12-01T00:00:00Z", "by": None,
                      "overall": {"all_time": ALL_TIME, "last_90_days": RECENT}, "groups": []}


def test_by_segment(db):
    """Per segment, named ones alphabetically and missing or blank segments as "(none)" last."""
    report = stats.summarize(stats.from_ledgers(db, ledger_store.ledgers(db, NOW)), NOW, "segment")
    assert report["groups"] == [
        {"segment": "alumni",
         "all_time": {"reached": 2, "replied": 2, "reply_rate": 1.0,
                      "median_first_response_hours": 97.0, "p90_first_response_hours": 173.0},
         "last_90_days": {"reached": 1, "replied": 1, "reply_rate": 1.0,
                          "median_first_response_hours": 192.0, "p90_first_response_hours": 192.0}},
        {"segment": "recruiter",
         "all_time": {"reached": 1, "replied": 0, "reply_rate": 0.0,
                      "median_first_response_hours": None, "p90_first_response_hours": None},
         "last_90_days": {"reached": 1, "replied": 0, "reply_rate": 0.0,
                          "median_first_response_hours": None, "p90_first_response_hours": None}},
        {"segment": "(none)",
         "all_time": {"reached": 3, "replied": 1, "reply_rate": 0.3333,
                      "median_first_response_hours": 1.0, "p90_first_response_hours": 1.0},
         "last_90_days": {"reached": 3, "replied": 1, "reply_rate": 0.3333,
                          "median_first_response_hours": 1.0, "p90_first_response_hours": 1.0}},
    ]


def test_stored_tables_give_the_same_figures(db):
    """Stats read from contact_ledger/replies after a recompute equal those computed in memory."""
    ledger_store.recompute(db, NOW)
    stored = stats.summarize(stats.from_tables(db), NOW, "segment")
    fresh = stats.summarize(stats.from_ledgers(db, ledger_store.ledgers(db, NOW)), NOW, "segment")
    assert stored == fresh


def test_no_contacts_reached():
    """With nobody reached, counts are zero and rates and times are null, not errors."""
    report = stats.summarize([], NOW, "segment")
    empty = {"reached": 0, "replied": 0, "reply_rate": None,
             "median_first_response_hours": None, "p90_first_response_hours": None}
    assert report["overall"] == {"all_time": empty, "last_90_days": empty}
    assert report["groups"] == []


@pytest.fixture
def config_file(tmp_path):
    """A config whose database holds the scenario above."""
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\npath = "{tmp_path / "cli.db"}"\n')
    fill(store.open_db(tmp_path / "cli.db"))
    return path


def run(config_file, *args):
    return CliRunner().invoke(cli, ["--config", str(config_file), "stats", *args], catch_exceptions=False)


def test_cli_json_with_now(config_file):
    """`stats --json --now` prints the stable object, computed at that instant."""
    result = run(config_file, "--json", "--now", "2026-12-01T00:00:00Z")
    assert result.exit_code == 0
    assert json.loads(result.output)["overall"] == {"all_time": ALL_TIME, "last_90_days": RECENT}


def test_cli_table_by_segment(config_file):
    """The human table is aligned, one line per segment and period."""
    result = run(config_file, "--by", "segment", "--now", "2026-12-01T00:00:00Z")
    assert result.exit_code == 0
    assert result.output == (
        "Replies to outreach as of 2026-12-01T00:00:00Z\n"
        "segment    period        reached  replied  rate  median h  p90 h\n"
        "(all)      all time            6        3   50%       2.0  154.0\n"
        "(all)      last 90 days        5        2   40%      96.5  172.9\n"
        "alumni     all time            2        2  100%      97.0  173.0\n"
        "alumni     last 90 days        1        1  100%     192.0  192.0\n"
        "recruiter  all time            1        0    0%         -      -\n"
        "recruiter  last 90 days        1        0    0%         -      -\n"
        "(none)     all time            3        1   33%       1.0    1.0\n"
        "(none)     last 90 days        3        1   33%       1.0    1.0\n"
    )


def test_cli_without_now_uses_stored_ledger(config_file, tmp_path):
    """Without --now the figures come from the ledger as last stored, not recomputed at the clock."""
    ledger_store.recompute(store.open_db(tmp_path / "cli.db"), NOW)
    result = run(config_file)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["period", "reached", "replied", "rate", "median", "h", "p90", "h"]
    assert lines[2].split() == ["all", "time", "6", "3", "50%", "2.0", "154.0"]


def test_cli_computes_a_ledger_never_computed(config_file, tmp_path):
    """A database whose ledger stage never ran gets it computed before the figures are read."""
    assert run(config_file).exit_code == 0
    db = store.open_db(tmp_path / "cli.db")
    assert db.execute("SELECT COUNT(*) FROM contact_ledger").fetchone() == (len(CONTACTS),)


def test_cli_bad_now(config_file):
    """A malformed --now is a usage error (exit 2) that shows the expected form."""
    result = run(config_file, "--now", "yesterday")
    assert result.exit_code == 2
    assert "2026-11-20T17:00:00Z" in result.output
