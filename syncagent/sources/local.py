"""Local mail: a Maildir (with Maildir++ subfolders) or an mbox file (or a folder of them).

Through the standard ``mailbox`` module and the same parser as the servers, so a
Google Takeout export or years of archived mail backfill the ledger offline.
"""

from __future__ import annotations

import logging
import mailbox
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

from syncagent.config import Account
from syncagent.errors import SourceError
from syncagent.model import Batch, FolderCursor, Seen
from syncagent.parse import outreach
from syncagent.parse.bodytext import first_text
from syncagent.parse.headers import parse_message
from syncagent.parse.returndate import TEXT_BYTES, with_return_date

log = logging.getLogger(__name__)
BATCH = 500


class LocalSource:
    def __init__(self, account: Account):
        self.account = account
        assert account.path is not None  # config requires `path` for maildir and mbox accounts
        self.path = Path(account.path)

    def close(self) -> None:
        pass

    def batches(self, state, *, full: bool = False) -> Iterator[Batch]:
        if not self.path.exists():
            raise SourceError(
                f"The {self.account.kind} path {self.path} of account {self.account.name!r} does not exist; fix `path` in the config."
            )
        for folder, box in self._folders():
            known = {} if full else state.known_locations(folder)
            keys = [k for k in box.keys() if str(k) not in known]
            total = len(keys)
            if not keys:
                yield Batch(folder=folder, total=0, cursor=FolderCursor(messages=len(known), complete=1))
                continue
            for start in range(0, total, BATCH):
                items = []
                for key in keys[start:start + BATCH]:
                    item = self._read(box, folder, key)
                    if item is not None:
                        items.append(item)
                last = start + BATCH >= total
                cursor = FolderCursor(messages=len(known) + total, complete=1) if last else None
                yield Batch(items=items, folder=folder, total=total, cursor=cursor)

    def _folders(self):
        try:
            if self.account.kind == "maildir":
                yield "INBOX", _Maildir(self.path)
                for sub in sorted(p for p in self.path.iterdir() if p.name.startswith(".") and _is_maildir(p)):
                    yield sub.name[1:], _Maildir(sub)
            elif self.path.is_dir():
                for file in sorted(p for p in self.path.iterdir() if p.is_file() and not p.name.startswith(".")):
                    yield _folder_name(file), mailbox.mbox(file, factory=None, create=False)
            else:
                yield _folder_name(self.path), mailbox.mbox(self.path, factory=None, create=False)
        except (OSError, mailbox.Error) as exc:
            raise SourceError(f"Cannot read {self.path} as {self.account.kind}: {exc}; check `path` of account {self.account.name!r}.") from exc

    def _read(self, box, folder: str, key):
        try:
            if isinstance(box, _Maildir):
                file = box.files[key]
                with open(file, "rb") as fh:
                    raw = _read_headers(fh)
                arrived: datetime | None = datetime.fromtimestamp(os.stat(file).st_mtime, timezone.utc)
                size = os.stat(file).st_size
            else:
                msg = box.get_message(key)
                raw = msg.as_bytes()
                size = len(raw)
                arrived = _from_line_date(msg.get_from())
        except (OSError, KeyError, mailbox.Error) as exc:
            log.warning("%s: skipped unreadable message %s in %s: %s", self.account.name, key, folder, exc)
            return None
        parsed = parse_message(raw, arrived_at=arrived, size=size)
        calendar = _calendar_part(box, key) if b"calendar" in raw.lower() or b"multipart" in raw.lower() else None
        if calendar:
            from dataclasses import replace

            parsed = replace(parsed, calendar=calendar, has_calendar=True)
        if parsed.auto_reply:
            parsed = with_return_date(parsed, _text(box, key, TEXT_BYTES))
        if self.account.analyze_outreach and outreach.wants_measures(parsed, self.account.addresses):
            parsed = outreach.with_measures(parsed, _text(box, key, outreach.TEXT_LIMIT))
        return parsed, Seen(folder=folder, location=str(key))


def _text(box, key, limit: int) -> str | None:
    """The start of a message's first text part (read only for the rules that need it)."""
    try:
        return first_text(box.get_message(key), limit)
    except Exception as exc:  # broken MIME must not stop a sync
        log.debug("no text read from %s: %s", key, exc)
        return None


def _folder_name(file: Path) -> str:
    return file.name[:-5] if file.name.lower().endswith(".mbox") else file.name


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


class _Maildir:
    """A read-only Maildir: unlike ``mailbox.Maildir`` it tolerates a missing new/ or tmp/
    (archives and exports often lack them) and never renames a file."""

    def __init__(self, path: Path):
        self.files: dict[str, Path] = {}
        for sub in ("new", "cur"):
            d = path / sub
            if not d.is_dir():
                continue
            for entry in os.scandir(d):
                if entry.is_file() and not entry.name.startswith("."):
                    # The key is the unique name without the ":2,FLAGS" info part.
                    self.files[entry.name.split(":", 1)[0].split("!", 1)[0]] = Path(entry.path)

    def keys(self):
        return sorted(self.files)

    def get_message(self, key):
        with open(self.files[key], "rb") as fh:
            return mailbox.Message(fh.read())


def _read_headers(fh, limit: int = 8 * 1024 * 1024) -> bytes:
    out = []
    size = 0
    for line in fh:
        if line in (b"\n", b"\r\n"):
            break
        out.append(line)
        size += len(line)
        if size > limit:
            break
    return b"".join(out)


def _from_line_date(from_line: str | None) -> datetime | None:
    # "MAILER-DAEMON Thu Nov 19 10:00:00 2026": the time the message reached this mbox.
    if not from_line:
        return None
    parts = from_line.split(None, 1)
    if len(parts) < 2:
        return None
    try:
        dt = datetime.strptime(parts[1].strip()[:24], "%a %b %d %H:%M:%S %Y")
        return dt.replace(tzinfo=timezone.utc)
    except ValueError:
        try:
            return parsedate_to_datetime(parts[1])
        except (TypeError, ValueError, IndexError):
            return None


def _calendar_part(box, key) -> str | None:
    """The first text/calendar part of a message, decoded; None if it has none."""
    try:
        msg = box.get_message(key)
        for part in msg.walk():
            if part.get_content_type() == "text/calendar":
                payload = part.get_payload(decode=True) or b""
                charset = part.get_content_charset() or "utf-8"
                try:
                    return payload.decode(charset, "replace")
                except LookupError:
                    return payload.decode("utf-8", "replace")
    except Exception as exc:  # broken MIME must not stop a sync
        log.debug("no calendar part read from %s: %s", key, exc)
    return None
