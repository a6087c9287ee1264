"""How fast is a sync, next to the fastest a client can possibly go against the same server?

Run by hand (never in the test suite): ``python bench/sync_bench.py --n 10000 [100000]``.
Needs Dovecot (``apt-get install dovecot-imapd``) and, for the peer line, mbsync (``isync``).

For each N it starts a private Dovecot (tests/dovecot.py), writes N generated
messages straight into the user's Maildir (bench/generate.py), registers 5,000
of the correspondents as contacts, then times, each step in a fresh subprocess
so each gets its own peak RSS (``os.wait4``):

  a   imapclient UID FETCH of the very items syncagent fetches, same batch size,
      nothing parsed or stored: the floor
  a'  the same with stdlib imaplib, responses left unparsed: the wire floor
  b   the initial sync (``sync.sync_account`` per account: fetch, parse, store),
      then the derived stages (``pipeline.after_sync``) timed apart
  B   the real CLI, ``syncagent sync``, of the same N on a fresh database with the
      same contacts: the whole process, derived stages included
  l   the initial sync of the same mail read straight from the Maildir Dovecot serves
      (a ``maildir`` account, as for a Takeout or mbsync backfill), in-process
  c   a sync with nothing new
  c'  the wire floor of c: what the server takes to answer stdlib imaplib's LOGIN and
      STATUS of each folder, so c - c' is the client's own part
  d   a sync after 100 new messages;  d1  after 1 new message (new mail is dated in the
      day before NOW, as a polling daemon finds it)
  dl  a sync after 100 late arrivals: old mail dated over the three years (an archive
      moved into INBOX), which moves every touched contact's history, not only its tail
  d'  the wire floor of d: what the server takes to hand 100 new messages to stdlib
      imaplib (STATUS, EXAMINE, UID FETCH), so d - d' is the client's own part
  e   ledger + reminders (``ledger_store.recompute`` + ``reminders.reconcile``)
  f   the weekly digest (``digest.build``)
  g   CLI start-up: ``syncagent --version`` and ``syncagent reminders`` (best of 5)
  r   the reading commands, whole process, best of 5: ``reminders``,
      ``reminders --json``, ``stats``, ``contacts list``, each also with ``--now``
  C   ``syncagent sync`` with nothing new, whole process;  D  after 100 new
  h   mbsync pulling the same mailbox (whole messages) to a local Maildir: a peer

and prints one table with a PASS/FAIL line per goal, every ratio taken within
the run. Every step evaluates at the same instant (``NOW``, just after the
generated mail ends): the CLI rows run ``syncagent.cli.main`` in a fresh
interpreter with its clock pinned there, so no step sees mail "arrive" because
the clock moved. ``--profile STEP`` runs one step under cProfile and prints the
top functions; its statistics are kept in a file for ``python -m pstats``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH), str(REPO / "tests")]

NOW = datetime(2027, 1, 2, 12, 0, tzinfo=timezone.utc)  # just after the generated mail ends
USER = "bench@example.test"
PW_ENV = "SYNCAGENT_BENCH_PW"
NOW_TEXT = "2027-01-02T12:00:00Z"
PAST_TEXT = "2026-06-01T12:00:00Z"  # the `--now` instant of the r rows: inside the mail, so it is evaluated afresh
GOALS = {  # step -> (limit, what): the earlier goals, kept so no figure quietly gets worse
    "initial_ratio": (1.5, "initial sync <= 1.5x floor (a)"),
    "c": (0.3, "no-change resync < 0.3 s"),
    "e": (2.0, "ledger+reminders < 2 s"),
    "g_version": (0.3, "`syncagent --version` < 0.3 s"),
    "rss": (300.0, "peak RSS < 300 MB"),
}
READERS = (("reminders", ["reminders"]), ("reminders --json", ["reminders", "--json"]),
           ("stats", ["stats"]), ("contacts list", ["contacts", "list"]))
# The whole-process CLI: the console script's own entry point, with the clock pinned at NOW.
CLI = ("import sys; from syncagent import timeutil; "
       f"timeutil.set_clock(lambda: timeutil.parse_iso({NOW_TEXT!r})); "
       "sys.argv[0] = 'syncagent'; from syncagent.cli import main; main()")
QUICK_SKIP = {"B", "l", "e", "stages", "h"}  # the slowest steps, which no goal at 1,000,000 needs


# --- steps, each run in its own subprocess ----------------------------------------

def _cfg(path):
    from syncagent import config

    return config.load(path)


def step_raw_imapclient(cfg) -> dict:
    import imaplib

    from imapclient import IMAPClient

    from syncagent.sources.imap.source import BASE_ITEMS

    acct = cfg.accounts[0]
    imaplib._MAXLINE = max(imaplib._MAXLINE, 100_000_000)  # imapclient reads through imaplib: see step_raw_imaplib
    c = IMAPClient(acct.host, port=acct.port, ssl=False, timeout=120)
    c.normalise_times = False
    c.login(acct.username, os.environ[PW_ENV])
    total = 0
    for folder in ("INBOX", "Sent"):
        c.select_folder(folder, readonly=True)
        uids = sorted(c.search(["UID", "1:*"]))
        for i in range(0, len(uids), acct.batch_size):
            total += len(c.fetch(uids[i:i + acct.batch_size], BASE_ITEMS))
    c.logout()
    return {"messages": total}


def step_raw_imaplib(cfg) -> dict:
    import imaplib

    from syncagent.sources.imap.source import BASE_ITEMS

    acct = cfg.accounts[0]
    # SEARCH ALL answers in one line: about 7 MB at 1,000,000 messages, past imaplib's 1 MB guard.
    imaplib._MAXLINE = max(imaplib._MAXLINE, 100_000_000)
    m = imaplib.IMAP4(acct.host, acct.port, timeout=120)
    m.login(acct.username, os.environ[PW_ENV])
    items = "(" + " ".join(BASE_ITEMS) + ")"
    total = 0
    for folder in ("INBOX", "Sent"):
        m.select(folder, readonly=True)
        uids = m.uid("SEARCH", None, "ALL")[1][0].split()
        for i in range(0, len(uids), acct.batch_size):
            chunk = b",".join(uids[i:i + acct.batch_size]).decode()
            data = m.uid("FETCH", chunk, items)[1]
            total += sum(1 for d in data if isinstance(d, tuple))
    m.logout()
    return {"messages": total}


def step_nochange_imaplib(cfg) -> dict:
    """What any client pays the server to learn that nothing changed: LOGIN, STATUS of every
    folder, LOGOUT, in stdlib imaplib."""
    import imaplib

    acct = cfg.accounts[0]
    m = imaplib.IMAP4(acct.host, acct.port, timeout=120)
    m.login(acct.username, os.environ[PW_ENV])
    for folder in ("INBOX", "Sent"):
        m.status(folder, "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)")
    m.logout()
    return {"messages": 0}


def step_new_imaplib(cfg) -> dict:
    """What any client pays the server to pick up new mail: LOGIN, STATUS of every folder,
    EXAMINE of those that changed, UID SEARCH and UID FETCH of the new (the items syncagent
    asks for), LOGOUT, in stdlib imaplib with nothing parsed. The UIDs already stored are
    read from the bench database, as a client keeps them."""
    import imaplib

    from syncagent.sources.imap.source import BASE_ITEMS

    acct = cfg.accounts[0]
    known = dict(sqlite3.connect(f"file:{cfg.database}?mode=ro", uri=True).execute(
        "SELECT folder, last_uid FROM folder_state WHERE account = ?", [acct.name]).fetchall())
    m = imaplib.IMAP4(acct.host, acct.port, timeout=120)
    m.login(acct.username, os.environ[PW_ENV])
    items = "(" + " ".join(BASE_ITEMS) + ")"
    total = 0
    for folder in ("INBOX", "Sent"):
        status = m.status(folder, "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)")[1][0]
        uidnext = int(status.split(b"UIDNEXT ")[1].split()[0].rstrip(b")"))
        first = int(known.get(folder) or 0) + 1
        if uidnext <= first:
            continue
        m.select(folder, readonly=True)
        uids = m.uid("SEARCH", None, f"UID {first}:*")[1][0].split()
        if uids:
            data = m.uid("FETCH", b",".join(uids).decode(), items)[1]
            total += sum(1 for d in data if isinstance(d, tuple))
    m.logout()
    return {"messages": total}


# Third-party modules the derived stages import on first use.
DERIVED_IMPORTS = ("icalendar", "holidays", "dateparser.search", "statistics", "zoneinfo")


def _warm_derived_imports() -> None:
    """Import every module the derived stages may load, before any clock starts.

    A daemon has them loaded after its first pass; a fresh step process would otherwise time
    loading icalendar, dateparser and the pipeline (1-2 s on a busy 2-CPU machine) as
    "derived stages". The sources are left alone, so the sync pass still counts what it did.
    """
    import importlib
    import pkgutil

    for pkg in ("pipeline", "ledger", "contacts"):
        module = importlib.import_module(f"syncagent.{pkg}")
        for info in pkgutil.walk_packages(module.__path__, f"{module.__name__}."):
            if info.name != "syncagent.pipeline.sync":
                importlib.import_module(info.name)
    for name in DERIVED_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def step_sync(cfg) -> dict:
    """The sync pass (what the floor compares to), then the derived stages, timed apart."""
    _warm_derived_imports()
    from syncagent.pipeline import stages as pipeline
    from syncagent.pipeline import sync
    from syncagent.sources import imap
    from syncagent.store import db as store

    imap.allow_worker_process()  # as `syncagent sync` and `run` do
    db = store.open_db(cfg.database)
    spent = _time_calls()
    t = time.perf_counter()
    new = sum(sync.sync_account(db, a).new_messages for a in cfg.accounts)
    t_sync = time.perf_counter() - t
    # Which half sets the step's peak: the sync pass (this process, and the parsing worker it
    # waited for) or the derived stages after it.
    rss_sync = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    pipeline.after_sync(db, cfg, now=NOW)
    total = time.perf_counter() - t
    errors = [r[0] for r in db.execute("SELECT error FROM sync_runs WHERE error IS NOT NULL").fetchall()]
    return {"seconds": t_sync, "messages": new, "derived": total - t_sync, "total": total, "errors": errors[-1:],
            "rss_sync_mb": round(rss_sync), "rss_worker_mb": round(rss_worker),
            **{k: round(v, 3) for k, v in spent.items()}}


def _time_calls() -> dict:
    """Wrap the three parts of a sync pass with timers: IMAP fetch (response reading included),
    header parsing, and saving; what is left is the source's own bookkeeping."""
    from imapclient import IMAPClient

    from syncagent.parse import headers as parse
    from syncagent.sources.imap import fetch as imap_fetch
    from syncagent.store import db as store

    spent = {"fetch": 0.0, "parse": 0.0, "save": 0.0}

    def timed(owner, name, key):
        inner = getattr(owner, name)

        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                spent[key] += time.perf_counter() - t
        setattr(owner, name, wrapper)

    timed(IMAPClient, "fetch", "fetch")
    timed(imap_fetch, "fetch", "fetch")  # the bulk path (its rare fallback to IMAPClient.fetch counts twice)
    timed(parse, "parse_message", "parse")
    timed(store, "save_batch", "save")
    return spent


def step_ledger(cfg) -> dict:
    from syncagent.pipeline import ledger as ledger_store
    from syncagent.pipeline import reminders
    from syncagent.store import db as store

    db = store.open_db(cfg.database)
    t = time.perf_counter()
    ledgers = ledger_store.recompute(db, NOW)
    t_ledger = time.perf_counter() - t
    counts = reminders.reconcile(db, cfg, NOW, ledgers=ledgers)  # as pipeline.after_sync does
    total = time.perf_counter() - t
    return {"seconds": total, "ledger": t_ledger, "reminders": total - t_ledger, "counts": counts}


def step_digest(cfg) -> dict:
    """The weekly digest as the daemon and `syncagent digest` make it: at the clock (pinned to NOW),
    from what the sync stored."""
    from syncagent import timeutil
    from syncagent.digest import data as digest
    from syncagent.store import db as store

    db = store.open_db(cfg.database)
    timeutil.set_clock(lambda: NOW)
    t = time.perf_counter()
    digest.build(db, cfg)
    return {"seconds": time.perf_counter() - t}


def step_contacts(cfg, contacts: int) -> dict:
    """Register the first ``contacts`` generated correspondents (setup, not timed as a goal)."""
    from generate import people

    from syncagent.contacts import book as contacts_mod
    from syncagent.store import db as store

    db = store.open_db(cfg.database)
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    for p in people(8000)[:contacts]:
        contacts_mod.upsert(conn, contacts_mod.ContactInput(name=p.name, addresses=[p.address]))
    conn.execute("COMMIT")
    return {"messages": contacts}


def step_stages(cfg) -> dict:
    """Each derived stage of pipeline.after_sync timed alone, on a database with nothing new."""
    from syncagent.pipeline import ledger as ledger_store
    from syncagent.pipeline import meetings, reminders, threads
    from syncagent.store import db as store

    db = store.open_db(cfg.database)
    out = {}
    for name, fn in (("threads", lambda: threads.rebuild(db)), ("meetings", lambda: meetings.rebuild(db, cfg.timezone)),
                     ("ledger", lambda: ledger_store.recompute(db, NOW)),
                     ("reminders", lambda: reminders.reconcile(db, cfg, NOW))):
        t = time.perf_counter()
        fn()
        out[name] = round(time.perf_counter() - t, 3)
    out["seconds"] = sum(out.values())
    return out


STEPS = {"stages": step_stages, "a": step_raw_imapclient, "a2": step_raw_imaplib, "d2": step_new_imaplib,
         "c2": step_nochange_imaplib,
         "b": step_sync, "l": step_sync,
         "c": step_sync, "d": step_sync,
         "d1": step_sync, "dl": step_sync, "e": step_ledger, "f": step_digest}


def child(name: str, config_path: str, profile: bool, contacts: int) -> None:
    cfg = _cfg(config_path)
    fn = (lambda c: step_contacts(c, contacts)) if name == "contacts" else STEPS[name]
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        t = time.perf_counter()
        out = prof.runcall(fn, cfg)
        out.setdefault("seconds", time.perf_counter() - t)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(20)
        # Kept for a closer look (callers, callees): python -m pstats <file>.
        dump = Path(tempfile.gettempdir()) / f"syncagent-bench-{name}.pstats"
        prof.dump_stats(dump)
        print(f"profile of {name} kept in {dump}", file=sys.stderr)
    else:
        t = time.perf_counter()
        out = fn(cfg)
        out.setdefault("seconds", time.perf_counter() - t)
    print(json.dumps(out, default=str))


# --- the parent: server, data, subprocesses, table -------------------------------

def run_child(args: list[str], env: dict, keep_stderr: bool = False) -> tuple[dict, float, float]:
    """Run a command; return (its JSON output or {}, wall seconds, peak RSS in MB from wait4).

    Linux carries a process's peak RSS across fork and exec, so every figure is at least this
    process's own RSS when it forked: the table prints that floor, which must stay small.

    ``keep_stderr``: collect the command's stderr instead of passing it through, so a failure
    names the command's own last line (the CLI's one-sentence error).
    """
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err if keep_stderr else None, env=env)
        out = proc.stdout.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            err.seek(0)
            said = err.read().decode(errors="replace").strip().splitlines()[-1:] if keep_stderr else []
            raise RuntimeError(f"`{' '.join(args[-3:])}` exited {proc.returncode}" + (f": {said[0]}" if said else ""))
    last = out.decode().strip().splitlines()[-1] if out.strip() else "{}"
    try:
        data = json.loads(last)
    except json.JSONDecodeError:
        data = {}
    return data, wall, usage.ru_maxrss / 1024


def _config(path: Path, work: Path, db_name: str, port: int, batch_size: int) -> Path:
    return _config_file(path, work, db_name,
                        f'kind = "imap"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
                        f'username = "{USER}"\npassword_env = "{PW_ENV}"\nbatch_size = {batch_size}\ntimeout = 300\n')


def _local_config(path: Path, work: Path, db_name: str, maildir: Path) -> Path:
    return _config_file(path, work, db_name, f'kind = "maildir"\npath = "{maildir}"\n')


def _config_file(path: Path, work: Path, db_name: str, account: str) -> Path:
    """A config with one account named "bench" (``account``: its kind and how to reach it)."""
    path.write_text(
        f'timezone = "America/New_York"\n[database]\npath = "{work}/{db_name}"\n'
        f'[digest]\noutput_dir = "{work}/digests"\n'
        f'[[accounts]]\nname = "bench"\n{account}addresses = ["me@example.test"]\n')
    return path


def _db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def _fill_maildir(maildir: Path, n: int, cache: Path | None, owner) -> str:
    """Write the N generated messages into ``maildir``; with a cache folder, generate them there once
    (``<cache>/maildir-N``) and hard-link them in, so a 1,000,000-message run does not regenerate."""
    from generate import write_maildir

    if cache is None:
        counts = write_maildir(maildir, n, owner=owner)
        return f"generated {counts}"
    kept, done = cache / f"maildir-{n}", cache / f"maildir-{n}.complete"
    said = f"hard-linked from {kept}"
    if not done.exists():
        shutil.rmtree(kept, ignore_errors=True)
        counts = write_maildir(kept, n)
        done.write_text(json.dumps(counts))
        said = f"generated {counts} into {kept}, then hard-linked"
    maildir.parent.mkdir(parents=True, exist_ok=True)
    # Message files are never rewritten in place (flags are renames, and nothing here changes any),
    # so the copy can share them; Dovecot's own index files are created in the copy only.
    subprocess.run(["cp", "-al", str(kept), str(maildir)], check=True)
    indexes = cache / f"maildir-{n}.index"
    if indexes.is_dir():  # Dovecot's indexes from an earlier run: copies, as Dovecot rewrites them in place
        subprocess.run(["cp", "-a", f"{indexes}/.", str(maildir)], check=True)
        said += ", with Dovecot's indexes from an earlier run"
    if owner:
        subprocess.run(["chown", "-R", f"{owner[0]}:{owner[1]}", str(maildir.parent)], check=True)
    return said


def _keep_indexes(maildir: Path, into: Path) -> None:
    """Save Dovecot's index files of a freshly indexed cached mailbox, so later runs skip the cold pass
    (at 1,000,000 messages it takes four to ten minutes).

    Only the folders' own directories are listed, never ``cur/``: a listing of 570,000 names would
    grow this process, and a child forked from it inherits its peak RSS as a floor (see ``run_child``).
    """
    if into.exists():
        return
    partial = into.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with os.scandir(maildir) as top:
        folders = [maildir] + [maildir / e.name for e in top if e.name.startswith(".") and e.is_dir()]
    for folder in folders:
        with os.scandir(folder) as entries:
            for e in entries:
                if e.name.startswith("dovecot") and e.is_file():
                    target = partial / folder.relative_to(maildir) / e.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(e.path, target)
    partial.rename(into)


def arrived(k: int, seed: int) -> list[bytes]:
    """``k`` new messages as a polling daemon finds them: dated in the day before NOW."""
    from generate import messages

    return [raw for _f, raw, _t in messages(k, seed=seed, start=NOW - timedelta(days=1), span=86400)]


def bench_one(n: int, work: Path, contacts: int, batch_size: int, profile: str | None, env: dict,
              skip: set[str], cache: Path | None = None, quick: bool = False) -> list[dict]:
    import dovecot as dv
    from generate import messages

    server = dv.Dovecot()
    rows: list[dict] = []
    try:
        t = time.perf_counter()
        owner = (server.mail_uid, server.mail_gid) if os.geteuid() == 0 else None
        maildir = server.dir / "home" / USER / "Maildir"
        said = _fill_maildir(maildir, n, cache, owner)
        print(f"[{n}] {said} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        server.start()
        cfg_path = _config(work / f"config-{n}.toml", work, f"bench-{n}.db", server.direct_port, batch_size)
        env = {**env, PW_ENV: dv.PASSWORD}
        me = [sys.executable, str(Path(__file__).resolve()), "--contacts", str(contacts)]
        cli = [sys.executable, "-c", CLI]
        mbox = dv.Mailbox(server, USER, dv.PASSWORD)

        def step(name: str, label: str, config: Path = cfg_path) -> dict:
            args = me + ["--config", str(config), "--step", name] + (["--profile", name] if profile == name else [])
            data, wall, rss = run_child(args, env)
            row = {"step": label, "key": name, "seconds": data.get("seconds", wall), "rss": rss,
                   "messages": data.get("messages"), "detail": {k: v for k, v in data.items()
                                                                if k not in ("seconds", "messages")}}
            rows.append(row)
            print(f"[{n}] {label}: {row['seconds']:.3f} s, {rss:.0f} MB {row['detail'] or ''}", file=sys.stderr)
            return row

        def whole(key: str, label: str, argv: list[str], times: int, before=None, messages_=None) -> dict:
            """The best wall time of ``times`` runs of a whole process (``before`` runs ahead of each, untimed)."""
            best, rss, err = None, 0.0, None
            for _ in range(times):
                if before:
                    before()
                try:
                    _d, wall, r = run_child(argv, env, keep_stderr=True)
                except RuntimeError as exc:
                    err = str(exc)
                    break
                best, rss = min(best or wall, wall), max(rss, r)
            row = {"step": label, "key": key, "seconds": None if err else best, "rss": rss,
                   "messages": messages_, "detail": {"error": err} if err else {}}
            rows.append(row)
            print(f"[{n}] {label}: {'n/a' if err else f'{best:.3f} s'}, {rss:.0f} MB {err or ''}", file=sys.stderr)
            return row

        t = time.perf_counter()
        # Dovecot builds its indexes and caches on first access: not timed (the quicker client does it).
        run_child(me + ["--config", str(cfg_path), "--step", "a2"], env)
        print(f"[{n}] Dovecot indexing (cold fetch): {time.perf_counter() - t:.1f} s", file=sys.stderr)
        if cache is not None:
            _keep_indexes(maildir, cache / f"maildir-{n}.index")
        # "floors": rerunning b (its memory, say) where the floors are known; its ratios are then n/a.
        if "floors" not in skip:
            step("a", "a  floor: imapclient UID FETCH, unparsed")
            step("a2", "a' wire floor: imaplib UID FETCH")
        run_child(me + ["--config", str(cfg_path), "--step", "contacts"], env)
        step("b", "b  initial sync (fetch+parse+store)")
        db_size = _db_bytes(work / f"bench-{n}.db")
        rows.append({"step": "database size after b", "key": "size", "seconds": None, "rss": 0.0,
                     "messages": n, "detail": {"bytes": db_size}})
        print(f"[{n}] database: {db_size / 1e6:.0f} MB", file=sys.stderr)
        if "rest" in skip:  # the floors and the initial sync only: what tuning the first sync needs
            return rows
        if "B" not in skip:
            cli_cfg = _config(work / f"config-{n}-cli.toml", work, f"bench-{n}-cli.db", server.direct_port, batch_size)
            run_child(me + ["--config", str(cli_cfg), "--step", "contacts"], env)
            whole("B", "B  `syncagent sync` whole process, initial N incl. derived stages",
                  cli + ["--config", str(cli_cfg), "sync"], 1, messages_=n)
            for leftover in work.glob(f"bench-{n}-cli.db*"):
                leftover.unlink()
        if "l" not in skip:
            local_cfg = _local_config(work / f"config-{n}-local.toml", work, f"bench-{n}-local.db", maildir)
            run_child(me + ["--config", str(local_cfg), "--step", "contacts"], env)
            step("l", "l  initial sync from the Maildir itself (local source)", local_cfg)
            for leftover in work.glob(f"bench-{n}-local.db*"):
                leftover.unlink()
        step("c", "c  no-change resync")
        step("c2", "c' wire floor of c: imaplib LOGIN, STATUS of each folder, LOGOUT")
        mbox.append_many("INBOX", arrived(100, seed=99))
        step("d", "d  resync after 100 new")
        mbox.append_many("INBOX", arrived(1, seed=98))
        step("d1", "d1 resync after 1 new")
        # The same count of old mail coming back (an archive moved into INBOX): dated over the
        # three years, so every contact's history and most weeks' figures move, not only the tail.
        mbox.append_many("INBOX", [raw for _f, raw, _t in messages(100, seed=89)])
        step("dl", "dl resync after 100 late arrivals (dated over the three years)")
        mbox.append_many("INBOX", arrived(100, seed=90))
        step("d2", "d' wire floor after 100 new: imaplib STATUS, EXAMINE, UID FETCH")
        run_child(me + ["--config", str(cfg_path), "--step", "c"], env)  # take them in, untimed
        if "e" not in skip:
            step("e", f"e  ledger + reminders ({contacts} contacts)")
        if "f" not in skip:
            step("f", "f  digest")
        if "stages" not in skip:
            step("stages", "   derived stages one by one (no change)")
        repeat, reads = (1, 1) if quick else (3, 5)
        exe = shutil.which("syncagent")
        base = [exe] if exe else [sys.executable, "-m", "syncagent"]
        for key, extra in (("g_version", ["--version"]), ("g_reminders", ["--config", str(cfg_path), "reminders"])):
            whole(key, f"g  `syncagent {' '.join(extra[-1:])}` (best of {reads})", base + extra, reads)
        for name, argv in READERS:
            whole(f"r:{name}", f"r  `syncagent {name}` (best of {reads})", cli + ["--config", str(cfg_path), *argv],
                  reads)
            whole(f"r:{name} --now", f"r  `syncagent {name} --now {PAST_TEXT}` (best of {reads})",
                  cli + ["--config", str(cfg_path), *argv, "--now", PAST_TEXT], reads)
        sync_cmd = cli + ["--config", str(cfg_path), "sync"]
        whole("C", f"C  `syncagent sync` whole process, nothing new (best of {repeat})", sync_cmd, repeat)
        seeds = iter(range(97, 97 - repeat, -1))
        whole("D", f"D  `syncagent sync` whole process, after 100 new (best of {repeat})", sync_cmd, repeat,
              before=lambda: mbox.append_many("INBOX", arrived(100, seed=next(seeds))))
        if "h" not in skip and shutil.which("mbsync"):
            rows.append(_mbsync(server, work, n, env))
    finally:
        server.close()
    return rows


def _mbsync(server, work: Path, n: int, env: dict) -> dict:
    import dovecot as dv

    local = work / f"mbsync-{n}"
    local.mkdir()
    rc = work / f"mbsyncrc-{n}"
    rc.write_text(
        f"IMAPAccount bench\nHost 127.0.0.1\nPort {server.direct_port}\nUser {USER}\nPass {dv.PASSWORD}\n"
        "SSLType None\nAuthMechs LOGIN\n\nIMAPStore remote\nAccount bench\n\n"
        f"MaildirStore local\nPath {local}/\nInbox {local}/INBOX\nSubFolders Verbatim\n\n"
        "Channel bench\nFar :remote:\nNear :local:\nPatterns INBOX Sent\nCreate Near\nSync Pull\n"
        "SyncState *\n")
    t = time.perf_counter()
    proc = subprocess.Popen(["mbsync", "-q", "-c", str(rc), "-a"], env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    ok = os.waitstatus_to_exitcode(status) == 0
    got = sum(len(os.listdir(d)) for d in local.rglob("cur"))
    return {"step": "h  peer: mbsync pull (whole messages)", "key": "h", "seconds": wall if ok else None,
            "rss": usage.ru_maxrss / 1024, "messages": got, "detail": {}}


def _verdict(ok: bool | None, what: str, value: float | None, unit: str = "") -> str:
    word = "n/a " if ok is None or value is None else ("PASS" if ok else "FAIL")
    return f"{word}  {what}: {'n/a' if value is None else f'{value:.3f}{unit}'}"


def table(n: int, rows: list[dict]) -> tuple[str, list[str]]:
    by = {r["key"]: r for r in rows}

    def sec(key: str) -> float | None:
        return by[key]["seconds"] if key in by else None

    def detail(key: str, name: str) -> float | None:
        return by[key]["detail"].get(name) if key in by else None

    a, a2, h = sec("a"), sec("a2"), sec("h")
    lines = [f"N = {n:,} messages, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
             f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
             f"{_dovecot_version()}", "",
             f"(the benchmark's own process peaked at {_own_rss():.0f} MB: no RSS figure below can read less)", "",
             "| step | seconds | messages/s | x floor (a) | x wire (a') | x peer (h) | peak RSS MB |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["key"] == "size":
            continue
        s = r["seconds"]
        m = r["messages"] if r["key"] in ("a", "a2", "b", "B", "h", "l") else None
        rate = f"{m / s:,.0f}" if m and s else ""
        ratios = [f"{s / x:.2f}" if s and x and r["key"] in ("b", "B", "h") else "" for x in (a, a2, h)]
        if r["key"] == "h":
            ratios[2] = ""
        secs = "n/a" if s is None else f"{s:.3f}"
        label = r["step"]
        if r["key"] == "stages":
            label += ": " + ", ".join(f"{k} {v:.2f}" for k, v in r["detail"].items())
        lines.append(f"| {label} | {secs} | {rate} | {' | '.join(ratios)} | {r['rss']:.0f} |")
        if r["key"] == "b" and "fetch" in r["detail"]:
            d = r["detail"]
            lines.append(f"| &nbsp;&nbsp;b = IMAP fetch {d['fetch']:.2f} + parse {d['parse']:.2f} + save {d['save']:.2f} "
                         f"+ other {s - d['fetch'] - d['parse'] - d['save']:.2f} | | | | | | |")
        for error in r["detail"].get("errors") or ([r["detail"]["error"]] if r["detail"].get("error") else []):
            lines.append(f"| &nbsp;&nbsp;{r['key']} FAILED: {str(error)[:300]} | | | | | | |")
        if r["key"] in ("b", "l", "c", "d", "d1", "dl") and "derived" in r["detail"]:
            lines.append(f"| &nbsp;&nbsp;{r['key']}+ derived stages (threads, meetings, ledger, reminders) "
                         f"| {r['detail']['derived']:.3f} | | | | | |")
    size = by["size"]["detail"]["bytes"] if "size" in by else None
    if size:
        lines.append(f"| database after b: {size / 1e6:,.0f} MB = {size / 1e6 / (n / 100_000):,.0f} MB "
                     "per 100,000 messages | | | | | | |")

    def ratio(x: float | None, y: float | None) -> float | None:
        return x / y if x and y else None

    def below(value: float | None, limit: float) -> bool | None:
        return None if value is None else value < limit

    def at_most(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    b, big_b, c_d, d_d, d1_d = sec("b"), sec("B"), detail("c", "derived"), detail("d", "derived"), detail("d1", "derived")
    whole_delta = sec("D") - sec("C") if sec("D") is not None and sec("C") is not None else None
    measured = [r["rss"] for r in rows if r["key"] != "size"]
    rss = max(measured) if measured else None
    heaviest = max((r for r in rows if r["key"] != "size"), key=lambda r: r["rss"])["key"] if measured else "-"
    verdicts = [
        "Issue 16 (goals 1-3 are set at 100,000 messages, goal 4 at 1,000,000):",
        _verdict(below(d_d, 0.3), "goal 1  derived stages after 100 new (d+) < 0.3 s", d_d, " s"),
        _verdict(below(d1_d, 0.1), "goal 1  derived stages after 1 new (d1+) < 0.1 s", d1_d, " s"),
        _verdict(below(whole_delta, 0.5), "goal 1  whole-process `sync` after 100 new minus nothing new (D - C) < 0.5 s",
                 whole_delta, " s"),
        f"info  goal 1  of d's sync pass {_s(sec('d'))}, the server's floor (d') is {_s(sec('d2'))}",
        f"info  goal 1  derived stages after 100 late arrivals dated over the years (dl+): "
        f"{_s(detail('dl', 'derived'))}",
        _verdict(at_most(ratio(b, a2), 4.0), "goal 2  in-process fetch+parse+save (b) <= 4x wire floor (a')",
                 ratio(b, a2), "x"),
        _verdict(at_most(ratio(big_b, a), 1.5),
                 "goal 2  whole-process `syncagent sync` of N incl. derived (B) <= 1.5x floor (a)", ratio(big_b, a), "x"),
    ]
    for name, _argv in READERS:
        verdicts.append(_verdict(below(sec(f"r:{name}"), 0.3), f"goal 3  `syncagent {name}` < 0.3 s",
                                 sec(f"r:{name}"), " s"))
        verdicts.append(_verdict(below(sec(f"r:{name} --now"), 1.5), f"goal 3  `syncagent {name} --now` < 1.5 s",
                                 sec(f"r:{name} --now"), " s"))
    verdicts += [
        _verdict(below(rss, 300.0), f"goal 4  peak RSS of every step < 300 MB (largest: {heaviest})", rss, " MB"),
        _verdict(below(sec("c"), 0.3), "goal 4  no-change resync (c) < 0.3 s", sec("c"), " s"),
        f"info  goal 4  of c {_s(sec('c'))}, the server's floor (c') is {_s(sec('c2'))}",
        _verdict(below(d_d, 0.3), "goal 4  derived stages after 100 new (d+) < 0.3 s", d_d, " s"),
        f"info  goal 4  derived stages after 100 late arrivals (dl+): {_s(detail('dl', 'derived'))}",
        f"info  goal 4  database size: {size / 1e6 / (n / 100_000):,.0f} MB per 100,000 messages" if size
        else "n/a   goal 4  database size",
        f"info  goal 5  against mbsync's full pull (h): b {_x(ratio(b, h))}, B (whole process) {_x(ratio(big_b, h))}",
        "Earlier goals (issue 11: these figures must not get worse):",
    ]
    checks = [("initial_ratio", ratio(b, a)), ("c", sec("c")), ("e", sec("e")), ("g_version", sec("g_version")),
              ("rss", max((by[k]["rss"] for k in ("b", "c", "d", "e", "f") if k in by), default=None))]
    for key, value in checks:
        limit, what = GOALS[key]
        verdicts.append(_verdict(at_most(value, limit), what, value))
    c_total = detail("c", "total")
    verdicts.append(_verdict(below(c_total, 0.3), "no-change `sync` incl. derived stages < 0.3 s", c_total))
    if c_d is not None:
        verdicts.append(f"info  no-change derived stages (c+): {c_d:.3f} s")
    return "\n".join(lines), verdicts


def _own_rss() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f} s"


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _dovecot_version() -> str:
    import dovecot as dv

    try:
        out = subprocess.run([dv.DOVECOT, "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "Dovecot ?"
    return f"Dovecot {out.split()[0]}" if out.strip() else "Dovecot ?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10_000])
    ap.add_argument("--contacts", type=int, default=5_000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--profile", metavar="STEP", help="run this step (a, a2, b, c, d, d1, dl, e, f) under cProfile")
    ap.add_argument("--json", type=Path, help="also write the raw rows here")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (config, database) for more runs")
    ap.add_argument("--no-peer", action="store_true", help="skip the mbsync line (h), the slowest step")
    ap.add_argument("--skip", default="", help="steps to leave out, comma-separated (B, l, e, f, stages, h; floors: a and a'; rest: everything after b)")
    ap.add_argument("--quick", action="store_true",
                    help=f"leave out the slowest steps no goal at 1,000,000 needs ({', '.join(sorted(QUICK_SKIP))}) "
                         "and time every whole-process row once instead of best of 3 or 5")
    ap.add_argument("--maildir-cache", type=Path, metavar="DIR",
                    help="generate each N's Maildir once into DIR/maildir-N and hard-link it into later runs")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        child(args.step, args.config, args.profile == args.step, args.contacts)
        return
    skip = {s.strip() for s in args.skip.split(",") if s.strip()} | (QUICK_SKIP if args.quick else set())
    if args.no_peer:
        skip.add("h")
    if args.maildir_cache:
        args.maildir_cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"syncagent at {commit or '?'}{' (skipping ' + ', '.join(sorted(skip)) + ')' if skip else ''}\n")
    all_rows = {}
    for n in args.n:
        work = Path(tempfile.mkdtemp(prefix=f"syncagent-bench-{n}-"))
        try:
            rows = bench_one(n, work, args.contacts, args.batch_size, args.profile, env, skip,
                             cache=args.maildir_cache, quick=args.quick)
        finally:
            if args.keep:
                print(f"kept {work} (config-{n}.toml, bench-{n}.db)", file=sys.stderr)
            else:
                shutil.rmtree(work, ignore_errors=True)
        all_rows[n] = rows
        text, verdicts = table(n, rows)
        print(text + "\n\n" + "\n".join(verdicts) + "\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps(all_rows, indent=1, default=str))


if __name__ == "__main__":
    main()
