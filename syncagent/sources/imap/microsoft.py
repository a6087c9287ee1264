"""OAuth2 for Outlook.com and Microsoft 365 over IMAP (XOAUTH2), with Microsoft's msal library.

Microsoft no longer accepts passwords for IMAP on these accounts. ``syncagent
auth microsoft NAME`` runs the device-code sign-in (a code to enter at
Microsoft's page in any browser, so it works on a machine without one); the
token cache msal keeps (access and refresh tokens) is written mode 0600 to the
account's ``token_file`` and renewed silently before each connection.

The scope asked is ``IMAP.AccessAsUser.All``, the only one Outlook's IMAP
accepts (syncagent still only reads: EXAMINE, BODY.PEEK). msal adds
``offline_access`` (the refresh token), ``openid`` and ``profile`` itself and
refuses them when passed explicitly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from syncagent.config import Account
from syncagent.errors import AuthError, TransientSourceError

log = logging.getLogger(__name__)

SCOPES = ["https://outlook.office.com/IMAP.AccessAsUser.All"]
DEFAULT_AUTHORITY = "https://login.microsoftonline.com/common"
def token_file(account: Account) -> Path:
    return Path(account.token_file or f"~/.config/syncagent/{account.name}.msal.json").expanduser()


def _again(account: Account) -> str:
    return f"run `syncagent auth microsoft {account.name}`"


def _load_cache(path: Path):
    import msal

    cache = msal.SerializableTokenCache()
    if path.exists():
        try:
            cache.deserialize(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.info("the Microsoft token cache %s cannot be read; starting afresh", path)
    return cache


def _save_cache(path: Path, cache) -> None:
    from syncagent.files import write_private

    if cache.has_state_changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, cache.serialize())


def _app(account: Account, cache):
    import msal

    authority = account.authority or DEFAULT_AUTHORITY
    # Instance discovery asks login.microsoftonline.com whether an authority is Microsoft's; the
    # well-known authorities need no asking, and a tenant's own authority is the user's choice.
    return msal.PublicClientApplication(account.client_id, authority=authority, token_cache=cache,
                                        instance_discovery=False)


def _unreachable(account: Account, exc: BaseException) -> TransientSourceError:
    host = urlparse(account.authority or DEFAULT_AUTHORITY).hostname
    return TransientSourceError(f"Microsoft's sign-in service {host} could not be reached for account "
                                f"{account.name!r} ({exc.__class__.__name__}); check your network and try again.")


def _why(result: dict | None) -> str:
    if not result:
        return "no answer"
    text = str(result.get("error_description") or result.get("error") or "no reason given")
    return text.splitlines()[0][:200]


def authorize(account: Account, tell: Callable[[str], None]) -> Path:
    """Run the device-code flow: ``tell`` shows where to enter the code; blocks until signed in. Returns the cache path."""
    import requests

    path = token_file(account)
    cache = _load_cache(path)
    try:
        app = _app(account, cache)
        flow = app.initiate_device_flow(scopes=SCOPES)
        if "user_code" not in flow:
            raise AuthError(f"Microsoft would not start the sign-in for account {account.name!r} ({_why(flow)}); "
                            "check `client_id` (an app registered with public client flows allowed).")
        tell(str(flow.get("message") or f"Open {flow.get('verification_uri')} and enter the code {flow['user_code']}."))
        result = app.acquire_token_by_device_flow(flow)
    except (requests.RequestException, ValueError) as exc:
        raise _unreachable(account, exc) from None
    if "access_token" not in result:
        raise AuthError(f"The Microsoft sign-in for account {account.name!r} did not complete ({_why(result)}); "
                        f"{_again(account)} again.")
    _save_cache(path, cache)
    return path


def access_token(account: Account) -> str:
    """A valid access token for XOAUTH2, renewed with the refresh token when due (and the cache saved)."""
    import requests

    path = token_file(account)
    if not path.exists():
        raise AuthError(f"There is no Microsoft token for account {account.name!r} at {path}; {_again(account)}.")
    cache = _load_cache(path)
    try:
        app = _app(account, cache)
        accounts = app.get_accounts(username=account.username) or app.get_accounts()
        if not accounts:
            raise AuthError(f"The Microsoft token cache {path} holds no signed-in account; {_again(account)}.")
        result = app.acquire_token_silent_with_error(SCOPES, account=accounts[0])  # None only when nothing is cached
    except (requests.RequestException, ValueError) as exc:
        raise _unreachable(account, exc) from None
    if not result or "access_token" not in result:
        raise AuthError(f"The Microsoft token of account {account.name!r} can no longer be renewed ({_why(result)}); "
                        f"{_again(account)} again.")
    _save_cache(path, cache)
    return str(result["access_token"])
