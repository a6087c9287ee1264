"""Generate the bundled sample mailbox: six months of a job seeker's networking mail.

``python -m syncagent.setup.sample.generate`` rewrites ``syncagent/setup/sample/data/``
(``mail/INBOX.mbox``, ``mail/Sent.mbox``, ``contacts.csv``). The output is committed and
deterministic (fixed seed, fixed dates, no clock), so ``syncagent demo`` gives
the same ledger and reminders on every machine.

The story, for Alex Morgan <alex.morgan@example.com> (also alex@alexmorgan.test),
ends just before ``REFERENCE_NOW`` (Friday 2026-11-13 16:00 New York) and covers
every case the ledger handles: fast and slow replies, replies in a new thread or
from a second address, follow-ups that got an answer and ones that did not,
out-of-office replies (English, German, and a Spanish one whose return date moves
the follow-up), an introduction, a company where nobody answered (3B7), a bounce, newsletters, calendar
invitations (with an update), thank-yous sent and owed, and check-ins due.
Only example.com / example.org / .test domains are used.
"""

from __future__ import annotations

import mailbox
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

SEED = 20261113
REFERENCE_NOW = datetime(2026, 11, 13, 21, 0, tzinfo=timezone.utc)  # Fri 16:00 in New York
TIMEZONE = "America/New_York"
ME = ("Alex Morgan", "alex.morgan@example.com")
ME_ALIAS = "alex@alexmorgan.test"
DATA = Path(__file__).resolve().parent / "data"
NY = ZoneInfo(TIMEZONE)

# name, email(s), company, title, segment, tags, scenario
PEOPLE = [
    # warm: former colleagues and friends
    ("Priya Raman", "priya.raman@northwind.test", "Northwind", "Engineering Manager", "warm", "ex-colleague", "checkin_due"),
    ("Daniel Okafor", "daniel@okafor.test", "Brightline Health", "Product Director", "warm", "ex-colleague", "checkin_due"),
    ("Renée Fontaine", "renee.fontaine@lumiere.example.org", "Lumière Analytics", "Head of Data", "warm", "friend;paris", "meeting_owed"),
    ("Marcus Lee", "marcus.lee@harbor.test", "Harbor Logistics", "VP Engineering", "warm", "ex-manager", "acked_recent"),
    ("Sofia Rossi", "sofia.rossi@verde.test;sofia.r@example.org", "Verde Energy", "Staff Engineer", "warm", "friend", "second_address"),
    ("Tom Becker", "tom.becker@quarry.test", "Quarry Labs", "CTO", "warm", "ex-colleague", "replied_owed"),
    ("Hannah Kim", "hannah.kim@example.org", "Freelance", "Design Lead", "warm", "friend", "warm_ongoing"),
    ("Jürgen Weiß", "juergen.weiss@bergwerk.test", "Bergwerk GmbH", "Engineering Lead", "warm", "ex-colleague;berlin", "ooo_de"),
    ("Olivia Grant", "olivia.grant@cobalt.test", "Cobalt Finance", "Director of Platform", "warm", "", "meeting_thanked"),
    ("Sam Patel", "sam@patel.test", "Orbit Media", "Founder", "warm", "founder", "acked_recent"),
    # alumni
    ("José Álvarez", "jose.alvarez@meridian.test", "Meridian Bank", "Data Scientist", "alumni", "class-of-2016", "checkin_due"),
    ("Emily Chen", "emily.chen@tessera.test", "Tessera", "Senior PM", "alumni", "class-of-2018", "slow_followup"),
    ("Noah Williams", "noah.williams@alpine.test", "Alpine Robotics", "Staff Engineer", "alumni", "class-of-2015", "new_thread"),
    ("Zoë Dubois", "zoe.dubois@example.org", "Atelier Nord", "Engineering Manager", "alumni", "class-of-2017", "acked_recent"),
    ("Liam O'Brien", "liam.obrien@granite.test", "Granite Systems", "Principal Engineer", "alumni", "class-of-2014", "followup_due"),
    ("Aisha Mohammed", "aisha.m@sable.test", "Sable Security", "Security Architect", "alumni", "class-of-2016", "slow_followup"),
    ("Björn Lindqvist", "bjorn.lindqvist@fjord.test", "Fjord Cloud", "Director of Engineering", "alumni", "class-of-2013;nordics", "ooo_en"),
    ("Grace Liu", "grace.liu@pioneer.test", "Pioneer Bio", "ML Lead", "alumni", "class-of-2019", "upcoming_followup"),
    ("Ethan Brooks", "ethan.brooks@summit.test", "Summit Outdoor", "Engineering Director", "alumni", "class-of-2012", "acked_recent"),
    ("Maya Goldberg", "maya.goldberg@kestrel.test", "Kestrel AI", "Research Engineer", "alumni", "class-of-2020", "replied_owed_today"),
    # cold: people Alex does not know yet
    ("Carlos Mendes", "carlos.mendes@atlas.test", "Atlas Payments", "Head of Engineering", "cold", "payments", "never_max"),
    ("Fatima Zahra", "fatima.zahra@oasis.test", "Oasis Travel", "CTO", "cold", "travel", "followup_due"),
    ("Kenji Watanabe", "kenji.watanabe@sakura.test", "Sakura Games", "Studio Lead", "cold", "games", "fast_thanked"),
    ("Laura Novak", "laura.novak@prism.test", "Prism Studio", "VP Product", "cold", "design", "followup_due"),
    ("Ahmed Hassan", "ahmed.hassan@delta.test;ahmed@hassan.example.org", "Delta Freight", "Engineering Manager", "cold", "logistics", "bounce_then_reply"),
    ("Isabel Moreno", "isabel.moreno@coral.test", "Coral Health", "Director of Data", "cold", "health", "never_max"),
    ("Peter Novák", "peter.novak@vltava.test", "Vltava Software", "Principal Architect", "cold", "", "followup_due_once"),
    ("Chloe Martin", "chloe.martin@lyra.test", "Lyra Music", "Engineering Manager", "cold", "music", "slow_followup"),
    ("Ravi Shankar", "ravi.shankar@indigo.test", "Indigo Retail", "VP Engineering", "cold", "retail", "fast_thanked"),
    ("Nina Petrova", "nina.petrova@aurora.test", "Aurora Space", "Systems Lead", "cold", "space", "upcoming_followup"),
    ("Owen Price", "owen.price@ember.test", "Ember Energy", "Head of Platform", "cold", "climate", "new_thread"),
    ("Mei Tanaka", "mei.tanaka@koi.test", "Koi Robotics", "Engineering Director", "cold", "robotics", "fast_thanked"),
    # recruiters
    ("Rachel Stone", "rachel.stone@talentbridge.test", "TalentBridge", "Technical Recruiter", "recruiter", "agency", "inbound_acked"),
    ("David Cohen", "david.cohen@northwind.test", "Northwind", "Senior Recruiter", "recruiter", "in-house", "inbound_none"),
    ("Laila Haddad", "laila.haddad@harbor.test", "Harbor Logistics", "Talent Partner", "recruiter", "in-house", "slow_followup"),
    ("Brian Walsh", "brian.walsh@hirewell.test", "HireWell", "Recruiter", "recruiter", "agency", "inbound_none"),
    ("Ana Souza", "ana.souza@cobalt.test", "Cobalt Finance", "Recruiting Lead", "recruiter", "in-house", "followup_due"),
    ("Kevin Murphy", "kevin.murphy@quarry.test", "Quarry Labs", "Recruiter", "recruiter", "in-house", "replied_owed"),
    ("Sara Lindholm", "sara.lindholm@fjord.test", "Fjord Cloud", "Talent Acquisition", "recruiter", "in-house", "acked_recent"),
    ("Mateo García", "mateo.garcia@example.org", "Independent", "Executive Recruiter", "recruiter", "agency", "no_contact_yet"),
    # a target company with two people: the first is away, nobody answers, 3B7 says try the other
    ("Wei Zhang", "wei.zhang@helix.test", "Helix Bio", "VP Engineering", "cold", "biotech", "ooo_es_3b7"),
    ("Lucía Romero", "lucia.romero@helix.test", "Helix Bio ", "Platform Lead", "cold", "biotech", "no_contact_yet"),
]

ASKS = [
    ("Quick question about {company}", "I'm exploring my next role in platform engineering and {company} keeps coming up. "
     "Would you have 20 minutes in the next couple of weeks to tell me how your team works?"),
    ("Coffee chat?", "It's been a while! I'm looking for my next role and would love your take on the market. "
     "Could we grab a virtual coffee one of these days?"),
    ("Advice on moving into {title_lower} roles", "I admire how you moved into your role at {company}. "
     "I'd be grateful for 15 minutes of advice on making a similar move."),
    ("Fellow alum reaching out", "We overlapped at State University a few years apart. I'm looking at teams like yours "
     "at {company}; would you be open to a short call?"),
    ("Introduction from the platform meetup", "We spoke briefly after the platform meetup talk. "
     "I'd love to follow up on what you said about {company}'s migration. Do you have time for a short call?"),
]
FOLLOW_UPS = [
    "Just bumping this up in case it got buried. No pressure at all if now is a busy time.",
    "Following up on my note below. Happy to work around your schedule, even 10 minutes would help.",
]
REPLIES = [
    "Great to hear from you! Happy to chat. How about Thursday afternoon?",
    "Sure, I'd be glad to help. Send me a couple of times that work for you.",
    "Thanks for reaching out. Yes, let's talk. I'm free most mornings next week.",
    "Of course. I can share what I know about the team. Tuesday at 2pm?",
]
THANKS = [
    "Thank you so much for your time today. Your advice about the interview loop was really helpful.",
    "Thanks again for the chat! I'll reach out to the people you mentioned and let you know how it goes.",
    "Really appreciate you taking the time. I'll keep you posted on how things develop.",
]


@dataclass
class Mail:
    when: datetime
    sender: tuple[str, str]
    to: list[tuple[str, str]]
    subject: str
    body: str
    cc: list[tuple[str, str]] = field(default_factory=list)
    reply_to: Mail | None = None
    headers: dict[str, str] = field(default_factory=dict)
    calendar: str | None = None
    raw: bytes | None = None  # a hand-built message (the bounce)
    message_id: str = ""
    references: list[str] = field(default_factory=list)

    @property
    def outgoing(self) -> bool:
        return self.sender[1] in (ME[1], ME_ALIAS)


class Story:
    def __init__(self, seed: int = SEED):
        self.rng = random.Random(seed)
        self.mails: list[Mail] = []

    # --- helpers -----------------------------------------------------------
    def at(self, days_before: float, hour: float | None = None) -> datetime:
        """A New York working-hours instant ``days_before`` the reference date."""
        local = (REFERENCE_NOW - timedelta(days=days_before)).astimezone(NY)
        if hour is None:
            hour = self.rng.uniform(8.5, 17.5)
        local = local.replace(hour=int(hour), minute=int((hour % 1) * 60), second=self.rng.randrange(60), microsecond=0)
        return local.astimezone(timezone.utc)

    def add(self, mail: Mail) -> Mail:
        if mail.outgoing and mail.raw is None:
            local = mail.when.astimezone(NY)
            if local.weekday() >= 5:  # Alex writes on weekdays: move weekend mail to Monday morning
                monday = local + timedelta(days=7 - local.weekday())
                mail.when = monday.replace(hour=9, minute=local.minute).astimezone(timezone.utc)
        mail.message_id = f"<{len(self.mails) + 1:04d}.{SEED}@{mail.sender[1].split('@')[1]}>"
        if mail.reply_to is not None:
            mail.references = mail.reply_to.references + [mail.reply_to.message_id]
        self.mails.append(mail)
        return mail

    def ask(self, p, days_before: float, variant: int | None = None, cc=None) -> Mail:
        subject, body = ASKS[self.rng.randrange(len(ASKS)) if variant is None else variant]
        fields = {"company": p.company, "title_lower": p.title.lower()}
        return self.add(Mail(self.at(days_before), ME, [(p.name, p.email)], subject.format(**fields),
                             f"Hi {p.first},\n\n{body.format(**fields)}\n\nBest,\nAlex\n", cc=cc or []))

    def follow_up(self, p, parent: Mail, days_after: float) -> Mail:
        when = parent.when + timedelta(days=days_after)
        return self.add(Mail(when, ME, [(p.name, p.email)], "Re: " + _bare(parent.subject),
                             f"Hi {p.first},\n\n{self.rng.choice(FOLLOW_UPS)}\n\nThanks,\nAlex\n", reply_to=parent))

    def reply(self, p, parent: Mail, hours_after: float, address: str | None = None, body: str | None = None,
              subject: str | None = None, new_thread: bool = False) -> Mail:
        sender = (p.name, address or p.email)
        text = body or self.rng.choice(REPLIES)
        return self.add(Mail(parent.when + timedelta(hours=hours_after), sender, [ME],
                             subject or "Re: " + _bare(parent.subject), f"Hi Alex,\n\n{text}\n\n{p.first}\n",
                             reply_to=None if new_thread else parent))

    def thank(self, p, parent: Mail, hours_after: float) -> Mail:
        return self.add(Mail(parent.when + timedelta(hours=hours_after), ME, [(p.name, p.email)],
                             "Re: " + _bare(parent.subject), f"Hi {p.first},\n\n{self.rng.choice(THANKS)}\n\nAlex\n",
                             reply_to=parent))

    def invite(self, p, parent: Mail, start: datetime, minutes: int, sequence: int = 0, uid: str = "",
               days_before_sent: float | None = None) -> Mail:
        sent = self.at(days_before_sent) if days_before_sent is not None else parent.when + timedelta(hours=2)
        ics = _ics(uid, sequence, start, minutes, p, sent)
        word = "Updated invitation" if sequence else "Invitation"
        subject = f"{word}: Alex / {p.first} chat @ {start.astimezone(NY):%a %b %d, %Y %I:%M%p} (EST)"
        return self.add(Mail(sent, (p.name, p.email), [ME], subject,
                             f"{p.name} has invited you to a video call.\n\nJoin: https://meet.example.com/abc-defg-hij\n",
                             calendar=ics))


@dataclass
class Person:
    name: str
    email: str  # the first address
    emails: list[str]
    company: str
    title: str
    segment: str
    tags: str
    scenario: str

    @property
    def first(self) -> str:
        return self.name.split()[0]


def _bare(subject: str) -> str:
    return subject[4:] if subject.startswith("Re: ") else subject


def _ics(uid: str, sequence: int, start: datetime, minutes: int, p: Person, stamp: datetime) -> str:
    def z(dt):
        return dt.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")

    end = start + timedelta(minutes=minutes)
    return "\r\n".join([
        "BEGIN:VCALENDAR", "PRODID:-//Example Calendar//EN", "VERSION:2.0", "METHOD:REQUEST",
        "BEGIN:VEVENT", f"UID:{uid}", f"SEQUENCE:{sequence}", f"DTSTAMP:{z(stamp)}",
        f"DTSTART:{z(start)}", f"DTEND:{z(end)}", f"SUMMARY:Alex / {p.first} chat",
        f"ORGANIZER;CN={p.name}:mailto:{p.email}",
        f"ATTENDEE;CN={p.name};PARTSTAT=ACCEPTED:mailto:{p.email}",
        f"ATTENDEE;CN={ME[0]};RSVP=TRUE;PARTSTAT=NEEDS-ACTION:mailto:{ME[1]}",
        "STATUS:CONFIRMED", "END:VEVENT", "END:VCALENDAR", "",
    ])


def people() -> list[Person]:
    out = []
    for name, emails, company, title, segment, tags, scenario in PEOPLE:
        addrs = emails.split(";")
        out.append(Person(name, addrs[0], addrs, company, title, segment, tags, scenario))
    return out


def story(seed: int = SEED) -> list[Mail]:
    """Every message of the sample, in time order."""
    s = Story(seed)
    r = s.rng
    for p in people():
        sc = p.scenario
        if sc == "checkin_due":  # answered and thanked long ago: a check-in is owed
            a = s.ask(p, r.uniform(150, 175))
            rep = s.reply(p, a, r.uniform(2, 20))
            s.thank(p, rep, r.uniform(1, 6))
        elif sc == "fast_thanked":
            a = s.ask(p, r.uniform(60, 85))
            rep = s.reply(p, a, r.uniform(1, 8))
            s.thank(p, rep, r.uniform(2, 20))
        elif sc == "acked_recent":
            a = s.ask(p, r.uniform(20, 55))
            rep = s.reply(p, a, r.uniform(3, 40))
            s.thank(p, rep, r.uniform(1, 12))
        elif sc == "slow_followup":  # one follow-up, then a reply days later, then thanks
            a = s.ask(p, r.uniform(70, 120))
            f = s.follow_up(p, a, 9)
            rep = s.reply(p, f, r.uniform(50, 120))
            s.thank(p, rep, r.uniform(2, 18))
        elif sc == "replied_owed":  # they answered two days ago; no thank-you yet
            a = s.ask(p, r.uniform(5, 8))
            rep_at = (REFERENCE_NOW - timedelta(days=2, hours=3)) - a.when
            s.reply(p, a, rep_at.total_seconds() / 3600)
        elif sc == "replied_owed_today":  # answered this morning: a thank-you is coming up
            a = s.ask(p, 4)
            rep_at = s.at(0, 9.5) - a.when
            s.reply(p, a, rep_at.total_seconds() / 3600)
        elif sc == "followup_due":  # asked, followed up once, silence since
            a = s.ask(p, r.uniform(28, 45))
            s.follow_up(p, a, 10)
        elif sc == "followup_due_once":  # one message, no answer for weeks
            s.ask(p, 16)
        elif sc == "never_max":  # three unanswered messages: syncagent stops nagging
            a = s.ask(p, r.uniform(90, 110))
            f = s.follow_up(p, a, 10)
            s.follow_up(p, f, 12)
        elif sc == "upcoming_followup":
            s.ask(p, r.uniform(2, 4))
        elif sc == "new_thread":  # they answer days later in a fresh thread
            a = s.ask(p, r.uniform(40, 70))
            rep = s.reply(p, a, r.uniform(100, 200), subject=f"Catching up ({p.company})", new_thread=True,
                          body="Sorry for the slow answer, your note got lost in my inbox. Happy to talk next week.")
            s.thank(p, rep, r.uniform(3, 20))
        elif sc == "second_address":  # the reply comes from a personal address
            a = s.ask(p, r.uniform(30, 50))
            rep = s.reply(p, a, r.uniform(20, 30), address=p.emails[1])
            s.thank(p, rep, r.uniform(2, 10))
        elif sc == "ooo_en" or sc == "ooo_de":  # an auto-reply first; it does not count as an answer
            a = s.ask(p, r.uniform(20, 26))
            if sc == "ooo_en":
                s.add(Mail(a.when + timedelta(minutes=2), (p.name, p.email), [ME], "Automatic reply: " + a.subject,
                           f"I am out of the office until {(a.when + timedelta(days=12)):%B %d} with limited access "
                           "to email. For urgent matters please contact my team.\n",
                           headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
                           reply_to=a))
                s.follow_up(p, a, 13)  # then silence: a follow-up is owed
            else:
                s.add(Mail(a.when + timedelta(minutes=1), (p.name, p.email), [ME], "Abwesenheitsnotiz: " + a.subject,
                           "Vielen Dank für Ihre Nachricht. Ich bin bis zum Monatsende nicht im Büro und habe "
                           "nur eingeschränkt Zugriff auf meine E-Mails.\n",
                           headers={"Auto-Submitted": "auto-replied", "Precedence": "auto_reply"}, reply_to=a))
                rep = s.reply(p, a, 24 * 15, body="Zurück aus dem Urlaub! Gerne, lass uns nächste Woche sprechen.")
                s.thank(p, rep, 5)
        elif sc == "bounce_then_reply":  # an old address bounces; the second one answers
            a = s.add(Mail(s.at(58), ME, [(p.name, "ahmed.hassan@delta-old.test")], "Question about Delta Freight",
                           f"Hi {p.first},\n\nI'd love to learn about the platform team at Delta Freight.\n\nAlex\n"))
            s.add(Mail(a.when + timedelta(minutes=1), ("Mail Delivery Subsystem", "MAILER-DAEMON@mx.example.com"), [ME],
                       "Undelivered Mail Returned to Sender", "", raw=_bounce(a)))
            b = s.add(Mail(a.when + timedelta(days=1), ME, [(p.name, p.emails[1])], a.subject,
                           f"Hi {p.first},\n\n(Resending to your personal address.) I'd love to learn about the "
                           "platform team at Delta Freight.\n\nAlex\n"))
            rep = s.reply(p, b, 30, address=p.emails[1])
            s.thank(p, rep, 4)
        elif sc == "meeting_owed" or sc == "meeting_thanked":
            far = sc == "meeting_thanked"
            a = s.ask(p, 40 if far else 9, variant=1)
            rep = s.reply(p, a, 5, body="Yes! I'll send you an invite.")
            s.thank(p, rep, 2)  # "thanks, looking forward"
            start = s.at(30 if far else 2, 11)
            uid = f"{p.email.split('@')[0]}-{SEED}@calendar.example.com"
            s.invite(p, rep, start - timedelta(days=1), 30, 0, uid)
            s.invite(p, rep, start, 45, 1, uid, days_before_sent=(32 if far else 3.5))  # moved by a day
            if far:
                s.add(Mail(start + timedelta(hours=20), ME, [(p.name, p.email)], "Thank you!",
                           f"Hi {p.first},\n\n{THANKS[0]}\n\nAlex\n"))
        elif sc == "warm_ongoing":  # a friend Alex writes to every few weeks
            for d in (160, 120, 75, 31):
                a = s.ask(p, d + r.uniform(0, 3), variant=1)
                rep = s.reply(p, a, r.uniform(2, 30))
                s.thank(p, rep, r.uniform(1, 4))
        elif sc == "inbound_acked":  # a recruiter writes first; Alex answers
            first = s.add(Mail(s.at(r.uniform(35, 50)), (p.name, p.email), [ME], "Platform roles at a fintech client",
                               f"Hi Alex,\n\nI came across your profile and have two platform roles that look like a "
                               f"great fit. Open to a chat?\n\n{p.name}\n{p.company}\n"))
            s.add(Mail(first.when + timedelta(hours=5), ME, [(p.name, p.email)], "Re: " + first.subject,
                       "Hi Rachel,\n\nThanks for thinking of me. Yes, happy to hear more; I'm free Wednesday.\n\nAlex\n",
                       reply_to=first))
        elif sc == "ooo_es_3b7":
            # Fixed instants, no draws from the generator, so the rest of the story stays as it was.
            # Asked Mon 9 Nov; the Spanish auto-reply says "back on 20 November", which moves the
            # follow-up past it; nobody else at Helix Bio was asked, so 3B7 suggests the next person.
            a = s.add(Mail(datetime(2026, 11, 9, 15, 12, 7, tzinfo=timezone.utc), ME, [(p.name, p.email)],
                           f"Quick question about {p.company}",
                           f"Hi {p.first},\n\n{ASKS[0][1].format(company=p.company)}\n\nBest,\nAlex\n"))
            s.add(Mail(a.when + timedelta(minutes=2), (p.name, p.email), [ME], "Respuesta automática: " + a.subject,
                       "Gracias por su mensaje. Estaré fuera de la oficina hasta el 20 de noviembre, con acceso "
                       "limitado al correo. Para asuntos urgentes, escriba a platform@helix.test.\n\nUn saludo,\nWei\n",
                       headers={"Auto-Submitted": "auto-replied"}, reply_to=a))
        elif sc == "inbound_none":  # a recruiter writes; nothing is owed
            s.add(Mail(s.at(r.uniform(6, 20)), (p.name, p.email), [ME], f"Opportunities at {p.company}",
                       f"Hi Alex,\n\nWe're hiring senior engineers at {p.company}. Let me know if you'd like to "
                       f"hear more.\n\n{p.name}\n"))
    # A warm introduction: Priya introduces Alex to a cold contact (both in To/Cc).
    ppl = {p.name: p for p in people()}
    priya, mei = ppl["Priya Raman"], ppl["Mei Tanaka"]
    s.add(Mail(s.at(95), (priya.name, priya.email), [ME, (mei.name, mei.email)], "Intro: Alex <> Mei",
               "Mei, meet Alex, a brilliant platform engineer I worked with. Alex, Mei runs engineering at "
               "Koi Robotics. I'll let you two take it from here!\n\nPriya\n"))
    _background(s)
    s.mails.sort(key=lambda m: (m.when, m.message_id))
    return s.mails


def _background(s: Story) -> None:
    """Mail that is not networking: newsletters, job alerts, a friend, a receipt."""
    r = s.rng
    lists = [
        ("Platform Weekly", "newsletter@platformweekly.example.org", "<weekly.platformweekly.example.org>", 4),
        ("Career Notes", "hello@careernotes.example.org", "<notes.careernotes.example.org>", 2),
        ("Alumni Network News", "news@alumni.example.org", "<news.alumni.example.org>", 0),
    ]
    for title, addr, list_id, weekday in lists:
        day = 182
        issue = 1
        while day > 0:
            when = s.at(day, 7)
            if when.astimezone(NY).weekday() == weekday:
                s.add(Mail(when, (title, addr), [ME], f"{title} #{issue}: {r.choice(TOPICS)}",
                           f"This week in {title}: {r.choice(TOPICS)}.\n\nUnsubscribe: https://{addr.split('@')[1]}/u\n",
                           headers={"List-Id": f"{title} {list_id}",
                                    "List-Unsubscribe": f"<https://{addr.split('@')[1]}/unsubscribe>",
                                    "Precedence": "bulk"}))
                issue += 1
            day -= 1
    for day in range(178, 0, -5):
        s.add(Mail(s.at(day, 6), ("Job Alerts", "noreply@jobs.example.org"), [ME],
                   f"{r.randint(3, 14)} new platform engineering jobs for you",
                   "New jobs matching your search: Senior Platform Engineer, Staff SRE, ...\n",
                   headers={"Auto-Submitted": "auto-generated"}))
    friend = ("Jamie Rivera", "jamie.rivera@example.org")
    for day in (150, 101, 66, 22, 5):
        a = s.add(Mail(s.at(day), friend, [ME], r.choice(["Dinner Saturday?", "Photos from the hike", "Book club"]),
                       "Hey! Are you around this weekend?\n\nJ\n"))
        s.add(Mail(a.when + timedelta(hours=r.uniform(1, 6)), ME, [friend], "Re: " + a.subject,
                   "Sounds great, count me in.\n", reply_to=a))


TOPICS = ["Kubernetes upgrades without tears", "what hiring managers ask in 2026", "SLOs that matter",
          "the informational interview playbook", "negotiating your offer", "platform teams at scale",
          "writing a short outreach note", "following up without pestering"]


def _bounce(original: Mail) -> bytes:
    """A multipart/report delivery status notification (RFC 3464) for ``original``."""
    date = format_datetime(original.when + timedelta(minutes=1))
    rcpt = original.to[0][1]
    boundary = "=_bounce_20261113"
    return (
        f"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.com>\n"
        f"To: {ME[0]} <{ME[1]}>\n"
        f"Date: {date}\n"
        f"Subject: Undelivered Mail Returned to Sender\n"
        f"Auto-Submitted: auto-replied\n"
        f"MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\n'
        f"\n--{boundary}\nContent-Type: text/plain; charset=us-ascii\n\n"
        f"This is the mail system at host mx.example.com.\n\nI'm sorry to have to inform you that your message "
        f"could not be delivered to one or more recipients.\n\n<{rcpt}>: host mx.delta-old.test said: "
        f"550 5.1.1 User unknown\n"
        f"\n--{boundary}\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; mx.example.com\n\nFinal-Recipient: rfc822; {rcpt}\nAction: failed\n"
        f"Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\n"
        f"\n--{boundary}\nContent-Type: text/rfc822-headers\n\n"
        f"From: {ME[0]} <{ME[1]}>\nTo: {original.to[0][0]} <{rcpt}>\nSubject: {original.subject}\n"
        f"Message-ID: {original.message_id}\n"
        f"\n--{boundary}--\n"
    ).encode()


def render(mail: Mail, bounce_id: str | None = None) -> bytes:
    if mail.raw is not None:
        return mail.raw.replace(b"Auto-Submitted:", f"Message-ID: {mail.message_id}\nAuto-Submitted:".encode(), 1)
    msg = EmailMessage()
    msg["From"] = Address(mail.sender[0], addr_spec=mail.sender[1])
    msg["To"] = [Address(n, addr_spec=a) for n, a in mail.to]
    if mail.cc:
        msg["Cc"] = [Address(n, addr_spec=a) for n, a in mail.cc]
    msg["Date"] = format_datetime(mail.when.astimezone(NY) if mail.outgoing else mail.when)
    msg["Subject"] = mail.subject
    msg["Message-ID"] = mail.message_id
    if mail.reply_to is not None:
        msg["In-Reply-To"] = mail.reply_to.message_id
        msg["References"] = " ".join(mail.references)
    for k, v in mail.headers.items():
        msg[k] = v
    msg.set_content(mail.body)
    if mail.calendar:
        msg.add_alternative(mail.calendar, subtype="calendar", params={"method": "REQUEST"})
        msg.set_boundary(f"=_alt_{mail.message_id.strip('<>').split('@')[0]}")  # fixed, not random
    return msg.as_bytes(policy=msg.policy.clone(linesep="\n"))


def write(out: Path = DATA, seed: int = SEED) -> dict:
    """Write mail/INBOX.mbox, mail/Sent.mbox and contacts.csv into ``out``; return counts."""
    import csv
    import io
    import time

    out.mkdir(parents=True, exist_ok=True)
    mails = [m for m in story(seed) if m.when < REFERENCE_NOW]
    counts = {}
    for folder, pick in (("INBOX", lambda m: not m.outgoing), ("Sent", lambda m: m.outgoing)):
        (out / "mail").mkdir(exist_ok=True)
        target = out / "mail" / f"{folder}.mbox"
        tmp = target.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        box = mailbox.mbox(tmp)
        box.lock()
        chosen = [m for m in mails if pick(m)]
        for m in chosen:
            mm = mailbox.mboxMessage(render(m))
            mm.set_from(m.sender[1], time.gmtime(m.when.timestamp()))
            box.add(mm)
        box.flush()
        box.unlock()
        box.close()
        tmp.replace(target)
        counts[folder] = len(chosen)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "email", "company", "title", "segment", "tags"])
    for name, emails, company, title, segment, tags, _ in PEOPLE:
        w.writerow([name, emails, company, title, segment, tags.replace(";", ",")])
    (out / "contacts.csv").write_text(buf.getvalue(), encoding="utf-8")
    counts["contacts"] = len(PEOPLE)
    return counts


if __name__ == "__main__":
    print(write())
