"""`syncagent mcp`: the ledger for an assistant, as a read-only MCP server on stdio."""

from __future__ import annotations

import click

from syncagent.cli import pass_ctx


@click.command()
@pass_ctx
def mcp(ctx):
    """Serve the ledger to an assistant over the Model Context Protocol (stdio), read-only.

    Tools: owed, brief, search, stats, companies, upcoming_meetings. The database is
    opened read-only; nothing an assistant asks can change it or your mail.
    Add it to an MCP client's config as the command `syncagent mcp`.

    \b
    Example (an MCP client's JSON config):
      {"mcpServers": {"syncagent": {"command": "syncagent", "args": ["mcp"]}}}
    """
    from syncagent.assistant.server import serve_stdio

    serve_stdio(ctx.config)
