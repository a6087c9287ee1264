"""The return date an out-of-office auto-reply states ("back on Monday 7 December").

Read at sync time from the first 2 KB of the auto-reply's first text part; only
the date is stored (``messages.ooo_until``), never the text. Dates are found
with ``dateparser``'s ``search_dates`` (English, German, French, Spanish), but
only in the few words next to a return phrase ("until", "back on", "zurück am",
"de retour le", "hasta el"...), so a date elsewhere in the message (the day the
holiday started, a phone number, a signature) is not taken for the return.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta, timezone

from syncagent.model import Message

log = logging.getLogger(__name__)

TEXT_BYTES = 2048  # how much of the first text part is read
WINDOW_DAYS = 60  # a return date further out than this after the auto-reply is ignored
_AFTER, _BEFORE = 60, 40  # characters searched after / before a return phrase

# Return phrases by language; the date follows them, except where German puts it first
# ("am 14.12. zurück"), which the search before the phrase covers. Start words ("from",
# "ab dem", "à partir du") are left out on purpose: they usually name the day the absence began.
_PHRASES = {
    "en": r"until|till|til|through|back on|back in the office on|back in the office|back|"
          r"returning on|returning|return on|return|available again(?: on| from)?",
    "de": r"zurück am|zurück ab|zurück|bis einschließlich|bis zum|bis|wieder im büro|wieder erreichbar|"
          r"wieder ab|wieder am|wieder",
    "fr": r"de retour le|de retour|retour le|retour|jusqu'au|jusqu’au|jusqu'à|jusqu’à|jusqu'|"
          r"dès le",
    "es": r"hasta el|hasta|regreso el|regresaré el|regresaré|regreso|de vuelta el|de vuelta|volveré el|"
          r"volveré",
}
_PATTERNS = {lang: re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.IGNORECASE) for lang, words in _PHRASES.items()}
# "Nov. 27th" reads better without the abbreviation's dot, which dateparser takes for a sentence end.
_MONTH_DOT = re.compile(r"\b(jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|janv|févr|déc|dez|ene|dic)\.",
                        re.IGNORECASE)


def return_date(text: str | None, sent: datetime) -> date | None:
    """The return date stated in ``text``, an auto-reply sent at ``sent``; None when it states none.

    The date must fall after the auto-reply's own date and within WINDOW_DAYS of it;
    of several return phrases the first one that names such a date wins.
    """
    if not text:
        return None
    text = _MONTH_DOT.sub(r"\1", " ".join(text[:TEXT_BYTES].split()))
    # dateparser wants a naive base; the store's convention is UTC.
    base = sent.astimezone(timezone.utc).replace(tzinfo=None) if sent.tzinfo else sent
    hits = sorted((m.start(), m.end(), lang) for lang, pat in _PATTERNS.items() for m in pat.finditer(text))
    for start, end, lang in hits:
        after = _dates(text[end:end + _AFTER], lang, base)
        found = next((d for d in after if _in_window(d, base)), None)
        if found is None:
            before = _dates(text[max(0, start - _BEFORE):start], lang, base)
            found = next((d for d in reversed(before) if _in_window(d, base)), None)
        if found is not None:
            return found
    return None


def _in_window(day: date, base: datetime) -> bool:
    return base.date() < day <= base.date() + timedelta(days=WINDOW_DAYS)


def _dates(window: str, lang: str, base: datetime) -> list[date]:
    if not window.strip():
        return []
    from dateparser.search import search_dates

    settings = {"PREFER_DATES_FROM": "future", "RELATIVE_BASE": base, "RETURN_AS_TIMEZONE_AWARE": False,
                "REQUIRE_PARTS": ["day"]}
    if lang != "en":
        settings["DATE_ORDER"] = "DMY"
    try:
        found = search_dates(window, languages=[lang], settings=settings) or []
    except Exception:  # dateparser on strangers' text: a date we cannot read is no date
        log.debug("no date read from an auto-reply window", exc_info=True)
        return []
    return [dt.date() for _text, dt in found if len(_text.strip()) > 2]


def with_return_date(msg: Message, text: str | None) -> Message:
    """``msg`` (a model.Message) with ``ooo_until`` set from ``text``, its first text part, if it states one."""
    if not msg.auto_reply or not text:
        return msg
    from dataclasses import replace

    from syncagent.timeutil import parse_iso

    try:
        day = return_date(text, parse_iso(msg.date))
    except Exception:  # promise 4: a date we cannot read never stops a sync
        log.debug("no return date read from %s", msg.message_id, exc_info=True)
        return msg
    return replace(msg, ooo_until=day.isoformat()) if day else msg
