"""The IMAP source: read-only, incremental, header fields only.

Per folder: STATUS first; if UIDVALIDITY, UIDNEXT, MESSAGES (and HIGHESTMODSEQ)
match the stored cursor of a complete pass, the folder is skipped without
being opened, so a sync with nothing new costs a constant number of commands.
Otherwise the folder is opened with EXAMINE, new UIDs are fetched in ascending
chunks (one Batch each, its cursor committed with its rows), and the last
Batch carries the full cursor and the UIDs that disappeared.

Read-only by construction: EXAMINE, BODY.PEEK, STATUS, LIST, SEARCH, FETCH and
nothing else (no STORE/EXPUNGE/COPY/MOVE/APPEND).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import quopri
from typing import Iterator

from syncagent import imap_connect
from syncagent.config import Account
from syncagent.errors import SourceError, SyncagentError
from syncagent.model import Batch, Message, Seen

log = logging.getLogger(__name__)

HEADER_FIELDS = (
    "FROM TO CC BCC REPLY-TO SENDER DATE SUBJECT MESSAGE-ID IN-REPLY-TO REFERENCES LIST-ID "
    "LIST-UNSUBSCRIBE AUTO-SUBMITTED X-AUTOREPLY X-AUTORESPOND PRECEDENCE CONTENT-TYPE "
    "X-AUTO-RESPONSE-SUPPRESS RETURN-PATH"
)
HEADER_ITEM = f"BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})]"
BASE_ITEMS = [HEADER_ITEM, "INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE"]
GMAIL_ITEMS = ["X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS"]
MAX_CALENDAR_BYTES = 1_000_000  # an invitation is a few KB; never pull a huge part

_warned_no_sent: set[str] = set()


class ImapSource:
    """Yields Batches of one IMAP account; see the module docstring."""

    def __init__(self, account: Account):
        self.account = account
        self.client = None

    # --- protocol -------------------------------------------------------------
    def batches(self, state, *, full: bool = False) -> Iterator[Batch]:
        self.client = imap_connect.connect(self.account)
        try:
            caps = set(self.client.capabilities())
            self.gmail = b"X-GM-EXT-1" in caps
            self.condstore = b"CONDSTORE" in caps
            for folder in self._folders():
                yield from self._folder(folder, state, full)
        except SyncagentError:
            raise
        except Exception as exc:
            raise imap_connect.translate(exc, self.account, "sync") from exc

    def close(self) -> None:
        if self.client is not None:
            imap_connect.close(self.client)
            self.client = None

    # --- folders --------------------------------------------------------------
    def _folders(self) -> list[str]:
        if self.account.folders:
            return list(self.account.folders)  # checked by STATUS; a missing one is reported there
        listing = self.client.list_folders()
        by_flag: dict[bytes, str] = {}
        for flags, _delim, name in listing:
            for flag in flags:
                by_flag.setdefault(flag.lower() if isinstance(flag, bytes) else flag, name)
        if self.gmail and b"\\all" in by_flag:
            # Gmail shows each message once per label; All Mail holds them all once.
            return [by_flag[b"\\all"]]
        sent = by_flag.get(b"\\sent")
        if sent is None:
            if self.account.name not in _warned_no_sent:
                _warned_no_sent.add(self.account.name)
                log.warning("%s: the server marks no folder as Sent (SPECIAL-USE \\Sent); syncing INBOX only, "
                            "set `folders` to name the sent folder", self.account.name)
            return ["INBOX"]
        return ["INBOX", sent] if sent.upper() != "INBOX" else ["INBOX"]

    def _status(self, folder: str) -> dict:
        from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

        what = ["MESSAGES", "UIDNEXT", "UIDVALIDITY"] + (["HIGHESTMODSEQ"] if self.condstore else [])
        try:
            raw = self.client.folder_status(folder, what)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            if self.account.folders:
                self._missing_folder(folder)
            raise imap_connect.translate(exc, self.account, f"STATUS of {folder!r}") from exc
        return {k.decode().lower(): v for k, v in raw.items()}

    def _missing_folder(self, folder: str):
        names = [name for _f, _d, name in self.client.list_folders()]
        if folder in names or (folder.upper() == "INBOX" and "INBOX" in names):
            return
        listed = ", ".join(repr(n) for n in sorted(names)) or "none"
        raise SourceError(
            f"The folder {folder!r} named in `folders` of account {self.account.name!r} does not exist on "
            f"{self.account.host}; the folders there are: {listed}."
        )

    # --- one folder -----------------------------------------------------------
    def _folder(self, folder: str, state, full: bool) -> Iterator[Batch]:
        status = self._status(folder)
        stored = state.folder_state(folder)
        uidvalidity = status["uidvalidity"]
        reset = bool(stored and stored.get("uidvalidity") not in (None, uidvalidity))
        if reset:
            log.info("%s: %s has a new UIDVALIDITY; refetching the folder", self.account.name, folder)
        if reset or full:
            stored = None
        if stored and stored.get("complete") and all(
            stored.get(k) == status.get(k) for k in ("uidnext", "messages", "highestmodseq")
        ):
            return  # nothing added, nothing expunged: the folder is not even opened
        selected = self.client.select_folder(folder, readonly=True)  # EXAMINE
        exists = int(selected.get(b"EXISTS", status["messages"]))
        last_uid = int(stored["last_uid"] or 0) if stored else 0
        # After a UIDVALIDITY change the old locations mean nothing (reset_folder drops them).
        known = {} if reset else state.known_locations(folder)
        # `n:*` always matches the highest UID even when n is above it: filter.
        new = sorted(u for u in self.client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid)
        # Expunge check by counting: every live known UID plus the new ones should add up.
        live = {int(loc) for loc in known if loc.isdigit()} | set(new)
        gone: list[str] = []
        if len(live) != exists:
            on_server = set(self.client.search(["ALL"]))
            gone = sorted((loc for loc in known if not loc.isdigit() or int(loc) not in on_server),
                          key=lambda x: int(x) if x.isdigit() else 0)
        final = {"uidvalidity": uidvalidity, "last_uid": max([last_uid, *new]),
                 "uidnext": status.get("uidnext"), "messages": status.get("messages"),
                 "highestmodseq": status.get("highestmodseq"), "complete": 1}
        size = max(1, self.account.batch_size)
        chunks = [new[i:i + size] for i in range(0, len(new), size)] or [[]]
        for i, chunk in enumerate(chunks):
            items = self._fetch(folder, chunk, uidvalidity) if chunk else []
            last = i == len(chunks) - 1
            cursor = final if last else {"uidvalidity": uidvalidity, "last_uid": max(chunk), "complete": 0}
            yield Batch(items=items, folder=folder, cursor=cursor, gone=gone if last else [],
                        reset_folder=reset and i == 0, total=len(new))

    # --- fetching -------------------------------------------------------------
    def _fetch(self, folder: str, uids: list[int], uidvalidity: int) -> list[tuple[Message, Seen]]:
        from syncagent import parse

        items = BASE_ITEMS + (GMAIL_ITEMS if self.gmail else [])
        data = self.client.fetch(uids, items)
        calendars = self._calendars(data)
        out = []
        for uid in uids:
            d = data.get(uid)
            if d is None:
                continue  # expunged between SEARCH and FETCH
            header = next((v for k, v in d.items() if k.startswith(b"BODY[HEADER")), b"") or b""
            gm_id = d.get(b"X-GM-MSGID")
            thrid = d.get(b"X-GM-THRID")
            try:
                msg = parse.parse_message(
                    header,
                    arrived_at=d.get(b"INTERNALDATE"),
                    size=d.get(b"RFC822.SIZE"),
                    thread_hint=str(thrid) if thrid is not None else None,
                    gmail_id=format(gm_id, "x") if gm_id is not None else None,
                )
            except Exception:  # promise 4: one bad message never stops a sync
                log.warning("%s: could not parse UID %s in %s; skipped", self.account.name, uid, folder,
                            exc_info=True)
                continue
            if uid in calendars:
                msg = dataclasses.replace(msg, calendar=calendars[uid], has_calendar=True)
            labels = tuple(_label(x) for x in d.get(b"X-GM-LABELS", ()) or ())
            out.append((msg, Seen(folder=folder, location=str(uid), uid=uid, uidvalidity=uidvalidity,
                                  labels=labels)))
        return out

    def _calendars(self, data: dict) -> dict[int, str]:
        """Fetch only the text/calendar part of the messages that have one (grouped by part number)."""
        wanted: dict[str, list[tuple[int, str, str]]] = {}
        for uid, d in data.items():
            bs = d.get(b"BODYSTRUCTURE")
            if not bs:
                continue
            found = _find_calendar(bs)
            if found:
                part, encoding, charset = found
                wanted.setdefault(part, []).append((uid, encoding, charset))
        out: dict[int, str] = {}
        for part, entries in wanted.items():
            fetched = self.client.fetch([uid for uid, _e, _c in entries], [f"BODY.PEEK[{part}]"])
            for uid, encoding, charset in entries:
                raw = next((v for k, v in fetched.get(uid, {}).items() if k.startswith(b"BODY[")), None)
                if raw:
                    out[uid] = _decode_part(raw, encoding, charset)
        return out


def _label(value) -> str:
    from imapclient import imap_utf7

    if isinstance(value, bytes):
        return imap_utf7.decode(value)
    return str(value)


def _text(v) -> str:
    if isinstance(v, bytes):
        return v.decode("ascii", "replace")
    return "" if v is None else str(v)


def _find_calendar(bs, prefix: str = "") -> tuple[str, str, str] | None:
    """Walk a BODYSTRUCTURE; return (part number, transfer encoding, charset) of a text/calendar part."""
    try:
        if bs.is_multipart if hasattr(bs, "is_multipart") else isinstance(bs[0], list):
            for i, sub in enumerate(bs[0], start=1):
                found = _find_calendar(sub, f"{prefix}{i}.")
                if found:
                    return found
            return None
        if _text(bs[0]).lower() == "text" and _text(bs[1]).lower() == "calendar":
            params = bs[2] if isinstance(bs[2], tuple) else ()
            pairs = dict(zip([_text(p).lower() for p in params[::2]], [_text(p) for p in params[1::2]]))
            size = bs[6] if len(bs) > 6 and isinstance(bs[6], int) else 0
            if size > MAX_CALENDAR_BYTES:
                return None
            return (prefix.rstrip(".") or "1", _text(bs[5]).lower(), pairs.get("charset", "utf-8"))
    except (IndexError, TypeError, AttributeError):
        return None  # an odd structure: no calendar, the message itself is still stored
    return None


def _decode_part(raw: bytes, encoding: str, charset: str) -> str:
    try:
        if encoding == "base64":
            raw = base64.b64decode(raw, validate=False)
        elif encoding == "quoted-printable":
            raw = quopri.decodestring(raw)
    except (binascii.Error, ValueError):
        pass
    try:
        return raw.decode(charset or "utf-8", "replace")
    except LookupError:
        return raw.decode("utf-8", "replace")
