"""Outreach measured from the user's own text, the what-works buckets, the story, and `draft-check`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from syncagent.ledger import story, what_works
from syncagent.ledger.turns import IN, MEETING, OUT, Event, prepare
from syncagent.parse import outreach

T0 = datetime(2026, 11, 2, 14, 0, tzinfo=timezone.utc)


REPLY_WITH_HISTORY = """Hi Priya,

Thanks so much! Could we talk on Tuesday? What does a typical week look like?

Best,
Sam
--
Sam Student | MSc Data Science | +1 555 0100

On Mon, Nov 2, 2026 at 9:00 AM Priya Shah <priya@acme.example> wrote:
> Happy to help. What would you like to know?
> Ask me anything?
"""


@pytest.mark.parametrize("text, kept", [
    (REPLY_WITH_HISTORY, "Hi Priya,\n\nThanks so much! Could we talk on Tuesday? What does a typical week look like?"
                         "\n\nBest,\nSam"),
    ("Quick one?\n\n-----Original Message-----\nFrom: a\nWhat?", "Quick one?"),
    ("Danke!\n\nAm 2. Nov. 2026 um 09:00 schrieb Jonas <j@x.de>:\n> Frage?", "Danke!"),
    ("Merci !\n\nLe lun. 2 nov. 2026 à 09:00, Claire <c@x.fr> a écrit :\n> Question ?", "Merci !"),
    ("Top\n\nSent from my iPhone", "Top"),
    ("> only quoted?\nmine", "mine"),
])
def test_own_text_drops_quoted_history_and_signature(text, kept):
    """Only what the user wrote is measured: attribution lines, quotes, forwarded blocks and signatures go."""
    assert outreach.own_text(text) == kept


def test_measure_counts_words_questions_connection_and_personalization():
    """A reply's quoted questions are not counted; the user's own two questions and 19 words are."""
    m = outreach.measure("Re: Coffee chat?", REPLY_WITH_HISTORY, first_name="Priya", company="Acme")
    assert (m.words, m.questions, m.subject_words) == (19, 2, 3)
    assert m.personalized and not m.connection
    intro = outreach.measure("Intro via Jonas: data roles at Acme", "Jonas Becker suggested I reach out.")
    assert intro.connection and not intro.personalized
    alum = outreach.measure("Fellow Rotman alum", "Hello! We both studied in Toronto.")
    assert alum.connection
    assert outreach.measure("Hi", "I saw your talk.", known_names=["Jonas Becker"]).connection is False
    assert outreach.measure("Hi", "Jonas Becker told me to write.", known_names=["Jonas Becker"]).connection


def test_fingerprint_matches_one_template_sent_to_many():
    """The same text with the recipient's name swapped in has one fingerprint; a different text another."""
    a = outreach.measure("Hello", "Hi Priya, I admire Acme's work. Can we talk?", first_name="Priya", company="Acme")
    b = outreach.measure("Hello", "Hi Jonas, I admire Globex's work. Can we talk?", first_name="Jonas",
                         company="Globex")
    c = outreach.measure("Hello", "Hi Jonas, I read your paper on routing. Can we talk?", first_name="Jonas")
    assert a.fingerprint == b.fingerprint != c.fingerprint


@pytest.mark.parametrize("subject, generic", [
    ("Hello", True), ("Re: quick question", True), ("Coffee chat?", True), ("", True),
    ("Intro via Jonas: data roles at Acme", False), ("Your PyCon talk on routing", False),
])
def test_generic_subjects(subject, generic):
    """Subjects that say nothing about why this person are generic."""
    assert outreach.is_generic_subject(subject) is generic


def _ask(words=50, questions=3, replied=True, seconds=3600, **kw):
    base = dict(personalized=True, mass=False, connection=False, weekday=0, hour=10)
    base.update(kw)
    return what_works.Ask(words, questions, base["personalized"], base["mass"], base["connection"],
                          base["weekday"], base["hour"], replied, seconds if replied else None)


def test_buckets_give_reply_rate_and_median_per_bucket():
    """Asks are grouped per dimension in reading order, each with its reply rate and median response."""
    asks = [_ask(50, seconds=3600), _ask(60, seconds=7200), _ask(60, replied=False), _ask(300, replied=False)]
    assert what_works.figures(asks, "words") == [
        {"bucket": "under 75 words", "asks": 3, "replied": 2, "reply_rate": 0.6667, "median_first_response_hours": 1.5},
        {"bucket": "200+ words", "asks": 1, "replied": 0, "reply_rate": 0.0, "median_first_response_hours": None},
    ]
    assert [b["bucket"] for b in what_works.figures([_ask(hour=23), _ask(hour=9)], "hour")] == \
        ["morning (9-12)", "night (22-5)"]
    assert what_works.figures([_ask(mass=True)], "mass")[0]["bucket"] == "mass mail"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 60), st.integers(1, 3)), max_size=40))
def test_mass_mail_is_one_text_to_three_people_within_a_week(sends):
    """An ask is mass mail when its text went to three or more contacts within seven days of it,
    either side, boundaries included: the rule as written, for any mix of sends."""
    from syncagent.pipeline.outreach import _mass_fingerprints

    sent = [(contact, T0 + timedelta(hours=12 * halves), fp) for contact, halves, fp in sends]
    expected = {(fp, at) for _c, at, fp in sent
                if len({c for c, t, f in sent if f == fp and abs(t - at) <= timedelta(days=7)}) >= 3}
    assert _mass_fingerprints(sent) == expected


def test_story_names_every_step():
    """Outreach, follow-up, reply (timed from the first message), thank-you, meeting and a new ask, in order."""
    events = prepare([
        Event(T0, OUT, "message:1", "Coffee?"),
        Event(T0 + timedelta(days=7), OUT, "message:2", "Re: Coffee?"),
        Event(T0 + timedelta(days=8), IN, "message:3", "Re: Coffee?"),
        Event(T0 + timedelta(days=8, hours=2), OUT, "message:4", "Thanks!"),
        Event(T0 + timedelta(days=10), MEETING, "meeting:1", "Chat"),
        Event(T0 + timedelta(days=10, hours=3), OUT, "message:5", "Thank you for the chat"),
        Event(T0 + timedelta(days=40), OUT, "message:6", "An update"),
    ], T0 + timedelta(days=50))
    steps = story.story(events)
    assert [(s.what, s.label) for s in steps] == [
        ("outreach", "first outreach"), ("follow_up", "follow-up"), ("reply", "reply"), ("thank_you", "thank-you"),
        ("meeting", "meeting"), ("thank_you", "thank-you"), ("outreach", "new ask"),
    ]
    assert steps[2].response_seconds == 8 * 86400


def _draft_check(tmp_path, text, *args):
    from syncagent.cli import cli

    path = tmp_path / "draft.txt"
    path.write_text(text, encoding="utf-8")
    return CliRunner().invoke(cli, ["--config", str(tmp_path / "none.toml"), "draft-check", str(path), *args],
                              catch_exceptions=False)


def test_draft_check_without_history_gives_the_advice(tmp_path):
    """With no config and no history, draft-check still says what the advice is, one line each."""
    result = _draft_check(tmp_path, "Subject: Hello\n\nHi, I would love to hear about your work.\n")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "ok  9 words",
        "!!  no question mark: ask 3-5 specific questions",
        "!!  subject 'Hello' is generic: say why them, and name the connection",
        "!!  names no connection: say who referred you or what you share (school, employer, a mutual contact)",
        "--  no measured outreach yet: the lines above are the general advice only",
    ]


def test_draft_check_json_on_a_good_draft(tmp_path):
    """A short, specific draft with three questions and a named connection passes every check."""
    text = ("Subject: Intro via Jonas: your routing work at Acme\n\nHi Priya, Jonas suggested I reach out. "
            "How did you move into routing? What skills matter most? Is the team hiring juniors?\n")
    data = json.loads(_draft_check(tmp_path, text, "--json").output)
    assert [a["ok"] for a in data["advice"]] == [True, True, True, True]
    assert data["measures"]["questions"] == 3 and data["subject"].startswith("Intro via Jonas")
    assert "fingerprint" in data["measures"] and data["measures"]["fingerprint"] is None
