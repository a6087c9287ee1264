"""A loopback stand-in for Microsoft's sign-in service (login.microsoftonline.com), speaking its real JSON.

Why: the device-code flow and the silent refresh go through msal unchanged, and
Microsoft's servers cannot be reached from tests. msal insists on https, so the
fake serves TLS with a self-signed certificate for 127.0.0.1, trusted through
REQUESTS_CA_BUNDLE (the fixture sets it). Endpoints, under ``/tenant``:
``v2.0/.well-known/openid-configuration``, ``oauth2/v2.0/devicecode`` and
``oauth2/v2.0/token`` (device_code grant: pending once, then tokens;
refresh_token grant: the next access token). ``requests`` records every form posted.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

CLIENT_ID = "00000000-1111-2222-3333-444444444444"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class FakeMicrosoft:
    def __init__(self, cert, key, username: str, access_lifetime: int = 60):
        self.username = username
        self.access_lifetime = access_lifetime  # under msal's 5-minute margin: the next use refreshes
        self.requests: list[dict] = []
        self.issued = 0
        self.pending = 1  # device-code polls answered "authorization_pending" before the tokens
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.startswith("/tenant/v2.0/.well-known/openid-configuration"):
                    base = fake.base
                    return self._send(200, {
                        "issuer": f"{base}/v2.0",
                        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                        "token_endpoint": f"{base}/oauth2/v2.0/token",
                        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    })
                self._send(404, {"error": "not_found"})

            def do_POST(self):
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
                form["path"] = self.path.split("?")[0]
                fake.requests.append(form)
                if form["path"] == "/tenant/oauth2/v2.0/devicecode":
                    return self._send(200, {
                        "device_code": "dc-1", "user_code": "FAKE-CODE", "verification_uri":
                        "https://microsoft.com/devicelogin", "expires_in": 900, "interval": 0,
                        "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin "
                                   "and enter the code FAKE-CODE to authenticate."})
                if form["path"] != "/tenant/oauth2/v2.0/token":
                    return self._send(404, {"error": "not_found"})
                grant = form.get("grant_type", "")
                if grant.endswith("device_code"):
                    if fake.pending:
                        fake.pending -= 1
                        return self._send(400, {"error": "authorization_pending",
                                                "error_description": "The user has not yet signed in."})
                    return self._send(200, fake.tokens(form))
                if grant == "refresh_token":
                    if form.get("refresh_token") != f"rt-{fake.issued}":
                        return self._send(400, {"error": "invalid_grant",
                                                "error_description": "AADSTS70000: the refresh token was revoked."})
                    return self._send(200, fake.tokens(form))
                self._send(400, {"error": "unsupported_grant_type"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self.server.server_address[1]}/tenant"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def tokens(self, form) -> dict:
        self.issued += 1
        now = int(time.time())
        id_token = ".".join([_b64({"alg": "none", "typ": "JWT"}), _b64({
            "iss": f"{self.base}/v2.0", "aud": form.get("client_id"), "iat": now, "nbf": now, "exp": now + 3600,
            "sub": "sub-1", "oid": "oid-1", "tid": "tid-1", "preferred_username": self.username,
            "name": "Test User"}), ""])
        return {"token_type": "Bearer", "scope": "https://outlook.office.com/IMAP.AccessAsUser.All",
                "expires_in": self.access_lifetime, "ext_expires_in": self.access_lifetime,
                "access_token": f"at-{self.issued}", "refresh_token": f"rt-{self.issued}", "id_token": id_token,
                "client_info": _b64({"uid": "oid-1", "utid": "tid-1"})}

    def close(self):
        self.server.shutdown()
        self.server.server_close()
