"""Generate a realistic mailbox straight into a Maildir, fast enough for 100,000 messages.

Why straight into files: APPENDing 100,000 messages over IMAP takes minutes;
writing them as Maildir files in ``cur/`` takes seconds, and Dovecot indexes them
on first access. The mail has what real mail has and what the parser must cope
with: threads of replies (In-Reply-To and References), RFC 2047 encoded names and
subjects, multipart/alternative bodies, a few calendar invitations, and about one
in ten automatic messages (lists, bulk, auto-replies, bounces).

The user is ``ME``; ``people(n)`` are the correspondents, the first
``contacts`` of whom the benchmark registers as tracked contacts.

    python bench/generate.py --n 10000 --maildir /tmp/Maildir
"""

from __future__ import annotations

import argparse
import os
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.header import Header
from email.utils import format_datetime
from pathlib import Path

ME = "me@example.test"
START = datetime(2024, 1, 1, 9, 0, tzinfo=timezone.utc)

_FIRST = ["Ana", "Bjørn", "Chloé", "Dmitri", "Élodie", "Farid", "Grace", "Hiroshi", "Inés", "José",
          "Kateřina", "Liam", "Mei", "Nikolaï", "Olga", "Priya", "Quentin", "Rosa", "Søren", "Tomás"]
_LAST = ["Müller", "García", "Nguyễn", "O'Brien", "Kowalski", "Smith", "Dubois", "Rossi", "Tanaka",
         "Jensen", "Novák", "Fernández", "Ivanov", "Chen", "Lefèvre", "Silva", "Haddad", "Kim"]
_TOPICS = ["Coffee next week?", "Intro: data team", "Question about your talk", "Follow-up on our call",
           "Résumé feedback", "Quick question", "Thanks for the chat", "Référence pour le poste",
           "Informational interview", "Your article on distributed systems", "Meeting notes",
           "Grüße aus Berlin", "Job opening at Acme", "Project update", "Catching up"]
_LISTS = ["announce.lists.example.org", "dev.lists.example.net", "news.example.com"]


@dataclass(frozen=True)
class Person:
    name: str
    address: str


def people(n: int, seed: int = 7) -> list[Person]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        name = f"{rnd.choice(_FIRST)} {rnd.choice(_LAST)}"
        out.append(Person(name, f"p{i}@corp{i % 211}.example"))
    return out


def _name_header(person: Person, rnd: random.Random) -> str:
    """About half the names RFC 2047 encoded (B or Q), as mail clients send them."""
    if person.name.isascii() and rnd.random() < 0.5:
        return f'"{person.name}" <{person.address}>'
    if rnd.random() < 0.5:
        enc = Header(person.name, "utf-8").encode()  # B encoding
    else:
        enc = "=?utf-8?q?" + "".join(
            "_" if c == " " else c if c.isascii() and c.isalnum() else "".join(f"={b:02X}" for b in c.encode())
            for c in person.name) + "?="
    return f"{enc} <{person.address}>"


def _subject(text: str, rnd: random.Random) -> str:
    if text.isascii() and rnd.random() < 0.8:
        return text
    return Header(text, "utf-8").encode()


SPAN = 3 * 365 * 86400  # seconds the generated mail spans from START


def messages(n: int, *, n_people: int = 8000, seed: int = 1, start: datetime = START, span: float = SPAN):
    """Yield (folder, raw bytes, mtime) for n messages dated over ``span`` seconds from ``start``;
    folder is "INBOX" or "Sent"."""
    rnd = random.Random(seed)
    folks = people(n_people)
    threads: list[tuple[str, list[str], Person, str]] = []  # (subject, references, counterpart, first subject)
    step = span / max(n, 1)
    for i in range(n):
        when = start + timedelta(seconds=i * step + rnd.random() * step)
        mid = f"<{i}.{seed}@gen.example>"
        kind = rnd.random()
        extra: list[str] = []
        if kind < 0.1:  # automatic mail
            who = Person("Notifications", f"noreply@{rnd.choice(_LISTS)}")
            folder, sender, to = "INBOX", who, [Person("Me", ME)]
            subject = f"[{who.address.split('@')[1].split('.')[0]}] Digest #{i}"
            extra.append(rnd.choice([f"List-Id: <{rnd.choice(_LISTS)}>", "Precedence: bulk",
                                     "Auto-Submitted: auto-replied", "List-Unsubscribe: <mailto:u@x.example>"]))
            refs: list[str] = []
        elif threads and rnd.random() < 0.55:  # a reply in an existing thread
            t = rnd.randrange(len(threads))
            subject, refs, other, _ = threads[t]
            outgoing = rnd.random() < 0.5
            folder = "Sent" if outgoing else "INBOX"
            sender, to = (Person("Me", ME), [other]) if outgoing else (other, [Person("Me", ME)])
            subject = subject if subject.lower().startswith("re:") else "Re: " + subject
            threads[t] = (subject, (refs + [mid])[-20:], other, subject)
        else:  # a new thread
            other = folks[int(rnd.paretovariate(1.2) * 40) % len(folks)] if rnd.random() < 0.7 else rnd.choice(folks)
            outgoing = rnd.random() < 0.45
            folder = "Sent" if outgoing else "INBOX"
            sender, to = (Person("Me", ME), [other]) if outgoing else (other, [Person("Me", ME)])
            subject = rnd.choice(_TOPICS)
            refs = []
            threads.append((subject, [mid], other, subject))
            if len(threads) > 3000:
                threads.pop(rnd.randrange(len(threads)))
        hdr = [
            f"Return-Path: <{sender.address}>",
            f"From: {_name_header(sender, rnd)}",
            "To: " + ", ".join(_name_header(p, rnd) for p in to),
        ]
        if rnd.random() < 0.15:
            hdr.append("Cc: " + ", ".join(_name_header(rnd.choice(folks), rnd) for _ in range(rnd.randint(1, 3))))
        hdr += [f"Subject: {_subject(subject, rnd)}", f"Date: {format_datetime(when)}", f"Message-ID: {mid}"]
        if refs:
            hdr.append(f"In-Reply-To: {refs[-1]}")
            hdr.append("References: " + "\r\n ".join(refs))
        hdr += extra
        hdr.append("MIME-Version: 1.0")
        body_text = f"Hello,\r\n\r\nMessage {i} about {subject}.\r\n\r\n-- \r\n{sender.address}\r\n"
        r = rnd.random()
        if r < 0.25:
            b = f"b{i}"
            hdr.append(f'Content-Type: multipart/alternative; boundary="{b}"')
            body = (f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body_text}\r\n"
                    f"--{b}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{body_text}</p>\r\n--{b}--\r\n")
        elif r < 0.26:
            b = f"c{i}"
            end = when + timedelta(days=3, hours=1)
            ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
                   f"UID:ev{i}@gen.example\r\nDTSTART:{(end - timedelta(hours=1)):%Y%m%dT%H%M%SZ}\r\n"
                   f"DTEND:{end:%Y%m%dT%H%M%SZ}\r\nSUMMARY:{subject}\r\n"
                   f"ORGANIZER:mailto:{sender.address}\r\nATTENDEE:mailto:{to[0].address}\r\n"
                   "END:VEVENT\r\nEND:VCALENDAR\r\n")
            hdr.append(f'Content-Type: multipart/mixed; boundary="{b}"')
            body = (f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body_text}\r\n"
                    f"--{b}\r\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\r\n\r\n{ics}--{b}--\r\n")
        else:
            hdr.append("Content-Type: text/plain; charset=utf-8")
            hdr.append("Content-Transfer-Encoding: 8bit")
            body = body_text
        raw = ("\r\n".join(hdr) + "\r\n\r\n" + body).encode("utf-8")
        yield folder, raw, when.timestamp()


def write_maildir(root: Path, n: int, *, seed: int = 1, owner: tuple[int, int] | None = None) -> dict[str, int]:
    """Write n messages as ``root/cur`` (INBOX) and ``root/.Sent/cur``; returns counts per folder.

    File names follow the Maildir convention Dovecot reads: ``<time>.M<usec>P<pid>Q<n>.<host>,S=<size>:2,S``.
    ``owner`` (uid, gid) chowns everything, for a Dovecot whose mail user is not us.
    """
    dirs = {"INBOX": root, "Sent": root / ".Sent"}
    for d in dirs.values():
        for sub in ("cur", "new", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
    (root / ".Sent" / "maildirfolder").touch()
    counts = {"INBOX": 0, "Sent": 0}
    pid = os.getpid()
    for q, (folder, raw, mtime) in enumerate(messages(n, seed=seed)):
        flags = "S" if q % 7 else ""
        path = dirs[folder] / "cur" / f"{int(mtime)}.M{q % 1000000}P{pid}Q{q}.bench,S={len(raw)}:2,{flags}"
        with open(path, "wb") as fh:
            fh.write(raw)
        os.utime(path, (mtime, mtime))
        counts[folder] += 1
    if owner:
        for dirpath, _dirnames, filenames in os.walk(root):
            os.chown(dirpath, *owner)
            for f in filenames:
                os.chown(os.path.join(dirpath, f), *owner)
        os.chown(root.parent, *owner)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--maildir", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t = time.perf_counter()
    counts = write_maildir(args.maildir, args.n, seed=args.seed)
    print(f"wrote {counts} to {args.maildir} in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
