"""Outreach measured at sync time from the user's own text: numbers stored, text never; `stats --by`."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

from click.testing import CliRunner

ME = "sam@student.example"
SENTINEL = "Zebracorn"  # a word that only the bodies hold: it must never reach the database

LONG = " ".join(["I have been following the work of your team for a while and would value your view."] * 14)


def _msg(sender, to, subject, date, mid, body, to_name="", in_reply_to=None):
    extra = f"In-Reply-To: <{in_reply_to}>\n" if in_reply_to else ""
    to_header = f"{to_name} <{to}>" if to_name else to
    return (f"From: {sender}\nTo: {to_header}\nSubject: {subject}\nDate: {date}\nMessage-ID: <{mid}>\n{extra}"
            f"Content-Type: text/plain; charset=utf-8\n\n{body}\n").encode()


def _mailbox(root: Path) -> None:
    root.mkdir()
    sent = mailbox.mbox(root / "Sent.mbox")
    inbox = mailbox.mbox(root / "INBOX.mbox")
    # A long first email with no question, personalised; Priya replies a day later.
    sent.add(_msg(ME, "priya@acme.example", "Your routing work at Acme", "Mon, 02 Nov 2026 14:00:00 +0000", "a1@s",
                  f"Hi Priya,\n\n{LONG} {SENTINEL}.\n\nBest,\nSam\n-- \nSam | MSc", to_name="Priya Shah"))
    inbox.add(_msg("Priya Shah <priya@acme.example>", ME, "Re: Your routing work at Acme",
                   "Tue, 03 Nov 2026 14:00:00 +0000", "r1@a", "Happy to help?", in_reply_to="a1@s"))
    # One template to three people within a week: mass mail, short, three questions, names a connection.
    template = ("Hi {name}, Jonas suggested I reach out. How did you start? What skills matter? "
                "Is the team hiring? " + SENTINEL + "\n\nOn Mon, Nov 2, 2026 Jonas wrote:\n> What? Why? How?\n")
    for i, (name, addr) in enumerate([("Lee", "lee@globex.example"), ("Kim", "kim@initech.example"),
                                      ("Ola", "ola@umbrella.example")]):
        sent.add(_msg(ME, addr, "Intro via Jonas", f"Wed, 0{4 + i} Nov 2026 09:00:00 +0000", f"m{i}@s",
                      template.format(name=name), to_name=f"{name} Person"))
    sent.flush()
    inbox.flush()


def _config(tmp_path: Path, analyze: bool = True) -> Path:
    path = tmp_path / "config.toml"
    privacy = "" if analyze else "\n[privacy]\nanalyze_outreach = false\n"
    path.write_text(f'timezone = "America/New_York"\n[database]\npath = "{tmp_path / "s.db"}"\n'
                    f'[[accounts]]\nname = "local"\nkind = "mbox"\npath = "{tmp_path / "mail"}"\n'
                    f'addresses = ["{ME}"]\n{privacy}')
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("name,email,company\nPriya Shah,priya@acme.example,Acme\nLee Person,lee@globex.example,Globex\n"
                        "Kim Person,kim@initech.example,Initech\nOla Person,ola@umbrella.example,Umbrella\n")
    return path


def _cli(config: Path, *args: str):
    from syncagent.cli import cli

    result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_sync_stores_the_numbers_of_each_sent_message_and_never_its_text(tmp_path):
    """Words, questions, connection and personalization are measured from the user's own words; no body text is kept."""
    _mailbox(tmp_path / "mail")
    cfg = _config(tmp_path)
    _cli(cfg, "contacts", "import", str(tmp_path / "contacts.csv"))
    _cli(cfg, "sync")
    import sqlite3

    db = sqlite3.connect(tmp_path / "s.db")
    rows = dict((mid, rest) for mid, *rest in db.execute(
        "SELECT m.message_id, o.words, o.questions, o.subject_words, o.connection, o.personalized "
        "FROM outreach o JOIN messages m ON m.id = o.message"))
    assert rows["a1@s"] == [14 * 17 + 5, 0, 5, 0, 1]  # the signature after "-- " is not counted
    assert rows["m0@s"] == [19, 3, 3, 1, 1]  # the quoted questions below "On ... wrote:" are not counted
    assert "r1@a" not in rows  # only the user's own mail is read
    dump = "\n".join(db.iterdump())
    assert SENTINEL not in dump and "following the work" not in dump


def test_stats_by_dimension_reads_the_stored_buckets(tmp_path):
    """`stats --by words|mass|questions` give reply rate and median first response per bucket, stored or at --now."""
    _mailbox(tmp_path / "mail")
    cfg = _config(tmp_path)
    _cli(cfg, "contacts", "import", str(tmp_path / "contacts.csv"))
    _cli(cfg, "sync")
    words = json.loads(_cli(cfg, "stats", "--by", "words", "--json"))
    assert words["by"] == "words"
    assert words["buckets"] == [
        {"bucket": "under 75 words", "asks": 3, "replied": 0, "reply_rate": 0.0, "median_first_response_hours": None},
        {"bucket": "200+ words", "asks": 1, "replied": 1, "reply_rate": 1.0, "median_first_response_hours": 24.0},
    ]
    mass = json.loads(_cli(cfg, "stats", "--by", "mass", "--json", "--now", "2026-11-20T00:00:00Z"))["buckets"]
    assert [(b["bucket"], b["asks"]) for b in mass] == [("mass mail", 3), ("one-to-one", 1)]
    early = json.loads(_cli(cfg, "stats", "--by", "mass", "--json", "--now", "2026-11-04T12:00:00Z"))["buckets"]
    assert [(b["bucket"], b["asks"]) for b in early] == [("one-to-one", 2)]  # two of the three not sent yet
    table = _cli(cfg, "stats", "--by", "questions")
    assert "asks by questions" in table and "3-5 questions" in table


def test_analyze_outreach_off_reads_no_body(tmp_path):
    """With [privacy] analyze_outreach = false nothing is measured, and stats --by says so."""
    _mailbox(tmp_path / "mail")
    cfg = _config(tmp_path, analyze=False)
    _cli(cfg, "contacts", "import", str(tmp_path / "contacts.csv"))
    _cli(cfg, "sync")
    import sqlite3

    assert sqlite3.connect(tmp_path / "s.db").execute("SELECT count(*) FROM outreach").fetchone() == (0,)
    assert "No measured asks yet" in _cli(cfg, "stats", "--by", "words")
