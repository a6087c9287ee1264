"""The TOML configuration, validated into frozen dataclasses.

Every mistake becomes one ConfigError sentence naming the file, the key and the fix.
"""

from __future__ import annotations

import builtins
import difflib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from syncagent.errors import ConfigError
from syncagent.parse.addresses import normalize_address

DEFAULT_PATH = "~/.config/syncagent/config.toml"
DEFAULT_DB = "~/.local/share/syncagent/syncagent.db"
DEFAULT_DIGESTS = "~/.local/share/syncagent/digests"
KINDS = ("imap", "gmail", "maildir", "mbox")
SECURITY = ("tls", "starttls", "none")
# IMAP hosts whose OAuth tokens come from Microsoft (auth = "oauth2" then means provider = "microsoft").
MICROSOFT_IMAP_HOSTS = ("outlook.office365.com", "outlook.office.com", "imap-mail.outlook.com")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Secret:
    """Where a password comes from. Holds no password itself."""

    owner: str  # e.g. "accounts.personal" or "smtp", for messages
    password_command: str | None = None
    password_env: str | None = None
    keyring: bool = False
    keyring_user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def configured(self) -> bool:
        return bool(self.password_command or self.password_env or self.keyring or self.password)


@dataclass(frozen=True)
class Account:
    name: str
    kind: str
    addresses: tuple[str, ...] = ()
    host: str | None = None
    port: int | None = None
    security: str = "tls"
    username: str | None = None
    secret: Secret | None = None
    auth: str = "password"  # password | oauth2
    provider: str | None = None  # with oauth2: "google" or "microsoft" (whose tokens)
    client_id: str | None = None  # microsoft: the registered app's id
    authority: str | None = None  # microsoft: the sign-in authority (default .../common)
    tls_verify: bool = True
    tls_fingerprint: str | None = None  # "sha256:<64 hex>": trust exactly this certificate instead of the CA chain
    folders: tuple[str, ...] | None = None
    timeout: float = 60.0
    batch_size: int = 500
    path: Path | None = None  # maildir / mbox
    client_secret_file: Path | None = None
    token_file: Path | None = None
    api_endpoint: str | None = None
    labels: tuple[str, ...] | None = None
    fetch_snippets: bool = False
    analyze_outreach: bool = True  # [privacy] analyze_outreach: measure the user's own sent text


@dataclass(frozen=True)
class Reminders:
    thank_you_within_hours: float = 24
    follow_up_after_business_days: int = 7
    max_unanswered: int = 3
    check_in_after_days: float = 90
    holidays: str | None = None  # "US", "US-NY", "DE-BY": public holidays business days skip
    close_loop_after_days: float = 7  # thank an introducer this long after the intro converts; 0: off
    next_contact_after_business_days: int = 3  # 3B7: nobody at the company answered; 0: off
    stale_after_days: float = 30  # overdue longer than this: listed apart, never notified


@dataclass(frozen=True)
class SyncSettings:
    interval_minutes: float = 10
    jitter_seconds: float = 30
    idle: bool = True  # the daemon watches INBOX with IMAP IDLE to sync new mail at once


@dataclass(frozen=True)
class Digest:
    weekday: str = "monday"
    time: str = "08:00"
    output_dir: Path = Path(DEFAULT_DIGESTS).expanduser()
    email_to: str | None = None
    imap_folder: str | None = None
    imap_account: str | None = None


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    secret: Secret | None = None
    from_address: str | None = None
    tls_verify: bool = True
    timeout: float = 30.0


@dataclass(frozen=True)
class Notify:
    desktop: bool = False
    email: bool = False
    brief_hours_before: float = 24  # a meeting's brief is sent this long before it starts; 0: never


@dataclass(frozen=True)
class Config:
    path: Path | None
    timezone: str = "UTC"
    database: Path = Path(DEFAULT_DB).expanduser()
    accounts: tuple[Account, ...] = ()
    reminders: Reminders = Reminders()
    sync: SyncSettings = SyncSettings()
    digest: Digest = Digest()
    smtp: Smtp | None = None
    notify: Notify = Notify()

    def account(self, name: str) -> Account:
        for acct in self.accounts:
            if acct.name == name:
                return acct
        known = ", ".join(a.name for a in self.accounts) or "none"
        raise ConfigError(f"There is no account named {name!r} in {self.path}; the accounts are: {known}.")

    @property
    def tz(self):
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)


def _holidays_region(rem: _Reader) -> str | None:
    """``[reminders] holidays``: a country code the ``holidays`` library knows, with an optional subdivision."""
    code = rem.str("holidays", None)
    if code is None or not code.strip():
        return None
    from syncagent.ledger.businessdays import region_problem

    code = code.strip().upper()
    problem = region_problem(code)
    if problem:
        rem.fail("holidays", f"is {code!r}: {problem}",
                 "use a country code with an optional subdivision such as \"US\", \"US-NY\" or \"DE-BY\"")
    return code


def default_path() -> Path:
    env = os.environ.get("SYNCAGENT_CONFIG")
    return Path(env).expanduser() if env else Path(DEFAULT_PATH).expanduser()


def load(path: str | os.PathLike | None = None) -> Config:
    """Read and validate the config file (``--config``, else $SYNCAGENT_CONFIG, else the default)."""
    import tomllib

    p = Path(path).expanduser() if path else default_path()
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"No config file at {p}; create one from config.example.toml (or run `syncagent init`), or pass --config PATH."
        ) from None
    except OSError as exc:
        raise ConfigError(f"Cannot read the config file {p}: {exc.strerror or exc}; check its permissions.") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p} is not UTF-8 text; save it as UTF-8.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p} is not valid TOML ({exc}); fix the syntax there.") from None
    return parse(data, p)


def parse(data: dict, path: Path | None) -> Config:
    r = _Reader(data, path, "")
    r.allow("timezone", "database", "accounts", "reminders", "sync", "digest", "smtp", "notify", "privacy")
    tz = r.str("timezone", "UTC")
    _check_timezone(r, tz)
    db = r.table("database")
    db.allow("path")
    accounts_raw = r.get("accounts", list, [])
    accounts = []
    for i, item in enumerate(accounts_raw):
        if not isinstance(item, dict):
            r.fail(f"accounts[{i}]", "must be a table ([[accounts]])", "write each account as an [[accounts]] table")
        accounts.append(_account(_Reader(item, path, f"accounts[{i}]")))
    privacy = r.table("privacy")
    privacy.allow("analyze_outreach")
    if not privacy.bool("analyze_outreach", True):
        # Sources see only their account, and this choice is about what any source reads.
        accounts = [replace(a, analyze_outreach=False) for a in accounts]
    names = [a.name for a in accounts]
    for name in names:
        if names.count(name) > 1:
            r.fail("accounts.name", f"uses {name!r} twice", "give every account a different name")
    rem = r.table("reminders")
    rem.allow("thank_you_within_hours", "follow_up_after_business_days", "max_unanswered", "check_in_after_days",
              "holidays", "close_loop_after_days", "next_contact_after_business_days", "stale_after_days")
    reminders = Reminders(
        thank_you_within_hours=rem.number("thank_you_within_hours", 24, positive=True),
        follow_up_after_business_days=rem.int("follow_up_after_business_days", 7, minimum=1),
        max_unanswered=rem.int("max_unanswered", 3, minimum=1),
        check_in_after_days=rem.number("check_in_after_days", 90, positive=True),
        holidays=_holidays_region(rem),
        close_loop_after_days=rem.number("close_loop_after_days", 7, minimum=0),
        next_contact_after_business_days=rem.int("next_contact_after_business_days", 3, minimum=0),
        stale_after_days=rem.number("stale_after_days", 30, positive=True),
    )
    s = r.table("sync")
    s.allow("interval_minutes", "jitter_seconds", "idle")
    sync = SyncSettings(
        interval_minutes=s.number("interval_minutes", 10, positive=True),
        jitter_seconds=s.number("jitter_seconds", 30, minimum=0),
        idle=s.bool("idle", True),
    )
    d = r.table("digest")
    d.allow("weekday", "time", "output_dir", "email_to", "imap_folder", "imap_account")
    weekday = d.str("weekday", "monday").lower()
    if weekday not in WEEKDAYS:
        d.fail("weekday", f"is {weekday!r}", "use a day name such as \"monday\"")
    time_text = d.str("time", "08:00")
    if not _valid_time(time_text):
        d.fail("time", f"is {time_text!r}", "use 24-hour HH:MM such as \"08:00\"")
    digest = Digest(
        weekday=weekday,
        time=time_text,
        output_dir=Path(d.str("output_dir", DEFAULT_DIGESTS)).expanduser(),
        email_to=d.str("email_to", None),
        imap_folder=d.str("imap_folder", None),
        imap_account=d.str("imap_account", None),
    )
    smtp = None
    if "smtp" in data:
        m = r.table("smtp")
        m.allow("host", "port", "security", "username", "password_command", "password_env", "keyring",
                "password", "from_address", "tls_verify", "timeout")
        security = m.choice("security", SECURITY, "starttls")
        smtp = Smtp(
            host=m.str("host", required=True),
            port=m.int("port", {"tls": 465, "starttls": 587, "none": 25}[security], minimum=1),
            security=security,
            username=m.str("username", None),
            secret=_secret(m, "smtp", m.str("username", None)),
            from_address=m.str("from_address", None),
            tls_verify=m.bool("tls_verify", True),
            timeout=m.number("timeout", 30, positive=True),
        )
    if digest.email_to and smtp is None:
        d.fail("email_to", "is set but there is no [smtp] table", "add [smtp] with host, port, security and a password source")
    n = r.table("notify")
    n.allow("desktop", "email", "brief_hours_before")
    notify = Notify(desktop=n.bool("desktop", False), email=n.bool("email", False),
                    brief_hours_before=n.number("brief_hours_before", 24, minimum=0))
    if notify.email and smtp is None:
        n.fail("email", "is true but there is no [smtp] table", "add [smtp] or set notify.email = false")
    return Config(
        path=path,
        timezone=tz,
        database=Path(db.str("path", DEFAULT_DB)).expanduser(),
        accounts=tuple(accounts),
        reminders=reminders,
        sync=sync,
        digest=digest,
        smtp=smtp,
        notify=notify,
    )


_ACCOUNT_KEYS = {
    "imap": ("host", "port", "security", "username", "password_command", "password_env", "keyring",
             "password", "auth", "provider", "client_id", "authority", "tls_verify", "tls_fingerprint", "folders", "timeout", "batch_size", "fetch_snippets",
             "client_secret_file", "token_file"),
    "gmail": ("client_secret_file", "token_file", "api_endpoint", "labels", "timeout", "batch_size", "username"),
    "maildir": ("path",),
    "mbox": ("path",),
}


def _own_addresses(r: _Reader) -> tuple[str, ...]:
    """The user's addresses under the same rule as every address read from mail and contacts."""
    out: list[str] = []
    for text in r.str_list("addresses", []):
        addr = normalize_address(text)
        if addr is None:
            r.fail("addresses", f"holds {text!r}, which is not an email address",
                   "write each of your own addresses as name@example.com")
        if addr not in out:
            out.append(addr)
    return tuple(out)


def _account(r: _Reader) -> Account:
    name = r.str("name", required=True)
    if not name.strip():
        r.fail("name", "is empty", "give the account a short name such as \"personal\"")
    r.prefix = f"accounts.{name}"
    kind = r.choice("kind", KINDS, required=True)
    r.allow("name", "kind", "addresses", *_ACCOUNT_KEYS[kind])
    addresses = _own_addresses(r)
    common: dict[str, Any] = {"name": name, "kind": kind}
    if kind in ("maildir", "mbox"):
        path = Path(r.str("path", required=True)).expanduser()
        return Account(addresses=addresses, path=path, **common)
    if kind == "gmail":
        username = r.str("username", None)
        own = normalize_address(username)
        if not addresses and own:
            addresses = (own,)
        return Account(
            addresses=addresses,
            username=username,
            client_secret_file=_path(r.str("client_secret_file", required=True)),
            token_file=_path(r.str("token_file", f"~/.config/syncagent/{name}.token.json")),
            api_endpoint=r.str("api_endpoint", None),
            labels=tuple(r.str_list("labels", [])) or None,
            timeout=r.number("timeout", 60, positive=True),
            batch_size=r.int("batch_size", 50, minimum=1),
            **common,
        )
    security = r.choice("security", SECURITY, "tls")
    username = r.str("username", required=True)
    auth = r.choice("auth", ("password", "oauth2"), "password")
    own = normalize_address(username)
    if not addresses and own:
        # A login that is an address is the user's own address unless `addresses` says otherwise.
        addresses = (own,)
    secret = None
    if auth == "password":
        secret = _secret(r, f"accounts.{name}", username)
        if not secret.configured:
            r.fail("password_command", "is missing (no password source is set)",
                   "set one of password_command, password_env, keyring = true or password")
    folders = r.str_list("folders", None)
    fingerprint = _fingerprint(r, security)
    host = r.str("host", required=True)
    provider = client_id = authority = None
    if auth == "oauth2":
        microsoft = host.lower().rstrip(".") in MICROSOFT_IMAP_HOSTS
        provider = r.choice("provider", ("google", "microsoft"), "microsoft" if microsoft else "google")
        if provider == "microsoft":
            client_id = r.str("client_id", None)
            if not client_id:
                r.fail("client_id", "is missing (Microsoft OAuth needs a registered app)",
                       "register one in Microsoft Entra (public client flows allowed, permission "
                       "IMAP.AccessAsUser.All) and put its Application (client) ID here; see the README")
            authority = r.str("authority", None)
            if authority is not None and not authority.startswith("https://"):
                r.fail("authority", f"is {authority!r}", 'use an https URL such as "https://login.microsoftonline.com/common"')
    return Account(
        addresses=addresses,
        host=host,
        port=r.int("port", 993 if security == "tls" else 143, minimum=1),
        security=security,
        username=username,
        secret=secret,
        auth=auth,
        provider=provider,
        client_id=client_id,
        authority=authority,
        tls_verify=r.bool("tls_verify", True),
        tls_fingerprint=fingerprint,
        folders=tuple(folders) if folders else None,
        timeout=r.number("timeout", 60, positive=True),
        batch_size=r.int("batch_size", 500, minimum=1),
        fetch_snippets=r.bool("fetch_snippets", False),
        client_secret_file=_path(r.str("client_secret_file", None)),
        token_file=_path(r.str("token_file", f"~/.config/syncagent/{name}."
                                         f"{'msal' if provider == 'microsoft' else 'token'}.json")),
        **common,
    )


def _fingerprint(r: _Reader, security: str) -> str | None:
    """``tls_fingerprint`` as "sha256:" and 64 lowercase hex digits (colons and case as openssl prints them are fine)."""
    text = r.str("tls_fingerprint", None)
    if text is None:
        return None
    algo, _, digest = text.strip().partition(":")
    digest = digest.replace(":", "").lower()
    if algo.lower() != "sha256" or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        r.fail("tls_fingerprint", f"is {text!r}", 'write "sha256:" and the 64 hex digits `syncagent init` shows '
               "(or `openssl x509 -noout -fingerprint -sha256` prints)")
    if security == "none":
        r.fail("tls_fingerprint", 'is set but security = "none" uses no TLS', 'use security = "tls" or "starttls"')
    return f"sha256:{digest}"


def _secret(r: _Reader, owner: str, user: str | None) -> Secret:
    return Secret(
        owner=owner,
        password_command=r.str("password_command", None),
        password_env=r.str("password_env", None),
        keyring=r.bool("keyring", False),
        keyring_user=user,
        password=r.str("password", None),
    )


def _path(text: str | None) -> Path | None:
    return Path(text).expanduser() if text else None


def _valid_time(text: str) -> bool:
    parts = text.split(":")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return False
    return 0 <= int(parts[0]) < 24 and 0 <= int(parts[1]) < 60


def _check_timezone(r: _Reader, tz: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        r.fail("timezone", f"is {tz!r}, which is not a known time zone", "use an IANA name such as \"America/New_York\"")


_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
               list: "a list", dict: "a table"}


class _Reader:
    """Reads one TOML table, raising ConfigError sentences that name file and key."""

    def __init__(self, data: dict, path: Path | None, prefix: builtins.str):
        self.data, self.path, self.prefix = data, path, prefix

    def key(self, name: builtins.str) -> builtins.str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: builtins.str, problem: builtins.str, fix: builtins.str) -> NoReturn:
        where = f"{self.path}: " if self.path else ""
        end = "" if fix.endswith("?") else "."
        raise ConfigError(f"{where}`{self.key(name)}` {problem}; {fix}{end}")

    def allow(self, *names: builtins.str) -> None:
        for k in self.data:
            if k not in names:
                guess = difflib.get_close_matches(k, names, n=1)
                hint = f"did you mean `{guess[0]}`?" if guess else "remove it (config.example.toml lists every key)"
                self.fail(k, "is not a known key", hint)

    def get(self, name: builtins.str, typ, default=None, required: builtins.bool = False):
        if name not in self.data:
            if required:
                self.fail(name, "is missing", f"add {name} = ... (see config.example.toml)")
            return default
        value = self.data[name]
        ok = isinstance(value, typ) and not (typ in (int, float) and isinstance(value, bool))
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            self.fail(name, f"must be {_TYPE_NAMES.get(typ, typ.__name__)}, not {value!r}",
                      f"write it as {_TYPE_NAMES.get(typ, typ.__name__)}")
        return value

    def table(self, name: builtins.str) -> _Reader:
        return _Reader(self.get(name, dict, {}), self.path, self.key(name))

    def str(self, name: builtins.str, default=None, required: builtins.bool = False):
        return self.get(name, str, default, required)

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        return self.get(name, bool, default)

    def int(self, name: builtins.str, default: builtins.int, minimum: builtins.int | None = None) -> builtins.int:
        value = self.get(name, int, default)
        if minimum is not None and value < minimum:
            self.fail(name, f"is {value}", f"use a whole number of at least {minimum}")
        return value

    def number(self, name: builtins.str, default: float, positive: builtins.bool = False, minimum: builtins.float | None = None) -> float:
        value = float(self.get(name, float, default))
        if positive and value <= 0:
            self.fail(name, f"is {value:g}", "use a number greater than 0")
        if minimum is not None and value < minimum:
            self.fail(name, f"is {value:g}", f"use a number of at least {minimum:g}")
        return value

    def choice(self, name: builtins.str, choices, default=None, required: builtins.bool = False):
        value = self.get(name, str, default, required)
        if value not in choices:
            listed = " or ".join(f'"{c}"' for c in choices)
            self.fail(name, f"is {value!r}", f"use {listed}")
        return value

    def str_list(self, name: builtins.str, default):
        value = self.get(name, list, default)
        if value is not None and not all(isinstance(v, str) for v in value):
            self.fail(name, "must be a list of strings", 'write it like ["INBOX", "Sent"]')
        return value
