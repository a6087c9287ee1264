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
  c   a sync with nothing new
  d   a sync after 100 new messages
  e   ledger + reminders (``ledger_store.recompute`` + ``reminders.reconcile``)
  f   the weekly digest (``digest.build``)
  g   CLI start-up: ``syncagent --version`` and ``syncagent reminders`` (best of 5)
  h   mbsync pulling the same mailbox (whole messages) to a local Maildir: a peer

and prints a table with PASS/FAIL against the goals. ``--profile STEP`` runs one
step under cProfile and prints the top functions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH), str(REPO / "tests")]

NOW = datetime(2027, 1, 2, 12, 0, tzinfo=timezone.utc)  # just after the generated mail ends
USER = "bench@example.test"
PW_ENV = "SYNCAGENT_BENCH_PW"
GOALS = {  # step -> (limit, what)
    "initial_ratio": (1.5, "initial sync <= 1.5x floor (a)"),
    "c": (0.3, "no-change resync < 0.3 s"),
    "e": (2.0, "ledger+reminders < 2 s"),
    "g_version": (0.3, "`syncagent --version` < 0.3 s"),
    "rss": (300.0, "peak RSS < 300 MB"),
}


# --- steps, each run in its own subprocess ----------------------------------------

def _cfg(path):
    from syncagent import config

    return config.load(path)


def step_raw_imapclient(cfg) -> dict:
    from imapclient import IMAPClient

    from syncagent.sources.imap.source import BASE_ITEMS

    acct = cfg.accounts[0]
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


def step_sync(cfg) -> dict:
    """The sync pass (what the floor compares to), then the derived stages, timed apart."""
    from syncagent.pipeline import stages as pipeline
    from syncagent.pipeline import sync
    from syncagent.store import db as store

    db = store.open_db(cfg.database)
    spent = _time_calls()
    t = time.perf_counter()
    new = sum(sync.sync_account(db, a).new_messages for a in cfg.accounts)
    t_sync = time.perf_counter() - t
    pipeline.after_sync(db, cfg, now=NOW)
    total = time.perf_counter() - t
    errors = [r[0] for r in db.execute("SELECT error FROM sync_runs WHERE error IS NOT NULL").fetchall()]
    return {"seconds": t_sync, "messages": new, "derived": total - t_sync, "total": total, "errors": errors[-1:],
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
    from syncagent.digest import data as digest
    from syncagent.store import db as store

    db = store.open_db(cfg.database)
    t = time.perf_counter()
    digest.build(db, cfg, now=NOW)
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


STEPS = {"stages": step_stages, "a": step_raw_imapclient, "a2": step_raw_imaplib, "b": step_sync, "c": step_sync, "d": step_sync,
         "e": step_ledger, "f": step_digest}


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
    else:
        t = time.perf_counter()
        out = fn(cfg)
        out.setdefault("seconds", time.perf_counter() - t)
    print(json.dumps(out, default=str))


# --- the parent: server, data, subprocesses, table -------------------------------

def run_child(args: list[str], env: dict) -> tuple[dict, float, float]:
    """Run a command; return (its JSON output or {}, wall seconds, peak RSS in MB from wait4)."""
    t = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=None, env=env)
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{args} exited {proc.returncode}")
    last = out.decode().strip().splitlines()[-1] if out.strip() else "{}"
    try:
        data = json.loads(last)
    except json.JSONDecodeError:
        data = {}
    return data, wall, usage.ru_maxrss / 1024


def bench_one(n: int, work: Path, contacts: int, batch_size: int, profile: str | None, env: dict,
              peer: bool = True) -> list[dict]:
    import dovecot as dv
    from generate import messages, write_maildir

    server = dv.Dovecot()
    rows: list[dict] = []
    try:
        t = time.perf_counter()
        owner = (server.mail_uid, server.mail_gid) if os.geteuid() == 0 else None
        counts = write_maildir(server.dir / "home" / USER / "Maildir", n, owner=owner)
        print(f"[{n}] generated {counts} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        server.start()
        cfg_path = work / f"config-{n}.toml"
        cfg_path.write_text(
            f'timezone = "America/New_York"\n[database]\npath = "{work}/bench-{n}.db"\n'
            f'[digest]\noutput_dir = "{work}/digests"\n'
            f'[[accounts]]\nname = "bench"\nkind = "imap"\nhost = "127.0.0.1"\nport = {server.direct_port}\n'
            f'security = "none"\nusername = "{USER}"\npassword_env = "{PW_ENV}"\n'
            f'addresses = ["me@example.test"]\nbatch_size = {batch_size}\ntimeout = 300\n')
        env = {**env, PW_ENV: dv.PASSWORD}
        me = [sys.executable, str(Path(__file__).resolve()), "--config", str(cfg_path), "--contacts", str(contacts)]

        def step(name: str, label: str) -> dict:
            args = me + ["--step", name] + (["--profile", name] if profile == name else [])
            data, wall, rss = run_child(args, env)
            row = {"step": label, "key": name, "seconds": data.get("seconds", wall), "rss": rss,
                   "messages": data.get("messages"), "detail": {k: v for k, v in data.items()
                                                                if k not in ("seconds", "messages")}}
            rows.append(row)
            print(f"[{n}] {label}: {row['seconds']:.3f} s, {rss:.0f} MB {row['detail'] or ''}", file=sys.stderr)
            return row

        t = time.perf_counter()
        run_child(me + ["--step", "a"], env)  # Dovecot builds its indexes on first access: not timed
        print(f"[{n}] Dovecot indexing (cold fetch): {time.perf_counter() - t:.1f} s", file=sys.stderr)
        step("a", "a  floor: imapclient UID FETCH, unparsed")
        step("a2", "a' wire floor: imaplib UID FETCH")
        run_child(me + ["--step", "contacts"], env)
        step("b", "b  initial sync (fetch+parse+store)")
        step("c", "c  no-change resync")
        mbox = dv.Mailbox(server, USER, dv.PASSWORD)
        mbox.append_many("INBOX", [raw for _f, raw, _t in messages(100, seed=99)])
        step("d", "d  resync after 100 new")
        step("e", f"e  ledger + reminders ({contacts} contacts)")
        step("f", "f  digest")
        step("stages", "   derived stages one by one (no change)")
        exe = shutil.which("syncagent")
        base = [exe] if exe else [sys.executable, "-m", "syncagent"]
        for key, extra in (("g_version", ["--version"]), ("g_reminders", ["--config", str(cfg_path), "reminders"])):
            best, rss, ok = None, 0.0, True
            for _ in range(5):
                try:
                    _d, wall, r = run_child(base + extra, env)
                except RuntimeError:
                    ok = False
                    break
                best, rss = min(best or wall, wall), max(rss, r)
            rows.append({"step": f"g  `syncagent {' '.join(extra[-1:])}` (best of 5)", "key": key,
                         "seconds": best if ok else None, "rss": rss, "messages": None, "detail": {}})
        if peer and shutil.which("mbsync"):
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


def table(n: int, rows: list[dict]) -> tuple[str, list[str]]:
    by = {r["key"]: r for r in rows}
    a, a2 = by["a"]["seconds"], by["a2"]["seconds"]
    lines = [f"N = {n:,} messages, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
             f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}", "",
             "| step | seconds | messages/s | x floor (a) | x wire (a') | peak RSS MB |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        s = r["seconds"]
        m = r["messages"] if r["key"] in ("a", "a2", "b", "h") else None
        rate = f"{m / s:,.0f}" if m and s else ""
        ratio = f"{s / a:.2f}" if s and r["key"] in ("b", "h") else ""
        ratio2 = f"{s / a2:.2f}" if s and r["key"] in ("b", "h") else ""
        secs = "n/a" if s is None else f"{s:.3f}"
        label = r["step"]
        if r["key"] == "stages":
            label += ": " + ", ".join(f"{k} {v:.2f}" for k, v in r["detail"].items())
        lines.append(f"| {label} | {secs} | {rate} | {ratio} | {ratio2} | {r['rss']:.0f} |")
        if r["key"] == "b" and "fetch" in r["detail"]:
            d = r["detail"]
            lines.append(f"| &nbsp;&nbsp;b = IMAP fetch {d['fetch']:.2f} + parse {d['parse']:.2f} + save {d['save']:.2f} "
                         f"+ other {s - d['fetch'] - d['parse'] - d['save']:.2f} | | | | | |")
        if r["key"] in ("b", "c", "d") and "derived" in r["detail"]:
            lines.append(f"| &nbsp;&nbsp;{r['key']}+ derived stages (threads, meetings, ledger, reminders) "
                         f"| {r['detail']['derived']:.3f} | | | | |")
    verdicts = []
    b = by["b"]["seconds"]
    checks = [("initial_ratio", b / a), ("c", by["c"]["seconds"]), ("e", by["e"]["seconds"]),
              ("g_version", by["g_version"]["seconds"]),
              ("rss", max(by[k]["rss"] for k in ("b", "c", "d", "e", "f")))]
    for key, value in checks:
        limit, what = GOALS[key]
        ok = value is not None and value <= limit
        verdicts.append(f"{'PASS' if ok else 'FAIL'}  {what}: {'n/a' if value is None else f'{value:.3f}'}")
    c_total = by["c"]["detail"].get("total")
    if c_total is not None:
        ok = c_total < GOALS["c"][0]
        verdicts.append(f"{'PASS' if ok else 'FAIL'}  no-change `sync` incl. derived stages < 0.3 s: {c_total:.3f}")
    return "\n".join(lines), verdicts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10_000])
    ap.add_argument("--contacts", type=int, default=5_000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--profile", metavar="STEP", help="run this step (a, a2, b, c, d, e, f) under cProfile")
    ap.add_argument("--json", type=Path, help="also write the raw rows here")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (config, database) for more runs")
    ap.add_argument("--no-peer", action="store_true", help="skip the mbsync line (h), the slowest step")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        child(args.step, args.config, args.profile == args.step, args.contacts)
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    all_rows = {}
    for n in args.n:
        work = Path(tempfile.mkdtemp(prefix=f"syncagent-bench-{n}-"))
        try:
            rows = bench_one(n, work, args.contacts, args.batch_size, args.profile, env, peer=not args.no_peer)
        finally:
            if args.keep:
                print(f"kept {work} (config-{n}.toml, bench-{n}.db)", file=sys.stderr)
            else:
                shutil.rmtree(work, ignore_errors=True)
        all_rows[n] = rows
        text, verdicts = table(n, rows)
        print(text + "\n\n" + "\n".join(verdicts) + "\n")
    if args.json:
        args.json.write_text(json.dumps(all_rows, indent=1, default=str))


if __name__ == "__main__":
    main()
