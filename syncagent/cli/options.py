"""Options shared by several commands."""

from __future__ import annotations

import click


def _parse_now(ctx, param, value):
    if value is None:
        return None
    from syncagent.timeutil import parse_iso

    try:
        return parse_iso(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 instant; write it like 2026-11-20T17:00:00Z.") from None


def now_option(help: str = "Evaluate as if the clock read this instant (ISO 8601; default: now); later mail is ignored."):
    """``--now ISO``, given to the command as an aware UTC datetime (or None); a bad value is a usage error."""
    return click.option("--now", "now", metavar="ISO", callback=_parse_now, help=help)
