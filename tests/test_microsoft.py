"""Outlook.com / Microsoft 365 over IMAP with OAuth2: device-code sign-in, a 0600 token cache, silent renewal, XOAUTH2."""

from __future__ import annotations

import logging

import pytest
from microsoft_fake import CLIENT_ID, FakeMicrosoft

from syncagent import config as config_mod
from syncagent.cli import main
from syncagent.sources.imap import connect as imap_connect
from syncagent.sources.imap import microsoft


@pytest.fixture
def fake(tmp_path_factory, monkeypatch):
    from dovecot import make_certificate

    cert, key = make_certificate(tmp_path_factory.mktemp("mscert"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # msal's requests trusts the fake's certificate
    server = FakeMicrosoft(cert, key, username="me@contoso.test")
    yield server
    server.close()


def write_config(tmp_path, fake, port=993, host="outlook.office365.com", extra=""):
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\npath = "{tmp_path / "db.sqlite"}"\n\n[[accounts]]\nname = "work"\nkind = "imap"\n'
        f'host = "{host}"\nport = {port}\nusername = "me@contoso.test"\nauth = "oauth2"\n'
        f'client_id = "{CLIENT_ID}"\nauthority = "{fake.base}"\ntoken_file = "{tmp_path / "work.msal.json"}"\n'
        f'timeout = 10\n{extra}')
    return path


def run(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers if not getattr(h, "_syncagent", False)]
    return exc.value.code, out, err


def test_host_outlook_office365_means_microsoft_and_needs_a_client_id(tmp_path, fake):
    """auth = "oauth2" on outlook.office365.com is Microsoft's OAuth; without client_id the config says what to do."""
    acct = config_mod.load(write_config(tmp_path, fake)).account("work")
    assert (acct.provider, acct.client_id, acct.authority) == ("microsoft", CLIENT_ID, fake.base)
    assert acct.token_file == tmp_path / "work.msal.json"
    path = tmp_path / "config.toml"
    path.write_text(path.read_text().replace(f'client_id = "{CLIENT_ID}"\n', ""))
    with pytest.raises(config_mod.ConfigError) as exc:
        config_mod.load(path)
    assert str(exc.value) == (
        f"{path}: `accounts.work.client_id` is missing (Microsoft OAuth needs a registered app); register one in "
        "Microsoft Entra (public client flows allowed, permission IMAP.AccessAsUser.All) and put its Application "
        "(client) ID here; see the README.")


def test_auth_microsoft_runs_the_device_flow_and_saves_a_private_cache(tmp_path, fake, capsys):
    """`syncagent auth microsoft work` shows Microsoft's code message, polls until signed in, saves the cache 0600."""
    path = write_config(tmp_path, fake)
    code, out, err = run(capsys, "--config", str(path), "auth", "microsoft", "work")
    assert code == 0, err
    assert "enter the code FAKE-CODE to authenticate." in err
    cache = tmp_path / "work.msal.json"
    assert out.strip() == f"Saved the token for account 'work' to {cache}; `syncagent sync` can now read it."
    assert cache.stat().st_mode & 0o777 == 0o600
    assert "rt-1" in cache.read_text()
    polls = [r for r in fake.requests if r["path"].endswith("/token")]
    assert len(polls) == 2  # pending once, then the tokens
    device = next(r for r in fake.requests if r["path"].endswith("/devicecode"))
    assert device["client_id"] == CLIENT_ID
    assert set(device["scope"].split()) >= {"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"}


def test_access_token_is_renewed_silently_with_the_refresh_token(tmp_path, fake, capsys):
    """An access token about to expire is renewed with the refresh token (no prompt) and the new cache saved."""
    path = write_config(tmp_path, fake)
    assert run(capsys, "--config", str(path), "auth", "microsoft", "work")[0] == 0
    acct = config_mod.load(path).account("work")
    assert microsoft.access_token(acct) == "at-2"
    refresh = [r for r in fake.requests if r.get("grant_type") == "refresh_token"]
    assert [r["refresh_token"] for r in refresh] == ["rt-1"]
    assert "rt-2" in (tmp_path / "work.msal.json").read_text()


def test_no_token_and_a_revoked_token_say_to_sign_in_again(tmp_path, fake, capsys):
    """Without a cache, or when Microsoft refuses the refresh token, sync says to run `auth microsoft`."""
    path = write_config(tmp_path, fake)
    code, _, err = run(capsys, "--config", str(path), "auth", "microsoft", "work", "--check")
    assert code == 1
    assert err.strip() == (f"Error: There is no Microsoft token for account 'work' at {tmp_path / 'work.msal.json'}; "
                           "run `syncagent auth microsoft work`.")
    assert run(capsys, "--config", str(path), "auth", "microsoft", "work")[0] == 0
    fake.issued = 99  # the server no longer knows rt-1
    code, _, err = run(capsys, "--config", str(path), "auth", "microsoft", "work", "--check")
    assert code == 1
    assert err.strip() == ("Error: The Microsoft token of account 'work' can no longer be renewed (AADSTS70000: the "
                           "refresh token was revoked.); run `syncagent auth microsoft work` again.")


@pytest.mark.dovecot
def test_sync_logs_in_with_xoauth2_and_the_microsoft_token(mailbox, tmp_path, fake, capsys, monkeypatch):
    """provider = "microsoft" logs in with AUTHENTICATE XOAUTH2 carrying the renewed Microsoft token, never LOGIN."""
    monkeypatch.setattr(imap_connect, "CONNECT_ATTEMPTS", 1)
    path = write_config(tmp_path, fake, port=mailbox.server.port, host="127.0.0.1",
                        extra='security = "none"\nprovider = "microsoft"\n')
    path.write_text(path.read_text().replace('username = "me@contoso.test"', f'username = "{mailbox.user}"'))
    fake.username = mailbox.user
    assert run(capsys, "--config", str(path), "auth", "microsoft", "work")[0] == 0
    sent = []
    real = microsoft.access_token
    monkeypatch.setattr(microsoft, "access_token", lambda account: sent.append(real(account)) or sent[-1])
    code, _, err = run(capsys, "--config", str(path), "sync")
    assert code == 1  # this Dovecot offers no XOAUTH2, so the token is refused
    assert "rejected the login" in err
    assert sent == ["at-2"]
    assert "AUTHENTICATE" in mailbox.server.commands and "LOGIN" not in mailbox.server.commands


def test_doctor_names_a_missing_microsoft_token(tmp_path, fake, capsys, monkeypatch):
    """doctor on a Microsoft OAuth account without a saved token says which command signs it in."""
    monkeypatch.setenv("HOME", str(tmp_path))
    path = write_config(tmp_path, fake)
    path.chmod(0o600)
    code, out, _ = run(capsys, "--config", str(path), "doctor")
    assert code == 1
    assert (f"!!  account work: there is no Microsoft token at {tmp_path / 'work.msal.json'}; run "
            "`syncagent auth microsoft work`.") in out.splitlines()
