"""The Datasette hooks `syncagent serve` registers in its own process (nothing to install)."""

from __future__ import annotations

from datasette import hookimpl

from syncagent.serve import datasette as serve

NAME = "syncagent-serve"


@hookimpl
def extra_css_urls(datasette):
    return [datasette.urls.path(f"/{serve.STATIC_MOUNT}/syncagent.css")]


@hookimpl
def extra_template_vars(datasette):
    return {"syncagent_start": serve.start_here(datasette)}


@hookimpl
def render_cell(value, column, table, database, datasette):
    if table == "reminders" and column == "anchor":
        return serve.anchor_link(datasette, database, value)
    return None
