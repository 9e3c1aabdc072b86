"""Health, diagnostics and metrics of a running feed, over real HTTP on loopback."""

from __future__ import annotations

import json
import re

import pytest
import pytest_twisted
import treq
from twisted.internet import defer

from gfws.config import parse_config
from gfws.service import FeedService
from gfws.sim import SimulatorService, SimVenue
from tests.loopback import tag, wait_for


@pytest.fixture
def simulator():
    from twisted.internet import reactor

    service = SimulatorService(SimVenue(clock=reactor, interval=0.05, seed=3), port=0, reactor=reactor)
    service.startService()
    yield service
    pytest_twisted.blockon(defer.maybeDeferred(service.stopService))


def monitored(url: str) -> FeedService:
    return FeedService(parse_config({
        "venue": {"name": "kraken"},
        "endpoints": [{"name": "sim", "url": url}],
        "subscriptions": [{"channel": "book", "symbols": ["BTC/USD", "ETH/USD"]},
                          {"channel": "trade", "symbols": ["BTC/USD", "FAKE/USD"]}],
        "connection": {"backoff_initial": 0.05, "backoff_cap": 0.2},
        "monitor": {"port": 0},
    }, "<test>"))


@defer.inlineCallbacks
def get(url: str):
    response = yield treq.get(url, persistent=False)  # nothing left open after the test
    body = yield response.content()
    return response.code, body


@pytest_twisted.inlineCallbacks
def test_health_diagnostics_and_metrics_over_http(simulator):
    feed = monitored(simulator.url)
    feed.startService()
    try:
        yield wait_for(feed, lambda e: tag(e) == "book" and feed.pool.leader is not None and feed.pool.leader.ready)
        base = feed.monitor.url
        code, body = yield get(base + "health")
        document = json.loads(body)
        # FAKE/USD was refused for good: the feed is up, but not healthy, and says exactly why.
        assert code == 503 and document["leader"] == "sim"
        assert document["reasons"] == ["trade FAKE/USD is refused (Currency pair not supported FAKE/USD)"]
        assert feed.health() == document
        code, body = yield get(base + "diagnostics")
        diagnostics = json.loads(body)
        (endpoint,) = diagnostics["endpoints"]
        assert code == 200 and endpoint["state"] == "active" and endpoint["leader"] and endpoint["messages_received"]
        assert {b["symbol"]: b["live"] for b in diagnostics["books"]} == {"BTC/USD": True, "ETH/USD": True}
        assert diagnostics["budget"]["used"] >= 1 and diagnostics["events_published"]["book"] > 0
        code, body = yield get(base + "metrics")
        text = body.decode()
        for family in ("gfws_messages_received_total", "gfws_events_published_total", "gfws_integrity_problems_total",
                       "gfws_reconnects_total", "gfws_endpoint_up", "gfws_processing_seconds_bucket"):
            assert family in text, family
        assert 'gfws_endpoint_up{endpoint="sim"} 1.0' in text
        assert 'gfws_subscription_state{channel="trade",endpoint="sim",state="refused",symbol="FAKE/USD"} 1.0' in text
        assert 'gfws_resyncs_total{endpoint="sim"} 0.0' in text
        assert re.search(r'gfws_channel_messages_total\{channel="book",endpoint="sim"\} [1-9]', text)
        assert "gfws_venue_latency_seconds_bucket" in text and "gfws_connection_budget_refusals_total" in text
        assert endpoint["channels"]["book"] > 0 and endpoint["venue_latency_seconds"]["samples"] >= 0
        book = feed.book("BTC/USD")
        assert book is not None and book.valid and book.bids and book.symbol == "BTC/USD"
        yield simulator.refuse_connections("tcp")
        yield simulator.close_all()
        yield wait_for(feed, lambda e: tag(e) == "connection" and e.state == "reconnecting")
        code, body = yield get(base + "health")
        assert code == 503 and json.loads(body)["reasons"] == ["the leader sim is reconnecting"]
        code, body = yield get(base + "metrics")
        assert 'gfws_endpoint_up{endpoint="sim"} 0.0' in body.decode()
        assert 'gfws_reconnects_total{endpoint="sim"} 1.0' in body.decode()
    finally:
        yield feed.stopService()
        simulator.accept_connections()


@pytest_twisted.inlineCallbacks
def test_healthy_when_every_subscription_is_live(simulator):
    feed = FeedService(parse_config({
        "venue": {"name": "kraken"}, "endpoints": [{"name": "sim", "url": simulator.url}],
        "subscriptions": [{"channel": "book", "symbols": ["BTC/USD"]}], "monitor": {"port": 0},
    }, "<test>"))
    feed.startService()
    try:
        yield wait_for(feed, lambda e: feed.pool.leader is not None and feed.pool.leader.ready)
        code, body = yield get(feed.monitor.url + "health")
        assert code == 200 and json.loads(body) == {"healthy": True, "reasons": [], "leader": "sim"}
    finally:
        yield feed.stopService()
