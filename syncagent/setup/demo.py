"""The whole pipeline on the bundled sample mailbox, in its own directory.

``run()`` writes a demo config under ``paths.demo_dir()`` (an mbox account that
points at the packaged sample), imports the sample contacts, syncs, and computes
the ledger, the reminders and the digest at a fixed instant (the sample's
reference date), so the result is the same on every machine and every run.
It never reads or writes the user's own config or database.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from syncagent import paths
from syncagent.files import private_dir, write_private

log = logging.getLogger(__name__)

# The sample's reference instant (syncagent.setup.sample.generate.REFERENCE_NOW): Friday 16:00 in New York.
DEMO_NOW = datetime(2026, 11, 13, 21, 0, tzinfo=timezone.utc)
DEMO_TIMEZONE = "America/New_York"
DEMO_ADDRESSES = ("alex.morgan@example.com", "alex@alexmorgan.test")
ACCOUNT = "sample"


@dataclass
class DemoResult:
    directory: Path
    config_path: Path
    database: Path
    now: datetime
    imported: str
    sync_lines: list[str]
    contacts: int
    stats: dict  # syncagent.pipeline.stats.report(..., by="segment"): the numbers `syncagent stats --by segment` prints
    reminders: list[dict]
    digest_paths: list[Path]
    responsiveness: dict[str, int] = field(default_factory=dict)  # class -> contacts, from contact_summary
    companies: list[dict] = field(default_factory=list)  # the `companies` view
    holidays: str | None = None  # the holiday region and the next holiday, as `doctor` says it
    what_works: list[dict] = field(default_factory=list)  # the stored buckets of the user's asks, per dimension


def sample_data() -> Path:
    """The packaged sample as a real directory (copied into the demo directory if packed in a zip)."""
    data = resources.files("syncagent.setup.sample") / "data"
    if isinstance(data, Path) and (data / "contacts.csv").is_file():
        return data
    target = paths.demo_dir() / "sample"  # e.g. a zipped install: copy it out once
    for folder, names in (("", ["contacts.csv"]), ("mail", ["INBOX.mbox", "Sent.mbox"])):
        for name in names:
            src = data / folder / name if folder else data / name
            dst = target / folder / name
            private_dir(dst.parent)
            content = src.read_bytes()
            if not dst.exists() or dst.read_bytes() != content:
                write_private(dst, content)
    return target


def config_text(directory: Path, sample: Path) -> str:
    """The demo's config: what a real one looks like, with an mbox account instead of IMAP."""
    return (
        "# The syncagent demo's own config: written by `syncagent demo`, rewritten on every run.\n"
        "# Your real config (~/.config/syncagent/config.toml) and database are never touched.\n"
        f'timezone = "{DEMO_TIMEZONE}"\n\n'
        "[database]\n"
        f"path = {_toml_str(directory / 'demo.db')}\n\n"
        "[[accounts]]\n"
        f'name = "{ACCOUNT}"\n'
        'kind = "mbox"\n'
        f"path = {_toml_str(sample / 'mail')}\n"
        f"addresses = [{', '.join(_toml_str(a) for a in DEMO_ADDRESSES)}]\n\n"
        "[reminders]\n"
        'holidays = "US"                         # business days skip US public holidays\n\n'
        "[digest]\n"
        f"output_dir = {_toml_str(directory / 'digests')}\n"
    )


def _toml_str(value) -> str:
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def write_config(directory: Path | None = None) -> Path:
    """Write (or refresh) the demo config, mode 0600, and return its path."""
    directory = directory or paths.demo_dir()
    private_dir(directory)
    path = directory / "config.toml"
    text = config_text(directory, sample_data())
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        write_private(path, text)
    return path


def run(now: datetime | None = None, progress=None, directory: Path | None = None) -> DemoResult:
    """Import, sync, compute the ledger, reminders and digest at ``now`` (default DEMO_NOW)."""
    from syncagent import config as config_mod
    from syncagent.contacts import importing as contacts_import
    from syncagent.digest import data as digest
    from syncagent.pipeline import reminders, stats
    from syncagent.pipeline.sync import sync_all
    from syncagent.store import db as store
    from syncagent.store.contacts import count_contacts
    from syncagent.store.summary import count_responsiveness

    now = now or DEMO_NOW
    directory = directory or paths.demo_dir()
    config_path = write_config(directory)
    config = config_mod.load(config_path)
    with _lock(config.database):
        db = store.open_db(config.database)
        try:
            imported = contacts_import.import_file(db, sample_data() / "contacts.csv")
            results = sync_all(db, config, progress=progress, now=now)
            failed = [r for r in results if not r.ok]
            if failed:
                from syncagent.errors import SyncagentError

                raise SyncagentError(f"The demo could not read the sample mailbox: {failed[0].error}")
            _set_clock(db, now)
            contacts = count_contacts(db)
            figures = stats.load(db)
            assert figures is not None  # the sync just above stored them
            report = stats.report(figures, by="segment")  # what the sync stored, as every surface reads it
            owed = reminders.listing(db, config, now)
            classes = count_responsiveness(db)
            from syncagent.pipeline import networking
            from syncagent.setup.doctor import check_holidays

            companies = networking.company_rows(db, config)
            holidays = check_holidays(config, now.astimezone(config.tz).date()).detail
            from syncagent.ledger.what_works import DIMENSIONS
            from syncagent.pipeline import outreach

            what_works = [{"dimension": d, "buckets": outreach.buckets(db, config, d)} for d in DIMENSIONS]
            result = digest.build(db, config, now=now)
        finally:
            db.conn.close()
    return DemoResult(
        directory=directory,
        config_path=config_path,
        database=config.database,
        now=now,
        imported=imported.summary(),
        sync_lines=[r.line() for r in results],
        contacts=contacts,
        stats=report,
        reminders=owed,
        digest_paths=[result.markdown_path, result.html_path],
        responsiveness=classes,
        companies=companies,
        holidays=holidays,
        what_works=what_works,
    )


def _set_clock(db, now: datetime) -> None:
    """Record the instant the demo is evaluated at, so Datasette's dated queries use it too."""
    from syncagent.serve.datasette import CLOCK_STATE
    from syncagent.store.state import save_state
    from syncagent.timeutil import iso

    save_state(db, CLOCK_STATE, iso(now))


def _lock(db_path: Path):
    """The write lock of the demo database, when the lock module is there."""
    try:
        from syncagent.store import lock
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return lock.held(db_path)


def reset(directory: Path | None = None) -> None:
    """Remove the demo directory (its database, config and digests)."""
    directory = directory or paths.demo_dir()
    if directory.exists():
        shutil.rmtree(directory)
