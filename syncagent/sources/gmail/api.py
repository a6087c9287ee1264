"""A small Gmail API client: the calls syncagent makes, with backoff and batching.

Built from the discovery document shipped in google-api-python-client, with
``rootUrl`` moved to ``api_endpoint`` when one is configured, because batch
requests ignore ``client_options`` and always go to ``rootUrl`` + ``batch``.
Only the ``gmail.readonly`` scope is ever requested; every call here is a read.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterable

from syncagent.config import Account
from syncagent.errors import AuthError, SourceError, TransientSourceError

log = logging.getLogger(__name__)

# Tests replace these to run backoff and pacing without waiting (and read the waits).
sleep: Callable[[float], None] = time.sleep
clock: Callable[[], float] = time.monotonic

MAX_ATTEMPTS = 7  # 1+2+4+...+32 s plus jitter: about two minutes of pushback in a row before giving up
NETWORK_ATTEMPTS = 3  # an unreachable server (or a portal answering for it) fails fast; the next sync retries
MAX_DELAY = 32.0
RETRY_AFTER_MAX = 300.0  # a longer Retry-After ends the sync instead: the next one continues
MAX_BATCH = 100  # Google's cap on calls per batch request
GROW_AFTER = 3  # batches in a row without pushback before a halved batch size doubles again
# developers.google.com/gmail/api/reference/quota: 15,000 units per user per minute. Calls are
# paced to a share of it, leaving room for the user's other mail clients.
QUOTA_PER_MINUTE = 15_000
PACE_SHARE = 0.8
UNITS = {"getProfile": 1, "labels.list": 1, "messages.list": 5, "messages.get": 5, "attachments.get": 5,
         "history.list": 2}
RETRY_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "backendError", "internalError"}
DAILY_REASONS = {"dailyLimitExceeded", "quotaExceeded"}
METADATA_HEADERS = [
    "From", "To", "Cc", "Bcc", "Reply-To", "Sender", "Date", "Subject", "Message-ID", "In-Reply-To",
    "References", "List-Id", "List-Unsubscribe", "Auto-Submitted", "X-Autoreply", "X-Autorespond",
    "Precedence", "Content-Type", "Return-Path", "Content-Class",
]


class HistoryExpired(Exception):
    """history.list answered 404: the stored historyId is too old."""


class NotGmail(Exception):
    """An answer that is not the Gmail API's JSON: a captive portal, a proxy, an HTML error page."""


def not_gmail_error(account: Account) -> TransientSourceError:
    return TransientSourceError(
        f"Gmail answered with something that is not the Gmail API (a captive portal or proxy?) for account "
        f"'{account.name}'; sign in to the network (open any web page) or check the proxy, and the next sync "
        "continues from where this one stopped."
    )


def _google_error_body(exc) -> bool:
    """Whether an error response carries Google's JSON error object (a proxy's page does not)."""
    try:
        content = exc.content.decode("utf-8") if isinstance(exc.content, bytes) else exc.content
        body = json.loads(content)
    except (ValueError, AttributeError, TypeError):
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), (dict, str))


def is_foreign(exc) -> bool:
    """An HTTP error that did not come from the Gmail API: a redirect, 511, or a 4xx without Google's JSON.

    5xx and 429 stay pushback whatever the body: Google's front ends send HTML for those too.
    """
    status = status_of(exc)
    if 300 <= status < 400 or status == 511:
        return True
    return 400 <= status < 500 and status != 429 and not _google_error_body(exc)


def retry_after(exc) -> float | None:
    """The Retry-After of an answer in seconds (delta-seconds or an HTTP date), or None."""
    resp = getattr(exc, "resp", None)
    value = resp.get("retry-after") if isinstance(resp, dict) else None  # httplib2.Response is a dict
    if not value:
        return None
    value = str(value).strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    from syncagent.timeutil import utcnow

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - utcnow()).total_seconds())


def cause(exc) -> str:
    """What kind of pushback an error is, for the sentence that gives up."""
    status = status_of(exc)
    reasons = ", ".join(sorted(_reasons(exc)))
    if status >= 500:
        return f"server error: HTTP {status}" + (f" {reasons}" if reasons else "")
    return f"rate limit: HTTP {status}" + (f" {reasons}" if reasons else "")


# Valid answers, by call: a proxy's HTML comes back from the client library as a str.
def _is_obj(data) -> bool:
    return isinstance(data, dict)


def _profile_shape(data) -> bool:
    return _is_obj(data) and isinstance(data.get("historyId"), (str, int))


def _list_of_objects(data, key: str) -> bool:
    items = data.get(key, [])
    return isinstance(items, list) and all(isinstance(x, dict) for x in items)


def _page_shape(data) -> bool:
    return (_is_obj(data) and _list_of_objects(data, "messages")
            and all(isinstance(m.get("id"), str) for m in data.get("messages", []))
            and isinstance(data.get("nextPageToken", ""), str))


def _history_shape(data) -> bool:
    return (_is_obj(data) and _list_of_objects(data, "history")
            and isinstance(data.get("nextPageToken", ""), str))


def _labels_shape(data) -> bool:
    return _is_obj(data) and _list_of_objects(data, "labels")


def _message_shape(data) -> bool:
    return _is_obj(data) and isinstance(data.get("id"), str)


class Pacer:
    """Spends quota units within a sliding minute: a call that would overspend waits its turn.

    One per account for the whole process, so a daemon's passes share it. Its time never goes
    back and moves on by each wait, so an injected sleep that does not really wait still paces.
    """

    def __init__(self) -> None:
        self.spent: deque[tuple[float, int]] = deque()
        self.now = float("-inf")

    def take(self, units: int, sleep_fn: Callable[[float], None]) -> None:
        budget = QUOTA_PER_MINUTE * PACE_SHARE
        while True:
            self.now = max(self.now, clock())
            while self.spent and self.spent[0][0] <= self.now - 60:
                self.spent.popleft()
            used = sum(u for _t, u in self.spent)
            if not self.spent or used + units <= budget:
                break
            # Wait until enough of the oldest spending leaves the window.
            excess, freed, wait = used + units - budget, 0, 0.0
            for at, u in self.spent:
                freed += u
                wait = at + 60 - self.now
                if freed >= excess:
                    break
            wait = max(wait, 0.01)
            log.info("pacing Gmail calls to the per-user quota: waiting %.1f s", wait)
            sleep_fn(wait)
            self.now += wait
        self.spent.append((self.now, units))


_pacers: dict[str, Pacer] = {}


def pacer(account_name: str) -> Pacer:
    return _pacers.setdefault(account_name, Pacer())


def _reasons(exc) -> set[str]:
    """The ``reason`` strings of a Google API error body (``errors[]`` and ``details[]``); only
    identifier-like ones, since they end up in an error sentence."""
    try:
        body = json.loads(exc.content.decode("utf-8") if isinstance(exc.content, bytes) else exc.content)
        err = body.get("error", {})
        found = {e.get("reason") for e in err.get("errors", []) if isinstance(e, dict)}
        found |= {d.get("reason") for d in err.get("details", []) if isinstance(d, dict)}
        return {r for r in found if isinstance(r, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", r)}
    except (ValueError, AttributeError, TypeError):
        return set()


def status_of(exc) -> int:
    return int(getattr(exc, "status_code", None) or getattr(getattr(exc, "resp", None), "status", 0) or 0)


def is_pushback(exc) -> bool:
    """429, 403 with a rate-limit reason, or a 5xx: worth waiting and retrying."""
    status = status_of(exc)
    if status == 429 or status >= 500:
        return True
    return status == 403 and bool(_reasons(exc) & RETRY_REASONS)


class GmailClient:
    def __init__(self, account: Account, credentials, *, sleep_fn: Callable[[float], None] | None = None,
                 rng: random.Random | None = None):
        import google_auth_httplib2
        import httplib2
        from googleapiclient import discovery_cache
        from googleapiclient.discovery import build_from_document

        self.account = account
        self.credentials = credentials
        self._sleep = sleep_fn or sleep
        self._rng = rng or random.Random()
        doc = json.loads(discovery_cache.get_static_doc("gmail", "v1"))
        if account.api_endpoint:
            root = account.api_endpoint.rstrip("/") + "/"
            doc["rootUrl"] = root
            doc["mtlsRootUrl"] = root
        http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=account.timeout))
        self.service = build_from_document(doc, http=http)
        self.users = self.service.users()
        self.max_batch = max(1, min(MAX_BATCH, account.batch_size))
        self.batch_size = self.max_batch
        self.pacer = pacer(account.name)

    # --- plain calls ---------------------------------------------------------

    def profile(self) -> dict:
        return self.execute(self.users.getProfile(userId="me"), "getProfile", _profile_shape)

    def list_page(self, *, page_token: str | None = None, label_id: str | None = None,
                  query: str | None = None) -> dict:
        kwargs = {"userId": "me", "maxResults": 500, "includeSpamTrash": False}
        if page_token:
            kwargs["pageToken"] = page_token
        if label_id:
            kwargs["labelIds"] = [label_id]
        if query:
            kwargs["q"] = query
        # A stale page token (a full sync resumed much later) comes back as 400: the caller restarts.
        return self.execute(self.users.messages().list(**kwargs), "messages.list", _page_shape,
                            passthrough=(400, 404) if page_token else ())

    def labels(self) -> list[dict]:
        return self.execute(self.users.labels().list(userId="me"), "labels.list", _labels_shape).get("labels", [])

    def history_page(self, start: str, page_token: str | None = None) -> dict:
        from googleapiclient.errors import HttpError

        kwargs = {
            "userId": "me", "startHistoryId": start, "maxResults": 500,
            "historyTypes": ["messageAdded", "messageDeleted", "labelAdded", "labelRemoved"],
        }
        if page_token:
            kwargs["pageToken"] = page_token
        try:
            return self.execute(self.users.history().list(**kwargs), "history.list", _history_shape)
        except HttpError as exc:
            if status_of(exc) == 404:
                raise HistoryExpired(start) from None
            raise

    def attachment(self, message_id: str, attachment_id: str) -> dict | None:
        from googleapiclient.errors import HttpError

        try:
            return self.execute(self.users.messages().attachments().get(
                userId="me", messageId=message_id, id=attachment_id), "attachments.get", _is_obj)
        except HttpError as exc:
            if status_of(exc) == 404:
                return None
            raise

    def execute(self, request, method: str, shape: Callable[[object], bool] = _is_obj,
                passthrough: tuple[int, ...] = (404,)):
        """Run one request, paced by its quota cost, backing off on pushback and network failures.

        Errors with a status in ``passthrough`` reach the caller as HttpError, unless the
        answer did not come from Gmail. An answer of the wrong shape (a portal's HTML page)
        is retried like a network failure and then reported as one sentence.
        """
        from googleapiclient.errors import HttpError

        pushbacks = failures = 0
        while True:
            self.pacer.take(UNITS.get(method, 5), self._sleep)
            last: BaseException | None = None
            try:
                answer = self._guard(request.execute)
                if shape(answer):
                    return answer
                last = NotGmail()
            except HttpError as exc:
                if is_foreign(exc):
                    last = NotGmail()
                elif status_of(exc) in passthrough:
                    raise  # callers decide what it means
                elif not is_pushback(exc):
                    raise self._translate(exc) from None
                else:
                    pushbacks += 1
                    if pushbacks >= MAX_ATTEMPTS:
                        raise self._gave_up(exc) from None
                    log.info("Gmail pushed back (%s); waiting before retry %d", cause(exc), pushbacks)
                    self._wait(pushbacks - 1, exc)
                    continue
            except TransientSourceError as exc:
                last = exc
            failures += 1
            if failures >= NETWORK_ATTEMPTS:
                if isinstance(last, NotGmail):
                    raise not_gmail_error(self.account) from None
                raise last
            self._backoff(failures - 1)

    # --- batched gets --------------------------------------------------------

    def get_many(self, ids: Iterable[str], fmt: str = "metadata") -> dict[str, dict]:
        """messages.get for every id, in batch requests; ids deleted meanwhile (404) are skipped.

        Parts the server pushed back on are retried after a wait (Retry-After when given); a
        rate limit also halves the batch size, and after GROW_AFTER batches in a row without
        one it doubles again, up to ``batch_size``. Only pushback in a row with no progress
        at all gives up.
        """
        from googleapiclient.errors import HttpError

        pending = list(dict.fromkeys(ids))
        results: dict[str, dict] = {}
        stalled = network = good = 0
        while pending:
            chunk = pending[:self.batch_size]
            last: BaseException | None = None
            try:
                failed, last = self._one_batch(chunk, fmt, results)
            except HttpError as exc:  # the whole batch request was refused
                if is_foreign(exc):
                    failed, last = chunk, NotGmail()
                elif not is_pushback(exc):
                    raise self._translate(exc) from None
                else:
                    failed, last = chunk, exc
            except (TransientSourceError, NotGmail) as exc:
                failed, last = chunk, exc
            pending = failed + pending[len(chunk):]
            if not failed:
                stalled = network = 0
                good += 1
            if good >= GROW_AFTER and self.batch_size < self.max_batch:
                old, self.batch_size, good = self.batch_size, min(self.max_batch, self.batch_size * 2), 0
                log.info("Gmail took %d batches in a row without a rate limit; batch size %d -> %d",
                         GROW_AFTER, old, self.batch_size)
            if not failed:
                continue
            progressed = len(failed) < len(chunk)
            if isinstance(last, (TransientSourceError, NotGmail)):
                good = 0
                network = 0 if progressed else network + 1
                if network >= NETWORK_ATTEMPTS:
                    if isinstance(last, NotGmail):
                        raise not_gmail_error(self.account) from None
                    raise last
                self._backoff(network)
                continue
            stalled = 0 if progressed else stalled + 1
            if stalled >= MAX_ATTEMPTS:
                raise self._gave_up(last)
            if status_of(last) >= 500:
                # A server error says nothing about our pace: same size, a short wait, and the
                # batch still counts towards growing back.
                good += 1
                log.info("Gmail failed %d of a batch (%s); retrying them", len(failed), cause(last))
            else:
                good = 0
                old = self.batch_size
                self.batch_size = max(1, self.batch_size // 2)
                log.info("Gmail pushed back on %d of a batch (%s); batch size %d -> %d", len(failed),
                         cause(last), old, self.batch_size)
            self._wait(stalled, last)
        return results

    def _one_batch(self, chunk: list[str], fmt: str, results: dict[str, dict]) -> tuple[list[str], BaseException | None]:
        """Send one batch request; return the ids to retry and why (pushback or a foreign
        answer), skip 404s, raise others."""
        from googleapiclient.errors import BatchError

        failed: list[str] = []
        errors: list = []
        why: list[BaseException] = []

        def done(request_id, response, exception):
            if exception is None and _message_shape(response):
                results[request_id] = response
            elif exception is None or is_foreign(exception):
                failed.append(request_id)
                why.append(NotGmail())
            elif status_of(exception) == 404:
                log.debug("message %s vanished before it could be fetched", request_id)
            elif is_pushback(exception):
                failed.append(request_id)
                why.append(exception)
            else:
                errors.append(exception)

        batch = self.service.new_batch_http_request(callback=done)
        messages = self.users.messages()
        for mid in chunk:
            if fmt == "metadata":
                req = messages.get(userId="me", id=mid, format="metadata", metadataHeaders=METADATA_HEADERS)
            else:
                req = messages.get(userId="me", id=mid, format=fmt)
            batch.add(req, request_id=mid)
        self.pacer.take(UNITS["messages.get"] * len(chunk), self._sleep)
        try:
            self._guard(batch.execute)
        except (BatchError, UnicodeDecodeError, KeyError) as exc:
            if isinstance(exc, BatchError) and status_of(exc) >= 300:
                raise  # an HTTP error for the whole batch: the caller decides
            raise NotGmail() from None  # not multipart/mixed: somebody else answered
        if errors:
            raise self._translate(errors[0])
        # The pushback with the longest Retry-After speaks for the batch (HTML answers last).
        # A rate limit outranks a server error (it halves the batch size); HTML answers come last.
        why.sort(key=lambda e: (isinstance(e, NotGmail), status_of(e) >= 500, -(retry_after(e) or 0)))
        return failed, (why[0] if why else None)

    # --- helpers -------------------------------------------------------------

    def _guard(self, call):
        """Run a call, turning token and network failures into syncagent errors."""
        import google.auth.exceptions
        import httplib2

        from syncagent.sources.gmail.auth import refresh_failure

        try:
            return call()
        except google.auth.exceptions.RefreshError as exc:
            raise refresh_failure(self.account, exc) from None
        except (TimeoutError, httplib2.HttpLib2Error, OSError, google.auth.exceptions.TransportError) as exc:
            # The text of a transport error can quote the answer it choked on: -vv only.
            log.debug("Gmail API transport error: %r", exc)
            what = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__
            raise TransientSourceError(
                f"Could not reach the Gmail API for account '{self.account.name}' ({what}); check the network, the next sync retries."
            ) from None

    def _translate(self, exc):
        status = status_of(exc)
        name = self.account.name
        if status == 401:
            return AuthError(f"Gmail refused the token for account '{name}'; run `syncagent auth gmail {name}` again.")
        if status == 403 and _reasons(exc) & DAILY_REASONS:
            return TransientSourceError(
                f"The Gmail API's daily quota is used up for account '{name}'; syncing resumes once Google resets it (midnight Pacific time)."
            )
        if status == 403:
            reasons = ", ".join(sorted(_reasons(exc))) or "forbidden"
            return AuthError(
                f"Gmail refused access for account '{name}' ({reasons}); check that the Gmail API is enabled for the OAuth client's project and run `syncagent auth gmail {name}` again."
            )
        if status == 429 or status >= 500:
            return self._gave_up(exc)
        return SourceError(f"The Gmail API answered HTTP {status} for account '{name}'; run with -vv for details and report it.")

    def _gave_up(self, exc) -> TransientSourceError:
        return TransientSourceError(
            f"Gmail kept refusing requests for account '{self.account.name}' ({cause(exc)}); the next sync "
            "continues from where this one stopped."
        )

    def _wait(self, attempt: int, exc) -> None:
        """Wait as long as Gmail asked (Retry-After), else back off exponentially."""
        asked = retry_after(exc)
        if asked is None:
            self._backoff(attempt)
            return
        if asked > RETRY_AFTER_MAX:
            raise TransientSourceError(
                f"Gmail asked account '{self.account.name}' to wait {asked / 60:.0f} minutes before the next "
                f"request ({cause(exc)}); the next sync continues from where this one stopped."
            )
        log.info("Gmail asked to wait %.0f s (Retry-After)", asked)
        self._sleep(asked)

    def _backoff(self, attempt: int) -> None:
        delay = min(MAX_DELAY, 2.0 ** attempt) + self._rng.uniform(0, 1)
        self._sleep(delay)
