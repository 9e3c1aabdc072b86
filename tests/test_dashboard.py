"""The live dashboard in real (headless) Chromium: it loads, shows the running
feed's endpoints, and its numbers move as messages flow."""

from __future__ import annotations

import os
import re
import shutil

import pytest
import pytest_twisted
from twisted.internet import defer, utils

from gfws.config import parse_config
from gfws.service import FeedService
from gfws.sim import SimulatorService, SimVenue
from tests.loopback import wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="Chromium not installed (.ci/run installs Debian's chromium)")


def chromium(url: str, profile: str, *extra: str) -> defer.Deferred:
    """Chromium's DOM of ``url`` after 4 s of (virtual) page time, run without blocking the reactor."""
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--virtual-time-budget=4000", *extra, url]
    def page(result: tuple[bytes, bytes, int]) -> bytes:
        out, err, code = result
        assert code == 0, err.decode()[-2000:]
        return out

    return utils.getProcessOutputAndValue(CHROMIUM, args, env=dict(os.environ)).addCallback(page)


@pytest_twisted.inlineCallbacks
def test_the_dashboard_shows_the_running_feed_and_moves(tmp_path):
    from twisted.internet import reactor

    assert CHROMIUM is not None, "CI must have Chromium"
    venue = SimulatorService(SimVenue(clock=reactor, interval=0.05, seed=5), port=0, reactor=reactor)
    venue.startService()
    feed = FeedService(parse_config({
        "venue": {"name": "kraken"}, "endpoints": [{"name": "sim-gate", "url": venue.url}],
        "subscriptions": [{"channel": "book", "symbols": ["BTC/USD", "ETH/USD"]},
                          {"channel": "trade", "symbols": ["BTC/USD"]}],
        "monitor": {"port": 0},
    }, "<test>"))
    feed.startService()
    try:
        yield wait_for(feed, lambda e: feed.pool.leader is not None and feed.pool.leader.ready)
        first = (yield chromium(feed.monitor.url, str(tmp_path / "a"), "--dump-dom")).decode()
        assert "sim-gate" in first and "healthy" in first and "verified" in first
        counts = [int(n) for n in re.findall(r'<td class="n">(\d+)</td>', first)]
        assert counts and counts[0] > 0  # messages received
        second = (yield chromium(feed.monitor.url, str(tmp_path / "b"), "--dump-dom")).decode()
        later = [int(n) for n in re.findall(r'<td class="n">(\d+)</td>', second)]
        assert later[0] > counts[0]  # the numbers move as messages flow
        shot = os.environ.get("GFWS_DASHBOARD_SCREENSHOT")
        if shot:  # docs/dashboard.png is made this way
            yield chromium(feed.monitor.url, str(tmp_path / "c"), f"--screenshot={shot}", "--window-size=1200,900")
    finally:
        yield feed.stopService()
        yield venue.stopService()
