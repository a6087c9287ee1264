"""The rules beyond the turn ledger, as pure functions: holidays, introductions, out of
office, responsiveness and 3B7 per company (DESIGN.md, "Beyond the turn ledger")."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from syncagent.config import Reminders
from syncagent.ledger import companies, introductions, responsiveness
from syncagent.ledger.businessdays import add_business_days, is_business_day, next_holiday, region_problem
from syncagent.ledger.introductions import Mail
from syncagent.ledger.obligations import CLOSE_LOOP, FOLLOW_UP, NEXT_CONTACT, obligation
from syncagent.ledger.outofoffice import AwayNotice
from syncagent.ledger.turns import IN, MEETING, OUT, Event, compute
from syncagent.parse.automatic import is_auto_reply
from syncagent.parse.returndate import return_date

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def ev(kind: str, when: str, ref: str, subject: str | None = None) -> Event:
    return Event(at(when), kind, ref, subject)


# --- holidays -------------------------------------------------------------------------

@pytest.mark.parametrize("start, n, region, tz, expected, why", [
    ("2026-11-25T15:00:00", 1, "US", NY, "2026-11-27T15:00:00", "Wed + 1 skips Thanksgiving (Thu 26 Nov)"),
    ("2026-11-25T15:00:00", 1, None, NY, "2026-11-26T15:00:00", "without a region Thanksgiving is a business day"),
    ("2026-11-18T15:00:00", 7, "US", NY, "2026-11-30T15:00:00", "7 business days over Thanksgiving end a day later"),
    ("2026-12-24T15:00:00", 1, "US", NY, "2026-12-28T15:00:00", "Christmas Friday, then the weekend"),
    ("2026-01-05T10:00:00", 1, "DE-BY", BERLIN, "2026-01-07T10:00:00", "Epiphany is a holiday in Bavaria"),
    ("2026-01-05T10:00:00", 1, "DE-BE", BERLIN, "2026-01-06T10:00:00", "but not in Berlin"),
    ("2026-11-10T15:00:00", 1, "US", NY, "2026-11-12T15:00:00", "Veterans Day (Wed 11 Nov) is a federal holiday"),
    ("2026-11-03T15:00:00", 1, "US-NY", NY, "2026-11-04T15:00:00", "New York keeps no Election Day holiday"),
])
def test_business_days_skip_the_regions_holidays(start, n, region, tz, expected, why):
    """A follow-up never falls due on a public holiday of the user's region, counted in their zone."""
    assert add_business_days(at(start), n, tz, region) == at(expected), why


def test_holiday_is_the_local_date():
    """Thanksgiving evening in New York is already Friday in UTC; the holiday is the local day."""
    wed_evening = at("2026-11-26T01:00:00")  # Wed 25 Nov, 20:00 EST
    assert add_business_days(wed_evening, 1, NY, "US") == at("2026-11-28T01:00:00")  # Fri 20:00 EST
    assert not is_business_day(date(2026, 11, 26), "US")
    assert is_business_day(date(2026, 11, 27), "US")


def test_follow_up_due_on_a_holiday_moves_past_it():
    """A message sent Wed 18 Nov is due 7 business days later: Mon 30 Nov with US holidays, not Fri 27."""
    led = compute([ev(OUT, "2026-11-18T15:00:00", "message:1", "Coffee?")], at("2026-11-20T00:00:00"))
    plain = obligation(led, Reminders(), NY, at("2026-11-20T00:00:00"))
    us = obligation(led, Reminders(holidays="US"), NY, at("2026-11-20T00:00:00"))
    assert plain.due_at == at("2026-11-27T15:00:00")
    assert us.due_at == at("2026-11-30T15:00:00")


@pytest.mark.parametrize("code, ok", [("US", True), ("US-NY", True), ("DE-BY", True), ("FR", True),
                                      ("XX", False), ("US-ZZ", False)])
def test_region_codes(code, ok):
    """Known countries and subdivisions pass; an unknown one is named as such."""
    assert (region_problem(code) is None) == ok


def test_unknown_region_is_a_config_error():
    """`holidays = "XX"` is refused at load time with one sentence naming the key and the fix."""
    from syncagent.config import parse
    from syncagent.errors import ConfigError

    assert parse({"reminders": {"holidays": "us-ny"}}, None).reminders.holidays == "US-NY"
    with pytest.raises(ConfigError, match=r"reminders\.holidays.*XX.*US-NY"):
        parse({"reminders": {"holidays": "XX"}}, None)


def test_next_holiday_names_it():
    """`doctor` can say which holiday comes next: after 1 Dec 2026 in the US it is Christmas."""
    day, name = next_holiday("US", date(2026, 12, 1))
    assert day == date(2026, 12, 25) and "Christmas" in name


# --- introductions ------------------------------------------------------------------------

ME = "me@example.com"
CONTACTS = {"xavier@acme.test": 1, "chen@beta.test": 2, "dana@beta.test": 3}


def mail(ref, when, sender, *recipients, outgoing=False, automatic=False, name=None):
    return Mail(ref, at(when), sender, name, tuple(recipients), outgoing, automatic)


INTRO = mail("message:10", "2026-11-02T15:00:00", "xavier@acme.test", ME, "chen@beta.test", name="Xavier")


@pytest.mark.parametrize("mails, events, expected, why", [
    ([INTRO], {2: [ev(IN, "2026-11-03T15:00:00", "message:11")]},
     [(1, 2, "2026-11-03T15:00:00")], "X writes to me and C; C answers: converted at C's message"),
    ([INTRO], {2: [ev(OUT, "2026-11-02T16:00:00", "message:11"), ev(MEETING, "2026-11-05T15:00:00", "meeting:1")]},
     [(1, 2, "2026-11-05T15:00:00")], "my reply-all does not convert it; the meeting's end does"),
    ([INTRO], {2: [ev(IN, "2026-10-01T15:00:00", "message:5"), ev(IN, "2026-11-03T15:00:00", "message:11")]},
     [], "C wrote to me before: not an introduction"),
    ([INTRO], {2: [ev(OUT, "2026-10-01T15:00:00", "message:5")]}, [], "I wrote to C before: not an introduction"),
    ([INTRO], {}, [(1, 2, None)], "not converted yet: an introduction all the same"),
    ([mail("message:10", "2026-11-02T15:00:00", "xavier@acme.test", "chen@beta.test")], {}, [],
     "I am not in To/Cc (Bcc at most): not an introduction of mine"),
    ([mail("message:10", "2026-11-02T15:00:00", "xavier@acme.test", ME, "chen@beta.test", automatic=True)], {}, [],
     "automatic mail introduces nobody"),
    ([mail("message:10", "2026-11-02T15:00:00", ME, "xavier@acme.test", "chen@beta.test", outgoing=True)], {}, [],
     "my own message to two people is no introduction"),
    ([mail("message:10", "2026-11-02T15:00:00", "chen@beta.test", ME, "dana@beta.test")], {}, [(2, 3, None)],
     "a tracked contact introducing another"),
    ([mail("message:10", "2026-11-02T15:00:00", "friend@else.test", ME, "chen@beta.test")],
     {2: [ev(IN, "2026-11-03T15:00:00", "message:11")]}, [(None, 2, "2026-11-03T15:00:00")],
     "an untracked introducer: recorded, with no contact id"),
    ([INTRO, mail("message:12", "2026-11-04T15:00:00", "xavier@acme.test", ME, "chen@beta.test")],
     {2: [ev(IN, "2026-11-05T15:00:00", "message:13")]}, [(1, 2, "2026-11-05T15:00:00")],
     "X introducing C twice is one introduction, the first"),
    ([mail("message:10", "2026-11-02T15:00:00", "xavier@acme.test", ME, "chen@beta.test", "dana@beta.test")], {},
     [(1, 2, None), (1, 3, None)], "one message can introduce two contacts"),
])
def test_introductions(mails, events, expected, why):
    """Who introduced whom, and when it converted (C's first message or meeting after M)."""
    found = introductions.find(mails, [ME], CONTACTS, events, at("2026-12-01T00:00:00"))
    got = [(i.introducer_contact_id, i.contact_id, i.converted_at and i.converted_at.isoformat()[:19]) for i in found]
    assert got == [(x, c, t and t[:19]) for x, c, t in expected], why


def test_introduction_after_now_is_not_seen():
    """At an instant before M there is no introduction; before C answered it has not converted."""
    events = {2: [ev(IN, "2026-11-03T15:00:00", "message:11")]}
    assert introductions.find([INTRO], [ME], CONTACTS, events, at("2026-11-01T00:00:00")) == []
    (intro,) = introductions.find([INTRO], [ME], CONTACTS, events, at("2026-11-03T00:00:00"))
    assert intro.converted_at is None


@pytest.mark.parametrize("x_events, now, days, due, why", [
    ([ev(IN, "2026-11-02T15:00:00", "message:10")], "2026-11-04T00:00:00", 7, "2026-11-10T15:00:00",
     "open from the conversion (3 Nov 15:00), due 7 days of 24 h later"),
    ([ev(IN, "2026-11-02T15:00:00", "message:10")], "2026-11-03T14:00:00", 7, None, "not before the conversion"),
    ([ev(IN, "2026-11-02T15:00:00", "message:10"), ev(OUT, "2026-11-02T18:00:00", "message:12")],
     "2026-11-04T00:00:00", 7, "2026-11-10T15:00:00", "a thank-you before the conversion does not close the loop"),
    ([ev(IN, "2026-11-02T15:00:00", "message:10"), ev(OUT, "2026-11-05T18:00:00", "message:14")],
     "2026-11-06T00:00:00", 7, None, "my message to X after the conversion closes it"),
    ([ev(IN, "2026-11-02T15:00:00", "message:10")], "2026-11-04T00:00:00", 0, None, "0 days turns it off"),
])
def test_close_loop(x_events, now, days, due, why):
    """The introducer is owed word of how it went, from conversion until I next write to them."""
    events = {1: x_events, 2: [ev(IN, "2026-11-03T15:00:00", "message:11")]}
    (intro,) = introductions.find([INTRO], [ME], CONTACTS, events, at(now))
    ob = introductions.close_loop(intro, x_events, days, at(now), introducer_name="Xavier", introduced_name="Chen")
    if due is None:
        assert ob is None, why
    else:
        assert (ob.kind, ob.due_at, ob.about_contact_id) == (CLOSE_LOOP, at(due), 2), why
        assert "Chen" in ob.reason and "Xavier" in ob.reason


def test_untracked_introducer_is_owed_nothing():
    """No close_loop reminder for someone who is not a contact (there is nobody to file it under)."""
    m = mail("message:10", "2026-11-02T15:00:00", "friend@else.test", ME, "chen@beta.test")
    (intro,) = introductions.find([m], [ME], CONTACTS, {2: [ev(IN, "2026-11-03T15:00:00", "message:11")]},
                                  at("2026-11-04T00:00:00"))
    assert introductions.close_loop(intro, [], 7, at("2026-11-04T00:00:00")) is None


# --- out of office ---------------------------------------------------------------------

SENT = "2026-11-25T15:00:00"  # Wed 25 Nov, 10:00 EST; + 7 business days = Fri 4 Dec 10:00 EST
USUAL = at("2026-12-04T15:00:00")


@pytest.mark.parametrize("notices, now, due, back_on, why", [
    ([], "2026-11-26T00:00:00", USUAL, None, "no auto-reply: the usual due"),
    ([AwayNotice(at("2026-11-25T15:01:00"), date(2026, 12, 7), "message:2")], "2026-11-26T00:00:00",
     at("2026-12-08T15:00:00"), date(2026, 12, 7), "back Mon 7 Dec: due Tue 8 Dec at 10:00 local, the send time"),
    ([AwayNotice(at("2026-11-25T15:01:00"), date(2026, 12, 1), "message:2")], "2026-11-26T00:00:00",
     USUAL, None, "a return date before the usual due changes nothing"),
    ([AwayNotice(at("2026-11-25T15:01:00"), date(2027, 2, 1), "message:2")], "2026-11-26T00:00:00",
     USUAL, None, "more than 60 days out: ignored"),
    ([AwayNotice(at("2026-11-25T15:01:00"), date(2027, 1, 24), "message:2")], "2026-11-26T00:00:00",
     at("2027-01-25T15:00:00"), date(2027, 1, 24), "exactly 60 days out still counts (Sun 24 Jan -> Mon 25 Jan)"),
    ([AwayNotice(at("2026-11-20T15:01:00"), date(2026, 12, 10), "message:2")], "2026-11-26T00:00:00",
     USUAL, None, "an auto-reply from before this ask belongs to another run"),
    ([AwayNotice(at("2026-11-27T15:01:00"), date(2026, 12, 10), "message:2")], "2026-11-26T00:00:00",
     USUAL, None, "an auto-reply after the instant is not seen yet"),
    ([AwayNotice(at("2026-11-25T15:01:00"), date(2026, 12, 24), "message:2")], "2026-11-26T00:00:00",
     at("2026-12-25T15:00:00"), date(2026, 12, 24), "back Thu 24 Dec: due Fri 25 Dec (no holiday region)"),
])
def test_out_of_office_moves_the_follow_up(notices, now, due, back_on, why):
    """An out-of-office reply during the run moves the follow-up to one business day after the return."""
    led = compute([ev(OUT, SENT, "message:1", "Coffee?")], at(now))
    ob = obligation(led, Reminders(), NY, at(now), away=notices)
    assert (ob.kind, ob.due_at, ob.back_on) == (FOLLOW_UP, due, back_on), why
    assert ("back on" in ob.reason) == (back_on is not None)


def test_out_of_office_push_skips_holidays():
    """Back Thu 24 Dec with US holidays: Christmas and the weekend are skipped, due Mon 28 Dec."""
    led = compute([ev(OUT, SENT, "message:1")], at("2026-11-26T00:00:00"))
    notice = AwayNotice(at("2026-11-25T15:01:00"), date(2026, 12, 24), "message:2")
    ob = obligation(led, Reminders(holidays="US"), NY, at("2026-11-26T00:00:00"), away=[notice])
    assert ob.due_at == at("2026-12-28T15:00:00")


def test_out_of_office_reason_names_the_day():
    """The reason line says when they are back, e.g. 'back on Mon 7 Dec'."""
    led = compute([ev(OUT, SENT, "message:1", "Coffee?")], at("2026-11-26T00:00:00"))
    ob = obligation(led, Reminders(), NY, at("2026-11-26T00:00:00"),
                    away=[AwayNotice(at("2026-11-25T15:01:00"), date(2026, 12, 7), "message:2")])
    assert ob.reason.endswith("out of office, back on Mon 7 Dec")


def test_out_of_office_does_not_count_as_a_reply():
    """The auto-reply leaves the contact ASKED; once they really answer, there is no follow-up at all."""
    notice = AwayNotice(at("2026-11-25T15:01:00"), date(2026, 12, 7), "message:2")
    led = compute([ev(OUT, SENT, "message:1"), ev(IN, "2026-12-08T15:00:00", "message:3")], at("2026-12-09T00:00:00"))
    assert obligation(led, Reminders(), NY, at("2026-12-09T00:00:00"), away=[notice]).kind == "thank_you"


def test_a_follow_up_keeps_the_push_at_its_own_time_of_day():
    """A follow-up sent at 14:00 local inside the same run: the pushed due keeps 14:00 local."""
    led = compute([ev(OUT, SENT, "message:1"), ev(OUT, "2026-11-30T19:00:00", "message:4")], at("2026-12-01T00:00:00"))
    notice = AwayNotice(at("2026-11-25T15:01:00"), date(2026, 12, 14), "message:2")
    ob = obligation(led, Reminders(), NY, at("2026-12-01T00:00:00"), away=[notice])
    assert ob.due_at == at("2026-12-15T19:00:00")


def _enron_out_of_office() -> str:
    path = CORPORA / "enron-mbox" / "enron.ring-a.deleted_items"
    if not path.exists():
        pytest.skip("the public corpora are not next to the repository (../shared/corpora)")
    import mailbox

    for msg in mailbox.mbox(path):
        if msg["Subject"] == "Out of the office.":
            return msg.get_payload(decode=True).decode("ascii")
    pytest.fail("the Enron out-of-office message is missing from the corpus")


def test_return_date_in_a_real_out_of_office_message():
    """A real note from the Enron corpus: 'out of the office until Tuesday, Nov. 27th' sent 19 Nov 2001."""
    assert return_date(_enron_out_of_office(), at("2001-11-19T21:10:53")) == date(2001, 11, 27)


REPLIED = at("2026-11-25T16:00:00")


@pytest.mark.parametrize("text, expected", [
    ("Thank you for your email. I am out of the office until Monday, December 7, with limited access to "
     "email. For urgent matters please contact Sam Lee (sam@acme.test).\n\nBest regards,\nPriya", date(2026, 12, 7)),
    ("I'm currently away and will be back on 12/14. I'll respond as soon as possible.", date(2026, 12, 14)),
    ("I am on annual leave, returning on 2 December 2026.", date(2026, 12, 2)),
    ("Vielen Dank für Ihre Nachricht. Ich bin bis einschließlich 4. Dezember 2026 nicht im Büro. Ab dem "
     "7. Dezember bin ich wieder erreichbar. In dringenden Fällen wenden Sie sich bitte an "
     "zentrale@beta.test.\n\nMit freundlichen Grüßen\nJonas Weber", date(2026, 12, 4)),
    ("Ich bin ab dem 30.11. im Urlaub und am 14.12.2026 wieder zurück.", date(2026, 12, 14)),
    ("Bonjour,\nJe suis absente du bureau et serai de retour le 7 décembre. Pour toute urgence, "
     "merci de contacter l'accueil.\nCordialement,\nClaire", date(2026, 12, 7)),
    ("Je suis en congés jusqu'au 04/12/2026 inclus.", date(2026, 12, 4)),
    ("Gracias por su mensaje. Estaré fuera de la oficina hasta el 9 de diciembre con acceso limitado al "
     "correo. A mi regreso responderé a la mayor brevedad.\nUn saludo,\nLucía", date(2026, 12, 9)),
    ("Estoy de vacaciones. Regreso el lunes 7 de diciembre.", date(2026, 12, 7)),
    ("Thanks for your message. I am travelling with limited access to email and will reply when I can.", None),
    ("Ich bin derzeit nicht im Büro. Ihre Nachricht wird nicht weitergeleitet.", None),
    ("I am on parental leave until 1 June 2027.", None),  # far beyond 60 days: not a return date we trust
    ("", None),
])
def test_return_date_in_four_languages(text, expected):
    """The return date is read near a return phrase in English, German, French and Spanish; none: None."""
    assert return_date(text, REPLIED) == expected


@pytest.mark.parametrize("headers, sender, subject, expected", [
    ({"auto-submitted": ["auto-replied"]}, "priya@acme.test", "Re: Coffee?", True),
    ({}, "priya@acme.test", "Out of Office: Coffee?", True),
    ({}, "jonas@beta.test", "Abwesenheitsnotiz: Kaffee?", True),
    ({"x-autoreply": ["yes"]}, "claire@beta.test", "Re: Café ?", True),
    ({"auto-submitted": ["auto-replied"], "content-type": ["multipart/report; report-type=delivery-status"]},
     "mailer-daemon@acme.test", "Undelivered Mail Returned to Sender", False),
    ({}, "postmaster@acme.test", "Automatic reply: failure", False),
    ({"list-id": ["<news.acme.test>"]}, "news@acme.test", "Auto: weekly", False),
    ({}, "priya@acme.test", "Re: Coffee?", False),
])
def test_auto_reply_not_bounce(headers, sender, subject, expected):
    """Only an auto-reply written for a person (not a bounce, not list mail) has its text read."""
    assert is_auto_reply(headers, sender, subject) is expected


# --- responsiveness -----------------------------------------------------------------

F = "2026-11-02T15:00:00"  # Mon


@pytest.mark.parametrize("events, now, expected, why", [
    ([ev(OUT, F, "m:1"), ev(IN, "2026-11-04T15:00:00", "m:2")], "2026-11-20T00:00:00", "booster", "replied in 2 days"),
    ([ev(OUT, F, "m:1"), ev(IN, "2026-11-05T15:00:00", "m:2")], "2026-11-20T00:00:00", "booster",
     "exactly 3 business days is still a booster"),
    ([ev(OUT, F, "m:1"), ev(IN, "2026-11-05T15:00:01", "m:2")], "2026-11-20T00:00:00", "obligate", "a second later"),
    ([ev(OUT, F, "m:1"), ev(OUT, "2026-11-09T15:00:00", "m:3"), ev(IN, "2026-11-10T15:00:00", "m:2")],
     "2026-11-20T00:00:00", "obligate", "answered only after a follow-up"),
    ([ev(OUT, F, "m:1")], "2026-11-11T15:00:00", "curmudgeon", "no reply after 7 business days"),
    ([ev(OUT, F, "m:1")], "2026-11-11T14:59:59", None, "a second before: still pending"),
    ([ev(IN, "2026-10-01T15:00:00", "m:0"), ev(OUT, F, "m:1")], "2026-11-20T00:00:00", None, "they wrote first"),
    ([], "2026-11-20T00:00:00", None, "never written to"),
    ([ev(OUT, F, "m:1"), ev(MEETING, "2026-11-03T15:00:00", "meeting:1")], "2026-11-20T00:00:00", None,
     "met without a written reply: not a curmudgeon"),
    ([ev(OUT, F, "m:1"), ev(IN, "2026-11-04T15:00:00", "m:2")], "2026-11-03T00:00:00", None,
     "at an instant before the reply: pending"),
])
def test_responsiveness(events, now, expected, why):
    """booster / obligate / curmudgeon / None, counted from the first outreach."""
    led = compute(events, at(now))
    assert responsiveness.classify(led, 7, NY, at(now)) == expected, why


def test_responsiveness_counts_holidays():
    """Sent Tue 24 Nov, answered Mon 30 Nov: 3 business days only when Thanksgiving is skipped."""
    led = compute([ev(OUT, "2026-11-24T15:00:00", "m:1"), ev(IN, "2026-11-30T15:00:00", "m:2")],
                  at("2026-12-10T00:00:00"))
    assert responsiveness.classify(led, 7, NY, at("2026-12-10T00:00:00")) == "obligate"
    assert responsiveness.classify(led, 7, NY, at("2026-12-10T00:00:00"), "US") == "booster"


# --- 3B7 per company -----------------------------------------------------------------

A = "2026-11-02T15:00:00"  # Mon 10:00 EST; + 3 business days = Thu 5 Nov 10:00 EST
DUE = at("2026-11-05T15:00:00")


def members(now: str, spec: dict[int, tuple[str, list[Event]]]) -> list[companies.Member]:
    return [companies.Member(cid, f"P{cid}", company, compute(evs, at(now))) for cid, (company, evs) in spec.items()]


@pytest.mark.parametrize("spec, now, expected, why", [
    ({1: ("Acme", [ev(OUT, A, "message:1")]), 2: ("Acme", []), 3: ("acme ", [])}, "2026-11-05T15:00:00", 2,
     "nobody answered in 3 business days: the lowest-id untouched contact is suggested"),
    ({1: ("Acme", [ev(OUT, A, "message:1")]), 2: ("Acme", [])}, "2026-11-05T14:59:59", None,
     "not before it is due (it is never upcoming)"),
    ({1: ("Acme", [ev(OUT, A, "message:1")])}, "2026-11-20T00:00:00", None, "a company with one contact: no one to try"),
    ({1: ("Acme", [ev(OUT, A, "message:1"), ev(IN, "2026-11-03T15:00:00", "message:2")]), 2: ("Acme", [])},
     "2026-11-20T00:00:00", None, "the person asked answered"),
    ({1: ("Acme", [ev(OUT, A, "message:1")]), 2: ("ACME", [ev(IN, "2026-11-03T15:00:00", "message:2")]),
      3: ("Acme", [])}, "2026-11-20T00:00:00", None, "a reply from a different person at the company settles it"),
    ({1: ("Acme", [ev(OUT, A, "message:1")]), 2: ("Acme", [ev(OUT, "2026-11-04T15:00:00", "message:3")]),
      3: ("Acme", [])}, "2026-11-06T00:00:00", None,
     "I wrote to someone else there: a new ask, whose own 3 business days run from then"),
    ({1: ("Acme", [ev(OUT, A, "message:1")]), 2: ("Acme", [ev(OUT, "2026-11-04T15:00:00", "message:3")]),
      3: ("Acme", [])}, "2026-11-09T15:00:00", 3, "and when those pass, the next untouched contact"),
    ({1: ("Acme", [ev(OUT, A, "message:1"), ev(OUT, "2026-11-04T15:00:00", "message:3")]), 2: ("Acme", [])},
     "2026-11-20T00:00:00", 2, "a follow-up to the same person is not a new ask: still due from A"),
    ({1: ("Acme", [ev(OUT, A, "message:1")]), 2: ("Acme", [ev(IN, "2026-10-01T15:00:00", "message:0")])},
     "2026-11-20T00:00:00", None, "everyone at the company has an event already: nobody to suggest"),
    ({1: ("Acme", [ev(OUT, A, "message:1")]), 2: ("Other", [])}, "2026-11-20T00:00:00", None,
     "another company's contact is not suggested"),
    ({1: ("Acme", [ev(IN, "2026-10-01T15:00:00", "message:0"), ev(OUT, A, "message:1")]), 2: ("Acme", [])},
     "2026-11-20T00:00:00", None, "writing back to someone who wrote first is no new ask"),
])
def test_next_contact(spec, now, expected, why):
    """3B7: when nobody at a company answered within 3 business days, try the next person there."""
    people = companies.groups(members(now, spec))["acme"]
    found = companies.next_contact(people, 3, NY, at(now))
    if expected is None:
        assert found is None, why
    else:
        member, ob = found
        assert (member.contact_id, ob.kind, ob.company) == (expected, NEXT_CONTACT, "acme"), why
        assert ob.due_at >= DUE and at(now) >= ob.due_at


def test_next_contact_due_and_off_switch():
    """Due exactly A + 3 business days; 0 business days turns the rule off."""
    people = members("2026-11-20T00:00:00", {1: ("Acme", [ev(OUT, A, "message:1")]), 2: ("Acme", [])})
    member, ob = companies.next_contact(people, 3, NY, at("2026-11-20T00:00:00"))
    assert ob.due_at == DUE and ob.anchor == "message:1" and "P2" in ob.reason
    assert companies.next_contact(people, 0, NY, at("2026-11-20T00:00:00")) is None


def test_settled_by_names_the_first_event_that_ends_it():
    """The message that settled a suggestion: the first reply from the company or the next person asked."""
    people = members("2026-11-20T00:00:00", {
        1: ("Acme", [ev(OUT, A, "message:1"), ev(IN, "2026-11-12T15:00:00", "message:5")]),
        2: ("Acme", [ev(OUT, "2026-11-10T15:00:00", "message:4")]),
        3: ("Acme", [])})
    assert companies.settled_by(people, people[0].ledger.events[0], {1}).ref == "message:4"


def test_company_figures():
    """Tracked, reached and replied per company, compared case-insensitively after trimming."""
    people = members("2026-11-20T00:00:00", {
        1: ("Acme ", [ev(OUT, A, "message:1"), ev(IN, "2026-11-03T15:00:00", "message:2")]),
        2: ("acme", [ev(OUT, A, "message:3")]), 3: ("ACME", [])})
    (group,) = companies.groups(people).values()
    fig = companies.figures(group)
    assert (fig.company, fig.tracked, fig.reached, fig.replied, fig.reply_rate) == ("Acme", 3, 2, 1, 0.5)


def test_a_day_later_is_still_the_same_result():
    """Evaluation is pure: the same inputs at the same instant give the same suggestion."""
    spec = {1: ("Acme", [ev(OUT, A, "message:1")]), 2: ("Acme", [])}
    first = companies.next_contact(members("2026-11-06T00:00:00", spec), 3, NY, at("2026-11-06T00:00:00"))
    again = companies.next_contact(members("2026-11-06T00:00:00", spec), 3, NY, at("2026-11-06T00:00:00"))
    assert first == again and first[1].due_at + timedelta(0) == DUE
