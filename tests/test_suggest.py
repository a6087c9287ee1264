"""`syncagent contacts suggest`: the people a fresh mailbox shows you write to, before any contact is tracked."""

from __future__ import annotations

import json
import mailbox
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncagent.cli import cli
from syncagent.contacts.suggest import company_from_address

ME = "me@home.test"


def _mail(n: int, frm: str, to: list[str], subject: str, day: int, *, cc: list[str] = (), extra: str = "") -> bytes:
    headers = [f"From: {frm}", f"To: {', '.join(to)}"]
    if cc:
        headers.append(f"Cc: {', '.join(cc)}")
    headers += [f"Subject: {subject}", f"Date: {day:02d} Oct 2026 10:00:00 +0000", f"Message-ID: <m{n}@home.test>"]
    return ("\r\n".join(headers) + "\r\n" + extra + "Content-Type: text/plain\r\n\r\nHello\r\n").encode()


def build_mailbox(root: Path) -> None:
    """One month of a realistic mailbox: conversations, a newsletter, alerts, mass mail, a tracked friend."""
    box = mailbox.Maildir(root, create=True)
    many = [f"Person {i} <p{i}@crowd.test>" for i in range(12)]
    messages = [
        # Jane (a company under a country code): 3 sent, 2 received -> 2 exchanges.
        (ME, ["Jane Doe <jane@acme-corp.co.uk>"], "Coffee next week?", 1, {}),
        ("Jane Doe <jane@acme-corp.co.uk>", [ME], "Re: Coffee next week?", 2, {}),
        (ME, ["jane@acme-corp.co.uk"], "Re: Coffee next week?", 3, {}),
        ("Jane Doe <jane@acme-corp.co.uk>", [ME], "Re: Coffee next week?", 4, {}),
        (ME, ["jane@acme-corp.co.uk"], "Thanks!", 5, {}),
        # Bob on free mail: 1 exchange, recent.
        (ME, ["Bob Stone <bob.stone@gmail.com>"], "Your talk", 20, {}),
        ("Bob Stone <bob.stone@gmail.com>", [ME], "Re: Your talk", 21, {}),
        # Carol: 1 exchange, older than Bob's, on a subdomain.
        ("Carol Ng <carol@mail.beta-labs.io>", [ME], "Intro", 6, {}),
        (ME, ["carol@mail.beta-labs.io"], "Re: Intro", 7, {}),
        # Zed: only I wrote, once.
        (ME, ["Zed Park <zed@zedworks.test>"], "Hello from a stranger", 9, {}),
        # A newsletter, an alert, a mass mail to me, and my party invitation to 12 people: never suggested.
        ("Shop News <news@shop.test>", [ME], "Sale", 10, {"List-Id": "<news.shop.test>"}),
        ("Alerts <alerts@bank.test>", [ME], "Your statement", 11, {"Auto-Submitted": "auto-generated"}),
        ("Boss <boss@bigco.test>", [ME, *many], "All hands", 12, {}),
        (ME, many, "Party on Saturday", 13, {}),
        # Dave is already tracked.
        (ME, ["Dave Tracked <dave@tracked.test>"], "Lunch", 14, {}),
        ("Dave Tracked <dave@tracked.test>", [ME], "Re: Lunch", 15, {}),
    ]
    for n, (frm, to, subject, day, extra) in enumerate(messages, start=1):
        box.add(_mail(n, frm, to, subject, day, extra="".join(f"{k}: {v}\r\n" for k, v in extra.items())))


@pytest.fixture
def home(tmp_path):
    build_mailbox(tmp_path / "mail")
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "db.sqlite"}"\n[digest]\noutput_dir = "{tmp_path / "d"}"\n\n'
                      f'[[accounts]]\nname = "home"\nkind = "maildir"\npath = "{tmp_path / "mail"}"\n'
                      f'addresses = ["{ME}"]\n')
    config.chmod(0o600)
    return config


def run(config: Path, *args: str):
    result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    return result


def test_company_is_the_registered_name_unless_free_mail():
    """The company is the domain's registered label, title-cased; free-mail providers name no company."""
    assert company_from_address("jane@acme-corp.co.uk") == "Acme-Corp"
    assert company_from_address("carol@mail.beta-labs.io") == "Beta-Labs"
    assert company_from_address("x@research.example.org") == "Research"
    for free in ("a@gmail.com", "a@yahoo.co.uk", "a@hotmail.fr", "a@gmx.de", "a@proton.me", "a@example.org"):
        assert company_from_address(free) is None, free


def test_first_sync_without_contacts_points_to_suggestions(home):
    """A sync with no contacts says the ledger counts nothing and how many people could be tracked."""
    result = run(home, "sync")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "No contacts are tracked yet, so the ledger counts no mail; `syncagent contacts suggest` lists the "
        "5 people you exchanged personal mail with.")
    result = run(home, "reminders")
    assert result.output.splitlines()[0] == "Nothing owed: no open reminders."
    assert "`syncagent contacts suggest` lists the 5 people" in result.output.splitlines()[1]


def test_suggestions_rank_personal_correspondents_and_leave_out_mass_mail(home):
    """Two-way exchanges first, then recency; lists, automatic and mass mail, and tracked people, are left out."""
    run(home, "sync")
    assert run(home, "contacts", "add", "Dave Tracked", "dave@tracked.test").exit_code == 0
    result = run(home, "contacts", "suggest")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "4 people you exchanged personal mail with, not tracked yet (most two-way exchanges first):",
        "#  name       address                  company    exchanges               last message",
        "1  Jane Doe   jane@acme-corp.co.uk     Acme-Corp  2 (3 sent, 2 received)  2026-10-05  Thanks!",
        "2  Bob Stone  bob.stone@gmail.com                 1 (1 sent, 1 received)  2026-10-21  Re: Your talk",
        "3  Carol Ng   carol@mail.beta-labs.io  Beta-Labs  1 (1 sent, 1 received)  2026-10-07  Re: Intro",
        "4  Zed Park   zed@zedworks.test        Zedworks   0 (1 sent, 0 received)  2026-10-09  Hello from a stranger",
        "Track them with `syncagent contacts suggest --add 1 2`, or everyone with at least 2 exchanges with "
        "`syncagent contacts suggest --add-all --min-exchanges 2`.",
    ]
    data = json.loads(run(home, "contacts", "suggest", "--json", "--limit", "1").output)
    assert [(s["number"], s["address"], s["company"], s["exchanges"]) for s in data][:2] == [
        (1, "jane@acme-corp.co.uk", "Acme-Corp", 2), (2, "bob.stone@gmail.com", None, 1)]
    limited = run(home, "contacts", "suggest", "--limit", "2").output.splitlines()
    assert limited[4] == "... and 2 more (`--limit 0` shows all)."


def test_add_by_number_tracks_them_and_the_ledger_counts_their_mail(home):
    """`--add 1 4` makes contacts of suggestions 1 and 4; their mail then counts in stats."""
    run(home, "sync")
    result = run(home, "contacts", "suggest", "--add", "1", "4")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:3] == [
        "Added 2 contacts from your mail.", "  Jane Doe <jane@acme-corp.co.uk>", "  Carol Ng <carol@mail.beta-labs.io>"]
    listed = json.loads(run(home, "contacts", "list", "--json").output)
    assert [(c["name"], c["email"], c["company"]) for c in listed] == [
        ("Jane Doe", "jane@acme-corp.co.uk", "Acme-Corp"), ("Carol Ng", "carol@mail.beta-labs.io", "Beta-Labs")]
    stats = json.loads(run(home, "stats", "--json", "--now", "2026-10-31T00:00:00Z").output)
    assert stats["overall"]["all_time"]["reached"] == 2
    remaining = run(home, "contacts", "suggest", "--json").output
    assert [s["address"] for s in json.loads(remaining)] == [
        "bob.stone@gmail.com", "dave@tracked.test", "zed@zedworks.test"]


def test_add_all_takes_those_with_enough_exchanges(home):
    """`--add-all --min-exchanges 2` adds only the people with at least two two-way exchanges."""
    run(home, "sync")
    result = run(home, "contacts", "suggest", "--add-all", "--min-exchanges", "2")
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == "Added 1 contact from your mail."
    assert run(home, "contacts", "suggest", "--add-all").output.splitlines()[0] == "Added 3 contacts from your mail."


def test_a_number_not_on_the_list_is_one_sentence(home):
    """`--add 9` with five suggestions fails with exit 1, naming the range, and adds nobody."""
    run(home, "sync")
    result = CliRunner().invoke(cli, ["--config", str(home), "contacts", "suggest", "--add", "2", "9"])
    assert result.exit_code == 1
    assert "There is no suggestion 9 (1 to 5); run `syncagent contacts suggest` to see the numbers." in str(
        result.exception)
    assert json.loads(run(home, "contacts", "list", "--json").output) == []


def test_doctor_and_digest_say_no_one_is_tracked(home):
    """doctor notes the empty contact book; the empty digest points to the suggestions."""
    run(home, "sync")
    doctor = run(home, "doctor", "--offline").output
    assert ("--  contacts: No contacts are tracked yet, so the ledger counts no mail; `syncagent contacts suggest` "
            "lists the 5 people you exchanged personal mail with.") in doctor.splitlines()
    digest = run(home, "digest", "--now", "2026-10-31T00:00:00Z")
    assert digest.exit_code == 0, digest.output
    md = next((home.parent / "d").glob("*.md")).read_text()
    assert "`syncagent contacts suggest`" in md


def test_demo_suggests_the_untracked_friend_and_the_old_address(tmp_path):
    """On the demo, the friend outside the contact book is first; a tracked person's old address joins them."""
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("SYNCAGENT_CONFIG", None)

    def syncagent(*args):
        return subprocess.run([sys.executable, "-m", "syncagent", *args], env=env, capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)

    assert syncagent("-q", "demo").returncode == 0
    config = str(tmp_path / ".local/share/syncagent/demo/config.toml")
    listing = syncagent("--config", config, "contacts", "suggest")
    out = listing.stdout.splitlines()
    assert listing.returncode == 0, listing.stderr
    assert out[0] == "2 people you exchanged personal mail with, not tracked yet (most two-way exchanges first):"
    assert out[2].split() == ["1", "Jamie", "Rivera", "jamie.rivera@example.org", "5", "(5", "sent,", "5",
                              "received)", "2026-11-09", "Re:", "Dinner", "Saturday?"]
    assert "Ahmed Hassan (contact 25?)  ahmed.hassan@delta-old.test" in out[3]
    added = syncagent("--config", config, "contacts", "suggest", "--add", "2")
    assert added.stdout.splitlines()[:2] == [
        "Added 0 contacts from your mail.",
        "Added ahmed.hassan@delta-old.test to contact 25 (Ahmed Hassan), who has the same name."]
    listed = json.loads(syncagent("--config", config, "contacts", "list", "--json").stdout)
    ahmed = next(c for c in listed if c["id"] == 25)
    assert ahmed["emails"][-1] == "ahmed.hassan@delta-old.test" and len(listed) == 42
