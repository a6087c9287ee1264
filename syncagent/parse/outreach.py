"""What an outreach message is like, in numbers: measured from the user's own text, never kept.

``own_text`` keeps what the user wrote (quoted history, forwarded headers and the
signature dropped); ``measure`` turns a subject and that text into ``Measures``:
words, questions asked, subject length, whether it names a connection, whether it
is personalised, and a fingerprint that is equal for the same text sent to other
people with their names swapped in (mass mail). Only these numbers are stored.
Pure, so the sync, ``draft-check`` and the tests measure the same way.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

TEXT_LIMIT = 4096  # characters of the first text part that are read at all

# Where the user's own text ends: a reply's attribution line, a forwarded or
# quoted block, Outlook's header block, or the RFC 3676 signature separator.
_CUT = re.compile(
    r"^(?:-- ?$"                                         # signature separator
    r"|On .{0,200}wrote:\s*$"                            # Gmail / Apple Mail attribution (English)
    r"|Am .{0,200}schrieb .{0,100}:\s*$"                 # German
    r"|Le .{0,200}a écrit\s*:\s*$"                       # French
    r"|El .{0,200}escribió:\s*$"                         # Spanish
    r"|-{2,}\s*(?:Original Message|Forwarded message|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}"
    r"|_{10,}\s*$"                                       # Outlook's rule above the quoted header block
    r"|From: .+$(?=\n(?:Sent|Date): )"                   # Outlook's quoted header block
    r"|Sent from my \w+)",
    re.IGNORECASE | re.MULTILINE,
)
_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
_QUESTION = re.compile(r"\?+")

# Naming how the user knows of them: an introduction, a referral, a shared school or employer.
_CONNECTION = re.compile(
    r"\b(?:intro(?:duc\w*)?|referr?\w*|recommend\w*|suggested (?:that )?I (?:reach|contact|write)|"
    r"(?:gave|passed along) (?:me )?your (?:name|details|email)|mutual|alum(?:na|nus|ni|nae)?|classmate|"
    r"fellow (?:\w+ )?(?:graduate|student|alum\w*)|we (?:both|each) (?:studied|went|worked)|"
    r"(?:told|mentioned) (?:me )?(?:about )?you|class of (?:19|20)\d\d)\b",
    re.IGNORECASE,
)

# Subjects that say nothing about why this person, this time.
GENERIC_SUBJECTS = {
    "hello", "hi", "hey", "hi there", "hello there", "question", "quick question", "a quick question",
    "introduction", "intro", "networking", "request", "career advice", "advice", "coffee", "coffee chat",
    "informational interview", "following up", "follow up", "follow-up", "checking in", "reaching out",
    "connecting", "let's connect", "meeting", "greetings", "(no subject)", "",
}


@dataclass(frozen=True)
class Measures:
    words: int
    questions: int
    subject_words: int
    connection: bool
    personalized: bool
    fingerprint: int  # 63-bit hash of the text with names blanked: equal for the same mail to others


def own_text(text: str) -> str:
    """The user's own words: the first TEXT_LIMIT characters, up to quoted history or a signature."""
    text = text[:TEXT_LIMIT].replace("\r\n", "\n")
    match = _CUT.search(text)
    if match:
        text = text[: match.start()]
    return "\n".join(line for line in text.split("\n") if not line.lstrip().startswith(">")).strip()


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def count_questions(text: str) -> int:
    return len(_QUESTION.findall(text))


def names_connection(subject: str, text: str, known_names: Iterable[str] = ()) -> bool:
    """Does the subject or text say how the user knows of them (intro, referral, school, a mutual name)?"""
    both = f"{subject}\n{text}"
    if _CONNECTION.search(both):
        return True
    folded = _fold(both)
    return any(len(name) > 3 and _whole_word(_fold(name)).search(folded) for name in known_names)


def is_personalized(text: str, first_name: str | None, company: str | None) -> bool:
    """Does the text use the contact's first name or company?"""
    folded = _fold(text)
    for token in (first_name, company):
        if token and len(token.strip()) > 1 and _whole_word(_fold(token.strip())).search(folded):
            return True
    return False


def is_generic_subject(subject: str) -> bool:
    cleaned = re.sub(r"^(?:(?:re|fwd?|aw|wg)\s*:\s*)+", "", subject.strip(), flags=re.IGNORECASE)
    return _fold(cleaned).strip(" !?.:-") in GENERIC_SUBJECTS


def fingerprint(text: str, names: Iterable[str] = ()) -> int:
    """A hash of the words with the recipient's names blanked, so one template sent to many matches."""
    folded = _fold(text)
    for name in sorted({_fold(n) for n in names if n and len(n) > 1}, key=len, reverse=True):
        folded = _whole_word(name).sub(" ", folded)
    digest = hashlib.sha256(" ".join(_WORD.findall(folded)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def measure(subject: str | None, text: str, *, first_name: str | None = None, company: str | None = None,
            full_name: str | None = None, known_names: Iterable[str] = ()) -> Measures:
    """The numbers of one outreach: ``text`` is the raw first text part (cut here to the user's own words)."""
    subject = subject or ""
    mine = own_text(text)
    names = [n for n in (first_name, company, full_name, *(full_name or "").split()) if n]
    return Measures(
        words=len(words(mine)),
        questions=count_questions(mine),
        subject_words=len(words(subject)),
        connection=names_connection(subject, mine, known_names),
        personalized=is_personalized(mine, first_name, company),
        fingerprint=fingerprint(mine, names),
    )


@functools.lru_cache(maxsize=4096)
def _whole_word(token: str) -> re.Pattern[str]:
    """``token`` as a whole word. Each recipient brings its own names, more than the 512
    patterns ``re`` keeps compiled: measuring a first sync's sent mail recompiled them."""
    return re.compile(rf"\b{re.escape(token)}\b")


def _fold(text: str) -> str:
    """Case- and accent-insensitive form for matching names ("Renée" matches "renee")."""
    folded = text.casefold()
    if folded.isascii():
        return folded  # ASCII is its own NFKD form and holds no combining mark
    decomposed = unicodedata.normalize("NFKD", folded)
    # Only non-ASCII characters can be combining marks: the callback runs for those alone
    # (reading every character of a message's text through Python was most of a sent
    # message's parse time).
    return _NON_ASCII.sub(_drop_combining, decomposed)


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _drop_combining(m: re.Match[str]) -> str:
    return "".join(c for c in m[0] if not unicodedata.combining(c))


def with_measures(msg: Any, text: str | None) -> Any:
    """``msg`` (a sent model.Message) with the measures of ``text``, its first text part; the text is dropped."""
    import dataclasses

    if text is None:
        return msg
    return dataclasses.replace(msg, outreach=measure_sent(msg.subject, first_recipient(msg), text))


def first_recipient(msg: Any) -> tuple[str | None, str] | None:
    """(display name, address) of the first To recipient of ``msg``: whom a personal first email names."""
    to = next((a for a in msg.addresses if a.role == "to"), None)
    return None if to is None else (to.name, to.address)


def measure_sent(subject: str | None, to: tuple[str | None, str] | None, text: str) -> Measures:
    """The measures of one sent message from its subject, first To recipient and first text part.

    Personalization looks for the recipient's first name (from the header's display name)
    and their domain's name (``acme`` of ``priya@eu.acme.example``): the contact list is
    not known where mail is read, and those are what a personal first email uses.
    """
    first_name = full_name = company = None
    if to is not None:
        name, address = to
        full_name = (name or "").strip().strip("'\"") or None
        if full_name and "," in full_name:  # "Shah, Priya"
            full_name = " ".join(reversed([p.strip() for p in full_name.split(",", 1)]))
        first_name = full_name.split()[0] if full_name else None
        company = _domain_name(address)
    return measure(subject, text, first_name=first_name, company=company, full_name=full_name)


_FREE_MAIL = {"gmail", "googlemail", "yahoo", "hotmail", "outlook", "live", "msn", "icloud", "me", "aol", "gmx",
              "web", "proton", "protonmail", "pm", "mail", "yandex", "zoho", "fastmail", "posteo", "mailbox"}


def _domain_name(address: str) -> str | None:
    """``priya@eu.acme.co.uk`` -> ``acme``; None for free-mail providers."""
    labels = address.rpartition("@")[2].split(".")
    if len(labels) < 2:
        return None
    # Skip a two-letter country suffix after a short second level ("co.uk", "com.au").
    if len(labels) >= 3 and len(labels[-1]) == 2 and len(labels[-2]) <= 3:
        name = labels[-3]
    else:
        name = labels[-2]
    return None if name in _FREE_MAIL else name


def wants_measures(msg: Any, own: Iterable[str]) -> bool:
    """Is ``msg`` the user's own, written by hand to someone (worth reading its text for)?"""
    return (bool(msg.from_address) and msg.from_address in set(own) and not msg.automatic
            and any(a.role in ("to", "cc", "bcc") for a in msg.addresses))
