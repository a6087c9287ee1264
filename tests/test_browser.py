"""What a person sees in a browser: the dashboard of `syncagent serve --demo`, drawn by a real headless Chromium.

The charts are drawn in the page by the bundled vega-embed, from the JSON the server answers: only
a browser shows that they draw at all, with no network beyond the server, and with the figures
`stats` and `reminders` print. Vega labels every mark it draws (its aria-label names the values),
so the bars and arcs the browser drew are read back from the page it ended with.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from served import served

from syncagent.serve import datasette as serve

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
INSTALL_HINT = "Chromium is not installed; run `apt-get install chromium` to run the browser tests."
# Marks are what vega draws for data; axes, legends and the chart's own title are labelled too.
NOT_DATA = {"visualization", "axis", "legend", "title"}


@pytest.fixture(scope="module")
def browser() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail(INSTALL_HINT + " (CI=true: the browser tests must run here)")
        pytest.skip(INSTALL_HINT)
    return CHROMIUM


@pytest.fixture(scope="module")
def demo(demo_home, tmp_path_factory):
    """The demo's database served on loopback, and its config for the CLI."""
    share = demo_home / ".local/share/syncagent/demo"
    with served(share / "demo.db", tmp_path_factory.mktemp("served-demo")) as (base, _port, _log):
        yield base, share / "config.toml"


def rendered(browser: str, url: str, profile) -> str:
    """The page as the browser holds it once its scripts ran and its requests were answered."""
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         f"--user-data-dir={profile}",
         # Any request to a host but the server fails at once, whether or not this machine is online.
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         "--virtual-time-budget=20000", "--dump-dom", url],
        capture_output=True, timeout=120, env=_real_clock())
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


def _real_clock() -> dict[str, str]:
    """The environment without libfaketime (`.ci/year-ahead`): the clock moved is ours, and under it
    the browser's timers crawl; what it draws does not depend on its clock."""
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")}


def cards(page: str) -> dict[str, str]:
    """Each dashboard card's markup, by chart name."""
    return {part.split('"', 1)[0]: part for part in page.split('<div id="card-')[1:]}


def marks(card: str) -> list[dict[str, str]]:
    """The data marks vega drew in a card, each as its labelled fields ("segment: warm; reply_rate: 70%")."""
    drawn = []
    for tag in re.findall(r"<(?:path|g|text|line|rect)\b[^>]*>", card):
        role = re.search(r'aria-roledescription="([^"]+)"', tag)
        label = re.search(r'aria-label="([^"]*)"', tag)
        if role and label and role.group(1) not in NOT_DATA:
            drawn.append(dict(field.split(": ", 1) for field in label.group(1).split("; ")))
    return drawn


def cli(config, *args: str):
    done = subprocess.run([sys.executable, "-m", "syncagent", "--config", str(config), *args, "--json"],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def percent(text: str) -> float:
    return float(text.rstrip("%")) / 100


def test_every_chart_of_the_dashboard_draws_in_a_browser_with_no_network(browser, demo, tmp_path):
    """Every vega-lite chart of the bundled dashboard ends up as an SVG with data marks in it; every metric shows a number."""
    base, _config = demo
    page = rendered(browser, base + "/-/dashboards/syncagent?dimension=questions", tmp_path / "profile")
    drawn = cards(page)
    [dashboard] = serve.load_dashboards("demo").values()
    for name, chart in dashboard["charts"].items():
        assert name in drawn, name
        if chart["library"] == "vega-lite":
            assert 'class="marks"' in drawn[name] and marks(drawn[name]), name
        elif chart["library"] == "metric":
            assert re.search(r'<p style="[^"]*">\s*[\d.]+', drawn[name]), name


def test_the_drawn_figures_are_the_ones_stats_and_reminders_print(browser, demo, tmp_path):
    """The browser's metrics, segment bars, owed arcs and what-works bars equal `stats --json` and `reminders --json`."""
    base, config = demo
    drawn = cards(rendered(browser, base + "/-/dashboards/syncagent?dimension=questions", tmp_path / "profile"))
    overall = cli(config, "stats")["overall"]["all_time"]

    def metric(name: str) -> float:
        return float(re.search(r'<p style="[^"]*">\s*([\d.]+)', drawn[name]).group(1))

    assert metric("reached") == overall["reached"]
    assert abs(metric("reply-rate") - 100 * overall["reply_rate"]) <= 0.5
    assert abs(metric("median") - overall["median_first_response_hours"]) <= 0.05

    segments = {g["segment"]: g["all_time"]["reply_rate"] for g in cli(config, "stats", "--by", "segment")["groups"]}
    bars = {m["segment"]: percent(m["reply_rate"]) for m in marks(drawn["by-segment"])}
    assert bars.keys() == segments.keys() and len(bars) > 1
    assert all(abs(bars[s] - segments[s]) < 1e-4 for s in segments), (bars, segments)

    owed = collections.Counter(r["kind"].replace("_", "-") for r in cli(config, "reminders") if r["status"] == "open")
    arcs = {m["kind"]: int(m["open"]) for m in marks(drawn["owed"])}
    assert arcs == dict(owed) and sum(arcs.values()) > 0

    buckets = {b["bucket"]: b["reply_rate"] for b in cli(config, "stats", "--by", "questions")["buckets"]}
    works = {m["bucket"]: percent(m["reply_rate"]) for m in marks(drawn["what-works"])}
    assert works.keys() == buckets.keys() and all(abs(works[b] - buckets[b]) < 1e-4 for b in buckets)


def test_choosing_another_dimension_redraws_what_gets_replies(browser, demo, tmp_path):
    """The dashboard's filter is a real choice: ?dimension=hour draws the hour buckets `stats --by hour` prints."""
    base, config = demo
    drawn = cards(rendered(browser, base + "/-/dashboards/syncagent?dimension=hour", tmp_path / "profile"))
    buckets = {b["bucket"]: b["reply_rate"] for b in cli(config, "stats", "--by", "hour")["buckets"]}
    works = {m["bucket"]: percent(m["reply_rate"]) for m in marks(drawn["what-works"])}
    assert works.keys() == buckets.keys() and len(works) > 1
    assert all(abs(works[b] - buckets[b]) < 1e-4 for b in buckets)
    assert "1-2 questions" not in works
