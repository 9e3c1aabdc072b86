"""The pool on a Clock: who runs, who leads, failover and failback races.

Hand-fired endpoints and recording handlers; each test ends with nothing
scheduled on the clock.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import error
from twisted.internet.defer import Deferred

from gfws.config import BreakerConfig
from tests.clockwork import RecordingHandler, Rig


def hot_pair(rig: Rig) -> tuple[Any, Any]:
    """Two endpoints in hot standby, both connected and active."""
    pool = rig.with_pool("hot_standby")
    a, hand_a = rig.endpoint("a", priority=1)
    b, hand_b = rig.endpoint("b", priority=2)
    pool.startService()
    hand_a.succeed_next()
    hand_b.succeed_next()
    rig.turn()
    return (a, hand_a), (b, hand_b)


def stop_all(rig: Rig) -> None:
    assert rig.pool is not None
    rig.pool.stopService()
    rig.turn()
    for endpoint in rig.pool.endpoints:
        protocol = endpoint.protocol
        if protocol is not None and not protocol.lost:
            protocol.lose(1000, "client leaving", clean=True)
    for handlers in rig.handlers.values():  # sockets still closing after a park
        for handler in handlers:
            if handler.link is not None and not handler.link.protocol.lost:
                handler.link.protocol.lose(1000, "client leaving", clean=True)
    rig.turn()
    rig.assert_quiet()


def test_failover_starts_the_next_endpoint_and_fails_back_without_a_gap():
    rig = Rig()
    pool = rig.with_pool("failover", failback=True)
    a, hand_a = rig.endpoint("a", priority=1)
    b, hand_b = rig.endpoint("b", priority=2)
    pool.startService()
    hand_a.succeed_next()
    rig.turn()
    assert pool.leader is a and b.state == "disconnected" and rig.leaders == ["a"]
    a.protocol.lose(1006, "venue dropped us")
    rig.turn()
    assert b.running and len(hand_b.pending) == 1  # the next one, at once
    hand_b.succeed_next()
    rig.turn()
    assert pool.leader is b and rig.leaders == ["a", "b"]
    rig.turn(1.0)  # a retries (failback): ready again -> leads, b parked after
    hand_a.succeed_next()
    rig.turn()
    assert pool.leader is a and b.state in ("disconnecting", "disconnected")
    stop_all(rig)


# -- scenario 1: failback parks b, its unsubscribe is slow, a drops, b is needed again ---

def test_a_park_racing_a_restart_keeps_the_new_connection_and_closes_the_old_session():
    rig = Rig()
    pool = rig.with_pool("failover", failback=True)
    a, hand_a = rig.endpoint("a", priority=1)
    b, hand_b = rig.endpoint("b", priority=2)
    pool.startService()
    hand_a.fail_next(error.ConnectionRefusedError())
    rig.turn()
    old = hand_b.succeed_next()
    rig.turn()
    assert pool.leader is b
    old_session = rig.handlers["b"][0]
    old_session.leaving = Deferred()  # the venue is slow to ack b's unsubscribe
    rig.turn(1.0)
    hand_a.succeed_next()  # a is back: failback parks b
    rig.turn()
    assert pool.leader is a and b.state == "disconnecting"
    a.protocol.lose(1006, "dropped again")  # meanwhile a drops: the pool starts b again
    rig.turn()
    assert old_session.lost and old.aborted  # the old session is closed
    assert len(hand_b.pending) == 1  # b's new attempt, not dropped
    hand_b.succeed_next()
    rig.turn()
    new = b.protocol
    assert new is not old and not new.aborted and b.state == "active" and pool.leader is b
    assert old_session.leaving.called  # its pending unsubscribe ended with it
    rig.turn(30.0)
    assert b.state == "active" and b.protocol is new and not new.aborted  # the true state, still live
    assert rig.states("b")[-1] == "active"
    stop_all(rig)


# -- scenario 4: readiness covers every configured book --------------------------------

def test_a_leader_whose_book_resyncs_is_replaced_by_a_standby_whose_books_are_live():
    rig = Rig()
    (a, _), (b, _) = hot_pair(rig)
    pool = rig.pool
    assert pool.leader is a and a.ready and b.ready
    rig.handlers["a"][0].set_ready(False)  # a book of a's is resyncing
    rig.turn()
    assert not a.ready and pool.leader is b
    stop_all(rig)


def test_nobody_is_parked_until_the_better_endpoint_is_ready():
    rig = Rig()
    pool = rig.with_pool("failover", failback=True)
    unverified = RecordingHandler("a", ready=False)
    a, hand_a = rig.endpoint("a", priority=1, handler=lambda name: unverified)
    b, hand_b = rig.endpoint("b", priority=2)
    pool.startService()
    hand_a.fail_next(error.ConnectionRefusedError())
    rig.turn()
    hand_b.succeed_next()
    rig.turn()
    assert pool.leader is b
    rig.turn(1.0)
    hand_a.succeed_next()  # a is back, active, but its books are not verified yet
    rig.turn()
    assert a.state == "active" and not a.ready and b.state == "active" and pool.leader is b
    unverified.set_ready(True)
    rig.turn()
    assert pool.leader is a and b.state in ("disconnecting", "disconnected")
    stop_all(rig)


# -- scenario 5: stopped and started again, it comes back --------------------------------

def test_a_stopped_pool_started_again_comes_back():
    rig = Rig()
    (a, hand_a), (b, hand_b) = hot_pair(rig)
    pool = rig.pool
    stopped = pool.stopService()
    rig.turn()
    for handlers in rig.handlers.values():  # the venue answers each close
        for handler in handlers:
            handler.link.protocol.lose(1000, "client leaving", clean=True)
    rig.turn()
    assert stopped.called and a.state == b.state == "shutdown"
    pool.startService()
    rig.turn()
    hand_a.succeed_next()
    hand_b.succeed_next()
    rig.turn()
    assert a.ready and b.ready and pool.leader is a
    stop_all(rig)


def test_the_maintenance_floor_slows_reconnects():
    rig = Rig()
    pool = rig.with_pool("failover")
    a, hand_a = rig.endpoint("a")
    pool.startService()
    hand_a.succeed_next()
    rig.turn()
    rig.handlers["a"][0].link.venue_status("maintenance")
    a.protocol.lose(1001, "maintenance")
    rig.turn(4.9)
    assert hand_a.pending == []  # no attempt before 5 s
    rig.turn(0.2)
    assert len(hand_a.pending) == 1
    stop_all(rig)


def test_a_breaker_does_not_hold_an_endpoint_back_once_nothing_else_carries_the_feed():
    rig = Rig(breaker=BreakerConfig(failure_threshold=1, recovery_time=30))
    pool = rig.with_pool("failover", failback=True)
    healed = [None]  # when a's path heals and b's breaks
    a, _ = rig.endpoint("a", priority=1, auto=lambda now: healed[0] is not None and now >= healed[0])
    b, _ = rig.endpoint("b", priority=2, auto=lambda now: healed[0] is None or now < healed[0])
    pool.startService()
    rig.turn()
    rig.turn(3.0)
    assert pool.leader is b and a.breaker.state == "open"  # a failed while b carried the feed
    healed[0] = rig.clock.seconds()
    b.protocol.lose(1006, "b's path breaks")
    while not a.ready:
        rig.clock.advance(0.1)
    assert rig.clock.seconds() - healed[0] <= 10.0  # not the breaker's 30 s
    stop_all(rig)


def test_a_long_outage_of_two_endpoints_stays_inside_the_budget_and_ends_within_10s():
    rig = Rig()  # default settings: 135 attempts per 600 s across both endpoints
    pool = rig.with_pool("failover", failback=True)
    back = [1_700_000_000 + 3600.0]  # the venue is away for an hour

    def up(now: float) -> bool:
        return now >= back[0]

    fastest = lambda: 0.0  # noqa: E731  (every delay at its shortest: the budget must bind)
    _, hand_a = rig.endpoint("a", priority=1, auto=up, jitter=fastest)
    _, hand_b = rig.endpoint("b", priority=2, auto=up, jitter=fastest)
    back[0] = rig.clock.seconds() + 3600.0
    pool.startService()
    while not pool.leader or not pool.leader.ready:
        rig.clock.advance(0.25)
    assert rig.clock.seconds() - back[0] <= 10.0
    connects = sorted(e.recv_ts for e in rig.events if e.state == "connecting")
    worst = max(len([u for u in connects[i:] if u - t < 600]) for i, t in enumerate(connects))
    budget = rig.connection.connect_attempts
    assert worst <= budget < 150  # never over the venue's limit in any rolling 10 minutes...
    assert hand_a.connects + hand_b.connects > 6 * budget * 0.9  # ...while asking as often as it allows
    assert worst >= budget - 1  # the budget, not the backoff, was the limit
    assert rig.budget.refused > 0  # attempts it held back are counted (a metric)
    stop_all(rig)
