"""`syncagent demo` and the bundled sample mailbox."""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from syncagent.setup.sample import generate

DATA = Path(generate.__file__).resolve().parent / "data"


def run_syncagent(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home)}
    env.pop("SYNCAGENT_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "syncagent", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=home)


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    """Two `syncagent demo` runs in one fresh HOME."""
    home = tmp_path_factory.mktemp("home")
    first = run_syncagent(home, "demo")
    second = run_syncagent(home, "demo")
    return home, first, second


def _after_sync(out: str) -> str:
    return out[out.index("Ledger as of"):]


def test_demo_runs_in_a_fresh_home_without_a_config(demo_runs):
    """The demo needs no config, exits 0 and prints the ledger, the reminders and the hint to serve."""
    home, first, _ = demo_runs
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "Imported contacts.csv: 42 added" in out
    assert "sample: 247 new messages" in out
    assert "Ledger as of Fri 13 Nov 2026 16:00 (America/New_York)" in out
    assert "42 contacts, 38 reached out to, 26 replied (68%)" in out
    assert "responsiveness: 20 boosters (replied within 3 business days), 6 obligates (later), 8 curmudgeons" in out
    assert "Helix Bio 0/1 replied" in out
    assert "Business days skip the public holidays of US; next: Thanksgiving Day on Thu 26 Nov 2026" in out
    assert re.search(r"Reminders: 14 due, \d+ coming up", out)
    assert out.rstrip().endswith("Explore it: syncagent serve --demo")
    assert re.search(r"^  what gets replies: \d-\d questions \d+% vs no question \d+%", out, re.M)
    assert 'brief "Renée Fontaine"' in out and "draft-check FILE" in out
    assert "Traceback" not in first.stderr


def test_demo_reminders_cover_every_kind(demo_runs):
    """Owed thank-yous, follow-ups and check-ins appear; capped, inbound-only and auto-replied-only cases do not mislead."""
    out = demo_runs[1].stdout
    rows = [line for line in out.splitlines() if re.match(r"\s+\d+ (due|soon) ", line)]
    lines: dict[str, str] = {}  # name -> every reminder line of theirs
    for line in rows:
        for name in re.findall(r"\d\d [A-Z][a-z]{2}  (\S+ \S+)", line):
            lines[name] = lines.get(name, "") + line + "\n"
    assert "due  thank-you" in lines["Tom Becker"]          # replied two days ago, no thanks
    assert "due  thank-you" in lines["Renée Fontaine"]       # a meeting (updated invitation) ended, no thanks
    assert "due  follow-up" in lines["Peter Novák"]          # one unanswered message, weeks ago
    assert "due  follow-up" in lines["Björn Lindqvist"]      # only an out-of-office answered
    assert "due  check-in" in lines["José Álvarez"]          # thanked months ago
    assert "soon thank-you" in lines["Maya Goldberg"]        # replied this morning
    assert "due  close loop" in lines["Priya Raman"]         # she introduced Mei, who answered; no word back
    assert "Mei Tanaka" in lines["Priya Raman"]
    assert "due  next try" in lines["Lucía Romero"]          # 3B7: nobody at Helix Bio answered Wei
    assert "soon follow-up 23 Nov" in lines["Wei Zhang"]     # her auto-reply: back on 20 Nov
    assert "out of office, back on Fri 20 Nov" in lines["Wei Zhang"]
    assert "soon follow-up 20 Nov" in lines["Grace Liu"]     # sent Tue 10 Nov: Veterans Day is skipped
    assert "Carlos Mendes" not in out                        # three unanswered: syncagent stops nagging
    assert "David Cohen" not in out                          # a recruiter wrote first: nothing owed


def test_demo_writes_only_its_own_files(demo_runs):
    """Config (0600), database and digest land in the demo directory; ~/.config/syncagent is not created."""
    home = demo_runs[0]
    demo = home / ".local/share/syncagent/demo"
    config = demo / "config.toml"
    assert config.stat().st_mode & 0o777 == 0o600
    assert (demo / "demo.db").stat().st_mode & 0o777 == 0o600
    assert (demo / "digests/2026-W46.md").read_text().strip()
    assert (demo / "digests/2026-W46.html").is_file()
    assert not (home / ".config/syncagent").exists()
    assert not (home / ".local/share/syncagent/syncagent.db").exists()


def test_demo_second_run_gives_the_same_result(demo_runs):
    """Rerunning imports nothing new, syncs nothing new and prints the same ledger and reminders."""
    home, first, second = demo_runs
    assert second.returncode == 0, second.stderr
    assert "0 added, 0 updated, 42 unchanged" in second.stdout
    assert "sample: 0 new messages" in second.stdout
    assert _after_sync(first.stdout) == _after_sync(second.stdout)
    db = sqlite3.connect(home / ".local/share/syncagent/demo/demo.db")
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 247
    assert db.execute("SELECT count(*) FROM contacts").fetchone()[0] == 42


def test_demo_now_moves_the_clock(tmp_path):
    """--now evaluates later: a follow-up that was upcoming becomes due; a bad --now is one sentence."""
    result = run_syncagent(tmp_path, "demo", "--now", "2026-12-01T15:00:00Z")
    assert result.returncode == 0, result.stderr
    grace = [line for line in result.stdout.splitlines() if "Grace Liu" in line]
    assert grace and "due  follow-up" in grace[0]
    bad = run_syncagent(tmp_path, "demo", "--now", "next tuesday")
    assert bad.returncode == 2, "a malformed option is a usage error"
    assert "'next tuesday' is not an ISO 8601 instant" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_committed_sample_matches_the_generator(tmp_path):
    """The committed sample is exactly what the generator writes (deterministic, nothing edited by hand)."""
    generate.write(tmp_path)
    for rel in ("mail/INBOX.mbox", "mail/Sent.mbox", "contacts.csv"):
        assert (tmp_path / rel).read_bytes() == (DATA / rel).read_bytes(), rel


def _messages():
    for name in ("INBOX", "Sent"):
        for msg in mailbox.mbox(DATA / "mail" / f"{name}.mbox", factory=None, create=False):
            yield name, email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)


def test_sample_has_the_cases_the_ledger_handles():
    """Lists, a DSN bounce, invitations with an update, OOO in two languages, encoded names, safe domains, small."""
    msgs = list(_messages())
    assert 200 <= len(msgs) <= 500
    size = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert size < 500_000
    assert sum(1 for _, m in msgs if m["List-Id"]) >= 20
    assert any(m.get_content_type() == "multipart/report" and "MAILER-DAEMON" in m["From"] for _, m in msgs)
    calendars = [part.get_content() for _, m in msgs for part in m.walk() if part.get_content_type() == "text/calendar"]
    assert any("METHOD:REQUEST" in c and "SEQUENCE:1" in c for c in calendars)
    assert any("SEQUENCE:0" in c for c in calendars)
    subjects = [str(m["Subject"]) for _, m in msgs]
    assert any(s.startswith("Automatic reply:") for s in subjects)
    assert any(s.startswith("Abwesenheitsnotiz:") for s in subjects)
    raw = (DATA / "mail/INBOX.mbox").read_bytes()
    assert b"=?utf-8?" in raw  # RFC 2047 encoded display names
    domains = set()
    for _, m in msgs:
        for header in ("From", "To", "Cc"):
            for addr in getattr(m[header], "addresses", ()) if m[header] else ():
                domains.add(addr.domain.lower())
    allowed = re.compile(r"(^|\.)(example\.com|example\.org)$|\.test$")
    assert all(allowed.search(d) for d in domains), sorted(d for d in domains if not allowed.search(d))
    assert all(m["Date"].datetime.astimezone().year == 2026 and m["Date"].datetime < generate.REFERENCE_NOW
               for _, m in msgs)


def test_demo_clock_is_the_sample_reference_date():
    """The demo evaluates at the instant the sample was written for (so its reminders are the intended ones)."""
    from syncagent.setup import demo

    assert demo.DEMO_NOW == generate.REFERENCE_NOW
    assert demo.DEMO_TIMEZONE == generate.TIMEZONE
    assert set(demo.DEMO_ADDRESSES) == {generate.ME[1], generate.ME_ALIAS}


def test_demo_reset_starts_from_scratch(demo_runs):
    """--reset deletes the demo directory first, so everything is imported and synced again."""
    home = demo_runs[0]
    result = run_syncagent(home, "demo", "--reset")
    assert result.returncode == 0, result.stderr
    assert "42 added" in result.stdout and "sample: 247 new messages" in result.stdout
    assert _after_sync(result.stdout) == _after_sync(demo_runs[1].stdout)
