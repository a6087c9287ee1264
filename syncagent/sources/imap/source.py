"""The IMAP source: read-only, incremental, header fields only.

Per folder: STATUS first; if UIDVALIDITY, UIDNEXT, MESSAGES (and HIGHESTMODSEQ)
match the stored cursor of a complete pass, the folder is skipped without
being opened, so a sync with nothing new costs a constant number of commands.
Otherwise the folder is opened with EXAMINE, new UIDs are fetched in ascending
chunks (one Batch each, its cursor committed with its rows), and the last
Batch carries the full cursor and the UIDs that disappeared.

When only HIGHESTMODSEQ moved (another client changed flags), the folder is
not opened at all: flags are not stored, so the new modseq is just recorded. On
Gmail (X-GM-EXT-1) the labels of known messages changed since the stored
modseq are fetched with CHANGEDSINCE and updated in ``message_folders``.
With ``fetch_snippets`` the first KB of each message's text part is fetched
with a partial BODY.PEEK to store a short snippet (see ``imap_parts``).
New messages are fetched through ``imap_fetch``, which reads the raw answer
itself instead of through imapclient's general parser (and falls back to it).

Read-only by construction: EXAMINE, BODY.PEEK, STATUS, LIST, SEARCH, FETCH and
nothing else (no STORE/EXPUNGE/COPY/MOVE/APPEND).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from syncagent.config import Account
from syncagent.errors import SourceError, SyncagentError
from syncagent.model import Batch, FolderCursor, Message, Seen
from syncagent.parse import chunks, outreach
from syncagent.parse.returndate import TEXT_BYTES, with_return_date
from syncagent.sources.imap import connect as imap_connect
from syncagent.sources.imap import fetch as imap_fetch
from syncagent.sources.imap import parts as imap_parts

if TYPE_CHECKING:
    from imapclient import IMAPClient

log = logging.getLogger(__name__)

HEADER_FIELDS = (
    "FROM TO CC BCC REPLY-TO SENDER DATE SUBJECT MESSAGE-ID IN-REPLY-TO REFERENCES LIST-ID "
    "LIST-UNSUBSCRIBE AUTO-SUBMITTED X-AUTOREPLY X-AUTORESPOND PRECEDENCE CONTENT-TYPE "
    "X-AUTO-RESPONSE-SUPPRESS RETURN-PATH"
)
HEADER_ITEM = f"BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})]"
BASE_ITEMS = [HEADER_ITEM, "INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE"]
GMAIL_ITEMS = ["X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS"]
LABEL_CHUNK = 500  # UIDs per label-refresh FETCH: ~4 KB command lines at 7 digits
# Chunks fetched ahead of the one being parsed and saved: the answer to the next FETCH is read
# off the socket while this one is parsed and written, so waiting for the server costs nothing.
READ_AHEAD = 2
# UIDs per UID SEARCH window (see ``_uids_from``): at 10 digits an answer stays near 550 KB.
SEARCH_WINDOW = 50_000
# New messages in one folder pass before their headers are parsed in a worker process
# (see ``parse.chunks``): below it, starting one costs more than it saves.
PARSE_WORKER_MIN = 2_000

T = TypeVar("T")

_warned_no_sent: set[str] = set()


class ImapSource:
    """Yields Batches of one IMAP account; see the module docstring."""

    def __init__(self, account: Account):
        self.account = account
        self.client: IMAPClient | None = None
        # Sentences for the pass's summary and sync_runs.notes (a configured folder that is missing).
        self.notes: list[str] = []
        self._listing: list[str] | None = None
        # The one thread that talks to the server while a folder's chunks are read ahead;
        # commands stay strictly one after another on the connection (see ``_on_wire``).
        self._wire: ThreadPoolExecutor | None = None
        # The worker process that parses a big pass's headers on another core; None until one
        # is wanted, and for good once it could not be started or stopped working.
        self._parser: ProcessPoolExecutor | None = None
        self._parser_failed = False

    @property
    def _imap(self) -> IMAPClient:
        assert self.client is not None, "the source is used only inside batches()"
        return self.client

    # --- protocol -------------------------------------------------------------
    def batches(self, state, *, full: bool = False) -> Iterator[Batch]:
        self.client = imap_connect.connect(self.account)
        self._wire = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imap-{self.account.name}")
        try:
            caps = set(self._imap.capabilities())
            self.gmail = b"X-GM-EXT-1" in caps
            self.condstore = b"CONDSTORE" in caps
            missing: list[str] = []
            done: set[str] = set()
            if not self.account.folders and not self.gmail:
                # INBOX, which every server has, is synced before LIST: once a session has
                # listed (or asked STATUS of another folder), Dovecot answered STATUS and EXAMINE
                # of a large INBOX 15x slower (0.45 s at 570,000 messages against 0.03 s), and
                # that was most of a sync with nothing new.
                status = self._status("INBOX", [])
                if status is not None:
                    yield from self._folder("INBOX", status, state, full)
                done.add("INBOX")
            folders = self._folders()
            for folder in folders:
                if folder in done:
                    continue
                status = self._status(folder, missing)
                if status is not None:
                    yield from self._folder(folder, status, state, full)
            if missing:
                self._report_missing(missing, every=len(missing) == len(folders))
        except SyncagentError:
            raise
        except Exception as exc:
            raise imap_connect.translate(exc, self.account, "sync") from exc

    def close(self) -> None:
        if self._wire is not None:
            self._wire.shutdown(wait=True, cancel_futures=True)
            self._wire = None
        self._stop_parser()
        if self.client is not None:
            imap_connect.close(self.client)
            self.client = None

    # --- folders --------------------------------------------------------------
    def _folders(self) -> list[str]:
        if self.account.folders:
            return list(self.account.folders)  # checked by STATUS; a missing one is skipped and reported
        listing = self._imap.list_folders()
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

    def _status(self, folder: str, missing: list[str]) -> dict | None:
        """STATUS of a folder; None (and the name added to ``missing``) for a configured one that is not there.

        Only folders named in `folders` can be missing (the defaults come from LIST). One
        missing folder must not stop the others, or the ledger would stand still until
        the config is fixed. STATUS answers NO for it, and LIST tells that from other refusals.
        """
        from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

        what = ["MESSAGES", "UIDNEXT", "UIDVALIDITY"] + (["HIGHESTMODSEQ"] if self.condstore else [])
        try:
            raw = self._imap.folder_status(folder, what)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            if self.account.folders and not self._listed(folder):
                missing.append(folder)
                return None
            raise imap_connect.translate(exc, self.account, f"STATUS of {folder!r}") from exc
        return {k.decode().lower(): v for k, v in raw.items()}

    def _listed(self, folder: str) -> bool:
        names = self._names()
        return folder in names or (folder.upper() == "INBOX" and "INBOX" in names)

    def _names(self) -> list[str]:
        if self._listing is None:
            self._listing = [name for _f, _d, name in self._imap.list_folders()]
        return self._listing

    def _report_missing(self, missing: list[str], *, every: bool) -> None:
        listed = ", ".join(repr(n) for n in sorted(self._names())) or "none"
        where = f"`folders` of account {self.account.name!r}"
        if every:  # nothing could be synced: that is a failure, not a note
            raise SourceError(
                f"No folder named in {where} exists on {self.account.host}; fix `folders` (the folders there "
                f"are: {listed})."
            )
        one = len(missing) == 1
        names = " and ".join(repr(f) for f in missing)
        self.notes.append(
            f"The folder{'' if one else 's'} {names} named in {where} {'does' if one else 'do'} not exist on "
            f"{self.account.host}, so the other folders were synced without {'it' if one else 'them'}; fix "
            f"the name or remove {'it' if one else 'them'} from `folders` (the folders there are: {listed})."
        )

    # --- one folder -----------------------------------------------------------
    def _folder(self, folder: str, status: dict, state, full: bool) -> Iterator[Batch]:
        stored = state.folder_state(folder)
        uidvalidity = status["uidvalidity"]
        reset = bool(stored and stored.get("uidvalidity") not in (None, uidvalidity))
        if reset:
            log.info("%s: %s has a new UIDVALIDITY; refetching the folder", self.account.name, folder)
        if reset or full:
            stored = None
        if stored and stored.get("complete") and all(
            stored.get(k) == status.get(k) for k in ("uidnext", "messages")
        ):
            # Nothing added (UIDNEXT grows with every append) and nothing expunged (MESSAGES
            # would drop, or UIDNEXT grow with a replacement): at most flags or labels changed.
            if stored.get("highestmodseq") != status.get("highestmodseq"):
                yield from self._flags_only(folder, state, stored, status)
            return  # the folder is not even opened unless Gmail labels need a refresh
        selected = self._imap.select_folder(folder, readonly=True)  # EXAMINE
        exists = int(selected.get(b"EXISTS", status["messages"]))
        last_uid = int(stored["last_uid"] or 0) if stored else 0
        new = self._uids_from(last_uid + 1, status.get("uidnext"))
        # Expunge check by counting: every live known UID plus the new ones should add up.
        # The stored locations are all at or below last_uid and the new UIDs above it, so
        # their count alone settles it; the locations themselves are read only when it does
        # not add up (a big folder's would be a large map to hold for nothing).
        # After a UIDVALIDITY change the old locations mean nothing (reset_folder drops them).
        known_count = 0 if reset else state.known_count(folder)
        known: dict | None = {} if reset else None
        gone: list[str] = []
        if known_count + len(new) != exists:
            known = state.known_locations(folder) if known is None else known
            live = {int(loc) for loc in known if loc.isdigit()} | set(new)
            if len(live) != exists:
                on_server = set(self._uids_from(1, status.get("uidnext")))
                gone = sorted((loc for loc in known if not loc.isdigit() or int(loc) not in on_server),
                              key=lambda x: int(x) if x.isdigit() else 0)
        # Labels of the messages already stored may have changed too (new mail bumps the
        # modseq as well, so this is the only chance to see those changes).
        moved = bool(stored) and stored.get("highestmodseq") != status.get("highestmodseq")
        labels: dict[str, tuple[str, ...]] = {}
        if moved and self._labels_wanted(stored):
            labels = self._label_changes(state.known_locations(folder) if known is None else known, stored)
        final = FolderCursor(uidvalidity=uidvalidity, last_uid=max(last_uid, max(new, default=0)),
                             uidnext=status.get("uidnext"), messages=status.get("messages"),
                             highestmodseq=status.get("highestmodseq"), complete=1)
        size = max(1, self.account.batch_size)
        count = max(1, -(-len(new) // size))  # a pass with nothing new still moves the cursor once
        # Chunks are fetched READ_AHEAD ahead on the wire thread; each is parsed here, in order.
        # The texts a chunk needs (sent mail, auto-replies) are asked for behind the chunks read
        # ahead, so a chunk is finished and yielded (saved by the caller) only after the next
        # one is parsed: the main thread parses while the server reads those bodies. The cursor
        # still moves only with a chunk's own rows.
        in_worker = len(new) >= PARSE_WORKER_MIN and self._start_parser()
        ahead: deque[tuple[list[int], Future[Any]]] = deque()
        held: tuple[int, list[int], list[tuple[Message, Seen]], Future[Any] | None] | None = None
        queued = 0

        def finished(i: int, chunk: list[int], items: list[tuple[Message, Seen]],
                     texts: Future[Any] | None) -> Batch:
            last = i == count - 1
            cursor = final if last else FolderCursor(uidvalidity=uidvalidity, last_uid=max(chunk), complete=0)
            return Batch(items=self._with_texts(items, texts), folder=folder, cursor=cursor,
                         gone=gone if last else [], reset_folder=reset and i == 0, total=len(new),
                         labels=labels if last else {})

        try:
            for i in range(count):
                while new and queued < min(count, i + 1 + READ_AHEAD):
                    part = new[queued * size:(queued + 1) * size].tolist()
                    ahead.append((part, self._submit(self._fetch_raw, part, in_worker)))
                    queued += 1
                items: list[tuple[Message, Seen]] = []
                chunk: list[int] = []
                texts: Future[Any] | None = None
                if ahead:
                    chunk, future = ahead.popleft()
                    items, texts = self._parse_chunk(folder, chunk, uidvalidity, future.result())
                if held is not None:
                    done, held = held, None
                    yield finished(*done)
                held = (i, chunk, items, texts)
            if held is not None:
                done, held = held, None
                yield finished(*done)
        finally:
            # Stopped early (on request, or by an error): the connection must be quiet again
            # before anything else is sent on it, so what is in flight is read to its end.
            in_flight = [pending for _chunk, pending in ahead]
            if held is not None and held[3] is not None:
                in_flight.append(held[3])
            for pending in in_flight:
                if not pending.cancel():
                    try:
                        pending.result()
                    except Exception:
                        log.debug("%s: a read-ahead FETCH failed after the pass stopped", self.account.name,
                                  exc_info=True)

    def _uids_from(self, first: int, uidnext: int | None) -> array[int]:
        """The UIDs from ``first`` on, ascending, searched SEARCH_WINDOW UIDs at a time.

        One ``UID SEARCH`` over a big folder answers with one line longer than imaplib
        accepts (1 MB: about 150,000 UIDs), so the UID space below UIDNEXT is searched
        in windows; the last window is open-ended (``n:*``) for mail that arrived since
        STATUS. ``n:*`` always matches the highest UID even when n is above it: filtered.
        """
        out = array("q")  # 8 bytes a UID: a list of ints costs 36 (a million-message mailbox)
        start = first
        while True:
            end = start + SEARCH_WINDOW - 1
            open_ended = uidnext is None or end >= int(uidnext) - 1
            found = self._imap.search(["UID", f"{start}:*" if open_ended else f"{start}:{end}"])
            out.extend(sorted(u for u in found if u >= start))
            if open_ended:
                return out
            start = end + 1

    def _flags_only(self, folder: str, state, stored: dict, status: dict) -> Iterator[Batch]:
        """Only HIGHESTMODSEQ moved: refresh Gmail labels if there are any, then record the new modseq.

        Flags are not stored, so without X-GM-EXT-1 this costs no command at all: the
        next sync compares against the new modseq and is back to STATUS only.
        """
        labels: dict[str, tuple[str, ...]] = {}
        if self._labels_wanted(stored):
            self._imap.select_folder(folder, readonly=True)  # EXAMINE
            labels = self._label_changes(state.known_locations(folder), stored)
        yield Batch(folder=folder, cursor=FolderCursor(highestmodseq=status.get("highestmodseq")), labels=labels, total=0)

    def _labels_wanted(self, stored: dict | None) -> bool:
        return bool(self.gmail and self.condstore and stored and stored.get("highestmodseq") is not None)

    def _label_changes(self, known: dict, stored: dict) -> dict[str, tuple[str, ...]]:
        """X-GM-LABELS of the known messages changed since the stored modseq, by location."""
        if not self._labels_wanted(stored):
            return {}
        uids = sorted(int(loc) for loc in known if loc.isdigit())
        since = int(stored["highestmodseq"])
        out: dict[str, tuple[str, ...]] = {}
        # CHANGEDSINCE makes the answer hold only changed messages; the UID list is
        # chunked to keep command lines near the 8 KB RFC 7162 advises.
        for i in range(0, len(uids), LABEL_CHUNK):
            data = self._imap.fetch(uids[i:i + LABEL_CHUNK], ["X-GM-LABELS", "FLAGS"],
                                     modifiers=[f"CHANGEDSINCE {since}"])
            for uid, d in data.items():
                if b"X-GM-LABELS" in d:
                    out[str(uid)] = tuple(imap_parts.label(x) for x in d[b"X-GM-LABELS"] or ())
        return out

    # --- fetching -------------------------------------------------------------
    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn`` on the wire thread (or here when there is none), after what is queued there."""
        if self._wire is None:
            done: Future[T] = Future()
            try:
                done.set_result(fn(*args))
            except BaseException as exc:
                done.set_exception(exc)
            return done
        return self._wire.submit(fn, *args)

    def _on_wire(self, fn: Callable[..., T], *args: Any) -> T:
        """A command in the middle of a folder pass waits its turn behind the chunks read ahead."""
        return self._submit(fn, *args).result()

    def _fetch(self, folder: str, uids: list[int], uidvalidity: int) -> list[tuple[Message, Seen]]:
        return self._with_texts(*self._parse_chunk(folder, uids, uidvalidity, self._fetch_raw(uids)))

    def _fetch_raw(self, uids: list[int], in_worker: bool = False) -> Fetched:
        """Everything of a chunk the wire gives before parsing: the FETCH answer, what the header
        parse needs of it, calendar parts, snippets; with ``in_worker``, the header parse is handed
        to the worker process at once."""
        items = BASE_ITEMS + (GMAIL_ITEMS if self.gmail else [])
        if imap_fetch.ENABLED:
            # BODYSTRUCTURE is parsed only where a part is wanted from it (see imap_fetch).
            data = imap_fetch.fetch(self.client, uids, items,
                                    structures="all" if self.account.fetch_snippets else "calendar")
        else:
            data = self._imap.fetch(uids, items)
        entries = _entries(data, uids)
        parsed: Future[Any] | None = None
        if in_worker and self._parser is not None:
            try:
                parsed = self._parser.submit(chunks.parse_entries, entries)
            except Exception:  # the worker is gone (BrokenProcessPool) or shut down: parse here
                log.debug("%s: the header parser process is not available", self.account.name, exc_info=True)
                self._parser_failed = True
        calendars = self._calendars(data)
        snippets = self._snippets(data) if self.account.fetch_snippets else {}
        return data, entries, calendars, snippets, parsed

    def _start_parser(self) -> bool:
        """A worker process for header parsing, when there is a second core to run it on."""
        from syncagent.sources import imap

        if not imap.PARSE_IN_WORKER or self._parser_failed or _cores() < 2:
            self._stop_parser()
            return False
        if self._parser is not None:
            return True
        import multiprocessing

        try:
            # spawn, not fork: this process has threads (the wire, the saver) a fork would copy mid-step.
            self._parser = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                               initializer=chunks.exit_with_parent)
        except Exception:  # no semaphores or pipes here (some containers): parse in this process
            log.debug("%s: no header parser process; parsing here", self.account.name, exc_info=True)
            self._parser_failed = True
            return False
        return True

    def _stop_parser(self) -> None:
        if self._parser is not None:
            self._parser.shutdown(wait=True, cancel_futures=True)
            self._parser = None

    def _parse_chunk(self, folder: str, uids: list[int], uidvalidity: int, fetched: Fetched,
                     ) -> tuple[list[tuple[Message, Seen]], Future[Any] | None]:
        """A chunk's messages parsed, and the texts some of them still need, asked for on the wire.

        The texts are a future so the caller can parse the next chunk meanwhile; ``_with_texts``
        merges them.
        """
        data, entries, calendars, snippets, parsed = fetched
        results: list[Message | chunks.Failure] | None = None
        if parsed is not None:
            try:
                results = parsed.result()
            except Exception:  # the worker died (out of memory, killed): this chunk and the rest here
                log.info("%s: the header parser process stopped; parsing in this process", self.account.name)
                log.debug("%s: header parser failure", self.account.name, exc_info=True)
                self._parser_failed = True
                self._stop_parser()
        if results is None:
            results = chunks.parse_entries(entries)
        out = []
        away: list[int] = []  # auto-replies: their text may state a return date
        mine: dict[int, tuple[str | None, tuple[str | None, str] | None]] = {}  # the user's own sent mail
        for entry, msg in zip(entries, results):
            uid = entry.key
            if isinstance(msg, chunks.Failure):  # promise 4: one bad message never stops a sync
                # The traceback quotes the header bytes it tripped on: -vv only.
                log.warning("%s: could not parse UID %s in %s (%s); skipped", self.account.name, uid, folder,
                            msg.kind)
                log.debug("%s: UID %s in %s\n%s", self.account.name, uid, folder, msg.detail)
                continue
            d = data[uid]
            if uid in calendars:
                msg = dataclasses.replace(msg, calendar=calendars[uid], has_calendar=True)
            if snippets.get(uid):
                msg = dataclasses.replace(msg, snippet=snippets[uid])
            if msg.auto_reply:
                away.append(uid)
            elif self.account.analyze_outreach and outreach.wants_measures(msg, self.account.addresses):
                mine[uid] = (msg.subject, outreach.first_recipient(msg))  # measured (numbers only)
            labels = tuple(imap_parts.label(x) for x in d.get(b"X-GM-LABELS", ()) or ())
            out.append((msg, Seen(folder=folder, location=str(uid), uid=uid, uidvalidity=uidvalidity,
                                  labels=labels)))
        if not (away or mine):
            return out, None
        return out, self._submit(self._texts_of, data, away, mine, parsed is not None)

    def _texts_of(self, data: dict, away: list[int], mine: dict[int, tuple[str | None, Any]],
                  in_worker: bool) -> tuple[dict[int, str], dict[int, str], Future[Any] | None]:
        """The texts of a chunk's auto-replies and sent mail; the sent mail's measures handed to the
        worker process at once when the chunk was parsed there (else they are taken here later)."""
        away_texts = self._first_texts(data, away, TEXT_BYTES) if away else {}
        mine_texts = self._first_texts(data, list(mine), outreach.TEXT_LIMIT) if mine else {}
        measured: Future[Any] | None = None
        if in_worker and mine_texts and self._parser is not None:
            try:
                measured = self._parser.submit(chunks.measure_sent, [
                    chunks.Sent(uid, *mine[uid], text) for uid, text in mine_texts.items()])
            except Exception:  # the worker is gone: measured in this process
                log.debug("%s: the header parser process is not available", self.account.name, exc_info=True)
        return away_texts, mine_texts, measured

    def _with_texts(self, out: list[tuple[Message, Seen]], pending: Future[Any] | None) -> list[tuple[Message, Seen]]:
        """Return dates of auto-replies and the measures of the user's own mail, from their texts."""
        if pending is None:
            return out
        away, mine, measured = pending.result()
        measures = None
        if measured is not None:
            try:
                measures = measured.result()
            except Exception:  # the worker died, or a text tripped the measures: measured here as always
                log.debug("%s: measuring in the worker process failed", self.account.name, exc_info=True)
        done = []
        for m, seen in out:
            if seen.uid in away:
                m = with_return_date(m, away[seen.uid])
            elif seen.uid in mine:
                m = (outreach.with_measures(m, mine[seen.uid]) if measures is None
                     else dataclasses.replace(m, outreach=measures[seen.uid]))
            done.append((m, seen))
        return done

    def _first_texts(self, data: dict, uids: list[int], limit: int) -> dict[int, str]:
        """The first ``limit`` bytes of the first text part of each of ``uids``, decoded (BODY.PEEK).

        Read only for the rules that need text: an auto-reply's return date, the measures of
        the user's own outreach. The bulk FETCH parses BODYSTRUCTURE only where a calendar
        part is named and keeps the others raw: those are parsed here; one the scanner did not
        keep (imapclient's reader was used) is asked for again in one small FETCH.
        """
        structures: dict[int, dict] = {}
        missing: list[int] = []
        for uid in uids:
            d = data.get(uid, {})
            parsed = d.get(b"BODYSTRUCTURE")
            if parsed is None and imap_fetch.UNPARSED_STRUCTURE in d:
                parsed = imap_fetch.structure(d[imap_fetch.UNPARSED_STRUCTURE])
            if parsed is None:
                missing.append(uid)
            else:
                structures[uid] = {b"BODYSTRUCTURE": parsed}
        if missing:
            structures.update(self._imap.fetch(missing, ["BODYSTRUCTURE"]))
        out = {}
        for uid, (raw, (_p, subtype, enc, charset)) in self._parts(
                structures, imap_parts.find_text, f"<0.{limit}>").items():
            try:
                body = imap_parts.decode_part(raw, enc, charset, partial=True)
                out[uid] = imap_parts.html_to_text(body) if subtype == "html" else body
            except Exception:  # promise 4: a return date or a measure is a nicety, never a reason to fail
                log.debug("%s: no text for UID %s", self.account.name, uid, exc_info=True)
        return out

    def _parts(self, data: dict, find, section: str = "") -> dict[int, tuple[bytes, tuple]]:
        """Fetch one body part per message, as ``find`` names it from the BODYSTRUCTURE.

        One FETCH per distinct part number (usually one or two per chunk), never one
        per message; ``section`` is a partial range such as ``<0.1024>``.
        Returns uid -> (raw bytes, what ``find`` returned).
        """
        wanted: dict[str, list[tuple[int, tuple]]] = {}
        for uid, d in data.items():
            bs = d.get(b"BODYSTRUCTURE")
            found = find(bs) if bs else None
            if found:
                wanted.setdefault(found[0], []).append((uid, found))
        out: dict[int, tuple[bytes, tuple]] = {}
        for part, entries in wanted.items():
            uids, items = [uid for uid, _f in entries], [f"BODY.PEEK[{part}]{section}"]
            fetched = imap_fetch.fetch(self.client, uids, items) if imap_fetch.ENABLED else self._imap.fetch(uids, items)
            for uid, found in entries:
                raw = next((v for k, v in fetched.get(uid, {}).items() if k.startswith(b"BODY[")), None)
                if raw:
                    out[uid] = (raw, found)
        return out

    def _calendars(self, data: dict) -> dict[int, str]:
        """The text/calendar part of the messages that have one, whole (invitations are small)."""
        return {uid: imap_parts.decode_part(raw, enc, charset)
                for uid, (raw, (_p, enc, charset)) in self._parts(data, imap_parts.find_calendar).items()}

    def _snippets(self, data: dict) -> dict[int, str | None]:
        """A short plain-text snippet from the first bytes of each message's text part (opt-in)."""
        out = {}
        for uid, (raw, (_p, subtype, enc, charset)) in self._parts(
                data, imap_parts.find_text, f"<0.{imap_parts.SNIPPET_BYTES}>").items():
            try:
                out[uid] = imap_parts.snippet_from(raw, subtype, enc, charset)
            except Exception:  # promise 4: a snippet is a nicety, never a reason to fail
                log.debug("%s: no snippet for UID %s", self.account.name, uid, exc_info=True)
        return out


Fetched = tuple[dict, "list[chunks.Entry]", dict[int, str], dict[int, "str | None"], "Future[Any] | None"]


def _entries(data: dict, uids: list[int]) -> list[chunks.Entry]:
    """What the header parse needs of each message of a FETCH answer, in UID order."""
    out = []
    for uid in uids:
        d = data.get(uid)
        if d is None:
            continue  # expunged between SEARCH and FETCH
        header = next((v for k, v in d.items() if k.startswith(b"BODY[HEADER")), b"") or b""
        gm_id = d.get(b"X-GM-MSGID")
        thrid = d.get(b"X-GM-THRID")
        out.append(chunks.Entry(uid, header, d.get(b"INTERNALDATE"), d.get(b"RFC822.SIZE"),
                                str(thrid) if thrid is not None else None,
                                format(gm_id, "x") if gm_id is not None else None))
    return out


def _cores() -> int:
    """The cores this process may run on (a container's limit, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
