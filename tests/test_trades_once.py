"""Public trades exactly once across reconnects and failovers, over loopback.

A trade snapshot replays the venue's last 50 trades on every (re)subscribe;
the duplicate window here is one key and one second, far shorter than the
time since those trades: only the per-symbol mark can keep them out.
"""

from __future__ import annotations

from decimal import Decimal

import pytest_twisted
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.task import deferLater

from gfws.events import Integrity, Trade
from tests.test_exactly_once import until
from tests.test_faults import config, gates, start  # noqa: F401  (gates is a fixture)

SYMBOLS = ["BTC/USD", "ETH/USD"]


def trades(events):
    return [e for e in events if isinstance(e, Trade)]


def live_trades(feed):
    return lambda: feed.pool.leader is not None and feed.pool.leader.state == "active"


@pytest_twisted.inlineCallbacks
def test_trade_snapshots_on_every_reconnect_publish_each_trade_once(gates):  # noqa: F811
    primary, _ = gates
    feed, events = start(config(
        (primary, None),
        subscriptions=[{"channel": "trade", "symbols": SYMBOLS, "snapshot": True}],
        integrity={"duplicate_window": 1, "duplicate_max_age": 1.0},
    ))
    try:
        for _ in range(5):
            yield until(live_trades(feed), what="trades flowing")
            yield deferLater(reactor, 0.3, lambda: None)
            yield primary.close_all()
        yield until(live_trades(feed))
        yield deferLater(reactor, 0.3, lambda: None)
        seen = [(t.symbol, t.trade_id) for t in trades(events)]
        assert len(seen) == len(set(seen)), "a trade was published twice"
        replayed = [t for t in trades(events) if t.snapshot]
        assert replayed and feed.selector.trades.repeats >= 50  # every resubscribe replayed what was published
        for symbol in SYMBOLS:  # and nothing was lost: the ids of each symbol have no hole
            ids = sorted(i for s, i in seen if s == symbol)
            assert ids == list(range(ids[0], ids[-1] + 1)), symbol
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_a_failover_without_trade_snapshots_names_the_span_with_no_coverage(gates):  # noqa: F811
    primary, _backup = gates
    feed, events = start(config(gates, subscriptions=[{"channel": "trade", "symbols": SYMBOLS}],
                                pool={"failback": False}))
    try:
        yield until(lambda: feed.pool.leader is not None and feed.pool.leader.name == "primary"
                    and feed.pool.leader.ready)
        yield primary.refuse_connections()
        yield primary.close_all()
        yield until(lambda: feed.pool.leader.name == "backup" and feed.pool.leader.ready, what="backup leads")
        gaps = [e for e in events if isinstance(e, Integrity) and e.kind == "coverage_gap"]
        assert len(gaps) == 1 and gaps[0].channel == "trade" and gaps[0].endpoint == "backup"
        assert "no trade coverage from" in gaps[0].detail and "primary stopped delivering" in gaps[0].detail
    finally:
        primary.accept_connections()
        yield feed.stopService()


def test_a_failback_loses_no_trade_that_straddles_the_switch():
    from decimal import Decimal

    from gfws.publish.selector import Selector

    published = []
    selector = Selector(published.append, hot=False)
    old, new = selector.outlet("backup"), selector.outlet("primary")
    selector.lead("backup")

    def trade(i):
        return Trade(venue="kraken", recv_ts=float(i), symbol="BTC/USD", trade_id=i, side="buy",
                     price=Decimal("1.0"), qty=Decimal("1"), ord_type="limit")

    old.publish(trade(1))
    new.publish(trade(2))  # the better endpoint, subscribed before the switch, gets trade 2 first
    selector.lead("primary")
    old.publish(trade(2))  # the old leader, still leaving, brings it again: once is enough
    old.publish(trade(3))  # and one the new leader has not brought yet: kept
    new.publish(trade(3))
    new.publish(trade(4))
    assert [e.trade_id for e in published] == [1, 2, 3, 4]


@given(st.lists(st.tuples(st.sampled_from(SYMBOLS), st.integers(0, 40), st.booleans(), st.integers(1, 4)),
                max_size=60))
@settings(max_examples=300, deadline=None)
def test_one_frames_trades_at_once_pass_as_each_trade_alone(frames):
    """The compiled path hands the selector a frame's usual trades at once (``trade_update``, the next id
    inline): the same events, marks, holes, repeats and gap reports as ``trade`` for each in turn."""
    from gfws.publish.selector import Selector

    def trade(symbol, trade_id, snapshot, recv_ts):
        return Trade(venue="kraken", recv_ts=recv_ts, symbol=symbol, trade_id=trade_id, side="buy",
                     price=Decimal("1"), qty=Decimal("1"), ord_type="limit", ts=None, snapshot=snapshot)

    singly, batched = [], []
    one, many = Selector(singly.append, False), Selector(batched.append, False)
    for n, (symbol, first, snapshot, count) in enumerate(frames):
        events = [trade(symbol, first + k * (1 + (first + k) % 3 // 2), snapshot, float(n)) for k in range(count)]
        for event in events:
            one.trade(event, "a")
        many.trade_update("a", events)
    assert batched == singly
    assert (many.trades.marks, many.trades._holes, many.trades.repeats) == \
        (one.trades.marks, one.trades._holes, one.trades.repeats)
    assert many.last_trade == one.last_trade and many.trades.gap == one.trades.gap
