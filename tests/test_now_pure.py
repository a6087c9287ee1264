"""`--now` is a pure evaluation: no command given it writes to the database (DESIGN.md, "Command line")."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import digest_scenario as scenario
import pytest
from click.testing import CliRunner

from syncagent import timeutil
from syncagent.cli import cli
from syncagent.store.db import open_db

# Before any mail; past instants owing what no sync stored (Frank's thank-you in June, Alice's
# follow-up on 21 Nov); the scenario's own clock; and later.
INSTANTS = ["2026-01-01T00:00:00Z", "2026-06-03T12:00:00Z", "2026-11-21T00:00:00Z", "2026-11-25T15:00:00Z",
            "2027-03-01T12:00:00Z"]

COMMANDS = [
    ["reminders", "--json"],
    ["reminders"],
    ["reminders", "--due"],
    ["reminders", "--due", "--json"],
    ["stats"],
    ["stats", "--json", "--by", "segment"],
    ["digest"],
    ["digest", "--week", "2026-W40"],
    ["contacts", "list", "--json"],
    ["companies", "--json"],
    ["brief", "Alice Able", "--json"],
]


class Observer:
    """A second connection to the database: PRAGMA data_version moves when any other connection commits."""

    def __init__(self, path: Path):
        self.path = path
        self.conn = sqlite3.connect(path)

    def state(self) -> tuple:
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        files = [self.path, self.path.with_name(self.path.name + "-wal")]
        digest = hashlib.sha256(b"".join(f.read_bytes() if f.exists() else b"" for f in files)).hexdigest()
        return version, digest


@pytest.fixture
def synced(tmp_path):
    """The digest scenario reconciled at its clock, with a snoozed and a dismissed reminder."""
    config = scenario.make_config(tmp_path)
    db = open_db(config.database)
    scenario.build(db, config=config)
    from syncagent.pipeline import reminders

    reminders.mark(db, 1, "snooze", scenario.NOW, scenario.NOW.replace(day=28))
    reminders.mark(db, 2, "dismiss", scenario.NOW)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    path = tmp_path / "config.toml"
    path.write_text(f'timezone = "America/New_York"\n[database]\npath = "{config.database}"\n'
                    f'[digest]\noutput_dir = "{tmp_path / "digests"}"\n')
    return path, Path(config.database)


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_command_with_now_writes_nothing(synced, command, monkeypatch):
    """Each command given --now, at instants before, at and after the last sync, leaves the database
    byte for byte as it was (no reminder rows for past obligations, no digest record)."""
    config_path, db_path = synced
    monkeypatch.setattr(timeutil, "_clock", lambda: scenario.NOW)
    observer = Observer(db_path)
    before = observer.state()
    for instant in INSTANTS:
        result = CliRunner().invoke(cli, ["--config", str(config_path), *command, "--now", instant],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert observer.state() == before, f"{' '.join(command)} --now {instant} wrote to the database"


def test_replayed_obligation_without_a_row_has_null_id(synced, monkeypatch):
    """A past obligation no sync stored is listed with "id": null; one the sync stored keeps its id."""
    config_path, _ = synced
    run = CliRunner().invoke(cli, ["--config", str(config_path), "reminders", "--json", "--now",
                                   "2026-06-03T12:00:00Z"], catch_exceptions=False)
    listed = json.loads(run.output)
    assert [(r["id"], r["contact_name"], r["kind"]) for r in listed] == [
        (None, "Frank Fox", "thank_you")]
    now = CliRunner().invoke(cli, ["--config", str(config_path), "reminders", "--json", "--now",
                                   "2026-11-25T15:00:00Z"], catch_exceptions=False)
    assert all(isinstance(r["id"], int) for r in json.loads(now.output))


def test_real_clock_reminders_reconciles_the_table(synced, monkeypatch):
    """Without --now, `reminders` brings the table up to date (a snooze that ran out is open again in
    the database, as Datasette shows it), and the observer above sees that commit."""
    config_path, db_path = synced
    later = scenario.NOW.replace(month=12, day=2)  # the snooze (until 28 Nov) is over
    monkeypatch.setattr(timeutil, "_clock", lambda: later)
    observer = Observer(db_path)
    before = observer.state()
    result = CliRunner().invoke(cli, ["--config", str(config_path), "reminders", "--json"], catch_exceptions=False)
    assert result.exit_code == 0
    assert observer.state()[0] != before[0]
    assert observer.conn.execute("SELECT status FROM reminders WHERE id = 1").fetchone() == ("open",)
    assert 1 in [r["id"] for r in json.loads(result.output)]
