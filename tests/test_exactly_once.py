"""Every fill exactly once, over loopback: the simulator's private side, a real
token server, real WebSockets, and faults in the middle of bursts.

1,000 fills in 20 bursts of 50; each burst is cut by a dropped connection
half-way (the rest of the burst happens while the feed is away and comes
back in the snapshot of the next subscribe); 5 token requests are refused;
executions are duplicated, resent and a sequence number skipped.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater

from gfws.config import parse_config
from gfws.events import Error, Fill, Integrity, Order
from gfws.service import FeedService
from gfws.sim import DEMO_KEY, DEMO_SECRET, SimAccount, SimulatorService, SimVenue, TokenService


@inlineCallbacks
def until(predicate, timeout=20.0, what="condition"):
    waited = 0.0
    while not predicate():
        if waited > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        yield deferLater(reactor, 0.01, lambda: None)
        waited += 0.01


@pytest.fixture
def venue():
    venue = SimVenue(clock=reactor, interval=0.05, seed=5)
    account = SimAccount(reactor, seed=9)
    venue.account = account
    tokens = TokenService(account, port=0)
    gates = [SimulatorService(venue, port=0, name=f"auth{i}") for i in (1, 2)]
    tokens.startService()
    for gate in gates:
        gate.startService()
    yield account, tokens, gates
    for gate in gates:
        pytest_twisted.blockon(gate.stopService())
    pytest_twisted.blockon(tokens.stopService())


def private_feed(tokens, gates, mode="failover", ledger=None, monkeypatch=None):
    data = {
        "venue": {"name": "kraken"},
        "endpoints": [{"name": gate.name, "url": gate.url, "private": True, "priority": i}
                      for i, gate in enumerate(gates)],
        "subscriptions": [{"channel": "executions"}],
        "auth": {"rest_url": tokens.url},
        "pool": {"mode": mode},
        "connection": {"backoff_initial": 0.01, "backoff_cap": 0.05, "ack_timeout": 2.0, "shutdown_timeout": 2.0},
        "breaker": {"failure_threshold": 50},
    }
    if ledger is not None:
        data["account"] = {"ledger": ledger}
    feed = FeedService(parse_config(data, "<exactly once>"), reactor)
    events = []
    feed.subscribe(events.append)
    return feed, events


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("KRAKEN_API_KEY", DEMO_KEY)
    monkeypatch.setenv("KRAKEN_API_SECRET", DEMO_SECRET)


def fills(events):
    return [e.exec_id for e in events if isinstance(e, Fill)]


def subscribed(account, n=1):
    return lambda: len(account.subscribers) >= n


@pytest_twisted.inlineCallbacks
def test_a_thousand_fills_through_drops_token_refusals_duplicates_and_a_gap_each_once(venue, credentials):
    account, tokens, gates = venue
    feed, events = private_feed(tokens, gates[:1])
    feed.startService()
    try:
        yield until(subscribed(account), what="the first subscription")
        for burst in range(20):
            if burst < 5:
                account.refuse_tokens(1)  # the reconnect after this burst's drop is refused once
            if burst % 4 == 1:
                account.duplicate_next(3)
            if burst % 4 == 2:
                account.skip_sequence()
            account.drop_after(25)
            account.burst(50)
            if account.fills:
                account.resend_fill(account.fills[len(account.fills) // 2]["exec_id"]) if account.subscribers else None
            yield until(lambda: not account.subscribers or True)
            yield until(subscribed(account), what=f"a subscription again after burst {burst}")
        expected = [f["exec_id"] for f in account.fills]
        assert len(expected) == 1000
        yield until(lambda: len(fills(events)) >= 1000, what="every fill")
        yield deferLater(reactor, 0.2, lambda: None)  # anything published twice would be by now
        assert sorted(fills(events)) == sorted(expected) and len(set(fills(events))) == 1000
        refusals = [e for e in events if isinstance(e, Error) and "authentication refused" in e.message]
        assert feed.authenticator.failures == 5 and len(refusals) >= 1
        assert any(e.kind == "gap" for e in events if isinstance(e, Integrity))
        assert feed.ledger.repeats > 0  # snapshots and resends brought fills again; none was published twice
        # Every order as the venue has it: the same status (or "closed" when it ended unseen) and quantities.
        for order_id, truth in account.orders.items():
            mine = feed.orders.get(order_id)
            assert mine is not None, order_id
            assert mine["status"] == truth["order_status"] or (
                mine["status"] == "closed" and truth["order_status"] in ("filled", "canceled", "expired")), order_id
            if mine["status"] != "closed":
                assert mine["cum_qty"] == truth["cum_qty"], order_id
        assert [e for e in events if isinstance(e, Order)]
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_a_restart_with_the_ledger_file_publishes_nothing_again(venue, credentials, tmp_path):
    account, tokens, gates = venue
    ledger = str(tmp_path / "fills.sqlite")
    feed, events = private_feed(tokens, gates[:1], ledger=ledger)
    feed.startService()
    yield until(subscribed(account))
    account.burst(30)
    yield until(lambda: len(fills(events)) == 30)
    yield feed.stopService()
    yield until(lambda: not account.subscribers)
    account.burst(10)  # while no process runs
    again, events2 = private_feed(tokens, gates[:1], ledger=ledger)
    again.startService()
    try:
        yield until(subscribed(account))
        yield until(lambda: len(fills(events2)) >= 10)
        yield deferLater(reactor, 0.2, lambda: None)
        assert sorted(fills(events2)) == sorted(f["exec_id"] for f in account.fills[30:])  # the snapshot's 40: 10 new
        assert all(e.snapshot for e in events2 if isinstance(e, Fill))
    finally:
        yield again.stopService()


@pytest_twisted.inlineCallbacks
def test_hot_standby_over_two_private_endpoints_publishes_each_fill_once(venue, credentials):
    account, tokens, gates = venue
    feed, events = private_feed(tokens, gates, mode="hot_standby")
    feed.startService()
    try:
        yield until(subscribed(account, 2), what="both endpoints subscribed")
        for _ in range(5):
            account.burst(40)
            yield deferLater(reactor, 0.05, lambda: None)
        yield until(lambda: len(fills(events)) >= 200)
        yield deferLater(reactor, 0.2, lambda: None)
        assert sorted(fills(events)) == sorted(f["exec_id"] for f in account.fills)
        assert feed.ledger.repeats >= 200  # the second endpoint brought every fill too
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_fills_a_sink_gives_up_at_shutdown_come_back_after_a_restart(venue, credentials, tmp_path):
    """Redis is away at shutdown: the sink gives its fills up, the ledger forgets them, the venue's snapshot
    brings them back and the next run publishes them."""
    import socket

    from gfws.account import FillLedger

    account, tokens, gates = venue
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = s.getsockname()[1]  # nothing listens here
    ledger = str(tmp_path / "fills.sqlite")
    data = {
        "venue": {"name": "kraken"},
        "endpoints": [{"name": "private", "url": gates[0].url, "private": True}],
        "subscriptions": [{"channel": "executions"}],
        "auth": {"rest_url": tokens.url},
        "account": {"ledger": ledger},
        "sinks": [{"type": "redis", "url": f"redis://127.0.0.1:{nobody}/0"}],
        "connection": {"backoff_initial": 0.01, "backoff_cap": 0.05, "shutdown_timeout": 0.5},
    }
    feed = FeedService(parse_config(data, "<lost>"), reactor)
    events = []
    feed.subscribe(events.append, "fill")
    feed.startService()
    yield until(subscribed(account))
    account.burst(10)
    yield until(lambda: len(events) == 10)
    (sink,) = feed.publisher.sinks
    yield feed.stopService()
    assert sorted(sink.lost_fills) == sorted(e.exec_id for e in events)
    assert len(FillLedger(ledger)) == 0  # published in-process, but never reached the sink: not remembered
