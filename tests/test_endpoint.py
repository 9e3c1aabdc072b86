"""One endpoint's life cycle on a Clock: hand-fired connects, no socket, no sleep.

Each test ends with nothing scheduled on the clock.
"""

from __future__ import annotations

import pytest
from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from gfws.config import BreakerConfig, ConnectionConfig
from gfws.connection.states import TRANSITIONS, Connecting, IllegalTransition, Open, check
from tests.clockwork import RecordingHandler, Rig


def test_connects_subscribes_goes_active_and_stops_gracefully():
    rig = Rig()
    endpoint, hand = rig.endpoint("a")
    endpoint.start()
    protocol = hand.succeed_next()
    assert endpoint.ready and rig.states("a") == ["connecting", "connected", "subscribing", "active"]
    stopped = endpoint.stop()
    rig.turn()
    assert protocol.closes == [(1000, "client leaving")] and not stopped.called
    protocol.lose(1000, "client leaving", clean=True)  # the venue answers the close
    rig.turn()
    assert stopped.called and endpoint.state == "shutdown"
    assert "closed with code 1000 (normal closure): client leaving" in rig.reasons("a")[-1]
    assert rig.handlers["a"][0].lost  # the session was told
    rig.assert_quiet()


def test_a_stopped_endpoint_starts_again():
    rig = Rig()
    endpoint, hand = rig.endpoint("a")
    endpoint.start()
    hand.succeed_next().lose(1000, "bye", clean=True)  # (closed by the venue while we stop)
    endpoint.stop()
    rig.turn()
    assert endpoint.state == "shutdown"
    endpoint.start()
    rig.turn()
    hand.succeed_next()
    assert endpoint.state == "active" and len(rig.handlers["a"]) == 2
    rig.stop(endpoint)


# -- scenario 1, at the endpoint: a restart while leaving wins -------------------------

def test_a_start_while_leaving_wins_closes_the_old_session_and_shows_the_true_state():
    rig = Rig()
    endpoint, hand = rig.endpoint("b")
    endpoint.start()
    old = hand.succeed_next()
    old_session = rig.handlers["b"][0]
    old_session.leaving = unsubscribed = Deferred()
    parked = endpoint.park("a carries the feed")  # the venue is slow to ack the unsubscribe
    assert endpoint.state == "disconnecting"
    endpoint.start()  # meanwhile the leader dropped: the pool needs b again
    assert old_session.lost and old.aborted and parked.called
    rig.turn()  # the old socket goes; ClientService reconnects at once
    new = hand.succeed_next()
    assert endpoint.state == "active" and endpoint.protocol is new and not new.aborted
    assert unsubscribed.called  # the old session's pending unsubscribe ended with it
    rig.turn(30)
    assert endpoint.state == "active" and endpoint.ready and not new.aborted
    assert rig.states("b")[-3:] == ["connected", "subscribing", "active"]
    rig.stop(endpoint)


# -- scenario 2: an abandoned breaker trial releases the breaker -----------------------

def test_an_endpoint_parked_during_its_half_open_trial_connects_again():
    rig = Rig(breaker=BreakerConfig(failure_threshold=1, recovery_time=10))
    endpoint, hand = rig.endpoint("a")
    endpoint._has_alternative = lambda e: True  # another endpoint carries the feed
    endpoint.start()
    hand.fail_next(error.ConnectionRefusedError())
    assert endpoint.state == "failed"
    rig.turn(10.0)  # recovery time over: the trial attempt starts...
    assert len(hand.pending) == 1 and endpoint.breaker.trial_running
    endpoint.park("another endpoint is better")  # ...and is abandoned
    rig.turn()
    assert not endpoint.breaker.trial_running
    endpoint.start()
    rig.turn()
    assert len(hand.pending) == 1, "the new attempt was held back by a trial nobody runs"
    hand.succeed_next()
    assert endpoint.state == "active" and endpoint.breaker.state == "closed"
    rig.stop(endpoint)


# -- scenario 5: a stop during a park waits for the connection to close ----------------

def test_a_stop_during_a_park_waits_for_that_connection_to_close():
    rig = Rig()
    endpoint, hand = rig.endpoint("a")
    endpoint.start()
    protocol = hand.succeed_next()
    parked = endpoint.park()
    rig.turn()
    assert protocol.closes  # close 1000 sent, the venue has not answered
    stopped = endpoint.stop()
    assert not parked.called and not stopped.called
    protocol.lose(1000, "client leaving", clean=True)
    rig.turn()
    assert parked.called and stopped.called and endpoint.state == "shutdown"
    rig.assert_quiet()


# -- scenario 6: back within 10 s of the venue's return, inside the budget --------------

@pytest.mark.parametrize("outage", [3.0, 60.0, 600.0, 3 * 3600.0])
def test_after_an_outage_of_any_length_the_feed_is_back_within_10s_inside_the_budget(outage):
    rig = Rig()  # default settings, a single endpoint
    down = [0.0, 0.0]

    def venue_up(now: float) -> bool:
        return not (down[0] <= now < down[1])

    endpoint, hand = rig.endpoint("a", auto=venue_up)
    endpoint.start()
    rig.turn()
    assert endpoint.state == "active"
    rig.turn(16.0)  # active 16 s: a success, not a failure to carry over
    start = rig.clock.seconds()
    down[:] = [start, start + outage]
    hand.protocols[-1].lose(1006, "venue gone")
    times = []
    while endpoint.state != "active":
        times.append(rig.clock.seconds())
        rig.clock.advance(0.1)
    back = rig.clock.seconds() - down[1]
    assert back <= 10.0, f"back {back:.1f}s after the venue returned"
    attempts = [t for t in sorted(set(_attempt_times(rig)))]
    for i, t in enumerate(attempts):
        assert len([u for u in attempts[i:] if u - t < 600]) <= 150
    rig.stop(endpoint)


def _attempt_times(rig: Rig) -> list[float]:
    return [e.recv_ts for e in rig.events if e.state == "connecting"]


def test_the_first_retry_after_a_long_active_connection_is_quick():
    rig = Rig()
    endpoint, hand = rig.endpoint("a", auto=lambda now: True)
    for _ in range(6):  # six connections, each active a while then lost
        endpoint.start()
        rig.turn()
        assert endpoint.state == "active"
        rig.turn(16.0)
        lost_at = rig.clock.seconds()
        hand.protocols[-1].lose(1006, "dropped")
        while endpoint.state != "active":
            rig.clock.advance(0.05)
        assert rig.clock.seconds() - lost_at <= ConnectionConfig().backoff_initial + 0.1
    rig.stop(endpoint)


def test_the_breaker_does_not_keep_the_only_endpoint_away():
    rig = Rig(breaker=BreakerConfig(failure_threshold=2, recovery_time=30))
    endpoint, hand = rig.endpoint("a")
    endpoint.start()
    for _ in range(3):
        hand.fail_next(error.ConnectionRefusedError())
        rig.turn(10.0)
    assert endpoint.breaker.state == "open"
    assert len(hand.pending) == 1  # still trying within backoff, not every 30 s
    hand.succeed_next()
    assert endpoint.state == "active" and endpoint.breaker.state == "closed"
    rig.stop(endpoint)


def test_the_breaker_holds_an_endpoint_back_while_another_carries_the_feed():
    rig = Rig(breaker=BreakerConfig(failure_threshold=2, recovery_time=30))
    endpoint, hand = rig.endpoint("a")
    endpoint._has_alternative = lambda e: True
    endpoint.start()
    for _ in range(2):
        hand.fail_next(error.ConnectionRefusedError())
        rig.turn(9.0)
    assert endpoint.state == "failed" and hand.pending == []
    rig.turn(21.5)
    assert len(hand.pending) == 1  # the half-open trial, after the recovery time
    rig.stop(endpoint)


# -- scenario 7: every failure says why, at the right level -----------------------------

@pytest.mark.parametrize("fault, words", [
    (error.DNSLookupError("a.test"), "DNS lookup failed for a.test"),
    (error.ConnectionRefusedError(), "connection refused by a.test:80"),
    (error.TimeoutError(), "no TCP connection to a.test:80 within 10s"),
])
def test_a_failed_connect_says_why(fault, words):
    rig = Rig()
    endpoint, hand = rig.endpoint("a")
    endpoint.start()
    hand.fail_next(fault)
    assert endpoint.state == "reconnecting" and rig.reasons("a")[-1] == words
    warned = [e for e in rig.logged if e["log_level"].name == "warn"]
    assert warned and words in warned[-1]["reason"]
    rig.stop(endpoint)


class _VerificationError(Exception):
    """What service_identity raises (its name is what gfws recognizes)."""


_VerificationError.__name__ = "VerificationError"


@pytest.mark.parametrize("close, words", [
    ((None, 'connection was closed uncleanly ("WebSocket connection upgrade failed [503]: Service Unavailable")', False,
      None), "handshake refused: HTTP 503 Service Unavailable"),
    ((None, "connection was closed uncleanly (peer dropped the TCP connection)", False,
      Failure(_VerificationError("certificate is for other.test"))), "TLS failure: host name check failed"),
    ((1006, 'connection was closed uncleanly ("WebSocket opening handshake timeout (peer did not finish)")', False,
      None), "no WebSocket handshake in time"),
])
def test_a_refused_handshake_says_why(close, words):
    rig = Rig()
    endpoint, hand = rig.endpoint("a")
    endpoint.start()
    protocol = hand.succeed_next(open=False)
    protocol.lose(*close)
    assert endpoint.state == "reconnecting" and rig.reasons("a")[-1].startswith(words), rig.reasons("a")
    rig.stop(endpoint)


def test_a_lost_connection_says_its_close_code_and_a_trip_is_an_error():
    rig = Rig(breaker=BreakerConfig(failure_threshold=1, recovery_time=30))
    endpoint, hand = rig.endpoint("a", handler=lambda name: RecordingHandler(name, auto_active=False))
    endpoint._has_alternative = lambda e: True
    endpoint.start()
    hand.succeed_next().lose(1001, "going away", clean=True)  # before it was ever active
    reason = rig.reasons("a")[-1]
    assert endpoint.state == "failed" and "breaker open after 1 consecutive failures" in reason
    assert "closed with code 1001 (going away): going away" in reason
    levels = {e["log_level"].name for e in rig.logged if "going away" in str(e.get("reason", ""))}
    assert {"warn", "error"} <= levels
    rig.stop(endpoint)


def test_an_exhausted_budget_is_logged_as_an_error_and_held_back_attempts_cost_nothing():
    rig = Rig(connection=ConnectionConfig(connect_attempts=2, connect_window=60.0))
    endpoint, hand = rig.endpoint("a")
    endpoint.start()
    hand.fail_next(error.ConnectionRefusedError())
    rig.turn(1.0)
    hand.fail_next(error.ConnectionRefusedError())
    rig.turn(2.0)
    assert hand.pending == [] and endpoint.failures == 2  # the third was held back: no failure
    assert any(e["log_level"].name == "error" and "budget spent" in e["log_format"] for e in rig.logged)
    rig.turn(56.0)
    assert hand.pending == []  # the budget's window is not over yet
    rig.turn(1.0)
    assert len(hand.pending) == 1
    rig.stop(endpoint)


# -- the state table ---------------------------------------------------------------------

def test_illegal_moves_are_refused():
    check(Connecting(), Open(None, RecordingHandler("x"), None))  # legal: no error
    with pytest.raises(IllegalTransition):
        check(Open(None, RecordingHandler("x"), None), Connecting())
    assert all(target in TRANSITIONS for targets in TRANSITIONS.values() for target in targets)


# -- found by review: each asserts the fixed behaviour -----------------------------------

class UnansweredSubscribe(RecordingHandler):
    """What a session does when an ack never comes: unusable, and no success after it."""

    def connection_made(self, link):
        self.link = link
        link.unusable("subscribe book: 1 ack(s) missing after 10s")
        link.active()  # a late word of a session that gave up changes nothing


def test_a_connection_whose_subscribe_went_unanswered_counts_against_backoff_and_breaker():
    rig = Rig(breaker=BreakerConfig(failure_threshold=3, recovery_time=30))
    endpoint, hand = rig.endpoint("a", handler=UnansweredSubscribe)
    endpoint._has_alternative = lambda e: True
    endpoint.start()
    for _ in range(3):
        hand.succeed_next()
        rig.turn()
        rig.turn(10.0)
    assert "active" not in rig.states("a")
    assert endpoint.failures == 3 and endpoint.breaker.trips == 1
    rig.stop(endpoint)


def test_abort_drops_the_connection_and_stops_retrying():
    rig = Rig()
    endpoint, hand = rig.endpoint("a")
    endpoint.start()
    protocol = hand.succeed_next()
    endpoint.abort()
    rig.turn()
    assert protocol.aborted and endpoint.state == "shutdown"
    rig.turn(60.0)
    assert hand.pending == [] and hand.connects == 1
    rig.assert_quiet()
    endpoint.start()  # and it can be started again
    rig.turn()
    assert len(hand.pending) == 1
    rig.stop(endpoint)


def test_abort_while_connecting_stops_and_can_start_again():
    rig = Rig()
    endpoint, hand = rig.endpoint("a")
    endpoint.start()
    endpoint.abort()
    rig.turn()
    assert endpoint.state == "shutdown" and hand.pending == []
    endpoint.start()
    rig.turn()
    hand.succeed_next()
    assert endpoint.state == "active"
    rig.stop(endpoint)


def test_after_a_restart_the_old_sockets_close_is_not_the_new_attempts_failure():
    rig = Rig()
    endpoint, hand = rig.endpoint("b")
    endpoint.start()
    hand.succeed_next()
    rig.handlers["b"][0].leaving = Deferred()  # slow unsubscribe ack
    endpoint.park("a carries the feed")
    endpoint.start()  # the restart wins: the old socket is dropped
    rig.turn()  # ...and closes while the new attempt is under way
    new = hand.succeed_next(open=False)
    new.lose(None, 'connection was closed uncleanly ("WebSocket connection upgrade failed [503]: Service Unavailable")')
    assert rig.reasons("b")[-1] == "handshake refused: HTTP 503 Service Unavailable"
    rig.stop(endpoint)


def test_a_stop_from_the_connected_event_is_the_last_word():
    rig = Rig()
    endpoint, hand = rig.endpoint("a", handler=lambda n: RecordingHandler(n, auto_active=False))

    def publish(event):
        rig.events.append(event)
        if event.state == "connected":
            endpoint.stop()  # a subscriber stops the feed from its callback

    endpoint._publish = publish
    endpoint.start()
    protocol = hand.succeed_next()
    rig.turn()
    assert rig.states("a")[-2:] == ["connected", "disconnecting"]
    assert rig.handlers["a"][0].link is None  # its conversation never began
    protocol.lose(1000, "client leaving", clean=True)
    rig.turn()
    assert endpoint.state == "shutdown"
    rig.assert_quiet()


def test_a_park_then_a_stop_in_the_same_turn_stops_client_service():
    rig = Rig()
    endpoint, hand = rig.endpoint("a")
    endpoint.start()
    parked, stopped = endpoint.park("b carries the feed"), endpoint.stop()
    rig.turn()
    assert parked.called and stopped.called and endpoint.state == "shutdown"
    assert not endpoint._client.running and hand.pending == []
    rig.turn(60.0)
    assert hand.connects == 1
    rig.assert_quiet()
