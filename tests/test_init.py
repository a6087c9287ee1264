"""`syncagent init`: provider defaults, a login test before writing, a 0600 config that loads."""

from __future__ import annotations

import tomllib

import pytest
from click.testing import CliRunner

from syncagent import config
from syncagent.cli import cli
from syncagent.setup import init as init_wizard
from syncagent.sources.imap import connect as imap_connect


@pytest.fixture(autouse=True)
def _no_retry(monkeypatch):
    monkeypatch.setattr(imap_connect, "CONNECT_ATTEMPTS", 1)


def invoke(args, input=None, env=None):
    return CliRunner().invoke(cli, args, input=input, env=env, catch_exceptions=False)


def dovecot_args(mailbox, path, *extra):
    return ["--config", str(path), "init", "--email", mailbox.user, "--host", "127.0.0.1",
            "--port", str(mailbox.server.port), "--security", "none", "--password-env", "SYNCAGENT_TEST_PW",
            "--timezone", "Europe/Berlin", *extra]


@pytest.mark.dovecot
def test_init_with_flags_checks_the_login_and_writes_a_config_that_loads(mailbox, tmp_path, monkeypatch):
    """Non-interactive init logs in, finds INBOX and Sent, writes mode 0600 text that config.load accepts."""
    monkeypatch.setenv("SYNCAGENT_TEST_PW", mailbox.password)
    path = tmp_path / "conf" / "config.toml"
    result = invoke(dovecot_args(mailbox, path, "--yes"))
    assert result.exit_code == 0, result.output
    assert "Logged in:" in result.output
    assert "Folders to sync: INBOX and Sent." in result.output
    assert f"Wrote {path} (mode 0600)." in result.output
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    assert mailbox.password not in text
    assert 'password_env = "SYNCAGENT_TEST_PW"' in text
    assert "# " in text  # commented for the person who opens it
    loaded = config.load(path)
    acct = loaded.account("personal")
    assert (acct.host, acct.port, acct.security, acct.username) == ("127.0.0.1", mailbox.server.port, "none",
                                                                    mailbox.user)
    assert acct.addresses == (mailbox.user.lower(),)
    assert loaded.timezone == "Europe/Berlin"
    # The check used only read commands.
    assert not set(mailbox.server.commands) & {"SELECT", "APPEND", "STORE", "CREATE"}


@pytest.mark.dovecot
def test_init_offers_the_addresses_the_sent_folder_is_sent_from(mailbox, tmp_path, monkeypatch):
    """Aliases found in Sent's From headers become `addresses` (login first), read with EXAMINE and BODY.PEEK."""
    from dovecot import make_message

    monkeypatch.setenv("SYNCAGENT_TEST_PW", mailbox.password)
    alias = "Me.Alias@Example.ORG"
    mailbox.append_many("Sent", [make_message(1, sender=alias), make_message(2, sender=alias),
                                 make_message(3, sender=mailbox.user)])
    mailbox.append("INBOX", make_message(4))
    before = mailbox.flags("Sent")
    path = tmp_path / "config.toml"
    result = invoke(dovecot_args(mailbox, path, "--yes"))
    assert result.exit_code == 0, result.output
    assert f"Your Sent folder is sent from: me.alias@example.org (2), {mailbox.user} (1)." in result.output
    assert config.load(path).account("personal").addresses == (mailbox.user, "me.alias@example.org")
    assert mailbox.flags("Sent") == before  # nothing marked \Seen
    assert "EXAMINE" in mailbox.server.commands
    assert any("BODY.PEEK[HEADER.FIELDS (FROM)]" in line for line in mailbox.server.command_lines)
    assert not set(mailbox.server.commands) & {"SELECT", "STORE", "UID STORE"}


@pytest.mark.dovecot
def test_init_address_flags_replace_the_guess(mailbox, tmp_path, monkeypatch):
    """--address (repeatable) is taken as the whole list, normalised."""
    monkeypatch.setenv("SYNCAGENT_TEST_PW", mailbox.password)
    path = tmp_path / "config.toml"
    result = invoke(dovecot_args(mailbox, path, "--yes", "--address", "Work@Example.com", "--address", "me@home.test"))
    assert result.exit_code == 0, result.output
    assert config.load(path).account("personal").addresses == ("work@example.com", "me@home.test")


@pytest.mark.dovecot
def test_init_takes_config_after_the_command_too(mailbox, tmp_path, monkeypatch):
    """`syncagent init --config PATH` (as the README shows) writes PATH, like `syncagent --config PATH init`."""
    monkeypatch.setenv("SYNCAGENT_TEST_PW", mailbox.password)
    path = tmp_path / "elsewhere.toml"
    args = dovecot_args(mailbox, path, "--yes")[2:]  # without the group's --config
    result = invoke(args[:1] + ["--config", str(path)] + args[1:])
    assert result.exit_code == 0, result.output
    assert f"Wrote {path} (mode 0600)." in result.output
    assert config.load(path).account("personal").username == mailbox.user


@pytest.mark.dovecot
def test_init_refuses_to_overwrite_without_force(mailbox, tmp_path, monkeypatch):
    """An existing config is left alone unless --force, which keeps the old one as .bak."""
    monkeypatch.setenv("SYNCAGENT_TEST_PW", mailbox.password)
    path = tmp_path / "config.toml"
    path.write_text("# mine\n")
    result = CliRunner().invoke(cli, dovecot_args(mailbox, path, "--yes"))
    assert result.exit_code == 1
    assert "already exists; pass --force to replace it" in str(result.exception)
    assert path.read_text() == "# mine\n"
    result = invoke(dovecot_args(mailbox, path, "--yes", "--force"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "config.toml.bak").read_text() == "# mine\n"
    assert config.load(path).accounts[0].host == "127.0.0.1"


@pytest.mark.dovecot
def test_init_writes_nothing_when_the_login_fails(mailbox, tmp_path, monkeypatch, capsys):
    """A wrong password is one sentence, exit 1, and no file is written."""
    from syncagent.cli import main

    monkeypatch.setenv("SYNCAGENT_TEST_PW", "wrong")
    path = tmp_path / "config.toml"
    with pytest.raises(SystemExit) as exc:
        main(dovecot_args(mailbox, path, "--yes"))
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert f"Error: The server 127.0.0.1 rejected the login for {mailbox.user}" in err
    assert "Traceback" not in err
    assert not path.exists()


@pytest.mark.dovecot
def test_init_interactive_prompts(mailbox, tmp_path, monkeypatch):
    """Answering the prompts (an unknown domain, a password command) gives the same kind of config."""
    path = tmp_path / "config.toml"
    answers = "\n".join([
        mailbox.user,            # address
        "127.0.0.1",             # host (default would be imap.example.test)
        "none",                  # security
        str(mailbox.server.port),
        "",                      # username: the address
        "command",               # password source
        f"echo {mailbox.password}",
        "work",                  # account name
        "UTC",                   # time zone
        "",                      # own addresses: the login (the Sent folder is empty)
    ]) + "\n"
    result = invoke(["--config", str(path), "init"], input=answers)
    assert result.exit_code == 0, result.output
    assert "IMAP server [imap.example.test]" in result.output
    acct = config.load(path).account("work")
    assert acct.secret.password_command == f"echo {mailbox.password}"
    assert acct.username == mailbox.user


def test_init_recognises_providers_and_stops_before_the_network(tmp_path, monkeypatch):
    """A Gmail address fills in imap.gmail.com and suggests the Gmail API; a bad time zone fails before connecting."""
    calls = []
    monkeypatch.setattr(init_wizard, "probe", lambda account, **kw: calls.append(account))
    path = tmp_path / "config.toml"
    result = CliRunner().invoke(cli, ["--config", str(path), "init", "--email", "someone@gmail.com",
                                      "--password-env", "X", "--timezone", "Mars/Olympus", "--yes"])
    assert result.exit_code == 1
    assert "Recognised Gmail: imap.gmail.com:993 (tls)." in result.output
    assert 'kind = "gmail"' in result.output  # the Gmail API is suggested
    assert "Mars/Olympus" in str(result.exception)
    assert calls == [] and not path.exists()


def test_init_with_yes_needs_a_password_source(tmp_path):
    """--yes without a password source says which flags to use."""
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "c.toml"), "init", "--email", "me@fastmail.com", "--yes"])
    assert result.exit_code == 1
    assert "--password-command CMD, --password-env VAR or --keyring" in str(result.exception)


def test_render_without_a_sent_folder_explains_folders():
    """When the server has no Sent folder the config says so; a Sent folder found by name is written out."""
    a = init_wizard.Answers(email="me@example.test", host="imap.example.test", port=993, security="tls",
                            username="me@example.test", password_command="pass mail")
    none = init_wizard.Probe(("IMAP4REV1",), ["INBOX"], None, False, None)
    text = init_wizard.render(a, none)
    assert "no Sent folder was found" in text
    named = init_wizard.Probe(("IMAP4REV1",), ["INBOX", "Sent Items"], "Sent Items", False, None)
    data = tomllib.loads(init_wizard.render(a, named))
    assert data["accounts"][0]["folders"] == ["INBOX", "Sent Items"]
    config.parse(data, None)


class _MemoryKeyring:
    """An in-memory keyring backend (the machine's own keyring is not touched by tests)."""

    def __init__(self):
        import keyring.backend

        class Backend(keyring.backend.KeyringBackend):
            priority = 1
            store: dict = {}

            def get_password(self, service, username):
                return self.store.get((service, username))

            def set_password(self, service, username, password):
                self.store[(service, username)] = password

            def delete_password(self, service, username):
                self.store.pop((service, username), None)

        self.backend = Backend()


@pytest.mark.dovecot
def test_init_keyring_stores_the_typed_password_not_the_config(mailbox, tmp_path):
    """Choosing the keyring: the typed password logs in, lands in the keyring, and never in the file."""
    import keyring

    from syncagent import secrets

    previous = keyring.get_keyring()
    mem = _MemoryKeyring().backend
    keyring.set_keyring(mem)
    try:
        path = tmp_path / "config.toml"
        answers = "\n".join([mailbox.user, "127.0.0.1", "none", str(mailbox.server.port), "", "keyring",
                             mailbox.password, "", "UTC", ""]) + "\n"
        result = invoke(["--config", str(path), "init"], input=answers)
        assert result.exit_code == 0, result.output
        text = path.read_text()
        assert "keyring = true" in text and mailbox.password not in text
        acct = config.load(path).account("personal")
        assert secrets.resolve(acct.secret) == mailbox.password
    finally:
        keyring.set_keyring(previous)


# --- each failed step is asked again, keeping the other answers ------------------------------

@pytest.fixture
def no_keyring():
    """The keyring as on a server without a desktop session: the fail backend."""
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.mark.dovecot
def test_wrong_password_asks_for_the_password_again_and_keeps_the_rest(mailbox, tmp_path, no_keyring):
    """A refused login says so and asks only where the password comes from again; the other answers stay."""
    path = tmp_path / "config.toml"
    answers = "\n".join([
        mailbox.user, "127.0.0.1", "none", str(mailbox.server.port), "",
        "command", "echo wrong-pw",          # refused by the server
        "work", "Europe/Berlin",
        "command", f"echo {mailbox.password}",  # asked again: only the password step
        "",                                   # own addresses
    ]) + "\n"
    result = invoke(["--config", str(path), "init"], input=answers)
    assert result.exit_code == 0, result.output
    assert result.output.count(
        f"Error: The server 127.0.0.1 rejected the login for {mailbox.user}; check the username and password "
        "(for Gmail and others, an app password).") == 1
    assert result.output.count("Where should syncagent get the password?") == 2
    acct = config.load(path).account("work")
    assert acct.secret.password_command == f"echo {mailbox.password}"
    assert (acct.port, acct.security) == (mailbox.server.port, "none")
    assert config.load(path).timezone == "Europe/Berlin"


@pytest.mark.dovecot
def test_tls_port_then_self_signed_certificate_is_pinned_not_unverified(dovecot_tls, tmp_path, no_keyring,
                                                                       monkeypatch, capsys):
    """security = none on a TLS port re-asks the server; the self-signed certificate is shown and pinned, then sync works."""
    from dovecot import fingerprint

    from syncagent.cli import main

    user = dovecot_tls.new_user()
    pin = fingerprint(dovecot_tls.cert)
    path = tmp_path / "config.toml"
    answers = "\n".join([
        user.user, "127.0.0.1", "none", str(dovecot_tls.tls_port), "", "command", f"echo {user.password}", "", "UTC",
        "", "tls", "",     # the server step again: same host and port, security tls
        "y",               # trust the certificate shown
        "",                # own addresses
    ]) + "\n"
    result = invoke(["--config", str(path), "init"], input=answers)
    assert result.exit_code == 0, result.output
    assert f"Error: 127.0.0.1:{dovecot_tls.tls_port} expects TLS from the first byte" in result.output
    assert "Error: The TLS certificate of 127.0.0.1 could not be verified (self" in result.output
    assert f"\n  {pin}\n" in result.output
    text = path.read_text()
    assert f'tls_fingerprint = "{pin}"' in text and "tls_verify" not in text
    acct = config.load(path).account("personal")
    assert (acct.security, acct.tls_verify, acct.tls_fingerprint) == ("tls", True, pin)

    text = text.replace('path = "~/.local/share/syncagent/syncagent.db"', f'path = "{tmp_path / "db.sqlite"}"')
    path.write_text(text)
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(path), "sync"])
    assert exc.value.code == 0, capsys.readouterr().err

    wrong = "sha256:" + "0" * 64
    path.write_text(text.replace(pin, wrong))
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(path), "sync"])
    assert exc.value.code == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"Error: The TLS certificate of 127.0.0.1 has the fingerprint {pin}, not the {wrong} pinned in "
        "`tls_fingerprint` of account 'personal', so nothing was sent; if the server's administrator confirms a "
        "new certificate, put its fingerprint there (`syncagent init` shows it).")


def test_keyring_is_not_offered_without_a_working_backend(tmp_path, no_keyring):
    """Without a usable keyring the prompt offers command and env only, and --keyring --yes says why it cannot."""
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "c.toml"), "init", "--email", "me@fastmail.com",
                                      "--keyring", "--yes"])
    assert result.exit_code == 1
    assert str(result.exception) == ("The system keyring cannot be used here (no keyring backend is installed or "
                                     "running); use --password-command or --password-env instead.")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "c.toml"), "init", "--email", "me@fastmail.com"],
                                input="\n\n\n\nkeyring\n")
    assert ("The system keyring cannot be used here (no keyring backend is installed or running), so the password "
            "comes from a command or an environment variable.") in result.output
    assert "Where should syncagent get the password? command (e.g. pass) or env (a variable) (command, env)" \
        in result.output
    assert "Error: 'keyring' is not one of 'command', 'env'." in result.output
    assert not (tmp_path / "c.toml").exists()


def test_a_malformed_fingerprint_is_refused_with_the_format():
    """tls_fingerprint must be sha256 and 64 hex digits; openssl's colon form is accepted and normalised."""
    base = {"accounts": [{"name": "a", "kind": "imap", "host": "h", "username": "u", "password_env": "X"}]}
    base["accounts"][0]["tls_fingerprint"] = "sha256:" + ":".join(["AB"] * 32)
    assert config.parse(base, None).accounts[0].tls_fingerprint == "sha256:" + "ab" * 32
    base["accounts"][0]["tls_fingerprint"] = "md5:1234"
    with pytest.raises(config.ConfigError) as exc:
        config.parse(base, None)
    assert str(exc.value) == ("`accounts.a.tls_fingerprint` is 'md5:1234'; write \"sha256:\" and the 64 hex digits "
                              "`syncagent init` shows (or `openssl x509 -noout -fingerprint -sha256` prints).")


@pytest.mark.dovecot
def test_a_keyring_that_fails_to_store_asks_for_another_source(mailbox, tmp_path):
    """When the keyring refuses the real password after a good probe, init asks for a command instead of exiting."""
    import keyring
    from keyring.errors import PasswordSetError

    class Locked(_MemoryKeyring().backend.__class__):
        def set_password(self, service, username, password):
            if not username.startswith("syncagent-probe-"):
                raise PasswordSetError("the wallet was locked")
            super().set_password(service, username, password)

    previous = keyring.get_keyring()
    keyring.set_keyring(Locked())
    try:
        path = tmp_path / "config.toml"
        answers = "\n".join([mailbox.user, "127.0.0.1", "none", str(mailbox.server.port), "", "keyring",
                             mailbox.password, "", "UTC", "", "command", f"echo {mailbox.password}"]) + "\n"
        result = invoke(["--config", str(path), "init"], input=answers)
    finally:
        keyring.set_keyring(previous)
    assert result.exit_code == 0, result.output
    assert ("Error: The system keyring could not store the password (the wallet was locked); use --password-command "
            "or --password-env instead.") in result.output
    assert "command (e.g. pass) or env (a variable) (command, env)" in result.output
    acct = config.load(path).account("personal")
    assert acct.secret.password_command == f"echo {mailbox.password}" and not acct.secret.keyring
