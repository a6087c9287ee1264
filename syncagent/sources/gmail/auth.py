"""OAuth tokens for Gmail: consent, loading, refreshing and saving (mode 0600).

Two users of a token: the Gmail API source (scope ``gmail.readonly``) and IMAP
with XOAUTH2 (Gmail's IMAP needs the full ``https://mail.google.com/`` scope,
which the code keeps read-only by EXAMINE and BODY.PEEK). The scope follows the
account's kind. Tokens never reach the logs: only paths and account names do.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from syncagent.config import Account
from syncagent.errors import AuthError, ConfigError, SyncagentError, TransientSourceError

log = logging.getLogger(__name__)

READONLY_SCOPE = "https://www.googleapis.com/auth/gmail.readonly"
IMAP_SCOPE = "https://mail.google.com/"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
# The copy-the-code path redirects the browser to a loopback port where nothing
# listens: the page fails to load, and its address holds the code to paste.
NO_BROWSER_REDIRECT = "http://127.0.0.1:1/"
CONSENT_TIMEOUT = 600  # seconds to wait for the browser to come back


def scopes_for(account: Account) -> list[str]:
    return [IMAP_SCOPE] if account.kind == "imap" else [READONLY_SCOPE]


def _reauth_hint(account: Account) -> str:
    return f"run `syncagent auth gmail {account.name}` again"


def _client_secret_file(account: Account) -> Path:
    path = account.client_secret_file
    key = f"accounts.{account.name}.client_secret_file"
    if path is None:
        raise ConfigError(
            f"`{key}` is missing; download the OAuth client (Desktop app) JSON from Google Cloud and set its path there."
        )
    if not Path(path).is_file():
        raise ConfigError(
            f"`{key}` points to {path}, which does not exist; download the OAuth client (Desktop app) JSON from Google Cloud to that path."
        )
    return Path(path)


def _token_file(account: Account) -> Path:
    return Path(account.token_file or Path(f"~/.config/syncagent/{account.name}.token.json").expanduser())


# --- consent -----------------------------------------------------------------

def authorize(account: Account, *, open_browser: bool = True, no_browser: bool = False,
              ask: Callable[[str], str] | None = None, tell: Callable[[str], None] | None = None,
              flow_factory=None) -> Path:
    """Run the installed-app consent flow and save the token; return the token file's path.

    ``no_browser``: print the authorization URL and read back the code (or the
    whole address the browser ended on) instead of listening on a loopback port.
    """
    secret_file = _client_secret_file(account)
    if flow_factory is None:
        from google_auth_oauthlib.flow import InstalledAppFlow

        flow_factory = InstalledAppFlow.from_client_secrets_file
    try:
        flow = flow_factory(str(secret_file), scopes=scopes_for(account))
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"`accounts.{account.name}.client_secret_file` ({secret_file}) is not an OAuth client JSON ({exc}); download it again as a Desktop app client."
        ) from None
    try:
        if no_browser:
            creds = _copy_code_flow(flow, ask or input, tell or print)
        else:
            creds = flow.run_local_server(host="127.0.0.1", port=0, open_browser=open_browser and _has_browser(),
                                          prompt="consent", timeout_seconds=CONSENT_TIMEOUT,
                                          authorization_prompt_message="Open this URL in a browser to allow access: {url}",
                                          success_message="syncagent is authorized; you may close this window.")
    except AuthError:
        raise
    except Exception as exc:
        if exc.__class__.__name__ == "WSGITimeoutError":
            raise AuthError(
                f"No answer came from the browser within {CONSENT_TIMEOUT // 60} minutes; run `syncagent auth gmail {account.name}` again (add --no-browser on a machine without one)."
            ) from None
        raise _consent_failed(account, exc) from None
    path = _token_file(account)
    save_credentials(path, creds)
    return path


def _has_browser() -> bool:
    """A headless machine has no browser to open: the printed URL is the way then."""
    import webbrowser

    try:
        webbrowser.get()
        return True
    except webbrowser.Error:
        return False


def _consent_failed(account: Account, exc: BaseException) -> AuthError:
    log.debug("consent flow failed", exc_info=exc)
    return AuthError(
        f"Google did not grant access for account '{account.name}' ({exc.__class__.__name__}); run `syncagent auth gmail {account.name}` again and allow access."
    )


def _copy_code_flow(flow, ask, tell):
    flow.redirect_uri = NO_BROWSER_REDIRECT
    url, state = flow.authorization_url(prompt="consent")
    tell("Open this URL in any browser, allow access, then copy the address the browser ends on")
    tell("(the page itself will fail to load; that is expected):")
    tell(url)
    answer = ask("Paste the address (or just the code): ").strip()
    code = answer
    if answer.startswith("http"):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(answer).query)
        if "error" in query:
            raise AuthError(f"Google refused access ({query['error'][0]}); run the command again and choose Allow.")
        if query.get("state", [state])[0] != state:
            raise AuthError("The pasted address belongs to another authorization attempt; run the command again and paste the newest one.")
        code = (query.get("code") or [""])[0]
    if not code:
        raise AuthError("No authorization code was pasted; run the command again and paste the address the browser ends on.")
    flow.fetch_token(code=code)
    return flow.credentials


# --- load, refresh, save -----------------------------------------------------

def load_credentials(account: Account, *, scopes: list[str] | None = None):
    """The saved credentials, refreshed (and re-saved) when expired.

    The token file's ``token_uri`` is honoured (google-auth's own loader always
    uses Google's), so the refresh path is the same against a loopback fake.
    """
    from google.oauth2.credentials import Credentials

    path = _token_file(account)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuthError(
            f"There is no Gmail token for account '{account.name}' at {path}; run `syncagent auth gmail {account.name}` first."
        ) from None
    except (OSError, ValueError) as exc:
        raise AuthError(
            f"The Gmail token file {path} for account '{account.name}' cannot be read ({exc.__class__.__name__}); {_reauth_hint(account)}."
        ) from None
    if not isinstance(info, dict) or not info.get("refresh_token") and not info.get("token"):
        raise AuthError(f"The Gmail token file {path} for account '{account.name}' holds no token; {_reauth_hint(account)}.")
    expiry = None
    if info.get("expiry"):
        try:
            expiry = datetime.fromisoformat(info["expiry"].rstrip("Z")).replace(tzinfo=None)
        except ValueError:
            expiry = None  # unknown expiry: treated as valid until a 401 forces a refresh
    creds = Credentials(
        token=info.get("token"),
        refresh_token=info.get("refresh_token"),
        token_uri=info.get("token_uri") or GOOGLE_TOKEN_URI,
        client_id=info.get("client_id"),
        client_secret=info.get("client_secret"),
        scopes=info.get("scopes") or scopes or scopes_for(account),
        expiry=expiry,
    )
    if not creds.valid:
        refresh(account, creds, timeout=account.timeout)
        save_credentials(path, creds)
    return creds


def refresh(account: Account, creds, *, timeout: float = 60.0) -> None:
    """Refresh in place, turning Google's refusals into one actionable sentence."""
    import google.auth.exceptions
    import google_auth_httplib2
    import httplib2

    if not creds.refresh_token:
        raise AuthError(f"The Gmail token for account '{account.name}' has expired and cannot be renewed; {_reauth_hint(account)}.")
    try:
        creds.refresh(google_auth_httplib2.Request(httplib2.Http(timeout=timeout)))
    except google.auth.exceptions.RefreshError as exc:
        raise refresh_failure(account, exc) from None
    except (TypeError, KeyError, ValueError) as exc:
        raise refresh_failure(account, exc) from None
    except (google.auth.exceptions.TransportError, OSError) as exc:
        raise TransientSourceError(
            f"Could not reach Google to renew the token for account '{account.name}' ({exc.__class__.__name__}); check the network, the next sync retries."
        ) from None


def refresh_failure(account: Account, exc: BaseException) -> SyncagentError:
    """Why a token refresh failed: Google refused it, or somebody else (a portal) answered.

    google-auth reads the token endpoint's answer as JSON; a captive portal's HTML page
    reaches it as a str, and it either wraps that in RefreshError or, for a 200, fails
    indexing it (TypeError). Neither means the token was revoked.
    """
    import google.auth.exceptions

    from syncagent.sources.gmail.api import not_gmail_error

    if isinstance(exc, google.auth.exceptions.RefreshError):
        body = exc.args[1] if len(exc.args) > 1 else None
        if body is None or isinstance(body, dict):
            return revoked_error(account, exc)
    log.debug("token refresh answered by something else for %s: %s", account.name, exc.__class__.__name__)
    return not_gmail_error(account)


def revoked_error(account: Account, exc: BaseException | None = None) -> AuthError:
    if exc is not None:
        log.debug("token refresh refused for %s: %s", account.name, exc.__class__.__name__)
    return AuthError(
        f"The Gmail token for account '{account.name}' was revoked or has expired; {_reauth_hint(account)}."
    )


def save_credentials(path: Path, creds) -> None:
    """Write the token JSON atomically, mode 0600, in a 0700 directory."""
    path = Path(path).expanduser()
    from syncagent.files import private_dir, write_private

    private_dir(path.parent)
    data = json.loads(creds.to_json())  # token, refresh_token, token_uri, client, scopes, expiry

    write_private(path, json.dumps(data, indent=1))


def access_token(account: Account) -> str:
    """A fresh access token for IMAP XOAUTH2 (``oauth2_login(user, token)``)."""
    creds = load_credentials(account, scopes=[IMAP_SCOPE])
    if not creds.token:
        refresh(account, creds, timeout=account.timeout)
        save_credentials(_token_file(account), creds)
    return creds.token


def token_file(account: Account) -> Path:
    return _token_file(account)
