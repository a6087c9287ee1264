"""`draft-check`: a draft against the seed advice and against the user's own reply rates.

The draft is measured exactly as sent outreach is (``parse.outreach.measure``),
each dimension is put in its bucket (``ledger.what_works``), and each line says
what the advice is and, where the user has at least ``MIN_ASKS`` asks in this
bucket and another, what their own mail earned. Nothing is written.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from syncagent.ledger import what_works as ww
from syncagent.parse import outreach

LONG_WORDS = 150  # past this a first email reads as a letter


def split_draft(raw: str) -> tuple[str | None, str]:
    """An optional ``Subject:`` first line, then the text."""
    text = raw.replace("\r\n", "\n").lstrip("\ufeff")
    first, _, rest = text.partition("\n")
    if first.lower().startswith("subject:"):
        return first[8:].strip(), rest.lstrip("\n")
    return None, text


def check(raw: str, asks: list[ww.Ask], *, first_name: str | None = None, company: str | None = None,
          known_names: list[str] | None = None) -> dict[str, Any]:
    """The measures of the draft, one advice line per dimension, and the history they compare with."""
    subject, text = split_draft(raw)
    m = outreach.measure(subject, text, first_name=first_name, company=company, known_names=known_names or ())
    draft = ww.Ask(m.words, m.questions, m.personalized, False, m.connection, 0, 0, False, None)
    history = {dim: ww.figures(asks, dim) for dim in ("words", "questions", "connection", "personalized")}
    lines: list[dict[str, Any]] = []

    def add(dimension: str, ok: bool, advice: str) -> None:
        mine = _own(history.get(dimension, []), ww.bucket(draft, dimension)) if dimension in history else ""
        lines.append({"dimension": dimension, "ok": ok, "text": advice + mine})

    add("words", m.words <= LONG_WORDS,
        f"{m.words} words" + ("" if m.words <= LONG_WORDS else f": long for a first email; aim for under {LONG_WORDS}"))
    if m.questions == 0:
        add("questions", False, "no question mark: ask 3-5 specific questions")
    elif m.questions < 3:
        add("questions", False, f"{m.questions} question{'s' if m.questions > 1 else ''}: "
                                "3-5 specific questions are easier to answer by email")
    elif m.questions <= 5:
        add("questions", True, f"{m.questions} questions")
    else:
        add("questions", False, f"{m.questions} questions: more than 5 is a lot to answer; keep those that matter")
    if subject is None or not subject.strip():
        lines.append({"dimension": "subject", "ok": False,
                      "text": "no subject: say why them, and name the connection if there is one"})
    elif outreach.is_generic_subject(subject):
        lines.append({"dimension": "subject", "ok": False,
                      "text": f"subject '{subject}' is generic: say why them, and name the connection"})
    else:
        lines.append({"dimension": "subject", "ok": True, "text": f"subject: {m.subject_words} words, specific"})
    add("connection", m.connection, "names a connection" if m.connection
        else "names no connection: say who referred you or what you share (school, employer, a mutual contact)")
    if first_name or company:
        add("personalized", m.personalized, "personalized" if m.personalized
            else "not personalized: use their name and say why them (their company, their work)")
    return {"subject": subject, "measures": asdict(m) | {"fingerprint": None}, "advice": lines,
            "history": history, "asks_measured": len(asks)}


def _own(buckets: list[dict[str, Any]], label: str) -> str:
    """ ": your asks with X were answered 48% of the time, Y 22% (n=31)" when the history says something."""
    solid = [b for b in buckets if b["asks"] >= ww.MIN_ASKS]
    here = next((b for b in solid if b["bucket"] == label), None)
    others = [b for b in solid if b["bucket"] != label]
    if here is None or not others:
        return ""
    best = max(others, key=lambda b: b["reply_rate"])
    n = sum(b["asks"] for b in buckets)
    return (f" (your asks with {here['bucket']} were answered {here['reply_rate']:.0%} of the time, "
            f"{best['bucket']} {best['reply_rate']:.0%}; n={n})")


def render(result: dict[str, Any]) -> str:
    lines = [("ok  " if item["ok"] else "!!  ") + item["text"] for item in result["advice"]]
    if not result["asks_measured"]:
        lines.append("--  no measured outreach yet: the lines above are the general advice only")
    return "\n".join(lines)
