"""Every simulator fault, over loopback, in both pool modes.

One simulated market behind two gates (two endpoints onto the same venue, as
ws.kraken.com and beta-ws.kraken.com are).  Limits are shortened (liveness
1 s, ack timeout 1 s, breaker 2 failures / 1 s) so each fault resolves fast.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.defer import inlineCallbacks

from gfws.config import parse_config
from gfws.service import FeedService
from gfws.sim import SimulatorService, SimVenue
from tests.loopback import tag, wait_for

MODES = ["failover", "hot_standby"]


@pytest.fixture
def gates():
    from twisted.internet import reactor

    venue = SimVenue(clock=reactor, interval=0.02, seed=11)
    primary = SimulatorService(venue, port=0, name="primary")
    backup = SimulatorService(venue, port=0, name="backup")
    primary.startService()
    backup.startService()
    yield primary, backup
    pytest_twisted.blockon(primary.stopService())
    pytest_twisted.blockon(backup.stopService())


def config(gates, mode="failover", subscriptions=None, **sections):
    primary, backup = gates
    data = {
        "venue": {"name": "kraken"},
        "endpoints": [{"name": "primary", "url": primary.url, "priority": 1}]
        + ([{"name": "backup", "url": backup.url, "priority": 2}] if backup is not None else []),
        "subscriptions": subscriptions or [
            {"channel": "book", "symbols": ["BTC/USD", "ETH/USD"]},
            {"channel": "trade", "symbols": ["BTC/USD", "ETH/USD"]},
        ],
        "pool": {"mode": mode},
        "connection": {"backoff_initial": 0.05, "backoff_cap": 0.2, "ack_timeout": 1.0,
                       "maintenance_reconnect_delay": 0.5, "shutdown_timeout": 3.0,
                       "auto_ping_interval": 0.5, "auto_ping_timeout": 1.0},
        "liveness": {"data_timeout": 1.0, "ping_interval": 0.5, "ping_timeout": 1.0},
        "breaker": {"failure_threshold": 2, "recovery_time": 1.0},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return parse_config(data, "<fault test>")


def start(cfg):
    feed = FeedService(cfg)
    events = []
    feed.subscribe(events.append)
    feed.startService()
    return feed, events


def leader_is(name):
    return lambda e: tag(e) == "connection" and e.state == "leader" and e.endpoint == name


def state_of(name, state):
    return lambda e: tag(e) == "connection" and e.endpoint == name and e.state == state


def endpoint(feed, name):
    return next(e for e in feed.pool.endpoints if e.name == name)


@inlineCallbacks
def ready(feed, name, timeout=10):
    """Wait until endpoint ``name`` leads with verified books."""
    if not (feed.pool.leader is not None and feed.pool.leader.name == name and feed.pool.leader.ready):
        yield wait_for(feed, lambda e: feed.pool.leader is not None and feed.pool.leader.name == name
                       and feed.pool.leader.ready, timeout=timeout)


def books_after(events, index, symbol="BTC/USD"):
    return [e for e in events[index:] if tag(e) == "book" and e.symbol == symbol]


@pytest.mark.parametrize("mode", MODES)
@pytest_twisted.inlineCallbacks
def test_abrupt_close_fails_over_then_back(gates, mode):
    primary, backup = gates
    feed, events = start(config(gates, mode))
    try:
        yield ready(feed, "primary")
        assert [e.running for e in feed.pool.endpoints] == [True, mode == "hot_standby"]
        mark = len(events)
        takeover = wait_for(feed, leader_is("backup"))
        yield primary.refuse_connections("tcp")
        yield primary.close_all()
        yield takeover
        yield wait_for(feed, lambda e: tag(e) == "book" and len(books_after(events, mark)) >= 3)
        assert feed.pool.leader.name == "backup"
        primary.accept_connections()
        yield wait_for(feed, leader_is("primary"), timeout=15)
        if mode == "failover":
            yield wait_for(feed, state_of("backup", "disconnected"))  # parked, after the switch
        mark = len(events)
        yield wait_for(feed, lambda e: tag(e) == "book" and len(books_after(events, mark)) >= 3)
        # The failover (not the failback) left trades without coverage, and said so once.
        kinds = [e.kind for e in events if tag(e) == "integrity"]
        assert kinds == (["coverage_gap"] if mode == "failover" else [])
    finally:
        yield feed.stopService()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stall", ["silent", "pings"])
@pytest_twisted.inlineCallbacks
def test_a_stalled_socket_is_detected_and_replaced(gates, mode, stall):
    from twisted.internet import reactor

    primary, backup = gates
    feed, events = start(config(gates, mode))
    try:
        yield ready(feed, "primary")
        stalled_at = reactor.seconds()
        lost = wait_for(feed, state_of("primary", "reconnecting"))
        primary.stall(stall)
        lost = yield lost
        detected = lost.recv_ts - stalled_at
        # Detected by data staleness (or the WebSocket ping timeout when even pongs stop).
        assert "no data" in lost.reason or "no pong" in lost.reason or "1006" in lost.reason, lost.reason
        assert detected < 1.0 + 1.0 + 0.5, detected  # limit + ping timeout + one check, generously
        yield wait_for(feed, leader_is("backup"))
        primary.unstall()
    finally:
        yield feed.stopService()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("refuse", ["tcp", "http"])
@pytest_twisted.inlineCallbacks
def test_refused_connections_trip_the_breaker_and_recover(gates, mode, refuse):
    primary, backup = gates
    yield primary.refuse_connections(refuse)
    feed, events = start(config(gates, mode))
    try:
        failed = yield wait_for(feed, state_of("primary", "failed"))
        assert "breaker open after 2 consecutive failures" in failed.reason
        yield ready(feed, "backup")
        assert endpoint(feed, "primary").breaker.trips >= 1
        primary.accept_connections()
        trial = yield wait_for(feed, lambda e: state_of("primary", "connecting")(e) and e.reason.startswith("attempt"),
                               timeout=10)
        assert trial
        yield ready(feed, "primary", timeout=15)
        assert endpoint(feed, "primary").breaker.state == "closed"
    finally:
        yield feed.stopService()


@pytest.mark.parametrize("mode", MODES)
@pytest_twisted.inlineCallbacks
def test_unanswered_subscriptions_fail_the_connection(gates, mode):
    primary, backup = gates
    primary.drop_acks = True
    feed, events = start(config(gates, mode))
    try:
        lost = yield wait_for(feed, state_of("primary", "reconnecting"))
        assert "ack(s) missing after 1s" in lost.reason
        yield ready(feed, "backup")
        errors = [e for e in events if tag(e) == "error" and e.endpoint == "primary"]
        assert errors and "missing" in errors[0].message
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_delayed_acks_within_the_timeout_are_fine(gates):
    primary, backup = gates
    primary.ack_delay = 0.3
    feed, events = start(config(gates))
    try:
        yield ready(feed, "primary")
        assert not [e for e in events if tag(e) in ("error", "integrity")]
        assert endpoint(feed, "backup").running is False
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_maintenance_is_published_and_slows_reconnects(gates):
    primary, _ = gates
    feed, events = start(config((primary, None)))
    try:
        yield ready(feed, "primary")
        status = wait_for(feed, lambda e: tag(e) == "status" and e.system == "maintenance")
        primary.venue.set_system("maintenance")
        status = yield status
        assert status.endpoint == "primary"
        attempts = []
        feed.subscribe(lambda e: attempts.append(e) if state_of("primary", "connecting")(e) else None)
        three = wait_for(feed, lambda e: len(attempts) >= 3, timeout=10)
        yield primary.refuse_connections("tcp")
        yield primary.close_all()
        yield three
        gaps = [b.recv_ts - a.recv_ts for a, b in zip(attempts, attempts[1:])]
        assert all(gap >= 0.5 for gap in gaps), gaps  # the floor, whatever the backoff says
        primary.accept_connections()
        primary.venue.set_system("online")
        yield ready(feed, "primary", timeout=10)
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_restart_resubscribes_and_rebuilds_books(gates):
    primary, _ = gates
    feed, events = start(config((primary, None)))
    try:
        yield ready(feed, "primary")
        snapshots = len([e for e in events if tag(e) == "book" and e.snapshot])
        lost = wait_for(feed, state_of("primary", "reconnecting"))
        yield primary.restart(0.5)
        yield lost
        mark = len(events)
        yield wait_for(feed, lambda e: {x.symbol for x in events[mark:] if tag(x) == "book" and x.snapshot}
                       == {"BTC/USD", "ETH/USD"}, timeout=10)
        assert len([e for e in events if tag(e) == "book" and e.snapshot]) >= snapshots + 2
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_exceeded_msg_rate_is_retried_not_dropped(gates):
    primary, _ = gates
    primary.msg_rate = 2.0
    subs = [{"channel": c, "symbols": [s]} for c in ("ticker", "trade") for s in ("BTC/USD", "ETH/USD", "SOL/EUR")]
    feed, events = start(config((primary, None), subscriptions=subs, rate_limit={"rate": 100.0, "burst": 100,
                                                                                 "exceeded_retry_delay": 0.3}))
    try:
        yield wait_for(feed, state_of("primary", "active"), timeout=15)
        yield wait_for(feed, lambda e: {x.symbol for x in events if tag(x) == "ticker"} == {"BTC/USD", "ETH/USD", "SOL/EUR"})
        assert not [e for e in events if tag(e) == "error"]
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_the_throttle_keeps_us_under_the_venue_rate(gates):
    primary, _ = gates
    primary.msg_rate = 3.0
    subs = [{"channel": c, "symbols": [s]} for c in ("ticker", "trade") for s in ("BTC/USD", "ETH/USD", "SOL/EUR")]
    feed, events = start(config((primary, None), subscriptions=subs, rate_limit={"rate": 2.0, "burst": 2}))
    try:
        yield wait_for(feed, state_of("primary", "active"), timeout=15)
        session = feed.pool.leader.handler
        assert session.throttle.delayed > 0  # the burst was paced...
        assert not [e for e in events if tag(e) == "error"]  # ...so the venue never refused
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_hot_standby_loses_no_trade_when_endpoints_die(gates):
    primary, backup = gates
    feed, events = start(config(gates, "hot_standby", subscriptions=[{"channel": "trade", "symbols": ["BTC/USD", "ETH/USD"]}]))
    try:
        yield wait_for(feed, lambda e: feed.pool.endpoints[1].state == "active")
        for gate in (primary, backup, primary):
            yield wait_for(feed, lambda e: all(ep.state == "active" for ep in feed.pool.endpoints), timeout=10)
            yield gate.close_all()
            yield wait_for(feed, lambda e: tag(e) == "trade", timeout=10)
        yield wait_for(feed, lambda e: all(ep.state == "active" for ep in feed.pool.endpoints), timeout=10)
        for symbol in ("BTC/USD", "ETH/USD"):
            ids = [e.trade_id for e in events if tag(e) == "trade" and e.symbol == symbol]
            assert ids == list(range(ids[0], ids[0] + len(ids))), f"{symbol}: gap or duplicate in {ids}"
        assert feed.selector.trades.repeats > 0  # both endpoints delivered; each trade published once
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_graceful_shutdown_unsubscribes_closes_and_leaves_nothing(gates):
    from twisted.internet import reactor

    primary, backup = gates
    before_calls = [c for c in reactor.getDelayedCalls() if "SimVenue" not in repr(c.func)]
    before_sockets = len(reactor.getReaders())
    feed, events = start(config(gates, "hot_standby"))
    yield wait_for(feed, lambda e: all(ep.ready for ep in feed.pool.endpoints))
    sessions = list(primary.venue.sessions)
    requests_before = [s.requests for s in sessions]
    yield feed.stopService()
    assert all(s.requests > r for s, r in zip(sessions, requests_before))  # the unsubscribes
    assert all(not (s.books or s.trades) for s in sessions)
    ends = [e for e in events if tag(e) == "connection" and e.state == "shutdown"]
    assert len(ends) == 2 and all("code 1000" in e.reason for e in ends)
    assert [c for c in reactor.getDelayedCalls() if "SimVenue" not in repr(c.func)] == before_calls
    assert len(reactor.getReaders()) == before_sockets
    assert primary.protocols == set() and backup.protocols == set()


@pytest_twisted.inlineCallbacks
def test_shutdown_is_bounded_when_the_venue_stops_answering(gates):
    from twisted.internet import reactor

    primary, backup = gates
    feed, events = start(config(gates, connection={"shutdown_timeout": 1.0, "close_handshake_timeout": 5.0}))
    yield ready(feed, "primary")
    primary.stall("silent")
    began = reactor.seconds()
    yield feed.stopService()
    took = reactor.seconds() - began
    assert took < 1.0 + 1.5, took  # the bound (plus the drop), not the 5 s handshake timeout
    assert all(e.handler is None for e in feed.pool.endpoints)
    primary.unstall()  # let the simulator notice the dropped socket


@pytest.mark.parametrize("fault, kind", [("oversized", "oversized_message"), ("invalid_utf8", "invalid_utf8")])
@pytest_twisted.inlineCallbacks
def test_the_transport_refuses_oversized_and_invalid_utf8_frames(gates, fault, kind):
    from gfws.sim.corruption import MessageFaults

    primary, _ = gates
    feed, events = start(config((primary, None), connection={"max_message_size": 65536}))
    try:
        yield ready(feed, "primary")
        refused = wait_for(feed, lambda e: tag(e) == "integrity" and e.kind == kind)
        primary.message_faults = MessageFaults(**{fault: 1.0})
        event = yield refused
        assert event.endpoint == "primary" and ("payload limit" in event.detail or "UTF-8" in event.detail)
        primary.message_faults = None
        yield wait_for(feed, lambda e: tag(e) == "book" and e.snapshot, timeout=10)  # reconnected, resubscribed
    finally:
        yield feed.stopService()
