"""`syncagent init`: ask (or take flags) for an IMAP account, test it, write the config."""

from __future__ import annotations

import click

from syncagent.cli import echo, pass_ctx

SECURITY = ("tls", "starttls", "none")


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Where to write the config (default ~/.config/syncagent/config.toml); same as `syncagent --config PATH init`.")
@click.option("--email", help="Your address; known providers fill in the server settings.")
@click.option("--host", help="IMAP server (default: from the provider table, else imap.<domain>).")
@click.option("--port", type=int, help="IMAP port (default 993 with tls, 143 otherwise).")
@click.option("--security", type=click.Choice(SECURITY), help="tls (implicit TLS), starttls or none.")
@click.option("--username", help="Login name (default: your address).")
@click.option("--password-command", help="A command that prints the password, e.g. \"pass show mail/me\".")
@click.option("--password-env", metavar="VAR", help="An environment variable that holds the password.")
@click.option("--keyring", "use_keyring", is_flag=True, help="Read the password from the system keyring.")
@click.option("--address", "addresses", multiple=True, metavar="ADDR",
              help="One of your own addresses (repeat for aliases; default: your login plus the From addresses "
                   "found in your Sent folder).")
@click.option("--name", help="A short name for the account (default: personal).")
@click.option("--timezone", help="Your IANA time zone (default: this machine's).")
@click.option("--tls-fingerprint", metavar="sha256:HEX",
              help="Trust exactly the certificate with this SHA-256 fingerprint (a self-signed server).")
@click.option("--no-tls-verify", is_flag=True, help="Do not verify the server certificate (a server you trust only).")
@click.option("--yes", "-y", is_flag=True, help="Ask nothing: take flags and defaults (for scripts).")
@click.option("--force", is_flag=True, help="Replace an existing config file (kept as config.toml.bak).")
@pass_ctx
def init(ctx, config_file, email, host, port, security, username, password_command, password_env, use_keyring, addresses, name, timezone,
         tls_fingerprint, no_tls_verify, yes, force):
    """Set up syncagent for an IMAP mailbox: test the login, then write the config.

    Known providers (Gmail, Outlook, Yahoo, iCloud, Fastmail, GMX, Zoho,
    Proton Bridge, Posteo, mailbox.org, AOL...) are recognised from the
    address. The login and the folders are checked before anything is
    written; the file is created mode 0600 and names where the password comes
    from, never the password itself.

    \b
    Example:
      syncagent init
      syncagent init --email me@fastmail.com --password-command "pass show fastmail" --yes
    """
    from pathlib import Path

    from syncagent import config as config_mod
    from syncagent.errors import ConfigError, InputError
    from syncagent.setup import init as init_wizard
    from syncagent.setup import providers

    chosen = config_file or ctx.config_path
    path = Path(chosen).expanduser() if chosen else config_mod.default_path()
    init_wizard.check_target(path, force)  # say so before asking anything
    interactive = not yes

    def ask(text, default=None, **kw):
        if not interactive:
            if default is None:
                raise InputError(f"{text} is needed; pass it as an option (see `syncagent init --help`).")
            return default
        return click.prompt(text, default=default, **kw)

    if not email:
        if not interactive:
            raise InputError("--email is needed with --yes; pass your address, e.g. --email me@example.com.")
        email = click.prompt("Your email address")
    email = email.strip()
    if "@" not in email:
        raise InputError(f"{email!r} is not an email address; give one like me@example.com.")
    provider = providers.lookup(email)
    if provider is not None:
        if not provider.host:
            raise InputError(f"{email} is at {provider.name}: {provider.note}")
        echo(f"Recognised {provider.name}: {provider.host}:{provider.port} ({provider.security}).")
        if provider.note:
            echo(f"Note: {provider.note}")
    host = host or ask("IMAP server", provider.host if provider else providers.guess_host(email))
    security = security or ask("Security", provider.security if provider else "tls", type=click.Choice(SECURITY))
    port = port or ask("Port", provider.port if provider and provider.security == security
                       else (993 if security == "tls" else 143), type=int)
    username = username or ask("Username", email)
    sources = sum(bool(x) for x in (password_command, password_env, use_keyring))
    if sources > 1:
        raise InputError("Give only one of --password-command, --password-env and --keyring.")
    if sources == 0 and not interactive:
        raise InputError("Say where the password comes from: --password-command CMD, --password-env VAR or --keyring.")
    keyring_problem = init_wizard.keyring_problem() if (use_keyring or sources == 0) else None
    if use_keyring and keyring_problem:
        raise InputError(f"The system keyring cannot be used here ({keyring_problem}); use --password-command or "
                         "--password-env instead.")
    answers = init_wizard.Answers(
        email=email, host=host, port=port, security=security, username=username,
        password_command=password_command, password_env=password_env, keyring=use_keyring,
        tls_verify=not no_tls_verify, tls_fingerprint=tls_fingerprint,
    )
    if sources == 0:
        _ask_password(answers, keyring_problem)
    answers.name = name or ask("Account name", "personal")
    answers.timezone = timezone or ask("Time zone", init_wizard.default_timezone())
    # Time zone, names and the fingerprint are checked before the network is tried; the pin as the config reads it.
    answers.tls_fingerprint = _validate(init_wizard.render(answers), path).accounts[0].tls_fingerprint
    found = _connect(answers, interactive, keyring_problem)
    echo(f"Logged in: {found.summary()}.")
    answers.addresses = _own_addresses(email, addresses, found, interactive)
    if found.gmail:
        echo("Gmail: syncagent reads [Gmail]/All Mail only (each message once).")
    elif found.sent:
        echo(f"Folders to sync: INBOX and {found.sent}.")
    elif interactive and len(found.folders) > 1:
        _ask_sent_folder(found)
    else:
        echo("Warning: the server shows no Sent folder, so your own messages will not be counted; "
             "name it in `folders` in the config.", err=True)
    while answers.password is not None:
        try:
            init_wizard.store_in_keyring(answers.username, answers.password)
            break
        except ConfigError as exc:
            if not interactive:
                raise
            # The round trip worked a moment ago, yet storing failed (a wallet locked meanwhile): ask again
            # without the keyring and check the new source, keeping everything else.
            echo(f"Error: {exc}", err=True)
            keyring_problem = "it failed to store the password just now"
            _ask_password(answers, keyring_problem)
            found = _connect(answers, interactive, keyring_problem)
    init_wizard.write(path, init_wizard.render(answers, found), force=force)
    echo(f"Wrote {path} (mode 0600).")
    echo("Next: `syncagent doctor` to check everything, then `syncagent sync`.")
    echo("Then `syncagent contacts suggest` lists the people you write to, to track in the ledger.")


def _ask_password(answers, keyring_problem: str | None) -> None:
    """Where the password comes from; the keyring is offered only when a round trip through it works."""
    choices = ["command", "env"] if keyring_problem else ["command", "env", "keyring"]
    if keyring_problem:
        echo(f"The system keyring cannot be used here ({keyring_problem}), so the password comes from a command "
             "or an environment variable.")
        what = "command (e.g. pass) or env (a variable)"
    else:
        what = "command (e.g. pass), env (a variable) or keyring (stored now)"
    answers.password_command = answers.password_env = answers.password = None
    answers.keyring = False
    how = click.prompt(f"Where should syncagent get the password? {what}", type=click.Choice(choices),
                       default=choices[-1])
    if how == "command":
        answers.password_command = click.prompt("Command that prints the password")
    elif how == "env":
        answers.password_env = click.prompt("Environment variable", default="SYNCAGENT_IMAP_PASSWORD")
    else:
        answers.keyring = True
        answers.password = click.prompt("Password (stored in the system keyring, never in the config)",
                                        hide_input=True)


def _ask_server(answers) -> None:
    answers.host = click.prompt("IMAP server", default=answers.host)
    answers.security = click.prompt("Security", default=answers.security, type=click.Choice(SECURITY))
    usual = 993 if answers.security == "tls" else 143
    answers.port = click.prompt("Port", default=usual if answers.port in (993, 143) else answers.port, type=int)
    if answers.security == "none":
        answers.tls_fingerprint = None


def _connect(answers, interactive: bool, keyring_problem: str | None):
    """Log in; when a step fails, say why and ask that step again, keeping every other answer."""
    from syncagent.errors import AuthError, ConfigError, SyncagentError
    from syncagent.sources.imap import connect as imap_connect

    while True:
        echo(f"Checking {answers.username} at {answers.host}:{answers.port} ({answers.security})...")
        try:
            return _probe(answers)
        except SyncagentError as exc:
            if not interactive:
                raise
            echo(f"Error: {exc}", err=True)
            if isinstance(exc, imap_connect.CertificateError):
                fingerprint = imap_connect.peer_fingerprint(answers.account())
                if fingerprint and _trust(answers, fingerprint):
                    answers.tls_fingerprint = fingerprint
                    continue
                _ask_server(answers)
            elif isinstance(exc, (AuthError, ConfigError)):  # refused, or the command/variable gave no password
                _ask_password(answers, keyring_problem)
            else:
                _ask_server(answers)


def _trust(answers, fingerprint: str) -> bool:
    echo(f"{answers.host} presents a certificate that no authority vouches for. Its SHA-256 fingerprint is:")
    echo(f"  {fingerprint}")
    echo("Compare it with the one your provider or administrator gives you (on the server: `openssl x509 "
         "-noout -fingerprint -sha256 -in CERT`).")
    return click.confirm("Trust exactly this certificate (tls_fingerprint in the config)?", default=False)


def _ask_sent_folder(found) -> None:
    """No folder is marked or named Sent: let the person pick theirs from the list."""
    others = [f for f in found.folders if f.upper() != "INBOX"]
    echo("The server marks no folder as Sent. Folders: " + ", ".join(others) + ".")
    choice = click.prompt("Which folder holds the mail you send? (blank: none)", default="",
                          type=click.Choice([*others, ""]), show_choices=False, show_default=False)
    if choice:
        found.sent, found.sent_by_flag = choice, False
        echo(f"Folders to sync: INBOX and {choice}.")


def _validate(text: str, path):
    import tomllib

    from syncagent import config

    return config.parse(tomllib.loads(text), path)


def _probe(answers):
    """Try the account; a password typed for the keyring is used in memory without the config-password warning."""
    import logging

    from syncagent.setup import init as init_wizard

    secrets_log = logging.getLogger("syncagent.secrets")
    level = secrets_log.level
    if answers.password is not None:
        secrets_log.setLevel(logging.ERROR)
    try:
        return init_wizard.probe(answers.account(), senders=True)
    finally:
        secrets_log.setLevel(level)



def _own_addresses(email: str, given, found, interactive: bool) -> tuple[str, ...]:
    """Your addresses: --address, else the login and what the Sent folder is sent from (asked to confirm)."""
    from syncagent.errors import InputError
    from syncagent.parse.addresses import normalize_address

    def clean(items) -> tuple[str, ...]:
        out: list[str] = []
        for item in items:
            norm = normalize_address(item)
            if norm is None:
                raise InputError(f"{item.strip()!r} is not an email address; give addresses like me@example.com.")
            if norm not in out:
                out.append(norm)
        return tuple(out)

    if given:
        return clean(given)
    candidates = clean([email, *(addr for addr, _n in found.senders)])
    if found.senders:
        shown = ", ".join(f"{addr} ({n})" for addr, n in found.senders[:10])
        echo(f"Your Sent folder is sent from: {shown}.")
    elif found.sent:
        echo(f"{found.sent} is empty, so only {candidates[0]} is known as yours; add aliases to `addresses`.")
    if not interactive:
        return candidates
    while True:
        text = click.prompt("Your own addresses, comma-separated (mail from them counts as outgoing)",
                            default=", ".join(candidates))
        try:
            chosen = clean(part for part in text.split(",") if part.strip())
        except InputError as exc:
            echo(str(exc), err=True)
            continue
        if chosen:
            return chosen
        echo("Give at least one address.", err=True)
