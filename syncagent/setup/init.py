"""What `syncagent init` does, without the prompts: check an IMAP account, then write the config.

The account is tried (login, capabilities, folders) before anything is
written, and the text written is parsed by ``config.parse`` first, so a config
made by ``init`` always loads. The password itself is never written: the
config names where it comes from (a command, an environment variable or the
system keyring).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from syncagent.config import Account, Secret
from syncagent.errors import ConfigError

log = logging.getLogger(__name__)

INTERESTING_CAPS = ("CONDSTORE", "QRESYNC", "IDLE", "SPECIAL-USE", "X-GM-EXT-1")


@dataclass
class Answers:
    email: str
    host: str
    port: int
    security: str
    username: str
    name: str = "personal"
    timezone: str = "UTC"
    password_command: str | None = None
    password_env: str | None = None
    keyring: bool = False
    password: str | None = field(default=None, repr=False)  # only to test the login; never written
    tls_verify: bool = True
    tls_fingerprint: str | None = None
    addresses: tuple[str, ...] = ()

    def secret(self) -> Secret:
        return Secret(owner=f"accounts.{self.name}", password_command=self.password_command,
                      password_env=self.password_env, keyring=self.keyring and self.password is None,
                      keyring_user=self.username, password=self.password)

    def account(self) -> Account:
        return Account(name=self.name, kind="imap", addresses=self.addresses or (self.email.lower(),),
                       host=self.host, port=self.port, security=self.security, username=self.username,
                       secret=self.secret(), tls_verify=self.tls_verify,
                       tls_fingerprint=self.tls_fingerprint, timeout=30.0)


@dataclass
class Probe:
    """What the server showed after a successful login."""

    capabilities: tuple[str, ...]
    folders: list[str]
    sent: str | None  # the folder with \Sent, or a usual name for it
    sent_by_flag: bool
    all_mail: str | None
    senders: list[tuple[str, int]] = field(default_factory=list)  # From addresses in Sent, most used first

    @property
    def gmail(self) -> bool:
        return "X-GM-EXT-1" in self.capabilities

    def has(self, cap: str) -> bool:
        return cap in self.capabilities

    def summary(self) -> str:
        caps = ", ".join(c for c in INTERESTING_CAPS if self.has(c)) or "none of CONDSTORE, IDLE, SPECIAL-USE"
        return f"{len(self.folders)} folders; capabilities: {caps}"


# How many of the newest Sent messages are read to find the addresses you send from.
SENT_SAMPLE = 300


def probe(account: Account, *, senders: bool = False) -> Probe:
    """Log in, read the capabilities and the folder list, log out. Errors are one-sentence SyncagentErrors.

    With ``senders``, also read the From header of the newest messages in the
    Sent folder (EXAMINE and BODY.PEEK: nothing is marked read).
    """
    from syncagent.sources.imap import connect as imap_connect

    client = imap_connect.connect(account, attempts=1)  # a person is waiting: no backoff here
    try:
        caps = tuple(sorted(c.decode() if isinstance(c, bytes) else str(c) for c in client.capabilities()))
        listing = client.list_folders()
        found = _classify(caps, listing)
        if senders and found.sent:
            found.senders = sent_from(client, found.sent)
    except Exception as exc:
        imap_connect.close(client)
        raise imap_connect.translate(exc, account, "folder listing") from exc
    imap_connect.close(client)
    return found


def sent_from(client, folder: str, limit: int = SENT_SAMPLE) -> list[tuple[str, int]]:
    """The From addresses of the newest ``limit`` messages of ``folder``, with counts, most used first."""
    from collections import Counter
    from email.parser import BytesHeaderParser
    from email.utils import getaddresses

    from syncagent.parse.addresses import normalize_address

    info = client.select_folder(folder, readonly=True)  # EXAMINE
    if not info.get(b"EXISTS"):
        return []
    uids = sorted(client.search(["ALL"]))[-limit:]
    counts: Counter[str] = Counter()
    key = b"BODY[HEADER.FIELDS (FROM)]"
    for data in client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (FROM)]"]).values():
        header = BytesHeaderParser().parsebytes(data.get(key, b""))
        for _name, addr in getaddresses([str(v) for v in header.get_all("From", [])]):
            norm = normalize_address(addr)
            if norm:
                counts[norm] += 1
    return counts.most_common()


def _classify(caps: tuple[str, ...], listing) -> Probe:
    folders = [name for _f, _d, name in listing]
    by_flag: dict[str, str] = {}
    for flags, _delim, name in listing:
        for flag in flags:
            text = flag.decode() if isinstance(flag, bytes) else str(flag)
            by_flag.setdefault(text.lower(), name)
    sent, by = by_flag.get("\\sent"), True
    if sent is None:
        by = False
        usual = ("Sent", "Sent Items", "Sent Messages", "Sent Mail", "INBOX.Sent", "INBOX/Sent", "Gesendet",
                 "Gesendete Elemente", "Envoyés", "Enviados")
        lower = {f.lower(): f for f in folders}
        sent = next((lower[u.lower()] for u in usual if u.lower() in lower), None)
    return Probe(caps, folders, sent, by, by_flag.get("\\all"))


def default_timezone() -> str:
    """The machine's IANA time zone name, or UTC when it cannot be told."""
    tz = os.environ.get("TZ", "").lstrip(":")
    candidates = [tz] if tz else []
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    from zoneinfo import ZoneInfo

    for name in candidates:
        try:
            ZoneInfo(name)
            return name
        except Exception:
            continue
    return "UTC"


def _q(value: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


def render(a: Answers, found: Probe | None = None) -> str:
    """The config file text, with comments saying what each part is for."""
    lines = [
        "# syncagent configuration, written by `syncagent init`.",
        "# config.example.toml documents every key; `syncagent doctor` checks this file.",
        "",
        "# Your time zone: business days and the weekly digest are counted in it.",
        f"timezone = {_q(a.timezone)}",
        "",
        "[database]",
        'path = "~/.local/share/syncagent/syncagent.db"',
        "",
        "[[accounts]]",
        f"name = {_q(a.name)}                       # shown in logs and `syncagent sync --account NAME`",
        'kind = "imap"',
        f"host = {_q(a.host)}",
        f"port = {a.port}",
        f"security = {_q(a.security)}                   # tls | starttls | none",
        f"username = {_q(a.username)}",
        "# Where the password comes from; syncagent never stores it.",
    ]
    if a.password_command:
        lines.append(f"password_command = {_q(a.password_command)}  # its first output line is the password")
    elif a.password_env:
        lines.append(f"password_env = {_q(a.password_env)}  # an environment variable holding the password")
    else:
        lines.append(f"keyring = true                         # `keyring set syncagent {a.username}` stores it")
    addresses = a.addresses or (a.email.lower(),)
    lines.append(f"addresses = [{', '.join(_q(x) for x in addresses)}]  # your own addresses: mail from them is outgoing")
    if a.tls_fingerprint:
        lines.append(f"tls_fingerprint = {_q(a.tls_fingerprint)}  # trust exactly this certificate (self-signed)")
    elif not a.tls_verify:
        lines.append("tls_verify = false                     # this server's certificate is not verified")
    if found is not None:
        if found.sent and not found.sent_by_flag:
            lines.append(f"folders = [\"INBOX\", {_q(found.sent)}]  # the server marks no \\Sent folder; this one looks like it")
        elif found.sent is None and not found.gmail:
            lines.append("# folders = [\"INBOX\", \"Sent\"]     # no Sent folder was found: name yours here, or your")
            lines.append("#                                   # own messages (and so your outreach) are not counted")
        else:
            where = found.all_mail if found.gmail and found.all_mail else f"INBOX and {found.sent}"
            lines.append(f"# folders = [...]                  # default, found on the server: {where}")
    lines += [
        "",
        "[reminders]",
        "thank_you_within_hours = 24            # a thank-you is owed this long after a reply or a meeting",
        "follow_up_after_business_days = 7      # follow up when there is no answer after this many business days",
        "max_unanswered = 3                     # the first message and two follow-ups, then stop",
        "check_in_after_days = 90               # check in with people you have not talked to for this long",
        "",
        "[sync]",
        "interval_minutes = 10                  # how often `syncagent run` polls the mailbox",
        "",
        "[digest]",
        'weekday = "monday"                     # the weekly digest, written by `syncagent run`',
        'time = "08:00"',
        'output_dir = "~/.local/share/syncagent/digests"',
        "",
    ]
    return "\n".join(lines)


def check_target(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; pass --force to replace it (the old file is kept as {path.name}.bak), "
                          "or --config PATH to write another file.")


def write(path: Path, text: str, force: bool = False) -> Path:
    """Validate ``text`` as a config, then write it to ``path`` mode 0600 (keeping a .bak with --force)."""
    import tomllib

    from syncagent import config

    config.parse(tomllib.loads(text), path)  # never write a file that would not load
    check_target(path, force)
    from syncagent.files import private_dir, write_private

    private_dir(path.parent)
    try:
        os.chmod(path.parent, 0o700) if path.parent == Path("~/.config/syncagent").expanduser() else None
    except OSError:
        pass
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        os.replace(path, backup)
        os.chmod(backup, 0o600)
    return write_private(path, text)


def keyring_problem() -> str | None:
    """Why the system keyring cannot hold the password here, or None when a store/read/delete round trip works."""
    import secrets as tokens

    from syncagent.secrets import KEYRING_SERVICE

    try:
        import keyring
        from keyring.backends import fail, null

        backend = keyring.get_keyring()
        if isinstance(backend, (fail.Keyring, null.Keyring)) or getattr(backend, "backends", None) == []:
            return "no keyring backend is installed or running"
        probe_user, token = f"syncagent-probe-{tokens.token_hex(4)}", tokens.token_hex(16)
        keyring.set_password(KEYRING_SERVICE, probe_user, token)
        try:
            if keyring.get_password(KEYRING_SERVICE, probe_user) != token:
                return "it did not give back what was stored"
        finally:
            keyring.delete_password(KEYRING_SERVICE, probe_user)
    except Exception as exc:  # backends fail in their own ways (D-Bus, a locked wallet, a missing daemon)
        return f"{exc.__class__.__name__}: {exc}".rstrip(": ")
    return None


def store_in_keyring(username: str, password: str) -> None:
    """Save the password in the system keyring under the service syncagent reads."""
    from syncagent.secrets import KEYRING_SERVICE

    try:
        import keyring
        from keyring.errors import KeyringError

        keyring.set_password(KEYRING_SERVICE, username, password)
    except (ImportError, KeyringError, RuntimeError) as exc:
        raise ConfigError(f"The system keyring could not store the password ({exc}); use --password-command or "
                          "--password-env instead.") from None
