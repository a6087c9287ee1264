"""A loopback HTTP server speaking the Gmail API v1 JSON, for tests.

It serves the calls syncagent makes (getProfile, labels.list, messages.list,
messages.get in metadata/full format, attachments.get, history.list), the
batch endpoint (``POST /batch``, multipart/mixed of ``application/http``
parts, answered part by part) and an OAuth token endpoint (``POST /token``).
JSON shapes follow the API reference: ids are hex strings, ``internalDate``
is a string of milliseconds, ``historyId`` a string.

Tests mutate the mailbox (add, delete, relabel), inject failures (429, 403
rate limits with or without Retry-After, a 500 on every n-th call, 404 for
vanished messages, an expired history id, a captive portal's HTML page) and
read the call counts and the quota units spent (with ``clock`` set, when).
"""

from __future__ import annotations

import base64
import email
import json
import re
import threading
import urllib.parse
from collections import Counter
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# developers.google.com/gmail/api/reference/quota
UNITS = {"getProfile": 1, "labels.list": 1, "messages.list": 5, "messages.get": 5,
         "attachments.get": 5, "history.list": 2}
READONLY = "https://www.googleapis.com/auth/gmail.readonly"
ERRORS = {
    404: ("notFound", "Requested entity was not found.", "NOT_FOUND"),
    429: ("rateLimitExceeded", "Too many concurrent requests for user.", "RESOURCE_EXHAUSTED"),
    403: ("userRateLimitExceeded", "User-rate limit exceeded.", "PERMISSION_DENIED"),
    401: ("authError", "Invalid Credentials", "UNAUTHENTICATED"),
    500: ("backendError", "Backend Error", "INTERNAL"),
    400: ("invalidArgument", "Invalid pageToken", "INVALID_ARGUMENT"),
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def error_body(status: int, reason: str | None = None) -> dict:
    default_reason, message, state = ERRORS.get(status, ("failed", "Error", "UNKNOWN"))
    reason = reason or default_reason
    return {"error": {"code": status, "message": message, "status": state,
                      "errors": [{"message": message, "domain": "global", "reason": reason}]}}


class FakeGmail:
    def __init__(self, email_address: str = "me@example.com"):
        self.email_address = email_address
        self.lock = threading.RLock()
        self.messages: dict[str, dict] = {}
        self.order: list[str] = []
        self.history: list[dict] = []
        self.history_id = 1000
        self.history_floor = 0  # a startHistoryId below this is "too old": 404
        self.history_always_404 = False
        self.calls: Counter = Counter()  # API method -> calls (batch parts counted one by one)
        self.http_requests = 0  # HTTP requests to the API (a batch is one)
        self.batch_sizes: list[int] = []
        # method -> failures for its next calls: (status, reason) or (status, reason, Retry-After)
        self.fail: dict[str, list[tuple]] = {}
        self.fail_every: tuple[int, int, str | None] | None = None  # (n, status, reason): every n-th call fails
        self.html = False  # answer every API call with a captive portal's HTML page (status 200)
        self.clock = None  # when set, () -> seconds: calls are logged in unit_log as (time, units)
        self.unit_log: list[tuple[float, int]] = []
        self._api_calls = 0
        self.part_fail: dict[str, list[tuple[int, str | None]]] = {}  # message id -> failures for its next gets
        self.vanished: set[str] = set()  # listed, but 404 when fetched
        self.valid_tokens: set[str] = {"access-0"}
        self.refresh_tokens: set[str] = {"refresh-1"}
        self.token_requests = 0
        self.labels = [{"id": "INBOX", "name": "INBOX", "type": "system"},
                       {"id": "SENT", "name": "SENT", "type": "system"},
                       {"id": "Label_7", "name": "Networking", "type": "user"}]
        self._next = 0x18c0000000000000
        self._server: ThreadingHTTPServer | None = None

    # --- the mailbox -----------------------------------------------------------

    def add_message(self, *, sender: str = "Ada <ada@example.org>", to: str = "me@example.com",
                    subject: str = "Hello", message_id: str | None = None, when: datetime | None = None,
                    labels=("INBOX",), thread_id: str | None = None, extra_headers=(),
                    ics: str | None = None, ics_as_attachment: bool = False, snippet: str = "Hi &amp; bye",
                    record_history: bool = True) -> str:
        with self.lock:
            self._next += 0x1f3
            mid = f"{self._next:x}"
            when = when or datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc) + _minutes(len(self.order))
            headers = [("From", sender), ("To", to), ("Subject", subject),
                       ("Date", format_datetime(when)),
                       ("Message-ID", message_id or f"<{mid}@mail.example.org>")]
            headers += list(extra_headers)
            if ics:
                headers.append(("Content-Type", 'multipart/mixed; boundary="b1"'))
            else:
                headers.append(("Content-Type", 'text/plain; charset="UTF-8"'))
            self.history_id += 1 + (len(self.order) % 3)  # ids increase but are not contiguous
            msg = {"id": mid, "threadId": thread_id or mid, "labelIds": list(labels), "snippet": snippet,
                   "historyId": str(self.history_id), "internalDate": str(int(when.timestamp() * 1000)),
                   "sizeEstimate": 1200 + len(subject), "headers": headers, "ics": ics,
                   "ics_as_attachment": ics_as_attachment}
            self.messages[mid] = msg
            self.order.append(mid)
            if record_history:
                self._record("messagesAdded", mid)
            return mid

    def add_eml(self, raw: bytes, labels=("INBOX",)) -> str:
        """Add a real RFC 5322 message, with its MIME tree as Gmail's ``format=full`` payload.

        Parts with a file name become attachments (``body.attachmentId``), like Gmail does.
        """
        parsed = email.message_from_bytes(raw)
        mid = self.add_message(record_history=False, labels=labels)
        with self.lock:
            msg = self.messages[mid]
            msg["headers"] = [(n, _unfold(v)) for n, v in parsed.items()]
            msg["attachments"] = {}
            msg["payload"] = self._eml_part(parsed, "", msg)
            self._record("messagesAdded", mid)
        return mid

    def _eml_part(self, part, part_id: str, msg: dict) -> dict:
        out = {"partId": part_id, "mimeType": part.get_content_type(), "filename": part.get_filename() or "",
               "headers": [{"name": n, "value": _unfold(v)} for n, v in part.items()]}
        if part.is_multipart():
            out["body"] = {"size": 0}
            out["parts"] = [self._eml_part(p, f"{part_id}.{i}" if part_id else str(i), msg)
                            for i, p in enumerate(part.get_payload())]
            return out
        data = part.get_payload(decode=True) or b""
        if out["filename"]:
            att = f"att-{len(msg['attachments'])}"
            msg["attachments"][att] = data
            out["body"] = {"size": len(data), "attachmentId": att}
            msg["ics_file"] = msg.get("ics_file") or out["filename"].lower().endswith(".ics")
        else:
            out["body"] = {"size": len(data), "data": b64url(data)}
        return out

    def delete(self, mid: str) -> None:
        with self.lock:
            self.history_id += 2
            self._record("messagesDeleted", mid)
            self.messages.pop(mid)
            self.order.remove(mid)

    def relabel(self, mid: str, add=(), remove=()) -> None:
        with self.lock:
            msg = self.messages[mid]
            self.history_id += 1
            if add:
                msg["labelIds"] = msg["labelIds"] + [x for x in add if x not in msg["labelIds"]]
                self._record("labelsAdded", mid, list(add))
            if remove:
                msg["labelIds"] = [x for x in msg["labelIds"] if x not in remove]
                self._record("labelsRemoved", mid, list(remove))

    def expire_history(self) -> None:
        """Every history id issued so far becomes too old (Gmail keeps about a week)."""
        with self.lock:
            self.history_floor = self.history_id + 1
            self.history_id += 5

    def units(self) -> int:
        return sum(UNITS.get(m, 0) * n for m, n in self.calls.items())

    def reset_counts(self) -> None:
        with self.lock:
            self.calls.clear()
            self.http_requests = 0
            self.batch_sizes.clear()

    def _record(self, kind: str, mid: str, label_ids=None) -> None:
        msg = self.messages[mid]
        ref = {"id": mid, "threadId": msg["threadId"], "labelIds": list(msg["labelIds"])}
        entry = {"message": ref}
        if label_ids is not None:
            entry["labelIds"] = label_ids
        self.history.append({"id": str(self.history_id), "messages": [{"id": mid, "threadId": msg["threadId"]}],
                             kind: [entry]})

    # --- the server ------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> FakeGmail:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

            def _answer(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, ctype, payload, *extra = fake.handle(method, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # --- dispatch --------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict, body: bytes) -> tuple[int, str, bytes]:
        path, _, query = target.partition("?")
        if self.html:  # a portal answers everything, the token endpoint too
            return 200, "text/html; charset=utf-8", PORTAL_PAGE
        if method == "POST" and path == "/token":
            return self._token(body)
        with self.lock:
            self.http_requests += 1
        if method == "POST" and path.startswith("/batch"):
            return self._batch(headers, body)
        status, data, extra = self.api_full(method, path, urllib.parse.parse_qs(query), headers)
        return status, "application/json; charset=UTF-8", json.dumps(data).encode(), extra

    def api(self, method: str, path: str, q: dict, headers: dict) -> tuple[int, dict]:
        status, data, _extra = self.api_full(method, path, q, headers)
        return status, data

    def api_full(self, method: str, path: str, q: dict, headers: dict) -> tuple[int, dict, dict]:
        """(status, JSON body, extra response headers) of one API call."""
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if auth.removeprefix("Bearer ") not in self.valid_tokens:
            return 401, error_body(401), {}
        routes = [
            (r"/gmail/v1/users/me/profile", "getProfile", self._profile),
            (r"/gmail/v1/users/me/labels", "labels.list", self._labels),
            (r"/gmail/v1/users/me/messages", "messages.list", self._list),
            (r"/gmail/v1/users/me/messages/([0-9a-f]+)", "messages.get", self._get),
            (r"/gmail/v1/users/me/messages/([0-9a-f]+)/attachments/([\w-]+)", "attachments.get", self._attachment),
            (r"/gmail/v1/users/me/history", "history.list", self._history),
        ]
        for pattern, name, fn in routes:
            m = re.fullmatch(pattern, path)
            if m and method == "GET":
                with self.lock:
                    self.calls[name] += 1
                    self._api_calls += 1
                    if self.clock is not None:
                        self.unit_log.append((self.clock(), UNITS.get(name, 0)))
                    queued = self.fail.get(name) or (self.part_fail.get(m.group(1)) if name == "messages.get" else None)
                    if queued:
                        return _failure(*queued.pop(0))
                    if self.fail_every and self._api_calls % self.fail_every[0] == 0:
                        return _failure(*self.fail_every[1:])
                    return (*fn(q, *m.groups()), {})
        return 404, error_body(404), {}

    def _profile(self, q):
        return 200, {"emailAddress": self.email_address, "messagesTotal": len(self.order),
                     "threadsTotal": len({m["threadId"] for m in self.messages.values()}),
                     "historyId": str(self.history_id)}

    def _labels(self, q):
        return 200, {"labels": self.labels}

    def _list(self, q):
        ids = list(reversed(self.order))  # newest first, like Gmail
        wanted = q.get("labelIds", [])
        spam_trash = q.get("includeSpamTrash", ["false"])[0] == "true"
        query = q.get("q", [""])[0]
        result = []
        for mid in ids:
            msg = self.messages[mid]
            if any(label not in msg["labelIds"] for label in wanted):
                continue
            if not spam_trash and {"SPAM", "TRASH"} & set(msg["labelIds"]):
                continue
            if query and not self._matches(msg, query):
                continue
            result.append(mid)
        size = min(500, int(q.get("maxResults", ["100"])[0]))
        token = q.get("pageToken", ["0"])[0]
        if not token.isdigit():
            return 400, error_body(400, "invalidArgument")  # a stale or foreign page token
        start = int(token)
        page = result[start:start + size]
        data = {"messages": [{"id": i, "threadId": self.messages[i]["threadId"]} for i in page],
                "resultSizeEstimate": len(page)}
        if not page:
            data.pop("messages")
        if start + size < len(result):
            data["nextPageToken"] = str(start + size)
        return 200, data

    @staticmethod
    def _matches(msg: dict, query: str) -> bool:
        """The subset of Gmail search syncagent uses: ``filename:ics`` and ``after:<epoch seconds>``."""
        for term in query.split():
            if term == "filename:ics" and not (msg["ics"] or msg.get("ics_file")):
                return False
            if term.startswith("after:") and int(msg["internalDate"]) // 1000 <= int(term[6:]):
                return False
        return True

    def _get(self, q, mid):
        msg = self.messages.get(mid)
        if msg is None or mid in self.vanished:
            return 404, error_body(404)
        fmt = q.get("format", ["full"])[0]
        out = {k: msg[k] for k in ("id", "threadId", "labelIds", "snippet", "historyId", "internalDate", "sizeEstimate")}
        ctype = next((v for n, v in msg["headers"] if n.lower() == "content-type"), "text/plain")
        if fmt == "metadata":
            names = {n.lower() for n in q.get("metadataHeaders", [])}
            headers = [{"name": n, "value": v} for n, v in msg["headers"] if not names or n.lower() in names]
            out["payload"] = {"partId": "", "mimeType": ctype.split(";")[0], "filename": "", "headers": headers}
        elif fmt == "full":
            out["payload"] = msg.get("payload") or self._full_payload(msg, ctype)
        else:
            return 400, error_body(400, "invalidArgument")
        return 200, out

    def _full_payload(self, msg: dict, ctype: str) -> dict:
        headers = [{"name": n, "value": v} for n, v in msg["headers"]]
        text = {"partId": "0.0", "mimeType": "text/plain", "filename": "",
                "headers": [{"name": "Content-Type", "value": 'text/plain; charset="UTF-8"'}],
                "body": {"size": 5, "data": b64url(b"Hello")}}
        if not msg["ics"]:
            return {"partId": "", "mimeType": "text/plain", "filename": "", "headers": headers,
                    "body": text["body"]}
        ics = msg["ics"].encode()
        cal_body = ({"size": len(ics), "attachmentId": "att-cal"} if msg["ics_as_attachment"]
                    else {"size": len(ics), "data": b64url(ics)})
        calendar = {"partId": "0.1", "mimeType": "text/calendar", "filename": "",
                    "headers": [{"name": "Content-Type", "value": 'text/calendar; charset="UTF-8"; method=REQUEST'}],
                    "body": cal_body}
        attachment = {"partId": "1", "mimeType": "application/ics", "filename": "invite.ics",
                      "headers": [{"name": "Content-Type", "value": 'application/ics; name="invite.ics"'}],
                      "body": {"size": len(ics), "attachmentId": "att-ics"}}
        return {"partId": "", "mimeType": "multipart/mixed", "filename": "", "headers": headers,
                "body": {"size": 0},
                "parts": [{"partId": "0", "mimeType": "multipart/alternative", "filename": "", "headers": [],
                           "body": {"size": 0}, "parts": [text, calendar]}, attachment]}

    def _attachment(self, q, mid, attachment_id):
        msg = self.messages.get(mid)
        if msg is None or not (msg["ics"] or attachment_id in msg.get("attachments", {})):
            return 404, error_body(404)
        data = msg["attachments"][attachment_id] if attachment_id in msg.get("attachments", {}) else msg["ics"].encode()
        return 200, {"attachmentId": attachment_id, "size": len(data), "data": b64url(data)}

    def _history(self, q):
        start = int(q["startHistoryId"][0])
        if self.history_always_404 or start < self.history_floor:
            return 404, error_body(404)
        types = set(q.get("historyTypes", [])) or {"messageAdded", "messageDeleted", "labelAdded", "labelRemoved"}
        kinds = {"messageAdded": "messagesAdded", "messageDeleted": "messagesDeleted",
                 "labelAdded": "labelsAdded", "labelRemoved": "labelsRemoved"}
        wanted = {kinds[t] for t in types}
        records = [r for r in self.history if int(r["id"]) > start and wanted & set(r)]
        size = min(500, int(q.get("maxResults", ["100"])[0]))
        offset = int(q.get("pageToken", ["0"])[0])
        page = records[offset:offset + size]
        data = {"historyId": str(self.history_id)}
        if page:
            data["history"] = page
        if offset + size < len(records):
            data["nextPageToken"] = str(offset + size)
        return 200, data

    # --- batch and token endpoints -------------------------------------------

    def _batch(self, headers: dict, body: bytes) -> tuple[int, str, bytes]:
        ctype = {k.lower(): v for k, v in headers.items()}["content-type"]
        with self.lock:
            queued = self.fail.get("batch")
            if queued:
                status, data, extra = _failure(*queued.pop(0))
                return status, "application/json", json.dumps(data).encode(), extra
        outer = email.message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
        parts = outer.get_payload()
        with self.lock:
            self.batch_sizes.append(len(parts))
        boundary = "batch_fake_boundary"
        out = []
        for part in parts:
            content_id = part["Content-ID"]
            raw = part.get_payload()
            head, _, _body = raw.replace("\r\n", "\n").partition("\n\n")
            lines = head.split("\n")
            method, target, _version = lines[0].split(" ", 2)
            part_headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            path, _, query = target.partition("?")
            status, data, extra = self.api_full(method, path, urllib.parse.parse_qs(query), part_headers)
            reason = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                      429: "Too Many Requests", 500: "Internal Server Error"}.get(status, "Error")
            more = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            out.append(
                f"--{boundary}\r\nContent-Type: application/http\r\n"
                f"Content-ID: <response-{content_id[1:]}\r\n\r\n"
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=UTF-8\r\n{more}\r\n"
                f"{json.dumps(data)}\r\n"
            )
        out.append(f"--{boundary}--\r\n")
        return 200, f"multipart/mixed; boundary={boundary}", "".join(out).encode()

    def _token(self, body: bytes) -> tuple[int, str, bytes]:
        form = urllib.parse.parse_qs(body.decode())
        with self.lock:
            self.token_requests += 1
            if form.get("grant_type", [""])[0] == "authorization_code":
                if form.get("code", [""])[0] != "good-code" or not form.get("code_verifier"):
                    return 400, "application/json", json.dumps({"error": "invalid_grant"}).encode()
                token = f"access-{self.token_requests}"
                self.valid_tokens.add(token)
                self.refresh_tokens.add("refresh-from-consent")
                data = {"access_token": token, "expires_in": 3599, "token_type": "Bearer", "scope": READONLY,
                        "refresh_token": "refresh-from-consent"}
                return 200, "application/json", json.dumps(data).encode()
            if form.get("grant_type", [""])[0] != "refresh_token" or form.get("refresh_token", [""])[0] not in self.refresh_tokens:
                data = {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
                return 400, "application/json", json.dumps(data).encode()
            token = f"access-{self.token_requests}"
            self.valid_tokens.add(token)
        data = {"access_token": token, "expires_in": 3599, "token_type": "Bearer", "scope": READONLY}
        return 200, "application/json", json.dumps(data).encode()


PORTAL_PAGE = (b"<!DOCTYPE html><html><head><title>Welcome to CafeNet</title></head><body>"
               b"<form action='/login'>Accept the terms to use the Wi-Fi <button>Connect</button></form>"
               b"</body></html>")


def _failure(status: int, reason: str | None = None, retry_after: str | None = None) -> tuple[int, dict, dict]:
    return status, error_body(status, reason), ({"Retry-After": retry_after} if retry_after else {})


def _unfold(value) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", str(value))


def _minutes(n: int):
    from datetime import timedelta

    return timedelta(minutes=n)
