"""Gmail behind hostile networks: captive portals answering for the API, server errors, Retry-After,
and the per-user quota. Against the loopback fake; every wait is recorded, none is slept."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from test_gmail import count, fake, rows, run, setup, sleeps, with_labels  # noqa: F401  (fixtures)

from syncagent import timeutil
from syncagent.sources.gmail import api as gmail_api

PORTAL = ("Gmail answered with something that is not the Gmail API (a captive portal or proxy?) for account "
          "'g'; sign in to the network (open any web page) or check the proxy, and the next sync continues "
          "from where this one stopped.")


class FakeTime:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture
def time_(monkeypatch, fake):  # noqa: F811
    t = FakeTime()
    monkeypatch.setattr(gmail_api, "sleep", t.sleep)
    monkeypatch.setattr(gmail_api, "clock", t)
    fake.clock = t
    return t


def test_captive_portal_html_is_retried_then_one_sentence(setup, fake, sleeps):  # noqa: F811
    """A portal answering every call with an HTML page (status 200): a few retries, then one sentence, no crash."""
    cfg, db, _ = setup
    fake.add_message()
    fake.html = True
    result = run(db, cfg)
    assert result.error == PORTAL
    assert len(sleeps) == gmail_api.NETWORK_ATTEMPTS - 1
    assert rows(db, "SELECT status, error FROM sync_runs") == [("failed", PORTAL)]


def test_portal_that_lets_go_after_a_retry_is_ridden_out(setup, fake, monkeypatch):  # noqa: F811
    """HTML until the user signs in to the network: the call is retried and the sync completes."""
    cfg, db, _ = setup
    fake.add_message()
    fake.add_message()
    fake.html = True
    monkeypatch.setattr(gmail_api, "sleep", lambda s: setattr(fake, "html", False))
    assert run(db, cfg).ok
    assert count(db) == 2


def test_portal_answering_the_batch_endpoint(setup, fake, sleeps):  # noqa: F811
    """Plain calls work but the batch endpoint gets HTML: reported as a portal, not 'unexpected'."""
    cfg, db, _ = setup
    fake.add_message()
    fake.html = False
    original = fake._batch
    fake._batch = lambda headers, body: (200, "text/html", b"<html>Log in</html>")
    try:
        result = run(db, cfg)
    finally:
        fake._batch = original
    assert result.error == PORTAL


def test_server_error_on_every_third_call_still_stores_everything(setup, fake, time_):  # noqa: F811
    """500 backendError on every third call: one sync stores all 384 messages and the batch size grows back."""
    cfg, db, _ = setup
    cfg = with_labels(cfg, batch_size=50)
    for i in range(384):
        fake.add_message(subject=f"m{i}")
    fake.fail_every = (3, 500, "backendError")
    result = run(db, cfg)
    assert result.ok, result.error
    assert count(db) == 384
    sizes = fake.batch_sizes
    low = sizes.index(min(sizes))
    assert max(sizes[low:]) > min(sizes)  # it grew again after shrinking
    assert sum(time_.waits) < 120


def test_server_errors_that_never_stop_are_named_as_server_errors(setup, fake, sleeps):  # noqa: F811
    """A 500 on every attempt ends with 'server error', not 'rate limit'."""
    cfg, db, _ = setup
    fake.add_message()
    fake.fail["getProfile"] = [(500, "backendError")] * gmail_api.MAX_ATTEMPTS
    result = run(db, cfg)
    assert result.error == ("Gmail kept refusing requests for account 'g' (server error: HTTP 500 backendError); "
                            "the next sync continues from where this one stopped.")
    fake.fail["getProfile"] = []
    fake.part_fail[fake.add_message()] = [(500, "backendError")] * 20  # in batches too
    result = run(db, cfg)
    assert "(server error: HTTP 500 backendError)" in result.error and "rate limit" not in result.error


def test_retry_after_seconds_and_http_date_are_honoured(setup, fake, sleeps):  # noqa: F811
    """Retry-After: 20 waits 20 s; an HTTP date 30 s ahead waits 30 s; a batch part's Retry-After counts too."""
    cfg, db, _ = setup
    now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    timeutil.set_clock(lambda: now)
    try:
        mid = fake.add_message()
        fake.fail["getProfile"] = [(429, None, "20"),
                                   (503, "backendError", format_datetime(now + timedelta(seconds=30), usegmt=True))]
        fake.part_fail[mid] = [(403, "userRateLimitExceeded", "7")]
        assert run(db, cfg).ok
    finally:
        timeutil.set_clock(None)
    assert sleeps == [20.0, 30.0, 7.0]
    assert count(db) == 1


def test_retry_after_beyond_the_cap_ends_the_sync_without_waiting(setup, fake, sleeps):  # noqa: F811
    """Retry-After: 3600 is not slept inside a sync: one sentence, and the next sync continues."""
    cfg, db, _ = setup
    fake.add_message()
    fake.fail["getProfile"] = [(429, None, "3600")]
    result = run(db, cfg)
    assert result.error == ("Gmail asked account 'g' to wait 60 minutes before the next request (rate limit: "
                            "HTTP 429 rateLimitExceeded); the next sync continues from where this one stopped.")
    assert sleeps == []


def test_calls_are_paced_to_the_per_user_quota(setup, fake, time_, monkeypatch):  # noqa: F811
    """A sync costing more than a minute's quota spreads its calls: no 60 s window spends more than the budget."""
    cfg, db, _ = setup
    monkeypatch.setattr(gmail_api, "QUOTA_PER_MINUTE", 1000)  # budget 800 units a minute
    for i in range(300):
        fake.add_message(subject=f"m{i}")
    assert run(db, cfg).ok
    assert count(db) == 300
    log = fake.unit_log
    assert sum(u for _t, u in log) > 1500
    worst = max(sum(u for t, u in log if start <= t < start + 60) for start, _u in log)
    assert worst <= 800
    assert sum(time_.waits) >= 60  # it had to wait its turn at least once a minute


def test_history_that_keeps_expiring_resyncs_at_most_once_per_interval(setup, fake, time_):  # noqa: F811
    """A daemon whose Gmail history id keeps expiring: full resyncs wait their turn (>= one interval apart,
    the gap doubling), and no minute spends more than the paced share of the per-user quota."""
    from syncagent.daemon.service import Daemon

    cfg, db, _ = setup
    for i in range(200):
        fake.add_message(subject=f"m{i}")
    assert run(db, cfg).ok
    fake.history_always_404 = True
    fake.reset_counts()
    fake.unit_log.clear()
    daemon = Daemon(cfg)
    resyncs, errors = [], []
    end = time_.now + 4 * 3600
    while time_.now < end:  # the daemon's passes, each scheduled as Daemon would
        before = fake.calls["getProfile"]
        result = run(db, cfg)
        if fake.calls["getProfile"] > before:
            resyncs.append(time_.now)
        errors.append(result.error)
        daemon.failures = 0 if result.ok else daemon.failures + 1
        time_.now += daemon.next_delay(result.ok)
    interval = cfg.sync.interval_minutes * 60
    gaps = [b - a for a, b in zip(resyncs, resyncs[1:])]
    assert len(resyncs) >= 3 and all(g >= interval for g in gaps)
    assert gaps == sorted(gaps) and gaps[-1] >= 4 * interval  # backing off
    assert any("waits its turn" in (e or "") for e in errors)
    log = fake.unit_log
    worst = max(sum(u for t, u in log if start <= t < start + 60) for start, _u in log)
    assert worst <= gmail_api.QUOTA_PER_MINUTE * gmail_api.PACE_SHARE


def test_portal_answering_the_token_refresh_is_not_called_a_revoked_token(setup, fake, sleeps):  # noqa: F811
    """An expired access token refreshed through a portal: the portal sentence, not 'revoked, authorize again'."""
    from test_gmail import write_token

    cfg, db, token = setup
    write_token(token, fake, token="stale", expired=True)
    fake.add_message()
    fake.html = True
    result = run(db, cfg)
    assert result.error == PORTAL
