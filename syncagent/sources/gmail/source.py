"""Gmail through the Gmail API (scope ``gmail.readonly``): full and incremental sync.

Full sync (the Gmail sync guide, made resumable): read ``getProfile().historyId``
*before* listing, page ``messages.list``, fetch metadata in batch requests, and
commit the historyId with the last batch. Intermediate batches carry
``{"history_id": None, "pending_history_id": H, "page_token": "label:token"}``,
so a killed first sync resumes at the page it was on (re-fetching at most one
page, which the store dedupes).

Incremental sync: ``history.list`` from the stored id; added and relabelled
messages are fetched, deleted ones become ``gone_gmail_ids``; the new historyId
commits with them. A 404 means the id expired: one full resync (it duplicates
nothing: rows dedupe on Message-ID and the location is the Gmail id), then one
check of the fresh id; a second 404 in the same run is an error, not a loop.

Each message is stored once, as folder ``gmail`` with location = its Gmail id
and its label ids as labels: Gmail has no folders, only labels, so one row per
message avoids the duplicates that syncing INBOX, SENT and All Mail would give.

Calendar invitations: metadata shows no parts, so ``format=full`` is fetched
only for messages Gmail's search finds with an ``.ics`` attachment
(``filename:ics``: once per full sync, and once per incremental batch limited
to ``after:`` its oldest message) or whose headers mark them as invitations
(a calendar Content-Type, Outlook's Content-Class, Google Calendar's sender,
an "Invitation:" style subject). Only the text/calendar part is kept.
"""

from __future__ import annotations

import base64
import html
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from syncagent.config import Account
from syncagent.errors import ConfigError, CursorInvalid, TransientSourceError
from syncagent.model import Batch, GmailCursor, Message, Seen
from syncagent.parse import outreach
from syncagent.parse.bodytext import part_text, pick_text_part
from syncagent.parse.returndate import TEXT_BYTES, with_return_date
from syncagent.sources.gmail import api as gmail_api

if TYPE_CHECKING:
    from syncagent.sources.gmail.api import GmailClient

log = logging.getLogger(__name__)

FOLDER = "gmail"
# Spam and Trash: a full sync skips them (includeSpamTrash=false), so history does too. Drafts
# are not mail anyone received (each autosave is a new id) and chats have no headers.
OUT_OF_SCOPE = {"SPAM", "TRASH", "DRAFT", "CHAT"}
SYSTEM_LABELS = {"INBOX", "SENT", "DRAFT", "SPAM", "TRASH", "STARRED", "IMPORTANT", "UNREAD", "CHAT"}
_INVITE_SUBJECT = re.compile(
    r"^(?:\[[^\]]*\]\s*)*(?:(?:updated|synced|new)\s+)?(?:invitation|invite|canceled event|cancelled event"
    r"|event canceled|event cancelled|meeting request|invitation from google calendar)\b",
    re.IGNORECASE,
)


class GmailSource:
    def __init__(self, account: Account, *, credentials=None, sleep_fn=None, resync_every: float = 600.0):
        self.account = account
        self.resync_every = resync_every  # seconds: [sync] interval_minutes, the least gap between resyncs
        self._credentials = credentials  # tests may hand in ready credentials
        self._sleep_fn = sleep_fn
        self._client: GmailClient | None = None
        self._token_at_open: str | None = None

    # --- the Source protocol -------------------------------------------------

    def batches(self, state, *, full: bool = False) -> Iterator[Batch]:
        self._open()
        stored = state.gmail_state() or {}
        if not full and stored.get("history_id"):
            try:
                yield from self._incremental(stored["history_id"])
                _resyncs.pop(self.account.name, None)  # history works again: no more spacing
                return
            except _Expired:
                self._may_resync()
                log.warning("%s: the stored Gmail history id has expired; running a full resync", self.account.name)
            _resyncs[self.account.name] = (gmail_api.clock(), _resyncs.get(self.account.name, (0.0, 0))[1] + 1)
            fresh = yield from self._full(None, state)
            try:
                yield from self._incremental(fresh)
            except _Expired:
                raise CursorInvalid(
                    f"Gmail rejected the history id it had just issued for account '{self.account.name}' right after a full resync; the messages are saved, run `syncagent sync --full --account {self.account.name}` later and report it if this repeats."
                ) from None
            return
        resume = stored if (not full and stored.get("pending_history_id")) else None
        yield from self._full(resume, state)

    def _may_resync(self) -> None:
        """Refuse a full resync sooner than its turn: at most one per interval, the gap doubling
        while the history keeps expiring (each costs 5 units per message, and a history that
        never holds would otherwise resync every pass, far above the per-user quota)."""
        last, count = _resyncs.get(self.account.name, (0.0, 0))
        if not count:
            return
        gap = self.resync_every * 2 ** min(count - 1, RESYNC_BACKOFF_MAX)
        ago = gmail_api.clock() - last
        if ago < gap:
            raise TransientSourceError(
                f"Gmail's history for account '{self.account.name}' expired again {ago / 60:.0f} minutes after "
                f"the last full resync; the next one waits its turn in {(gap - ago) / 60:.0f} minutes, to stay "
                f"within Gmail's quota (`syncagent sync --full --account {self.account.name}` forces it)."
            )

    def close(self) -> None:
        # AuthorizedHttp renews the access token in memory only: keep the renewal.
        if self._client is None or self._credentials is not None:
            return
        creds = self._client.credentials
        if creds.token and creds.token != self._token_at_open:
            from syncagent.sources.gmail import auth as gmail_auth

            gmail_auth.save_credentials(gmail_auth.token_file(self.account), creds)

    # --- full ----------------------------------------------------------------

    def _full(self, resume: dict | None, state):
        """Yield batches of a full listing; return the historyId it committed.

        A pass that lists everything within this run also marks gone what the
        database holds but the listing no longer has (deleted while an expired
        history id could not tell us); a resumed pass cannot know, so it doesn't.
        """
        client = self._api
        labels = self._label_ids()
        total = None
        known = None if resume else set(state.known_locations(FOLDER))
        listed: set[str] = set()
        if resume:
            history_id = resume["pending_history_id"]
            label_index, token = _decode_position(resume.get("page_token"))
            log.info("%s: resuming the full Gmail sync", self.account.name)
        else:
            profile = client.profile()
            history_id = str(profile["historyId"])
            label_index, token = 0, None
            total = int(profile.get("messagesTotal") or 0) if labels == [None] else None
        invites = self._search_ids("filename:ics")
        size = max(1, self.account.batch_size)
        emitted_final = False
        while label_index < len(labels):
            try:
                page = client.list_page(page_token=token, label_id=labels[label_index])
            except Exception as exc:
                if token is None or gmail_api.status_of(exc) not in (400, 404):
                    raise
                # The saved page token went stale: list again from the start (the store dedupes).
                log.warning("%s: the saved Gmail page token expired; listing from the start", self.account.name)
                label_index, token = 0, None
                continue
            ids = [m["id"] for m in page.get("messages", [])]
            listed.update(ids)
            nxt = page.get("nextPageToken")
            after = (label_index, nxt) if nxt else (label_index + 1, None)
            chunks = [ids[i:i + size] for i in range(0, len(ids), size)] or [[]]
            for n, chunk in enumerate(chunks):
                last_chunk = n == len(chunks) - 1
                items, gone = self._fetch(chunk, invites)
                final = last_chunk and after[0] >= len(labels)
                if final:
                    cursor = GmailCursor(history_id)
                    if known:
                        gone = gone + sorted(known - listed)
                else:
                    position = after if last_chunk else (label_index, token)
                    cursor = GmailCursor(None, pending_history_id=history_id,
                                         page_token=_encode_position(*position))
                emitted_final = emitted_final or final
                yield Batch(items=items, folder=FOLDER, cursor=cursor, gone_gmail_ids=gone, total=total)
            label_index, token = after
        if not emitted_final:  # a resume whose position was already past the end
            yield Batch(folder=FOLDER, cursor=GmailCursor(history_id))
        return history_id

    # --- incremental ---------------------------------------------------------

    def _incremental(self, start: str):
        from syncagent.sources.gmail.api import HistoryExpired

        added: dict[str, None] = {}
        deleted: dict[str, None] = {}
        history_id, token = start, None
        while True:
            try:
                page = self._api.history_page(start, token)
            except HistoryExpired:
                raise _Expired() from None
            for record in page.get("history", []):
                for entry in record.get("messagesAdded", []) + record.get("labelsAdded", []) + record.get("labelsRemoved", []):
                    added[entry["message"]["id"]] = None
                for entry in record.get("messagesDeleted", []):
                    deleted[entry["message"]["id"]] = None
            history_id = str(page.get("historyId") or history_id)
            token = page.get("nextPageToken")
            if not token:
                break
        fetch = [mid for mid in added if mid not in deleted]
        size = max(1, self.account.batch_size)
        chunks = [fetch[i:i + size] for i in range(0, len(fetch), size)] or [[]]
        for n, chunk in enumerate(chunks):
            items, gone = self._fetch(chunk, None)
            last = n == len(chunks) - 1
            if last:
                gone = gone + list(deleted)
            # Only the last batch moves the cursor: a run killed earlier replays the history.
            yield Batch(items=items, folder=FOLDER, cursor=GmailCursor(history_id) if last else None,
                        gone_gmail_ids=gone, total=len(fetch))
        return history_id

    # --- fetching ------------------------------------------------------------

    def _fetch(self, ids: list[str], invites: set[str] | None) -> tuple[list[tuple[Message, Seen]], list[str]]:
        """Metadata for ``ids`` (404s skipped), calendar parts for invitations; and ids now out of scope."""
        if not ids:
            return [], []
        client = self._api
        metas = client.get_many(ids, "metadata")
        if invites is None and metas:
            oldest = min(int(m.get("internalDate") or 0) for m in metas.values()) // 1000
            invites = self._search_ids(f"filename:ics after:{max(0, oldest - 86400)}")
        wanted = self._scope_labels()
        items, gone = [], []
        in_scope: dict[str, dict] = {}
        for mid in ids:
            meta = metas.get(mid)
            if meta is None:
                continue  # deleted between listing and fetching
            labels = set(meta.get("labelIds") or [])
            if labels & OUT_OF_SCOPE or (wanted is not None and not labels & wanted):
                gone.append(mid)
                continue
            in_scope[mid] = meta
        messages = {mid: to_message(meta) for mid, meta in in_scope.items()}
        # The full format is asked for only where a part is wanted: invitations (their
        # calendar part), auto-replies (the return date their text may state) and the
        # user's own sent mail (measured: numbers only, when analyze_outreach).
        mine = {mid for mid, msg in messages.items()
                if self.account.analyze_outreach and outreach.wants_measures(msg, self.account.addresses)}
        candidates = [mid for mid, meta in in_scope.items()
                      if mid in (invites or ()) or mid in mine or looks_like_invitation(_pairs(meta))
                      or messages[mid].auto_reply]
        full = client.get_many(candidates, "full") if candidates else {}
        for mid, meta in in_scope.items():
            msg = messages[mid]
            if mid in full:
                text = self._calendar_text(full[mid])
                if text:
                    msg = replace(msg, calendar=text, has_calendar=True)
                payload = full[mid].get("payload") or {}
                if msg.auto_reply:
                    msg = with_return_date(msg, first_text(payload, TEXT_BYTES))
                elif mid in mine:
                    msg = outreach.with_measures(msg, first_text(payload, outreach.TEXT_LIMIT))
            items.append((msg, Seen(folder=FOLDER, location=mid, labels=tuple(meta.get("labelIds") or ()))))
        return items, gone

    def _search_ids(self, query: str) -> set[str]:
        found: set[str] = set()
        token = None
        while True:
            page = self._api.list_page(page_token=token, query=query)
            found.update(m["id"] for m in page.get("messages", []))
            token = page.get("nextPageToken")
            if not token:
                return found

    def _calendar_text(self, full: dict) -> str | None:
        part = _calendar_part(full.get("payload") or {})
        if part is None:
            return None
        body = part.get("body") or {}
        data = body.get("data")
        if not data and body.get("attachmentId"):
            fetched = self._api.attachment(full["id"], body["attachmentId"])
            data = (fetched or {}).get("data")
        if not data:
            return None
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        charset = _charset(part) or "utf-8"
        try:
            return raw.decode(charset, errors="replace")
        except LookupError:
            return raw.decode("utf-8", errors="replace")

    # --- set-up --------------------------------------------------------------

    @property
    def _api(self) -> GmailClient:
        assert self._client is not None, "the source is used only between _open() and close()"
        return self._client

    def _open(self):
        from syncagent.sources.gmail import auth as gmail_auth
        from syncagent.sources.gmail.api import GmailClient

        creds = self._credentials or gmail_auth.load_credentials(self.account)
        self._token_at_open = creds.token
        self._client = GmailClient(self.account, creds, sleep_fn=self._sleep_fn)
        self._label_cache: list[str | None] | None = None
        return self._client

    def _label_ids(self) -> list[str | None]:
        """The label ids to list (``[None]``: everything), resolving names once per run."""
        if self._label_cache is not None:
            return self._label_cache
        wanted = self.account.labels
        if not wanted:
            self._label_cache = [None]
            return self._label_cache
        result: list[str | None] = []
        remote = None
        for label in wanted:
            if label.upper() in SYSTEM_LABELS or label.upper().startswith("CATEGORY_"):
                result.append(label.upper())
                continue
            if remote is None:
                remote = self._api.labels()
            match = next((r["id"] for r in remote if label in (r.get("id"), r.get("name"))), None)
            match = match or next((r["id"] for r in remote if (r.get("name") or "").lower() == label.lower()), None)
            if match is None:
                names = ", ".join(sorted(r.get("name", "") for r in remote)[:20])
                raise ConfigError(
                    f"`accounts.{self.account.name}.labels` names {label!r}, which is not a Gmail label of this account; use one of: {names}."
                )
            result.append(match)
        self._label_cache = list(dict.fromkeys(result))
        return self._label_cache

    def _scope_labels(self) -> set[str] | None:
        ids = self._label_ids()
        return None if ids == [None] else {i for i in ids if i is not None}


class _Expired(Exception):
    pass


RESYNC_BACKOFF_MAX = 6  # the gap between resyncs stops doubling at 64 intervals
# Per account, for the life of the process (a daemon's passes share it): when the last full
# resync forced by an expired history id started (gmail_api.clock) and how many ran in a row.
_resyncs: dict[str, tuple[float, int]] = {}


def _encode_position(label_index: int, token: str | None) -> str:
    return f"{label_index}:{token or ''}"


def _decode_position(text: str | None) -> tuple[int, str | None]:
    if not text or ":" not in text:
        return 0, None
    index, token = text.split(":", 1)
    return (int(index) if index.isdigit() else 0), (token or None)


def _pairs(meta: dict) -> list[tuple[str, str]]:
    headers = (meta.get("payload") or {}).get("headers") or []
    return [(h.get("name") or "", h.get("value") or "") for h in headers]


def to_message(meta: dict) -> Message:
    """A metadata-format Gmail message -> Message (internalDate is the arrival time)."""
    from syncagent.parse.headers import parse_header_pairs

    arrived = None
    if meta.get("internalDate"):
        arrived = datetime.fromtimestamp(int(meta["internalDate"]) / 1000, tz=timezone.utc)
    size = meta.get("sizeEstimate")
    msg = parse_header_pairs(_pairs(meta), arrived_at=arrived, size=int(size) if size is not None else None,
                             thread_hint=meta.get("threadId"), gmail_id=meta["id"])
    if meta.get("snippet"):
        msg = replace(msg, snippet=html.unescape(meta["snippet"]))  # Gmail sends snippets HTML-escaped
    return msg


def looks_like_invitation(pairs: list[tuple[str, str]]) -> bool:
    headers: dict[str, str] = {}
    for name, value in pairs:
        headers.setdefault(name.lower(), value)
    ctype = headers.get("content-type", "").lower()
    if "calendar" in ctype or "application/ics" in ctype:
        return True
    if "calendarmessage" in headers.get("content-class", "").lower():
        return True
    senders = (headers.get("sender", "") + headers.get("from", "")).lower()
    if "calendar-notification@google.com" in senders:
        return True
    return ctype.startswith("multipart/") and bool(_INVITE_SUBJECT.match(headers.get("subject", "").strip()))


def _calendar_part(payload: dict) -> dict | None:
    """The first text/calendar part (else an .ics attachment), depth first."""
    fallback = None
    stack = [payload]
    while stack:
        part = stack.pop(0)
        mime = (part.get("mimeType") or "").lower()
        if mime == "text/calendar":
            return part
        if fallback is None and (mime == "application/ics" or (part.get("filename") or "").lower().endswith(".ics")):
            fallback = part
        stack[0:0] = part.get("parts") or []
    return fallback


def first_text(payload: dict, limit: int) -> str | None:
    """The first ``limit`` bytes of the first inline text part (plain, else HTML as text) of a full payload.

    A large body comes as an attachment id instead of data: not worth a call for a measure.
    """
    picked = pick_text_part(_text_parts(payload))
    if picked is None:
        return None
    subtype, chosen = picked
    data = chosen["body"]["data"]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))[:limit]
    return part_text(raw, _charset(chosen), subtype)


def _text_parts(payload: dict) -> Iterator[tuple[str, dict]]:
    """(subtype, part) of each inline text/plain or text/html part that carries its data, in MIME order."""
    stack = [payload]
    while stack:
        part = stack.pop(0)
        mime = (part.get("mimeType") or "").lower()
        if mime in ("text/plain", "text/html") and (part.get("body") or {}).get("data") and not part.get("filename"):
            yield mime[5:], part
        stack[0:0] = part.get("parts") or []


def _charset(part: dict) -> str | None:
    for h in part.get("headers") or []:
        if (h.get("name") or "").lower() == "content-type":
            m = re.search(r'charset="?([\w.:-]+)"?', h.get("value") or "", re.IGNORECASE)
            if m:
                return m.group(1)
    return None
