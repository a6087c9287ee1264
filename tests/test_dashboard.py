"""The bundled dashboard (datasette-dashboards) served by `syncagent serve`, on the demo's database."""

from __future__ import annotations

import asyncio

import pytest

from syncagent.serve import datasette as serve

pytest.importorskip("datasette_dashboards")


@pytest.fixture
def demo_db(demo_home):
    return demo_home / ".local/share/syncagent/demo/demo.db"


def _run(ds, coro):
    async def go():
        await ds.invoke_startup()
        return await coro()

    return asyncio.run(go())


def test_every_chart_query_answers_on_the_demo(demo_db):
    """Each chart's query runs against the served database and returns rows (one per dimension for what works)."""
    ds = serve.make_datasette(demo_db)
    [dashboard] = serve.load_dashboards("demo").values()
    db = ds.get_database("demo")
    for name, chart in dashboard["charts"].items():
        if "query" not in chart:
            continue
        dimensions = dashboard["filters"]["dimension"]["options"] if ":dimension" in chart["query"] else [None]
        for dimension in dimensions:
            result = _run(ds, lambda q=chart["query"], d=dimension: db.execute(q, {"dimension": d} if d else {}))
            assert len(result.rows) > 0, (name, dimension)
    by_segment = _run(ds, lambda: db.execute(dashboard["charts"]["by-segment"]["query"]))
    assert {r["segment"]: (r["reached"], r["replied"]) for r in by_segment.rows}["recruiter"] == (5, 3)


def test_dashboard_page_renders_with_its_bundled_scripts(demo_db):
    """/-/dashboards/syncagent (its filter set) answers 200 with every chart title, and loads vega from the server, not the web."""
    ds = serve.make_datasette(demo_db)
    response = _run(ds, lambda: ds.client.get("/-/dashboards/syncagent?dimension=questions"))
    assert response.status_code == 200
    html = response.text
    for title in ("Reply rate by segment", "Asks and replies per week", "How long first replies took",
                  "Owed now, by kind", "Companies by reply rate", "What gets replies"):
        assert title in html
    import re

    scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
    assert any("vega" in src for src in scripts)
    assert not [src for src in scripts if src.startswith(("http:", "https:", "//"))]
