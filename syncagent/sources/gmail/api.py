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
from collections.abc import Callable, Iterable

from syncagent.config import Account
from syncagent.errors import AuthError, SourceError, TransientSourceError

log = logging.getLogger(__name__)

# Tests replace this to run backoff without waiting.
sleep: Callable[[float], None] = time.sleep

MAX_ATTEMPTS = 7  # 1+2+4+...+32 s plus jitter: about two minutes before giving up
NETWORK_ATTEMPTS = 3  # an unreachable server fails fast; the next scheduled sync tries again
MAX_DELAY = 32.0
MAX_BATCH = 100  # Google's cap on calls per batch request
RETRY_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "backendError", "internalError"}
DAILY_REASONS = {"dailyLimitExceeded", "quotaExceeded"}
METADATA_HEADERS = [
    "From", "To", "Cc", "Bcc", "Reply-To", "Sender", "Date", "Subject", "Message-ID", "In-Reply-To",
    "References", "List-Id", "List-Unsubscribe", "Auto-Submitted", "X-Autoreply", "X-Autorespond",
    "Precedence", "Content-Type", "Return-Path", "Content-Class",
]


class HistoryExpired(Exception):
    """history.list answered 404: the stored historyId is too old."""


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
        self.batch_size = max(1, min(MAX_BATCH, account.batch_size))

    # --- plain calls ---------------------------------------------------------

    def profile(self) -> dict:
        return self.execute(self.users.getProfile(userId="me"))

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
        return self.execute(self.users.messages().list(**kwargs), passthrough=(400, 404) if page_token else ())

    def labels(self) -> list[dict]:
        return self.execute(self.users.labels().list(userId="me")).get("labels", [])

    def history_page(self, start: str, page_token: str | None = None) -> dict:
        from googleapiclient.errors import HttpError

        kwargs = {
            "userId": "me", "startHistoryId": start, "maxResults": 500,
            "historyTypes": ["messageAdded", "messageDeleted", "labelAdded", "labelRemoved"],
        }
        if page_token:
            kwargs["pageToken"] = page_token
        try:
            return self.execute(self.users.history().list(**kwargs))
        except HttpError as exc:
            if status_of(exc) == 404:
                raise HistoryExpired(start) from None
            raise

    def attachment(self, message_id: str, attachment_id: str) -> dict | None:
        from googleapiclient.errors import HttpError

        try:
            return self.execute(self.users.messages().attachments().get(
                userId="me", messageId=message_id, id=attachment_id))
        except HttpError as exc:
            if status_of(exc) == 404:
                return None
            raise

    def execute(self, request, passthrough: tuple[int, ...] = (404,)):
        """Run one request, backing off on pushback and network failures.

        Errors with a status in ``passthrough`` reach the caller as HttpError.
        """
        from googleapiclient.errors import HttpError

        for attempt in range(MAX_ATTEMPTS):
            try:
                return self._guard(request.execute)
            except HttpError as exc:
                if status_of(exc) in passthrough:
                    raise  # callers decide what it means
                if not is_pushback(exc) or attempt == MAX_ATTEMPTS - 1:
                    raise self._translate(exc) from None
                log.info("Gmail pushed back (%s); waiting before retry %d", status_of(exc), attempt + 1)
            except TransientSourceError:
                if attempt >= NETWORK_ATTEMPTS - 1:
                    raise
            self._backoff(attempt)
        raise AssertionError("unreachable")

    # --- batched gets --------------------------------------------------------

    def get_many(self, ids: Iterable[str], fmt: str = "metadata") -> dict[str, dict]:
        """messages.get for every id, in batch requests; ids deleted meanwhile (404) are skipped.

        Parts the server pushed back on are retried alone after a backoff, and the
        batch size halves each time it pushes back, for the rest of the run.
        """
        from googleapiclient.errors import HttpError

        pending = list(dict.fromkeys(ids))
        results: dict[str, dict] = {}
        attempt = 0
        while pending:
            retry: list[str] = []
            pushed_back = False
            for start in range(0, len(pending), self.batch_size):
                chunk = pending[start:start + self.batch_size]
                try:
                    failed = self._one_batch(chunk, fmt, results)
                except HttpError as exc:  # the whole batch request was refused
                    if not is_pushback(exc):
                        raise self._translate(exc) from None
                    failed = chunk
                except TransientSourceError:
                    if attempt >= NETWORK_ATTEMPTS - 1:
                        raise
                    failed = chunk
                if failed:
                    pushed_back = True
                    retry.extend(failed)
                    retry.extend(pending[start + len(chunk):])  # the rest waits for the backoff too
                    break
            if not pushed_back:
                break
            if attempt == MAX_ATTEMPTS - 1:
                raise TransientSourceError(
                    f"Gmail kept refusing requests for account '{self.account.name}' (rate limit); the next sync continues from where this one stopped."
                )
            old = self.batch_size
            self.batch_size = max(1, self.batch_size // 2)
            log.info("Gmail pushed back on %d of a batch; batch size %d -> %d", len(retry), old, self.batch_size)
            self._backoff(attempt)
            attempt += 1
            pending = retry
        return results

    def _one_batch(self, chunk: list[str], fmt: str, results: dict[str, dict]) -> list[str]:
        """Send one batch request; return the ids to retry (pushback), skip 404s, raise others."""
        failed: list[str] = []
        errors: list = []

        def done(request_id, response, exception):
            if exception is None:
                results[request_id] = response
            elif status_of(exception) == 404:
                log.debug("message %s vanished before it could be fetched", request_id)
            elif is_pushback(exception):
                failed.append(request_id)
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
        self._guard(batch.execute)
        if errors:
            raise self._translate(errors[0])
        return failed

    # --- helpers -------------------------------------------------------------

    def _guard(self, call):
        """Run a call, turning token and network failures into syncagent errors."""
        import google.auth.exceptions
        import httplib2

        from syncagent.sources.gmail.auth import revoked_error

        try:
            return call()
        except google.auth.exceptions.RefreshError as exc:
            raise revoked_error(self.account, exc) from None
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
            return TransientSourceError(f"The Gmail API kept failing for account '{name}' (HTTP {status}); the next sync retries.")
        return SourceError(f"The Gmail API answered HTTP {status} for account '{name}'; run with -vv for details and report it.")

    def _backoff(self, attempt: int) -> None:
        delay = min(MAX_DELAY, 2.0 ** attempt) + self._rng.uniform(0, 1)
        self._sleep(delay)
