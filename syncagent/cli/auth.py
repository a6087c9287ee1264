"""`syncagent auth gmail|microsoft ACCOUNT`: OAuth consent for Gmail, Outlook.com and Microsoft 365."""

from __future__ import annotations

import click

from syncagent.cli import echo, pass_ctx


@click.group()
def auth():
    """Authorize syncagent to read a mailbox that needs OAuth (Gmail, Outlook.com, Microsoft 365).

    \b
    Example:
      syncagent auth gmail personal
      syncagent auth microsoft work                # Outlook.com / Microsoft 365: a code to enter
      syncagent auth gmail personal --no-browser   # on a machine without a browser
      syncagent auth gmail personal --check        # is the saved token still good?
    """


@auth.command("gmail")
@click.argument("account")
@click.option("--no-browser", is_flag=True,
              help="Print the authorization URL and paste back the address the browser ends on.")
@click.option("--check", is_flag=True, help="Only test the saved token (renewing it if due) and say whose mailbox it opens.")
@pass_ctx
def gmail(ctx, account, no_browser, check):
    """Open Google's consent page for ACCOUNT and save its token (mode 0600).

    A `kind = "gmail"` account asks for read-only Gmail API access
    (gmail.readonly); an IMAP account with `auth = "oauth2"` asks for the
    full-mail scope Gmail's IMAP requires (syncagent still only reads). The
    token is saved to the account's `token_file` and renewed automatically.

    \b
    Example:
      syncagent auth gmail personal
      syncagent auth gmail personal --no-browser
    """
    from syncagent.errors import ConfigError
    from syncagent.sources.gmail import auth as gmail_auth

    acct = ctx.config.account(account)
    if not (acct.kind == "gmail" or (acct.kind == "imap" and acct.auth == "oauth2")):
        raise ConfigError(
            f"Account '{account}' in {ctx.config.path} is kind = \"{acct.kind}\" without OAuth; "
            "`syncagent auth gmail` is for kind = \"gmail\" accounts and IMAP accounts with auth = \"oauth2\"."
        )
    if check:
        ctx.echo(_check(acct))
        return
    path = gmail_auth.authorize(acct, open_browser=True, no_browser=no_browser,
                                ask=lambda prompt: click.prompt(prompt, prompt_suffix="", err=True),
                                tell=lambda line: echo(line, err=True))
    ctx.echo(f"Saved the token for account '{account}' to {path}; `syncagent sync` can now read it.")


def _check(acct) -> str:
    from syncagent.sources.gmail import auth as gmail_auth

    creds = gmail_auth.load_credentials(acct)  # renews (and saves) when expired
    if acct.kind != "gmail":
        return f"The token for account '{acct.name}' is valid."
    from syncagent.sources.gmail.api import GmailClient

    before = creds.token
    profile = GmailClient(acct, creds).profile()
    if creds.token != before:  # renewed after a 401: keep the new one
        gmail_auth.save_credentials(gmail_auth.token_file(acct), creds)
    return f"The token for account '{acct.name}' opens {profile.get('emailAddress', 'the mailbox')} (read-only)."


@auth.command("microsoft")
@click.argument("account")
@click.option("--check", is_flag=True, help="Only test the saved token (renewing it if due).")
@pass_ctx
def microsoft(ctx, account, check):
    """Sign ACCOUNT in to Microsoft with a device code and save its token cache (mode 0600).

    For an IMAP account with `auth = "oauth2"` on Outlook.com or Microsoft 365
    (`provider = "microsoft"`, implied by host outlook.office365.com). It
    prints a page and a code: enter the code there in any browser, on any
    device, and sign in. The access token is renewed silently afterwards.

    \b
    Example:
      syncagent auth microsoft work
      syncagent auth microsoft work --check
    """
    from syncagent.errors import ConfigError
    from syncagent.sources.imap import microsoft as ms

    acct = ctx.config.account(account)
    if not (acct.kind == "imap" and acct.auth == "oauth2" and acct.provider == "microsoft"):
        raise ConfigError(
            f"Account '{account}' in {ctx.config.path} is not a Microsoft OAuth account; `syncagent auth microsoft` "
            "is for IMAP accounts with auth = \"oauth2\" and provider = \"microsoft\" (or host outlook.office365.com)."
        )
    if check:
        ms.access_token(acct)
        echo(f"The Microsoft token for account '{account}' is valid.")
        return
    path = ms.authorize(acct, tell=lambda line: echo(line, err=True))
    echo(f"Saved the token for account '{account}' to {path}; `syncagent sync` can now read it.")
