"""`syncagent doctor`: one line per check, a fix for each problem, exit 1 when anything is wrong."""

from __future__ import annotations

import json
import logging
import os
import stat

import pytest

from syncagent.cli import main
from syncagent.setup import doctor
from syncagent.sources.imap import connect as imap_connect


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A fresh HOME, no config in the environment, and no retries."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SYNCAGENT_CONFIG", raising=False)
    monkeypatch.setattr(imap_connect, "CONNECT_ATTEMPTS", 1)
    return tmp_path


def run_doctor(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main([*args, "doctor"])
    out, err = capsys.readouterr()
    # main() logs to the captured stderr of this test; drop that handler before the next one.
    logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers if not getattr(h, "_syncagent", False)]
    assert "Traceback" not in err
    return exc.value.code, out, err


def lines(out: str) -> dict[str, str]:
    return {line[4:].split(":", 1)[0]: line for line in out.splitlines() if line[:3] in ("ok ", "!! ", "-- ")}


def write_config(home, body: str, db: str | None = None):
    path = home / "config.toml"
    path.write_text(f'[database]\npath = "{db or home / "db.sqlite"}"\n\n{body}')
    os.chmod(path, 0o600)
    return path


def imap_account(mailbox, password_env="SYNCAGENT_TEST_PW", extra=""):
    return (f'[[accounts]]\nname = "work"\nkind = "imap"\nhost = "127.0.0.1"\nport = {mailbox.server.port}\n'
            f'security = "none"\nusername = "{mailbox.user}"\npassword_env = "{password_env}"\ntimeout = 10\n{extra}')


def test_missing_config_is_a_problem_with_a_fix(home, capsys):
    """Without a config the first line says how to make one; Datasette and systemd are still checked."""
    code, out, err = run_doctor(capsys)
    assert code == 1
    found = lines(out)
    assert found["config"].startswith("!!  config: No config file at ")
    assert "syncagent init" in found["config"]
    assert found["datasette"].startswith("ok  datasette: version ")
    assert found["systemd unit"].startswith("--  systemd unit: not installed")
    assert err.strip().splitlines()[-1] == ("Error: 1 problem found; fix the lines marked !! above and run "
                                            "`syncagent doctor` again.")


def test_demo_setup_is_all_ok(home, capsys):
    """The demo's config, its mbox account, its database and the last sync all check out: exit 0."""
    from syncagent.setup import demo

    demo.run()
    code, out, _ = run_doctor(capsys, "--config", str(home / ".local/share/syncagent/demo/config.toml"))
    assert code == 0, out
    found = lines(out)
    assert found["account sample"].startswith("ok  account sample: mbox at ")
    assert "schema 0" in found["database"]
    assert found["last sync sample"].startswith("ok ") and "247 new messages" in found["last sync sample"]
    assert out.rstrip().endswith("Everything looks fine.")


@pytest.mark.dovecot
def test_imap_account_login_capabilities_and_folders(mailbox, home, capsys, monkeypatch):
    """A working IMAP account shows its folders and capabilities; a wrong password is the login sentence."""
    monkeypatch.setenv("SYNCAGENT_TEST_PW", mailbox.password)
    path = write_config(home, imap_account(mailbox))
    code, out, _ = run_doctor(capsys, "--config", str(path))
    line = lines(out)["account work"]
    assert line.startswith(f"ok  account work: logged in to 127.0.0.1:{mailbox.server.port} as {mailbox.user}; "
                           "folders INBOX, Sent; capabilities ")
    assert "IDLE" in line and "SPECIAL-USE" in line
    assert lines(out)["database"].startswith("--  database: ")  # not created yet: a note, not a problem
    assert code == 0, out
    monkeypatch.setenv("SYNCAGENT_TEST_PW", "wrong")
    code, out, _ = run_doctor(capsys, "--config", str(path))
    assert code == 1
    assert lines(out)["account work"] == (
        f"!!  account work: The server 127.0.0.1 rejected the login for {mailbox.user}; check the username and "
        "password (for Gmail and others, an app password).")
    assert not set(mailbox.server.commands) & {"SELECT", "APPEND", "STORE", "CREATE", "DELETE"}


@pytest.mark.dovecot
def test_missing_configured_folder(mailbox, home, capsys, monkeypatch):
    """A folder named in `folders` that the server lacks is named with the fix, live and in the last sync's warning."""
    monkeypatch.setenv("SYNCAGENT_TEST_PW", mailbox.password)
    path = write_config(home, imap_account(mailbox, extra='folders = ["INBOX", "Sent Items"]\n'))
    code, out, _ = run_doctor(capsys, "--config", str(path))
    assert code == 1
    assert lines(out)["account work"] == (
        "!!  account work: the folder 'Sent Items' named in `folders` does not exist on 127.0.0.1, so it is "
        "skipped at every sync; fix the name or remove it from `folders` of account 'work' (the folders there "
        "are: 'Drafts', 'INBOX', 'Sent').")
    with pytest.raises(SystemExit):
        main(["--config", str(path), "sync"])
    capsys.readouterr()
    code, out, _ = run_doctor(capsys, "--config", str(path))
    last = lines(out)["last sync work"]
    assert last.startswith("--  last sync work: ")
    assert last.endswith(", 0 new messages, with a warning: The folder 'Sent Items' named in `folders` of "
                         "account 'work' does not exist on 127.0.0.1, so the other folders were synced without "
                         "it; fix the name or remove it from `folders` (the folders there are: 'Drafts', "
                         "'INBOX', 'Sent').")


def test_last_sync_failure_and_database_facts(home, capsys):
    """A failed last sync is a problem carrying its error; schema and size are shown."""
    from syncagent.store import db as store

    mbox = home / "mail.mbox"
    mbox.write_text("")
    path = write_config(home, f'[[accounts]]\nname = "archive"\nkind = "mbox"\npath = "{mbox}"\n')
    db = store.open_db(home / "db.sqlite")
    run = store.start_run(db, "archive")
    store.finish_run(db, run, "failed", 0, "Cannot read the archive: permission denied; check `path`.")
    code, out, _ = run_doctor(capsys, "--config", str(path))
    assert code == 1
    found = lines(out)
    assert found["database"].startswith(f"ok  database: {home / 'db.sqlite'} (")
    assert "schema 0" in found["database"]
    assert found["last sync archive"].endswith("failed: Cannot read the archive: permission denied; check `path`.")


def test_gmail_token_checks(home, capsys):
    """A Gmail account: a missing token, a token others can read, then a good one."""
    secret = home / "client_secret.json"
    secret.write_text("{}")
    token = home / "gmail.token.json"
    path = write_config(home, f'[[accounts]]\nname = "g"\nkind = "gmail"\nclient_secret_file = "{secret}"\n'
                              f'token_file = "{token}"\n')
    code, out, _ = run_doctor(capsys, "--config", str(path))
    assert code == 1
    assert lines(out)["account g"] == f"!!  account g: there is no Gmail token at {token}; run `syncagent auth gmail g`."
    token.write_text(json.dumps({"token": "t", "refresh_token": "r"}))
    os.chmod(token, 0o644)
    code, out, _ = run_doctor(capsys, "--config", str(path))
    assert "is readable by other users (mode 644); run `chmod 600" in lines(out)["account g"]
    assert "refresh_token" not in out and '"r"' not in out  # the token itself never appears
    os.chmod(token, 0o600)
    code, out, _ = run_doctor(capsys, "--config", str(path))
    assert lines(out)["account g"].startswith("ok  account g: Gmail API token at ")


def test_config_readable_by_others(home, capsys):
    """A config file other users can read is a problem with the chmod to run."""
    mbox = home / "mail.mbox"
    mbox.write_text("")
    path = write_config(home, f'[[accounts]]\nname = "a"\nkind = "mbox"\npath = "{mbox}"\n')
    os.chmod(path, 0o644)
    code, out, _ = run_doctor(capsys, "--config", str(path))
    assert code == 1
    assert lines(out)["config file"].endswith(f"run `chmod 600 {path}`.")


@pytest.mark.parametrize("answer,code,status,expected", [
    ("active", 0, "ok", "is active"),
    ("inactive", 3, "problem", "systemctl --user enable --now syncagent"),
    ("Failed to connect to bus: No medium found", 1, "note", "no user systemd session"),
])
def test_systemd_unit_states(home, monkeypatch, answer, code, status, expected):
    """The installed unit is asked about with `systemctl --user is-active`; a missing session is only a note."""
    unit = home / ".config/systemd/user/syncagent.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=syncagent run\n")
    bin_dir = home / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "systemctl"  # stands in for systemd, which a test machine may not run
    fake.write_text(f"#!/bin/sh\necho '{answer}'\nexit {code}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    check = doctor.check_systemd()
    assert check.status == status and expected in check.detail


def test_systemd_unit_without_systemctl(home, monkeypatch):
    """Where systemctl does not exist the installed unit is a note, not a failure."""
    unit = home / ".config/systemd/user/syncagent.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("")
    monkeypatch.setenv("PATH", str(home / "empty"))
    check = doctor.check_systemd()
    assert check.status == "note" and "systemctl is not available" in check.detail


def test_read_only_database_directory_is_a_problem_that_keeps_the_data(home, capsys):
    """doctor on a read-only database directory names it and the chmod, shows the schema, and never says rebuild."""
    from test_errors_cli import SAMPLE_INBOX, mbox_config, unwritable

    config = mbox_config(home, SAMPLE_INBOX)
    (home / "data").mkdir()
    config.write_text(config.read_text().replace(str(home / "db.sqlite"), str(home / "data" / "db.sqlite")))
    with pytest.raises(SystemExit):
        main(["--config", str(config), "sync"])
    import gc

    gc.collect()
    capsys.readouterr()
    db = home / "data" / "db.sqlite"
    with unwritable(db.parent):
        code, out, _ = run_doctor(capsys, "--config", str(config))
    assert code == 1
    found = [line for line in out.splitlines() if line.startswith("!!  database:")]
    assert found == [
        f"!!  database: The database {db} is read-only (its directory {db.parent} is not writable); make it "
        f"writable (`chmod u+w {db.parent}`, as the user that owns it) and sync again (until then syncs fail; "
        "reminders, stats and contacts list still work)."]
    assert f"ok  database: {db} (" in out
    assert "rebuild" not in out and "move it aside" not in out


def test_doctor_names_the_holiday_region_and_the_next_holiday():
    """With holidays = "US-NY", doctor says whose holidays are skipped and which comes next."""
    from datetime import date

    from syncagent.config import parse
    from syncagent.setup.doctor import check_holidays

    cfg = parse({"timezone": "America/New_York", "reminders": {"holidays": "US-NY"}}, None)
    check = check_holidays(cfg, today=date(2026, 11, 20))
    assert check.status == "ok"
    assert check.detail == "business days skip the public holidays of US-NY; next: Thanksgiving Day on Thu 26 Nov 2026"
