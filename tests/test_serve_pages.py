"""What `syncagent serve` shows first: the start-here list, hidden bookkeeping, linked anchors, one clock."""

from __future__ import annotations

import re
import shutil
import sqlite3

import digest_scenario as scenario
import pytest

from syncagent.serve import datasette as serve


def get(ds, path: str):
    response = scenario.datasette_get(ds, path)
    assert response.status_code == 200, (path, response.text[:300])
    return response


@pytest.fixture(scope="module")
def ds(ledger_db):
    return serve.make_datasette(ledger_db)


def _links(html: str) -> list[str]:
    start = html.index('<ul class="syncagent-start">')
    return re.findall(r'<a href="([^"]+)">', html[start:html.index("</ul>", start)])


def test_index_and_database_pages_start_with_contact_summary_reminders_and_the_queries(ds):
    """The index and the database page list contact_summary, reminders, then every canned query, before any table."""
    queries = list(serve.load_metadata("my-ledger.db")["databases"]["my-ledger"]["queries"])
    expected = ["/my-ledger/contact_summary", "/my-ledger/reminders", *(f"/my-ledger/{q}" for q in queries)]
    index = get(ds, "/").text
    assert _links(index) == expected
    assert index.index("/my-ledger/contact_summary") < index.index("/my-ledger/message_addresses")
    database = get(ds, "/my-ledger").text
    assert _links(database) == expected
    assert database.index('class="syncagent-start"') < database.index('id="tables"')
    assert "— One row per contact: when you first wrote" in index


def test_bookkeeping_and_search_tables_are_hidden(ds):
    """Sync cursors, folder locations, raw calendar parts, pipeline state and the FTS tables are hidden."""
    tables = {t["name"]: t["hidden"] for t in get(ds, "/my-ledger.json").json()["tables"]}
    hidden = {name for name, is_hidden in tables.items() if is_hidden}
    assert {"folder_state", "gmail_state", "message_folders", "calendar_parts", "pipeline_state",
            "mail_counts", "folder_counts", "_sqlite_migrations", "messages_fts"} <= hidden
    assert not hidden & {"contacts", "reminders", "messages", "replies", "contact_ledger", "meetings", "threads"}


def test_contact_tables_facet_briefly(ds):
    """contact_summary facets on state and segment only, at most 8 values each, so rows start on the first screen."""
    data = get(ds, "/my-ledger/contact_summary.json").json()
    assert list(data["facet_results"]) == ["state", "segment"]
    assert all(len(f["results"]) <= 8 for f in data["facet_results"].values())
    md = serve.load_metadata("my-ledger.db")["databases"]["my-ledger"]["tables"]
    assert md["contacts"]["facets"] == ["segment"] and md["contacts"]["facet_size"] == 8


def test_reminder_anchor_links_to_its_message_or_meeting(ds, ledger_db):
    """A reminder's anchor `message:N` is a link to message N's row (meetings likewise), not raw text."""
    conn = sqlite3.connect(ledger_db)
    anchors = [r[0] for r in conn.execute("SELECT anchor FROM reminders ORDER BY id")]
    conn.close()
    assert any(a.startswith("message:") for a in anchors) and any(a.startswith("meeting:") for a in anchors)
    html = get(ds, "/my-ledger/reminders").text
    for anchor in anchors:
        kind, key = anchor.split(":")
        table = {"message": "messages", "meeting": "meetings"}[kind]
        assert f'<a href="/my-ledger/{table}/{key}">{kind} {key}</a>' in html
    assert "message:" not in re.sub(r"<[^>]+>", "", html.split('<table class="rows-and-columns">')[1])


def test_a_close_the_loop_anchor_links_to_the_introduction_and_the_contact_introduced(demo_home):
    """`message:63+contact:32` (the introducing message, whom it introduced) shows as two links, not raw text."""
    db_path = demo_home / ".local/share/syncagent/demo/demo.db"
    conn = sqlite3.connect(db_path)
    [anchor] = [r[0] for r in conn.execute("SELECT anchor FROM reminders WHERE kind = 'close_loop'")]
    conn.close()
    message, contact = re.fullmatch(r"message:(\d+)\+contact:(\d+)", anchor).groups()
    html = get(serve.make_datasette(db_path), "/demo/reminders").text
    assert (f'<a href="/demo/messages/{message}">message {message}</a> + '
            f'<a href="/demo/contacts/{contact}">contact {contact}</a>') in html
    assert anchor not in html


def test_dated_queries_follow_the_ledger_clock_stored_in_the_database(ledger_db, tmp_path):
    """With a clock stored (as `syncagent demo` does), an empty `today` means that day, not the real date."""
    path = tmp_path / "clocked.db"
    shutil.copy(ledger_db, path)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO pipeline_state (name, value) VALUES ('clock', ?)", [serve_iso(scenario.NOW)])
    conn.close()
    ds = serve.make_datasette(path)
    for name in ("thank_yous_owed", "no_answer_after_7_business_days", "not_talked_in_90_days",
                 "this_weeks_activity", "follow_ups_due_today"):
        empty = get(ds, f"/clocked/{name}.json?_shape=array&today=").json()
        given = get(ds, f"/clocked/{name}.json?_shape=array&today={scenario.NOW:%Y-%m-%d}").json()
        assert empty == given, name
    statuses = [r["status_today"] for r in get(ds, "/clocked/thank_yous_owed.json?_shape=array&today=").json()]
    assert statuses == ["overdue", "today"]


def test_demo_stores_its_clock_for_the_queries(tmp_path, monkeypatch):
    """`syncagent demo` records its fixed instant, so Datasette's queries agree with the demo's report."""
    from syncagent.setup import demo

    monkeypatch.setenv("HOME", str(tmp_path))
    result = demo.run()
    conn = sqlite3.connect(result.database)
    assert conn.execute("SELECT value FROM pipeline_state WHERE name = 'clock'").fetchone() == ("2026-11-13T21:00:00Z",)
    conn.close()
    ds = serve.make_datasette(result.database)
    owed = get(ds, "/demo/thank_yous_owed.json?_shape=array").json()
    due_now = {r["id"] for r in result.reminders if r["kind"] == "thank_you" and r["overdue_seconds"] >= 0}
    assert {r["reminder"] for r in owed if r["status_today"] == "overdue"} == due_now


def serve_iso(when) -> str:
    from syncagent.timeutil import iso

    return iso(when)
