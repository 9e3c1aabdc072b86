"""The client against the simulator over real loopback WebSockets."""

from __future__ import annotations

import pytest
import pytest_twisted

from gfws.service import FeedService
from gfws.sim import SimulatorService, SimVenue
from tests.loopback import feed_config, tag, wait_for


@pytest.fixture
def simulator():
    from twisted.internet import reactor

    service = SimulatorService(SimVenue(clock=reactor, interval=0.02, seed=3), port=0)
    service.startService()
    yield service
    pytest_twisted.blockon(service.stopService())


def start_feed(simulator, subscriptions, **connection):
    service = FeedService(feed_config(simulator.url, subscriptions, **connection))
    events = []
    service.subscribe(events.append)
    service.startService()
    return service, events


def pending_calls_except_simulator():
    """Delayed calls pending in the reactor, less the simulator's own loops."""
    from twisted.internet import reactor

    return [c for c in reactor.getDelayedCalls() if "SimVenue" not in repr(c.func)]


@pytest_twisted.inlineCallbacks
def test_subscribe_to_events_for_two_symbols(simulator):
    feed, events = start_feed(simulator, [
        {"channel": "ticker", "symbols": ["BTC/USD", "ETH/USD"]},
        {"channel": "trade", "symbols": ["BTC/USD", "ETH/USD"]},
        {"channel": "book", "symbols": ["BTC/USD", "ETH/USD"], "depth": 10},
    ])
    try:
        needed = {(kind, symbol) for kind in ("ticker", "trade", "book") for symbol in ("BTC/USD", "ETH/USD")}
        yield wait_for(feed, lambda e: needed <= {(tag(x), getattr(x, "symbol", None)) for x in events}, timeout=15)
        assert not [e for e in events if tag(e) in ("integrity", "error")]
        states = [e.state for e in events if tag(e) == "connection"]
        assert states[:4] == ["connecting", "connected", "subscribing", "leader"] and "active" in states
        book = [e for e in events if tag(e) == "book" and e.symbol == "ETH/USD"][-1]
        assert len(book.bids) == 10 and book.bids[0][0] < book.asks[0][0]
        assert str(book.bids[0][0]).count(".") == 1 and len(str(book.bids[0][0]).split(".")[1]) == 2
    finally:
        yield feed.stopService()
    assert [e.state for e in feed.pool.endpoints] == ["shutdown"]


@pytest_twisted.inlineCallbacks
def test_rejected_subscription_reported_with_channel_symbol_and_venue_text(simulator):
    feed, events = start_feed(simulator, [{"channel": "trade", "symbols": ["BTC/USD", "FAKE/USD"]}])
    try:
        error = yield wait_for(feed, lambda e: tag(e) == "error")
        assert (error.channel, error.symbol, error.message) == ("trade", "FAKE/USD", "Currency pair not supported FAKE/USD")
        assert error.endpoint == "sim"
        yield wait_for(feed, lambda e: tag(e) == "trade" and e.symbol == "BTC/USD", timeout=15)
        active = [e for e in events if tag(e) == "connection" and e.state == "active"][-1]
        assert active.reason == "not fully: trade FAKE/USD refused for good (Currency pair not supported FAKE/USD)"
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_forced_checksum_mismatch_then_resync(simulator):
    feed, events = start_feed(simulator, [{"channel": "book", "symbols": ["BTC/USD", "SOL/EUR"], "depth": 25}])
    try:
        yield wait_for(feed, lambda e: tag(e) == "book" and e.symbol == "BTC/USD" and not e.snapshot)
        simulator.venue.corrupt_next_checksum("BTC/USD")
        mismatch = yield wait_for(feed, lambda e: tag(e) == "integrity")
        assert (mismatch.kind, mismatch.symbol) == ("checksum_mismatch", "BTC/USD")
        at = events.index(mismatch)
        resumed = yield wait_for(feed, lambda e: tag(e) == "book" and e.symbol == "BTC/USD" and e.valid)
        assert resumed.snapshot
        between = [e for e in events[at:events.index(resumed)] if tag(e) == "book" and e.symbol == "BTC/USD"]
        # The book stream itself says the book stopped being true, then nothing until the new snapshot.
        assert [(e.valid, e.reason, e.bids, e.asks) for e in between] == [(False, "checksum_mismatch", (), ())]
        yield wait_for(feed, lambda e: tag(e) == "book" and e.symbol == "BTC/USD" and not e.snapshot)
        assert [e.kind for e in events if tag(e) == "integrity"] == ["checksum_mismatch"]
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_reconnects_and_resubscribes_after_the_venue_drops_us(simulator):
    feed, events = start_feed(simulator, [{"channel": "book", "symbols": ["ETH/USD"]}])
    try:
        yield wait_for(feed, lambda e: tag(e) == "connection" and e.state == "active")
        yield simulator.close_all()
        down = yield wait_for(feed, lambda e: tag(e) == "connection" and e.state == "reconnecting")
        assert "unclean" in down.reason
        snapshot = yield wait_for(feed, lambda e: tag(e) == "book" and e.snapshot)
        assert snapshot.symbol == "ETH/USD"
        snapshots = [e for e in events if tag(e) == "book" and e.snapshot]
        assert len(snapshots) == 2  # one per connection
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_shutdown_closes_cleanly_and_leaves_nothing_pending(simulator):
    before = pending_calls_except_simulator()
    feed, events = start_feed(simulator, [{"channel": "book", "symbols": ["BTC/USD"]}],
                              auto_ping_interval=0.2, auto_ping_timeout=1.0)
    yield wait_for(feed, lambda e: tag(e) == "connection" and e.state == "active")
    assert len(pending_calls_except_simulator()) > len(before)  # reset timer, auto-ping...
    yield feed.stopService()
    last = [e for e in events if tag(e) == "connection"][-1]
    assert last.state == "shutdown" and "closed with code 1000" in last.reason, last
    assert pending_calls_except_simulator() == before
    assert simulator.venue.sessions == []


@pytest_twisted.inlineCallbacks
def test_nagle_is_off_on_both_ends(simulator):
    # Autobahn means to set TCP_NODELAY but silently fails to (see
    # gfws.connection.protocol.disable_nagle); with Nagle on, small frames
    # waited up to ~40 ms and the failover benchmark lost trades.
    import socket

    feed, events = start_feed(simulator, [{"channel": "trade", "symbols": ["BTC/USD"]}])
    try:
        yield wait_for(feed, lambda e: tag(e) == "connection" and e.state == "active")
        client = feed.pool.endpoints[0].protocol.transport.getHandle()
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        (server,) = simulator.protocols
        assert server.transport.getHandle().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_a_stopped_service_started_again_streams_again(simulator):
    feed, events = start_feed(simulator, [{"channel": "book", "symbols": ["BTC/USD"]}])
    try:
        yield wait_for(feed, lambda e: tag(e) == "book")
        yield feed.stopService()
        assert feed.pool.endpoints[0].state == "shutdown"
        feed.startService()
        yield wait_for(feed, lambda e: tag(e) == "book" and e.snapshot)
        assert feed.pool.endpoints[0].state == "active"
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_a_refused_port_says_so():
    from twisted.internet import reactor
    from twisted.internet.protocol import Factory

    port = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
    number = port.getHost().port
    yield port.stopListening()  # nobody listens there now
    feed = FeedService(feed_config(f"ws://127.0.0.1:{number}/v2", [{"channel": "trade", "symbols": ["BTC/USD"]}]))
    feed.startService()
    try:
        event = yield wait_for(feed, lambda e: tag(e) == "connection" and e.state == "reconnecting")
        assert event.reason == f"connection refused by 127.0.0.1:{number}"
    finally:
        yield feed.stopService()
