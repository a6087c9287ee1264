"""Promise 5: secrets stay out of the database, logs and digest; files are private; serve stays on
loopback; TLS is verified unless one named account opts out; SQL never interpolates values."""

from __future__ import annotations

import ast
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from dovecot import PASSWORD, make_message
from faults_helpers import PW_ENV, imap_config
from test_imap_errors import self_signed, tls_front  # noqa: F401  (a fixture and a helper)

from syncagent.cli import main
from syncagent.sources.imap import connect as imap_connect

ROOT = Path(__file__).resolve().parent.parent
SECRET = PASSWORD.encode()  # Dovecot's test password: it must appear nowhere we write


def _cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "syncagent", *args], capture_output=True, env=env, timeout=120)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)  # the usual default: files would be world-readable unless made private
    yield
    os.umask(old)


@pytest.mark.dovecot
def test_no_secret_in_database_logs_or_digest(mailbox, tmp_path, umask_022):
    """After a sync at -v and -vvv (imapclient wire debug) and a digest, the password is in no file or log syncagent wrote."""
    mailbox.append_many("INBOX", [make_message(i) for i in range(5)])
    mailbox.append("Sent", make_message(9, sender="me@example.test", to="bob@example.org"))
    env = {**os.environ, PW_ENV: mailbox.password}
    cfg = imap_config(tmp_path, mailbox.server.direct_port, mailbox.user)
    outputs = []
    for args in (["-v", "sync"], ["-vvv", "sync", "--full"], ["-v", "digest", "--now", "2026-11-30T12:00:00Z"]):
        proc = _cli("--config", str(cfg), *args, env=env)
        assert proc.returncode == 0, proc.stderr.decode()
        outputs += [proc.stdout, proc.stderr]
    # The password written in the config file itself: warned about, never repeated.
    inline = tmp_path / "inline"
    inline.mkdir()
    cfg2 = imap_config(inline, mailbox.server.direct_port, mailbox.user)
    cfg2.write_text(cfg2.read_text().replace(f'password_env = "{PW_ENV}"', f'password = "{PASSWORD}"'))
    proc = _cli("--config", str(cfg2), "-vv", "sync", env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"password is written in the config file" in proc.stderr
    outputs += [proc.stdout, proc.stderr]
    assert not [o for o in outputs if SECRET in o]
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".toml"]
    assert any(p.name == "db.sqlite" for p in written) and any(p.parent.name == "digests" for p in written)
    leaks = [p for p in written if SECRET in p.read_bytes()]
    assert not leaks


@pytest.mark.dovecot
def test_database_digest_lock_and_wal_files_are_private(mailbox, tmp_path, umask_022):
    """The database, its WAL/SHM, the lock file and the digests are created 0600 even with umask 022."""
    mailbox.append("INBOX", make_message(1))
    env = {**os.environ, PW_ENV: mailbox.password}
    cfg = imap_config(tmp_path, mailbox.server.direct_port, mailbox.user)
    assert _cli("--config", str(cfg), "sync", env=env).returncode == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
         "c.execute('select 1 from sqlite_master').fetchall(); print('open', flush=True); sys.stdin.read()",
         str(tmp_path / "db.sqlite")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # keeps the WAL and SHM files after syncagent exits
    try:
        assert holder.stdout.readline().strip() == b"open"
        assert _cli("--config", str(cfg), "digest", "--now", "2026-11-30T12:00:00Z", env=env).returncode == 0
        files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".toml"]
        assert {p.name for p in files} >= {"db.sqlite", "db.sqlite-wal", "db.sqlite-shm", "db.sqlite.lock"}
        assert [p for p in files if p.parent.name == "digests"]
        loose = {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in files if _mode(p) & 0o077}
        assert not loose
    finally:
        holder.stdin.close()
        holder.wait(10)


def test_token_file_is_private(tmp_path, umask_022):
    """An OAuth token is written 0600 in a 0700 folder, also over an existing world-readable file."""
    from syncagent.sources.gmail import auth as gmail_auth

    class Creds:
        def to_json(self):
            return '{"token": "ya29.secret-token", "refresh_token": "1//secret-refresh"}'

    path = tmp_path / "tokens" / "work.token.json"
    gmail_auth.save_credentials(path, Creds())
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    os.chmod(path, 0o644)
    gmail_auth.save_credentials(path, Creds())
    assert _mode(path) == 0o600


@pytest.mark.dovecot
def test_config_written_by_init_is_private(dovecot, tmp_path, umask_022, monkeypatch):
    """`syncagent init` writes the config file 0600 (it may name a password command or a password)."""
    monkeypatch.setattr(imap_connect, "CONNECT_ATTEMPTS", 1)
    monkeypatch.setenv("SYNCAGENT_TEST_PW", PASSWORD)
    path = tmp_path / "conf" / "config.toml"
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(path), "init", "--email", "me@example.test", "--host", "127.0.0.1", "--port",
              str(dovecot.direct_port), "--security", "none", "--password-env", "SYNCAGENT_TEST_PW",
              "--timezone", "UTC", "--yes"])
    assert exc.value.code == 0
    assert _mode(path) == 0o600
    assert SECRET not in path.read_bytes()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_serve_refuses_non_loopback_without_the_flag(host, tmp_path, capsys):
    """`serve --host` anything but loopback exits 1 with a sentence naming the explicit flag."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\npath = "{tmp_path / "db.sqlite"}"\n')
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(cfg), "serve", "--host", host])
    err = capsys.readouterr().err
    assert exc.value.code == 1
    assert "--i-know-this-is-public" in err and "Traceback" not in err


def test_serve_allows_loopback_and_the_explicit_flag():
    """Loopback needs no flag; another address only with it."""
    from syncagent.serve import datasette as serve

    for host in ("127.0.0.1", "::1", "localhost"):
        serve.check_host(host, public=False)
    serve.check_host("0.0.0.0", public=True)


def test_default_tls_context_verifies():
    """Without an exception, the TLS context requires a valid certificate for the host name."""
    import ssl

    from syncagent.config import Account

    ctx = imap_connect.tls_context(Account(name="a", kind="imap", host="h", username="u"))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


@pytest.mark.dovecot
def test_tls_exception_applies_to_the_named_account_only(mailbox, self_signed, tmp_path, monkeypatch, capsys):  # noqa: F811
    """Two accounts on one self-signed server: only the one with tls_verify = false connects."""
    monkeypatch.setattr(imap_connect, "CONNECT_ATTEMPTS", 1)
    monkeypatch.setenv(PW_ENV, mailbox.password)
    mailbox.append("INBOX", make_message(1))
    with tls_front(*self_signed, mailbox.server.direct_port) as port:
        account = (f'kind = "imap"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "tls"\nusername = "{mailbox.user}"\n'
                   f'password_env = "{PW_ENV}"\ntimeout = 10\n')
        cfg = tmp_path / "config.toml"
        cfg.write_text(f'[database]\npath = "{tmp_path / "db.sqlite"}"\n'
                       f'[[accounts]]\nname = "trusted"\n{account}tls_verify = false\n'
                       f'[[accounts]]\nname = "strict"\n{account}')
        with pytest.raises(SystemExit) as exc:
            main(["--config", str(cfg), "sync"])
    out, err = capsys.readouterr()
    assert exc.value.code == 1
    assert "trusted: 1 new message" in out
    assert "strict: failed" in out and "could not be verified" in out


# --- SQL is parameterized ---------------------------------------------------------------

SQL_METHODS = {"execute", "executemany", "executescript", "query"}
PLACEHOLDERS = re.compile(r"^', '\.join\(\('\?' for _ in \w+\)\)$")
# Interpolations that put identifiers (never values) into SQL, each checked by reading the code:
# column and table names from constants, SET lists built from them, placeholder strings.
IDENTIFIERS = {
    ("syncagent/store/contacts.py", "marks"),  # "?,?,?" for the addresses
    ("syncagent/store/contacts.py", "', '.join(cols)"),  # FIELDS present in the input (checked by _columns)
    ("syncagent/store/contacts.py", "', '.join(FIELDS)"),
    ("syncagent/store/contacts.py", "sets"),  # "<field> = ?, " for changed FIELDS (checked by _columns)
    ("syncagent/store/contacts.py", "where"),  # "WHERE id IN (?, ...)"
    ("syncagent/store/derived.py", "', '.join(columns)"),  # derived tables' columns, constants
    ("syncagent/store/derived.py", "table"),  # derived-table names passed as constants
    ("syncagent/store/derived.py", "where"),  # "<key column> = ? AND ..." or " WHERE <column> IN (json_each(?))"
    ("syncagent/store/derived.py", "select"),  # "SELECT <those columns> FROM <that table>"
    ("syncagent/store/derived.py", "', '.join(cols)"),
    ("syncagent/store/derived.py", "', '.join(INTRO_COLUMNS)"),  # introductions' columns, a constant
    ("syncagent/store/derived.py", ".format('lower(trim(ce.address))' if messy else 'ce.address', scope)"),
    ("syncagent/store/derived.py", ".format(meeting_scope)"),  # a constant json_each filter or nothing
    ("syncagent/store/derived.py", ".format(_IN_SCOPE_MEETINGS)"),  # that filter
    ("syncagent/store/derived.py", "', '.join(CONTACT_MESSAGE_COLUMNS + CONTACT_MESSAGE_FACTS)"),  # constants
    ("syncagent/store/derived.py", "', '.join(REPLY_COLUMNS)"),  # the replies columns, a constant
    ("syncagent/store/derived.py", "', '.join(CONTACT_MESSAGE_COLUMNS)"),  # contact_messages' columns, a constant
    ("syncagent/store/reminders.py", "sql"),  # a constant SELECT
    ("syncagent/store/reminders.py", "where"),  # three constant holder filters
    ("syncagent/store/summary.py", "', '.join(_COMPANY_FIELDS)"),  # the companies view's columns
    ("syncagent/store/mail.py", "_WANTED"),  # a constant CASE expression; the addresses are a parameter
    ("syncagent/store/db.py", "', '.join(_MESSAGE_COLUMNS)"),
    ("syncagent/store/db.py", "sets"),  # "<cursor column> = ?" for known cursor columns
    ("syncagent/store/db.py", "self.name"),  # savepoint names, constants of the stages
    ("syncagent/store/db.py", "source"),  # "column<i+1> AS c<i>" for a batch's columns
    ("syncagent/store/db.py", "placeholders"),  # "(?, ?, ...), (?, ?, ...)": a chunk's rows of placeholders
    ("syncagent/store/db.py", "statement"),  # one of the constant _INSERT_* statements
    ("syncagent/store/views.py", "name"),  # view names from the VIEWS dict
    ("syncagent/store/meetings.py", "marks"),  # "?,?,?" for a chunk of UIDs or meeting ids
    ("syncagent/store/meetings.py", "', '.join(_FIELDS)"),  # the invitations' columns, a constant
    ("syncagent/store/threads.py", "_MESSAGE"),  # a constant SELECT of the columns threading reads
    ("syncagent/store/threads.py", "marks"),  # "?,?,?" for a chunk of Message-IDs or component ids
    ("syncagent/store/outreach.py", "', '.join(_ASK_COLUMNS)"),  # the outreach_asks columns, a constant
    ("syncagent/store/outreach.py", "column"),  # a bucket column, checked against StoredAsk's fields by _column
    ("syncagent/store/runs.py", "notes"),  # the column name, or NULL on a database without it
    ("syncagent/store/migrations.py", "', '.join(cols)"),  # contacts' columns, from PRAGMA table_info
    ("syncagent/store/migrations.py", "sets"),  # "<column> = ?" for those columns
    ("syncagent/store/migrations.py", "table"),  # table names from sqlite_master
    ("syncagent/store/migrations.py", "col"),  # their columns that reference contacts, from PRAGMA
    ("syncagent/store/views.py", "select"),  # view bodies from the VIEWS dict
    # one_open_index: an index name, holder columns and kinds, all constants of the steps calling it
    ("syncagent/store/migrations.py", "holder"),  # "contact_id, ..."
    ("syncagent/store/migrations.py", "of_r"),  # the same, qualified "r.contact_id, ..."
    ("syncagent/store/migrations.py", "where"),  # "status IN ('open', ...) AND kind IN (...)"
    ("syncagent/store/migrations.py", "name"),  # the index name
}


def _interpolated(node) -> list[str] | None:
    """Source of each value interpolated into a string expression; None when it is not built that way."""
    if isinstance(node, ast.JoinedStr):
        return [ast.unparse(v.value) for v in node.values if isinstance(v, ast.FormattedValue)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, (ast.Constant, ast.JoinedStr)):
        return ["%" + ast.unparse(node.right)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _interpolated(node.left), _interpolated(node.right)
        return None if left is None and right is None else (left or []) + (right or [])
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return [".format(" + ", ".join(ast.unparse(a) for a in [*node.args, *(k.value for k in node.keywords)]) + ")"]
    return None


def sql_interpolations(root: Path) -> set[tuple[str, int, str]]:
    """(file, line, expression) for every value interpolated into the SQL of an execute-like call.

    A first argument that is a plain name is followed to its assignments in the same scope
    (or the module), so ``sql = f"..."; db.execute(sql)`` is seen too.
    """
    found = set()
    for path in sorted((root / "syncagent").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_assigns: dict[str, list] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                module_assigns.setdefault(node.targets[0].id, []).append(node.value)
        scopes = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))] + [tree]
        for scope in scopes:
            assigns: dict[str, list] = {}
            for n in ast.walk(scope):
                if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                    assigns.setdefault(n.targets[0].id, []).append(n.value)
            for call in ast.walk(scope):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr in SQL_METHODS and call.args):
                    continue
                first = call.args[0]
                exprs = [first]
                if isinstance(first, ast.Name):
                    exprs = assigns.get(first.id) or module_assigns.get(first.id) or []
                for expr in exprs:
                    for text in _interpolated(expr) or []:
                        found.add((rel, call.lineno, text))
    return found


def test_sql_statements_interpolate_no_values():
    """Every f-string/format/% in SQL passed to execute() puts in only reviewed identifiers or placeholders."""
    unreviewed = sorted(f"{f}:{line}: {{{text}}}" for f, line, text in sql_interpolations(ROOT)
                        if not PLACEHOLDERS.match(text) and (f, text) not in IDENTIFIERS)
    assert not unreviewed, "pass values as ? parameters (or review and whitelist identifiers):\n" + "\n".join(unreviewed)


def test_the_sql_scan_catches_interpolated_values(tmp_path):
    """The scanner flags a value put into SQL with an f-string, % or .format, directly or via a variable."""
    pkg = tmp_path / "syncagent"
    pkg.mkdir()
    (pkg / "bad.py").write_text(
        "def f(db, name):\n"
        "    db.execute(f\"SELECT * FROM contacts WHERE name = '{name}'\")\n"
        "    db.execute(\"DELETE FROM x WHERE a = '%s'\" % name)\n"
        "    sql = \"SELECT {}\".format(name)\n"
        "    db.conn.executemany(sql, [])\n"
        "    db.execute('SELECT ?', [name])\n")
    found = {(line, text) for _f, line, text in sql_interpolations(tmp_path)}
    assert found == {(2, "name"), (3, "%name"), (5, ".format(name)")}
