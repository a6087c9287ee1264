"""Who to track: the people the mailbox shows you correspond with personally.

The ledger only counts mail with tracked contacts, so a fresh install with an
empty contact book reports nothing. ``suggestions`` reads the stored headers and
ranks the untracked people you exchanged personal mail with: automatic mail
(auto-replies, bulk, lists: ``messages.automatic``), anything with a List-Id and
messages with many recipients (announcements, mass mail) are left out, so
newsletters and big threads do not crowd out the people you actually write to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from syncagent.contacts import book
from syncagent.contacts.book import ContactInput
from syncagent.store import contacts as contact_rows
from syncagent.store import mail
from syncagent.store.db import transaction
from syncagent.timeutil import iso, utcnow

# A message to or from more people than this is an announcement or a mass mailing, not a conversation.
MAX_RECIPIENTS = 10

# Domains where the address says nothing about an employer. The label checks below catch the
# country variants (yahoo.co.uk, hotmail.fr, gmx.de, outlook.jp...).
FREE_MAIL_DOMAINS = frozenset("""
gmail.com googlemail.com outlook.com hotmail.com live.com msn.com passport.com windowslive.com
yahoo.com ymail.com rocketmail.com aol.com aim.com icloud.com me.com mac.com
protonmail.com protonmail.ch proton.me pm.me tutanota.com tutanota.de tuta.io tutamail.com
gmx.com gmx.net gmx.de gmx.at gmx.ch web.de t-online.de freenet.de posteo.de posteo.net mailbox.org
fastmail.com fastmail.fm hey.com zoho.com zohomail.com mail.com email.com inbox.com hushmail.com
yandex.ru yandex.com ya.ru mail.ru bk.ru list.ru inbox.ru rambler.ru
qq.com 163.com 126.com sina.com sohu.com yeah.net naver.com hanmail.net daum.net
orange.fr wanadoo.fr free.fr laposte.net sfr.fr libero.it virgilio.it tiscali.it alice.it
btinternet.com sky.com virginmedia.com ntlworld.com talktalk.net blueyonder.co.uk
comcast.net verizon.net att.net sbcglobal.net bellsouth.net cox.net charter.net earthlink.net optonline.net
shaw.ca rogers.com sympatico.ca bigpond.com bigpond.net.au optusnet.com.au xtra.co.nz
seznam.cz wp.pl o2.pl onet.pl interia.pl bluewin.ch telenet.be skynet.be ziggo.nl kpnmail.nl
rediffmail.com uol.com.br bol.com.br terra.com.br
""".split())
_FREE_MAIL_LABELS = frozenset({"gmail", "googlemail", "yahoo", "hotmail", "outlook", "live", "msn", "aol",
                               "gmx", "yandex", "protonmail", "icloud", "zoho"})
# RFC 2606 documentation domains belong to no one: a name under them is the registered label.
_RESERVED = frozenset({"example.com", "example.org", "example.net"})
# Labels that sit under a country code before the registered name: acme.co.uk, acme.com.au.
_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "ac", "gov", "edu", "ne", "or", "gv", "ltd", "plc"})


@dataclass(frozen=True)
class Suggestion:
    number: int  # the position in the full ranking, what `--add N` takes
    address: str
    name: str | None
    company: str | None
    exchanges: int  # two-way exchanges: min(sent, received)
    sent: int
    received: int
    last_at: str
    last_subject: str | None
    # A tracked contact with exactly this name: likely the same person at another address.
    same_name_as: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def registered_label(domain: str) -> str | None:
    """The label a company is named by: ``mail.acme-corp.co.uk`` -> ``acme-corp``."""
    labels = [part for part in domain.lower().strip(".").split(".") if part]
    if len(labels) < 2:
        return None
    if ".".join(labels[-2:]) in _RESERVED:
        return labels[-3] if len(labels) >= 3 else None
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return labels[-3]
    return labels[-2]


def is_free_mail(domain: str) -> bool:
    domain = domain.lower().strip(".")
    if domain in FREE_MAIL_DOMAINS or domain in _RESERVED:
        return True
    return registered_label(domain) in _FREE_MAIL_LABELS


def company_from_address(address: str) -> str | None:
    """A company guessed from the address's domain; None for free-mail providers."""
    domain = address.rpartition("@")[2]
    if not domain or is_free_mail(domain):
        return None
    label = registered_label(domain)
    return label.title() if label else None


def suggestions(db, own: Iterable[str]) -> list[Suggestion]:
    """Every untracked personal correspondent, ranked by two-way exchanges, then the latest message."""
    people: dict[str, dict] = {}
    for direction, address, name, date, subject in mail.load_correspondence(db, own, MAX_RECIPIENTS):
        if book.normalize_address(address) != address:
            continue  # a header that did not hold a usable address
        p = people.setdefault(address, {"sent": 0, "received": 0, "name": None})
        p["sent" if direction == "outgoing" else "received"] += 1
        p["last_at"], p["last_subject"] = date, subject  # rows come oldest first
        if name and name.strip() and name.strip().lower() != address:
            p["name"] = " ".join(name.split())
    # Stable sorts, last key first: exchanges, then the latest message, then the address.
    names: dict[str, list[int]] = {}
    for contact_id, contact_name in contact_rows.load_names(db):
        names.setdefault(_name_key(contact_name), []).append(contact_id)
    ranked = sorted(people.items())
    ranked.sort(key=lambda kv: kv[1]["last_at"], reverse=True)
    ranked.sort(key=lambda kv: min(kv[1]["sent"], kv[1]["received"]), reverse=True)
    return [
        Suggestion(number=i, address=address, name=p["name"], company=company_from_address(address),
                   exchanges=min(p["sent"], p["received"]), sent=p["sent"], received=p["received"],
                   last_at=p["last_at"], last_subject=p["last_subject"],
                   same_name_as=_only(names.get(_name_key(p["name"]))) if p["name"] else None)
        for i, (address, p) in enumerate(ranked, start=1)
    ]


def _name_key(name: str | None) -> str:
    return " ".join((name or "").casefold().split())


def _only(ids: list[int] | None) -> int | None:
    return ids[0] if ids and len(ids) == 1 else None


def pick(found: list[Suggestion], numbers: Iterable[int]) -> list[Suggestion]:
    """The suggestions with these numbers, in the order given; ValueError names a number not on the list."""
    by_number = {s.number: s for s in found}
    chosen: list[Suggestion] = []
    for n in numbers:
        if n not in by_number:
            raise ValueError(n)
        if by_number[n] not in chosen:
            chosen.append(by_number[n])
    return chosen


def with_exchanges(found: list[Suggestion], minimum: int) -> list[Suggestion]:
    return [s for s in found if s.exchanges >= minimum]


@dataclass
class Accepted:
    added: list[Suggestion]
    merged: list[Suggestion]  # addresses given to the tracked contact of the same name


def accept(db, chosen: list[Suggestion]) -> Accepted:
    """Track the chosen people in one transaction.

    Someone with the same name as one tracked contact is that contact at another
    address (an old job, a personal account): the address joins the contact
    rather than making a duplicate person.
    """
    result = Accepted([], [])
    with transaction(db, "suggest") as conn:
        for s in chosen:
            if s.same_name_as is not None:
                contact_rows.save_merged_address(conn, s.same_name_as, s.address, iso(utcnow()))
                result.merged.append(s)
                continue
            outcome, _ = book.upsert(conn, ContactInput(name=s.name, addresses=[s.address], company=s.company))
            if outcome == "added":
                result.added.append(s)
    return result


def shown(text: str | None, width: int) -> str:
    """Mail-supplied text for one cell of a terminal table: on one line, nothing a terminal obeys, at most ``width``."""
    from syncagent.safe_text import for_terminal, shorten

    return for_terminal(shorten(" ".join((text or "").split()), width))


SUGGEST_COMMAND = "syncagent contacts suggest"


def untracked_hint(db, own: Iterable[str]) -> str | None:
    """With no contacts tracked, one line saying the ledger counts nothing and who could be tracked; else None."""
    if contact_rows.count_contacts(db):
        return None
    n = len(suggestions(db, own))
    if n == 0:
        return ("No contacts are tracked yet, so the ledger counts no mail; add them with "
                "`syncagent contacts import FILE` or `syncagent contacts add`.")
    people = "person" if n == 1 else "people"
    return (f"No contacts are tracked yet, so the ledger counts no mail; `{SUGGEST_COMMAND}` lists the "
            f"{n} {people} you exchanged personal mail with.")
