"""Config mistakes are one sentence naming the file, the key and the fix."""

import os
import subprocess
import sys

import pytest

from syncagent import config
from syncagent.errors import ConfigError


def write(tmp_path, text):
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "syncagent", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_full_example_config_loads(tmp_path):
    """config.example.toml itself is a valid config."""
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    os.environ.setdefault("SYNCAGENT_TEST_PASSWORD", "x")
    cfg = config.load(example)
    assert cfg.timezone


@pytest.mark.parametrize("text,expected", [
    ("timezone = 'Mars/Olympus'", "`timezone` is 'Mars/Olympus', which is not a known time zone; use an IANA name"),
    ("[[accounts]]\nname = 'a'\nkind = 'pop3'", '`accounts.a.kind` is \'pop3\'; use "imap" or "gmail" or "maildir" or "mbox".'),
    ("[[accounts]]\nname = 'a'\nkind = 'imap'\nusername = 'me@x.com'\npassword_env = 'P'",
     "`accounts.a.host` is missing; add host = ..."),
    ("[[accounts]]\nname = 'a'\nkind = 'imap'\nhost = 'h'\nusername = 'me@x.com'",
     "`accounts.a.password_command` is missing (no password source is set)"),
    ("[sync]\ninterval_minutes = 'often'", "`sync.interval_minutes` must be a number, not 'often'"),
    ("[sync]\ninterval_minutes = 0", "`sync.interval_minutes` is 0; use a number greater than 0."),
    ("[reminders]\nfollow_up_after_business_day = 5", "`reminders.follow_up_after_business_day` is not a known key; did you mean `follow_up_after_business_days`?"),
    ("[digest]\ntime = '8am'", '`digest.time` is \'8am\'; use 24-hour HH:MM'),
])
def test_bad_values_name_file_key_and_fix(tmp_path, text, expected):
    """Each mistake names the file and the key, and says how to fix it."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert str(err.value).startswith(f"{path}: ")
    assert expected in str(err.value)


def test_toml_syntax_error_and_missing_file_via_cli(tmp_path):
    """The CLI prints one sentence and exits 1, with no traceback."""
    bad = write(tmp_path, "timezone = \n")
    r = run_cli("--config", str(bad), "sync")
    assert r.returncode == 1
    assert r.stderr.startswith(f"Error: {bad} is not valid TOML") and "Traceback" not in r.stderr
    r = run_cli("--config", str(tmp_path / "nope.toml"), "sync")
    assert r.returncode == 1
    assert f"No config file at {tmp_path / 'nope.toml'}" in r.stderr and "Traceback" not in r.stderr


def test_interval_may_be_fractional(tmp_path):
    """interval_minutes = 0.5 means every 30 s."""
    cfg = config.load(write(tmp_path, "[sync]\ninterval_minutes = 0.5"))
    assert cfg.sync.interval_minutes == 0.5


def test_password_sources(tmp_path, monkeypatch, caplog):
    """Passwords come from a command, an env var, or the file (with a warning), never logged."""
    from syncagent import secrets

    monkeypatch.setenv("MY_PW", "s3cret-env")
    base = "[[accounts]]\nname = 'a'\nkind = 'imap'\nhost = 'h'\nusername = 'me@x.com'\n"
    cfg = config.load(write(tmp_path, base + "password_command = 'echo s3cret-cmd'"))
    assert secrets.resolve(cfg.accounts[0].secret) == "s3cret-cmd"
    cfg = config.load(write(tmp_path, base + "password_env = 'MY_PW'"))
    assert secrets.resolve(cfg.accounts[0].secret) == "s3cret-env"
    cfg = config.load(write(tmp_path, base + "password = 's3cret-file'"))
    assert secrets.resolve(cfg.accounts[0].secret) == "s3cret-file"
    assert "password is written in the config file" in caplog.text
    assert "s3cret" not in caplog.text and "s3cret" not in repr(cfg)
    cfg = config.load(write(tmp_path, base + "password_command = 'exit 3'"))
    with pytest.raises(ConfigError, match="failed with exit code 3"):
        secrets.resolve(cfg.accounts[0].secret)
    cfg = config.load(write(tmp_path, base + "password_env = 'UNSET_VAR_XYZ'"))
    with pytest.raises(ConfigError, match="UNSET_VAR_XYZ .* is not set"):
        secrets.resolve(cfg.accounts[0].secret)
