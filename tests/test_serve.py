"""Datasette with the bundled metadata, on a database built from the digest scenario."""

from __future__ import annotations

import json
import logging
import warnings

import digest_scenario as scenario
import pytest
from served import served

from syncagent.errors import SyncagentError
from syncagent.serve import datasette as serve
from syncagent.store.db import open_db

TODAY = "2026-11-25"


fetch = scenario.datasette_get


def rows(ds, path: str) -> list[dict]:
    response = fetch(ds, path)
    assert response.status_code == 200, response.text
    return response.json()


def query(ds, name: str, **params) -> list[dict]:
    args = "&".join(f"{k}={v}" for k, v in {"_shape": "array", **params}.items())
    return rows(ds, f"/my-ledger/{name}.json?{args}")


@pytest.fixture(scope="module")
def ds(ledger_db):
    return serve.make_datasette(ledger_db)


def test_metadata_is_renamed_to_the_database_stem(ledger_db):
    """The bundled metadata's database key becomes the served file's stem."""
    md = serve.load_metadata(ledger_db)
    assert list(md["databases"]) == ["my-ledger"]
    assert "queries" in md["databases"]["my-ledger"]
    assert list(serve.load_metadata("/x/syncagent.db")["databases"]) == ["syncagent"]


def test_every_visible_table_and_column_is_described(ledger_db):
    """Each table and view the user sees, and each of its columns, has a description that matches the schema."""
    md = serve.load_metadata(ledger_db)["databases"]["my-ledger"]["tables"]
    db = open_db(ledger_db)
    names = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' "
        "AND name NOT LIKE 'messages_fts%' AND name != '_sqlite_migrations'").fetchall()]
    missing = [n for n in names if not md.get(n, {}).get("description")]
    assert missing == []
    for name in names:
        columns = [r[1] for r in db.execute(f"PRAGMA table_info([{name}])").fetchall()]
        described = md[name].get("columns", {})
        assert sorted(described) == sorted(columns), name
        assert all(described.values()), name
    for name in md:  # nothing described that does not exist
        assert name in names or name == "_sqlite_migrations"


def test_metadata_loads_without_warnings(ledger_db, caplog):
    """Datasette starts on the metadata and the home page renders with no warning logged or raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with caplog.at_level(logging.WARNING):
            ds = serve.make_datasette(ledger_db)
            response = fetch(ds, "/")
            assert response.status_code == 200
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert "syncagent: your networking ledger" in response.text


@pytest.mark.parametrize("page", ["/my-ledger", "/my-ledger/messages", "/my-ledger/contacts",
                                  "/my-ledger/reminders", "/my-ledger/contact_summary"])
def test_pages_render(ds, page):
    """The database page and the main table pages render."""
    assert fetch(ds, page).status_code == 200


def test_messages_sort_by_date_and_label_contacts_by_name(ds):
    """Messages come newest first; reminders show the contact's name for the foreign key."""
    data = rows(ds, "/my-ledger/messages.json?_shape=array&_size=3")
    assert [r["date"] for r in data] == sorted((r["date"] for r in data), reverse=True)
    assert data[0]["date"] == "2026-11-23T17:00:00Z"
    data = rows(ds, "/my-ledger/reminders.json?_shape=array&_labels=on")
    assert {r["contact_id"]["label"] for r in data} >= {"Alice Able", "Bob Brown", "Dan Diaz"}
    assert [r["due_at"] for r in data] == sorted(r["due_at"] for r in data)
    html = fetch(ds, "/my-ledger/reminders").text
    assert "Alice Able" in html and 'data-column="kind"' in html


def test_facets_and_full_text_search(ds):
    """The table pages offer the configured facets, and the search box finds subjects and snippets."""
    data = fetch(ds, "/my-ledger/reminders.json").json()
    assert {"kind", "status"} <= set(data["facet_results"])
    data = fetch(ds, "/my-ledger/messages.json").json()
    assert {"direction", "automatic"} <= set(data["facet_results"])
    data = fetch(ds, "/my-ledger/contacts.json").json()
    assert set(data["facet_results"]) == {"segment"}  # a company facet is a click away, not 30 values up front
    data = fetch(ds, "/my-ledger/contacts.json?_facet=company").json()
    assert "company" in data["facet_results"]
    found = rows(ds, "/my-ledger/messages.json?_shape=array&_search=coffee")
    assert sorted(r["subject"] for r in found) == ["Coffee chat?", "Re: Coffee chat?"]
    found = rows(ds, "/my-ledger/messages.json?_shape=array&_search=office")
    assert [r["subject"] for r in found] == ["Out of office"]


def test_canned_thank_yous_owed(ds):
    """Open thank-yous: Alice (overdue) then Ivy (due after the meeting)."""
    data = query(ds, "thank_yous_owed", today=TODAY)
    assert [(r["name"], r["status_today"]) for r in data] == [("Alice Able", "overdue"), ("Ivy Ito", "today")]
    assert data[0]["email"] == "alice@acme.example"


def test_canned_follow_ups_due_today(ds):
    """Bob's follow-up fell due on 19 Nov; none falls due on 25 Nov."""
    assert [r["name"] for r in query(ds, "follow_ups_due_today", today="2026-11-19")] == ["Bob Brown"]
    assert query(ds, "follow_ups_due_today", today=TODAY) == []


def test_canned_no_answer_after_7_business_days(ds):
    """Only Bob is overdue; Erin's follow-up is not due until 1 Dec."""
    data = query(ds, "no_answer_after_7_business_days", today=TODAY)
    assert [(r["name"], r["days_overdue"], r["messages_unanswered"]) for r in data] == [("Bob Brown", 6, 1)]
    assert [r["name"] for r in query(ds, "no_answer_after_7_business_days", today="2026-12-01")] == ["Bob Brown", "Erin Evans"]


def test_canned_reply_rate_by_segment(ds):
    """Segments with the contacts reached and who replied, highest rate first, from the stored figures."""
    data = [(r["segment"], r["reached"], r["replied"], r["reply_rate_percent"], r["median_first_response_hours"])
            for r in query(ds, "reply_rate_by_segment")]
    assert data == [("alumni", 3, 3, 100.0, 24.0), ("mentor", 2, 2, 100.0, 24.0), ("(none)", 1, 1, 100.0, 24.0),
                    ("recruiter", 2, 0, 0.0, None)]
    recent = {r["segment"]: r["reached"] for r in query(ds, "reply_rate_by_segment", period="last_90_days")}
    assert recent == {"alumni": 3, "mentor": 0, "(none)": 1, "recruiter": 2}  # Dan and Frank: written to in the summer


def test_canned_response_times_by_company(ds):
    """Replies grouped by company, fastest average first."""
    data = query(ds, "response_times_by_company")
    assert [(r["company"], r["replies"], r["avg_hours"]) for r in data] == [
        ("Initech", 2, 13.0), ("Globex", 1, 24.0), ("Hooli", 1, 24.0), ("Umbrella", 1, 24.0), ("Acme", 1, 72.0),
    ]
    assert (data[0]["fastest_hours"], data[0]["slowest_hours"]) == (2.0, 24.0)


def test_canned_not_talked_in_90_days(ds):
    """Dan (22 Aug) and Frank (25 Aug) are past 90 days of silence; Gina (12 Sep) is not."""
    data = query(ds, "not_talked_in_90_days", today=TODAY)
    assert [(r["name"], r["days_silent"]) for r in data] == [("Dan Diaz", 95), ("Frank Fox", 92)]


def test_canned_this_weeks_activity(ds):
    """Since Monday 23 Nov: Alice's reply, Carol's exchange and the meeting with Ivy."""
    data = query(ds, "this_weeks_activity", today=TODAY)
    assert [(r["activity"], r["name"]) for r in data] == [
        ("received", "Alice Able"), ("sent", "Carol Chen"), ("received", "Carol Chen"), ("sent", "Carol Chen"),
        ("meeting", "Ivy Ito"),
    ]


def test_canned_queries_run_with_the_real_clock(ds):
    """Every canned query also runs with today left empty (the current date)."""
    md = serve.load_metadata("my-ledger.db")["databases"]["my-ledger"]["queries"]
    assert len(md) == 10
    for name in md:
        response = fetch(ds, f"/my-ledger/{name}.json?_shape=array")
        assert response.status_code == 200, (name, response.text)


def test_public_host_needs_the_explicit_flag():
    """Loopback is fine; another address is refused unless --i-know-this-is-public is given."""
    serve.check_host("127.0.0.1", False)
    serve.check_host("::1", False)
    serve.check_host("localhost", False)
    with pytest.raises(SyncagentError, match="--i-know-this-is-public"):
        serve.check_host("0.0.0.0", False)
    serve.check_host("0.0.0.0", True)


def test_cli_print_metadata_and_refusals(ledger_db, tmp_path, capsys):
    """--print-metadata prints JSON keyed by the DB's stem; a public host without the flag exits 1."""
    from syncagent.cli import main

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\npath = "{ledger_db}"\n')
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(cfg), "serve", "--print-metadata"])
    assert exit_.value.code == 0
    assert list(json.loads(capsys.readouterr().out)["databases"]) == ["my-ledger"]
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(cfg), "serve", "--host", "0.0.0.0"])
    assert exit_.value.code == 1
    assert "Refusing to serve" in capsys.readouterr().err


def test_missing_database_is_one_sentence(tmp_path):
    """Serving a database that does not exist says to sync or run the demo first."""
    with pytest.raises(SyncagentError, match="run `syncagent sync`"):
        serve.make_datasette(tmp_path / "nope.db")


def test_vega_charts_plugin_is_served_locally(ds):
    """datasette-vega is active and its script comes from the local server, not a CDN."""
    plugins = fetch(ds, "/-/plugins.json").json()
    assert "datasette-vega" in [p["name"] for p in plugins]
    page = fetch(ds, "/my-ledger/reply_rate_by_segment").text
    scripts = [s for s in page.split('"') if s.startswith("/-/static-plugins/datasette_vega/") and s.endswith(".js")]
    assert scripts and fetch(ds, scripts[0]).status_code == 200


# --- the real server: what a browser (or a hostile web page) can do with it ----------------------

@pytest.fixture(scope="module")
def server(ledger_db, tmp_path_factory):
    with served(ledger_db, tmp_path_factory.mktemp("served")) as running:
        yield running


def test_requests_for_another_host_name_are_refused(server):
    """A request whose Host is not localhost/127.0.0.1/[::1] with our port (DNS rebinding) gets 421 and one line, no data."""
    import httpx

    base, port, _ = server
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        assert httpx.get(base + "/my-ledger/contacts.json", headers={"Host": host}).status_code == 200, host
    for host in (f"evil.example:{port}", "evil.example", f"localhost:{port + 1}", f"localhost.evil.example:{port}",
                 f"127.0.0.1.nip.io:{port}", "localhost"):
        response = httpx.get(base + "/my-ledger/contacts.json", headers={"Host": host})
        assert response.status_code == 421, host
        assert response.text.count("\n") == 1 and "Alice" not in response.text
        assert response.text == f"This server answers only requests for http://127.0.0.1:{port}/.\n"


def test_the_database_path_is_never_shown(server, ledger_db):
    """/-/databases.json is refused, and no page or JSON the server answers names the database file's folder."""
    import httpx

    base, _, _ = server
    assert httpx.get(base + "/-/databases.json").status_code == 403
    assert httpx.get(base + "/-/databases").status_code == 403
    for page in ("/", "/.json", "/my-ledger", "/my-ledger.json", "/my-ledger/contacts", "/-/metadata.json",
                 "/-/settings.json", "/-/versions.json", "/-/plugins.json", "/-/threads.json"):
        response = httpx.get(base + page)
        assert response.status_code == 200, page
        assert str(ledger_db.parent) not in response.text, page


def test_posting_to_a_canned_query_is_a_clean_405(server):
    """POST (or any write method) to a query, a table or the root gets 405 with Allow, and no traceback is logged."""
    import httpx

    base, _, log = server
    for method, path in (("POST", "/my-ledger/thank_yous_owed"), ("POST", "/my-ledger/contacts/-/insert"),
                         ("PUT", "/my-ledger"), ("DELETE", "/")):
        response = httpx.request(method, base + path, data={"today": TODAY})
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == "GET, HEAD"
    assert httpx.get(base + "/my-ledger/no-such-table").status_code == 404
    assert httpx.get(base + "/my-ledger.json", params={"sql": "select * from nosuch"}).status_code == 400
    assert "Traceback" not in log.read_text() and "locals" not in log.read_text()


def test_arbitrary_sql_is_read_only(server, ledger_db):
    """Arbitrary SQL answers SELECTs; a statement that would write is refused and the database is unchanged."""
    import httpx

    base, _, _ = server
    before = serve_count(ledger_db)
    ok = httpx.get(base + "/my-ledger.json", params={"sql": "select count(*) as n from contacts", "_shape": "array"})
    assert ok.status_code == 200 and ok.json() == [{"n": before}]
    for sql in ("delete from contacts", "update contacts set name = 'x'", "attach database '/tmp/x.db' as x",
                "with x as (select 1) delete from contacts", "pragma writable_schema = 1"):
        assert httpx.get(base + "/my-ledger.json", params={"sql": sql}).status_code in (400, 403), sql
    assert serve_count(ledger_db) == before


def serve_count(path) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT COUNT(*) FROM contacts").fetchone()[0]
    finally:
        conn.close()


def test_no_sql_turns_off_arbitrary_sql_only(ledger_db, tmp_path):
    """With --no-sql an arbitrary query is forbidden while tables and canned queries still answer."""
    import httpx

    with served(ledger_db, tmp_path, "--no-sql") as (base, _, _):
        assert httpx.get(base + "/my-ledger.json", params={"sql": "select 1"}).status_code == 403
        assert httpx.get(base + "/my-ledger/contacts.json").status_code == 200
        response = httpx.get(base + "/my-ledger/thank_yous_owed.json", params={"today": TODAY, "_shape": "array"})
        assert response.status_code == 200 and [r["name"] for r in response.json()] == ["Alice Able", "Ivy Ito"]
