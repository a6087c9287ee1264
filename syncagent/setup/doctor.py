"""`syncagent doctor`: check the set-up piece by piece and say what to fix.

Each check returns one ``Check`` (ok, a problem with its fix, or a note that
needs no action). Checks never write: the database is opened without
migrating, the mailbox read-only (login, capabilities, folder list), and Gmail
tokens are read from disk without refreshing them.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from syncagent import paths
from syncagent.errors import SyncagentError

log = logging.getLogger(__name__)

OK, PROBLEM, NOTE = "ok", "problem", "note"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | problem | note
    detail: str

    def line(self) -> str:
        mark = {OK: "ok ", PROBLEM: "!! ", NOTE: "-- "}[self.status]
        return f"{mark} {self.name}: {self.detail}"


def run(config_path=None, *, network: bool = True) -> list[Check]:
    """Every check, in the order a person would fix things."""
    from syncagent import config as config_mod

    checks: list[Check] = []
    try:
        cfg = config_mod.load(config_path)
    except SyncagentError as exc:
        checks.append(Check("config", PROBLEM, str(exc)))
    else:
        n = len(cfg.accounts)
        where = cfg.path
        if n == 0:
            checks.append(Check("config", PROBLEM, f"{where} loads but has no [[accounts]]; add one (see "
                                                   "config.example.toml) or run `syncagent init --force`."))
        else:
            checks.append(Check("config", OK, f"{where} loads ({n} account{'s' if n != 1 else ''})"))
        checks += _permissions(where)
        if cfg.reminders.holidays:
            checks.append(check_holidays(cfg))
        for account in cfg.accounts:
            checks.append(check_account(account, network=network))
        checks += check_database(cfg)
    checks.append(check_systemd())
    checks.append(check_datasette())
    return checks


def check_holidays(cfg, today=None) -> Check:
    """Which public holidays business days skip, and the next one (in the user's zone)."""
    from syncagent.ledger.businessdays import next_holiday
    from syncagent.timeutil import utcnow

    region = cfg.reminders.holidays
    today = today or utcnow().astimezone(cfg.tz).date()
    upcoming = next_holiday(region, today)
    nxt = f"; next: {upcoming[1]} on {upcoming[0]:%a} {upcoming[0].day} {upcoming[0]:%b %Y}" if upcoming else ""
    return Check("holidays", OK, f"business days skip the public holidays of {region}{nxt}")


def _permissions(path: Path | None) -> list[Check]:
    if path is None or not path.exists():
        return []
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return [Check("config file", PROBLEM, f"{path} is readable by other users (mode {mode:o}); "
                                              f"run `chmod 600 {path}`.")]
    return []


# --- accounts ----------------------------------------------------------------

def check_account(account, *, network: bool = True) -> Check:
    name = f"account {account.name}"
    try:
        if account.kind in ("mbox", "maildir"):
            return _local(account, name)
        if account.kind == "gmail":
            return _gmail(account, name)
        if not network:
            return Check(name, NOTE, "not contacted (--offline)")
        return _imap(account, name)
    except SyncagentError as exc:
        return Check(name, PROBLEM, str(exc))


def _local(account, name: str) -> Check:
    path = Path(account.path)
    if not path.exists():
        return Check(name, PROBLEM, f"the {account.kind} path {path} does not exist; fix `path` in the config.")
    return Check(name, OK, f"{account.kind} at {path}")


def _imap(account, name: str) -> Check:
    from syncagent.setup import init as init_wizard

    if account.auth == "oauth2" and account.provider == "microsoft":
        from syncagent.sources.imap import microsoft as ms

        if not ms.token_file(account).exists():
            return Check(name, PROBLEM, f"there is no Microsoft token at {ms.token_file(account)}; run "
                                        f"`syncagent auth microsoft {account.name}`.")
    elif account.auth == "oauth2":
        token = _gmail_token(account)
        if token is not None:
            return token
    found = init_wizard.probe(account)
    caps = [c for c in init_wizard.INTERESTING_CAPS if found.has(c)]
    missing = [c for c in ("CONDSTORE", "IDLE", "SPECIAL-USE") if not found.has(c)]
    if account.folders:
        names = {f.upper() if f.upper() == "INBOX" else f for f in found.folders}
        absent = [f for f in account.folders if (f.upper() if f.upper() == "INBOX" else f) not in names]
        if absent:
            listed = ", ".join(repr(f) for f in sorted(found.folders))
            quoted = " and ".join(repr(f) for f in absent)
            one = len(absent) == 1
            return Check(name, PROBLEM, f"the folder{'' if one else 's'} {quoted} named in `folders` "
                                        f"{'does' if one else 'do'} not exist on {account.host}, so "
                                        f"{'it is' if one else 'they are'} skipped at every sync; fix the name "
                                        f"or remove {'it' if one else 'them'} from `folders` of account "
                                        f"{account.name!r} (the folders there are: {listed}).")
        folders = ", ".join(account.folders)
    elif found.gmail and found.all_mail:
        folders = found.all_mail
    elif found.sent and found.sent_by_flag:
        folders = f"INBOX, {found.sent}"
    elif found.sent:
        return Check(name, PROBLEM, f"{account.host} marks no folder as Sent, so only INBOX is read and your own "
                                    f"messages are missed; add folders = [\"INBOX\", \"{found.sent}\"] to the "
                                    f"account {account.name!r}.")
    else:
        return Check(name, PROBLEM, f"{account.host} has no Sent folder, so only INBOX is read and your own "
                                    "messages are missed; name the folder where your sent mail is kept in "
                                    f"`folders` of account {account.name!r}.")
    detail = f"logged in to {account.host}:{account.port} as {account.username}; folders {folders}; " \
             f"capabilities {', '.join(caps) or 'none of note'}"
    if missing:
        detail += f" (without {', '.join(missing)}: works, with more round trips)"
    return Check(name, OK, detail)


def _gmail(account, name: str) -> Check:
    secret = account.client_secret_file
    if secret is None or not Path(secret).is_file():
        return Check(name, PROBLEM, f"the OAuth client file {secret} does not exist; download the Desktop-app client "
                                    "JSON from Google Cloud to that path (`client_secret_file`).")
    token = _gmail_token(account)
    if token is not None:
        return token
    return Check(name, OK, f"Gmail API token at {_token_path(account)} (refreshed at the next sync if expired)")


def _token_path(account) -> Path:
    return Path(account.token_file or paths.config_dir() / f"{account.name}.token.json").expanduser()


def _gmail_token(account) -> Check | None:
    """A problem with the saved OAuth token, or None when it looks usable (no network call)."""
    name = f"account {account.name}"
    path = _token_path(account)
    again = f"run `syncagent auth gmail {account.name}`"
    if not path.exists():
        return Check(name, PROBLEM, f"there is no Gmail token at {path}; {again}.")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Check(name, PROBLEM, f"the Gmail token {path} cannot be read; {again} again.")
    if not isinstance(info, dict) or not (info.get("refresh_token") or info.get("token")):
        return Check(name, PROBLEM, f"the Gmail token {path} holds no token; {again} again.")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return Check(name, PROBLEM, f"the Gmail token {path} is readable by other users (mode {mode:o}); "
                                    f"run `chmod 600 {path}`.")
    if not info.get("refresh_token"):
        return Check(name, PROBLEM, f"the Gmail token {path} cannot be refreshed (no refresh token); {again} again.")
    return None


# --- database ----------------------------------------------------------------

def check_database(cfg) -> list[Check]:
    from syncagent.store import db as store
    from syncagent.store.migrations import migrations

    path = Path(cfg.database)
    if not path.exists():
        return [Check("database", NOTE, f"{path} does not exist yet; `syncagent sync` creates it.")]
    out = []
    why = store.read_only_reason(path)
    try:
        db = store.open_for_reading(path, migrate=False) if why else store.open_db(path, migrate=False)
    except SyncagentError as exc:
        return [Check("database", PROBLEM, str(exc))]
    if why:
        out.append(Check("database", PROBLEM, store.read_only_sentence(
            path, why, "sync again (until then syncs fail; reminders, stats and contacts list still work)")))
    try:
        version = store.schema_version(db)
        pending = [m.name for m in migrations.pending(db)]
        size = _size(path)
        if pending:
            out.append(Check("database", NOTE, f"{path} ({size}), schema {version or 'empty'}; the next sync "
                                               f"upgrades it to {pending[-1]}"))
        else:
            out.append(Check("database", OK, f"{path} ({size}), schema {version}"))
        if path.stat().st_mode & 0o077:
            out.append(Check("database file", PROBLEM, f"{path} is readable by other users; run `chmod 600 {path}`."))
        out += _last_syncs(db, cfg)
        out += _contacts(db, cfg)
        out += _own_mail(db, cfg)
    except sqlite3.DatabaseError as exc:
        out.append(Check("database", PROBLEM, str(store.unusable(path, exc))))
    finally:
        db.conn.close()
    return out


def _size(path: Path) -> str:
    n: float = path.stat().st_size + sum(p.stat().st_size for p in (path.with_name(path.name + "-wal"),) if p.exists())
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def _last_syncs(db, cfg) -> list[Check]:
    from syncagent.store.db import has_tables
    from syncagent.store.runs import load_last_run

    if not has_tables(db, "sync_runs"):
        return []
    out = []
    for account in cfg.accounts:
        row = load_last_run(db, account.name)
        name = f"last sync {account.name}"
        if row is None:
            out.append(Check(name, NOTE, "never synced; run `syncagent sync`."))
            continue
        started, finished, status, new, error, notes = row
        when = f"{_ago(finished or started)}"
        if status == "ok" and notes:
            out.append(Check(name, NOTE, f"{when}, {new or 0} new messages, with a warning: "
                                         + " ".join(notes.splitlines())))
        elif status == "ok":
            out.append(Check(name, OK, f"{when}, {new or 0} new messages"))
        elif status == "running":
            out.append(Check(name, NOTE, f"running since {started} (or stopped without finishing)"))
        elif status == "interrupted":
            out.append(Check(name, NOTE, f"{when}, interrupted; the next sync continues from there"))
        else:
            out.append(Check(name, PROBLEM, f"{when} failed: {error or status}"))
    return out


def _contacts(db, cfg) -> list[Check]:
    """The ledger counts only tracked contacts: an empty book makes every figure zero, silently."""
    from syncagent.store.contacts import count_contacts
    from syncagent.store.db import has_tables

    if not has_tables(db, "contacts", "message_addresses"):
        return []
    n = count_contacts(db)
    if n:
        return [Check("contacts", OK, f"{n} tracked")]
    from syncagent.contacts.suggest import untracked_hint

    return [Check("contacts", NOTE, untracked_hint(db, [a for acc in cfg.accounts for a in acc.addresses]) or "")]


def _own_mail(db, cfg) -> list[Check]:
    from syncagent.pipeline.sync import own_mail_warning
    from syncagent.store.db import has_tables

    if not has_tables(db, "messages"):
        return []
    out = []
    for account in cfg.accounts:
        warning = own_mail_warning(db, account)
        if warning:
            out.append(Check(f"addresses {account.name}", PROBLEM, warning.split(": ", 1)[1]))
    return out


def _ago(text: str | None) -> str:
    if not text:
        return "at an unknown time"
    from syncagent.timeutil import parse_iso

    try:
        seconds = (datetime.now(timezone.utc) - parse_iso(text)).total_seconds()
    except ValueError:
        return text
    if seconds < 120:
        return f"{text} (just now)"
    if seconds < 7200:
        return f"{text} ({seconds / 60:.0f} minutes ago)"
    if seconds < 172800:
        return f"{text} ({seconds / 3600:.0f} hours ago)"
    return f"{text} ({seconds / 86400:.0f} days ago)"


# --- the service and Datasette -------------------------------------------------

def check_systemd() -> Check:
    unit = paths.systemd_unit()
    if not unit.exists():
        return Check("systemd unit", NOTE, f"not installed at {unit} (optional: it runs `syncagent run` "
                                           "in the background; see the README)")
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return Check("systemd unit", NOTE, f"installed at {unit}; systemctl is not available to check it")
    try:
        proc = subprocess.run([systemctl, "--user", "is-active", "syncagent.service"], capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("systemd unit", NOTE, f"installed at {unit}; systemctl could not be asked ({exc})")
    state = (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr).strip() else "unknown"
    if state == "active":
        return Check("systemd unit", OK, f"{unit} is active")
    if "bus" in state.lower() or "connect" in state.lower():
        return Check("systemd unit", NOTE, f"installed at {unit}; no user systemd session to ask ({state})")
    return Check("systemd unit", PROBLEM, f"{unit} is installed but {state}; run "
                                          "`systemctl --user enable --now syncagent` and read "
                                          "`journalctl --user -u syncagent` if it stops.")


def check_datasette() -> Check:
    try:
        from importlib.metadata import PackageNotFoundError, version

        v = version("datasette")
        import datasette  # noqa: F401  (importable, not only installed)
    except (ImportError, PackageNotFoundError):
        return Check("datasette", PROBLEM, "Datasette is not installed, so `syncagent serve` cannot run; "
                                           "run `pip install datasette`.")
    except Exception as exc:  # a broken install fails on import in many ways
        return Check("datasette", PROBLEM, f"Datasette fails to import ({exc.__class__.__name__}: {exc}); "
                                           "reinstall it with `pip install --force-reinstall datasette`.")
    return Check("datasette", OK, f"version {v}")

