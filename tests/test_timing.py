"""Timing logic on task.Clock: breaker, budget, throttle, liveness."""

from __future__ import annotations

from twisted.internet.task import Clock

from gfws.connection.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from gfws.connection.budget import ConnectionBudget
from gfws.session.liveness import LivenessMonitor
from gfws.session.throttle import RequestThrottle

# -- circuit breaker -------------------------------------------------------

def test_breaker_opens_after_n_consecutive_failures_and_skips_for_the_recovery_time():
    clock = Clock()
    breaker = CircuitBreaker(clock, failure_threshold=3, recovery_time=30)
    assert [breaker.record_failure("refused") for _ in range(3)] == [False, False, True]
    assert breaker.state == OPEN and breaker.trips == 1
    assert not breaker.allow() and breaker.wait() == 30
    clock.advance(29.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.allow() and breaker.state == HALF_OPEN  # one trial...
    assert not breaker.allow()  # ...and only one
    breaker.record_success()
    assert breaker.state == CLOSED and breaker.failures == 0 and breaker.allow()


def test_a_failed_trial_reopens_at_once():
    clock = Clock()
    breaker = CircuitBreaker(clock, failure_threshold=2, recovery_time=10)
    breaker.record_failure("a"), breaker.record_failure("b")
    clock.advance(10)
    assert breaker.allow()
    assert breaker.record_failure("still down") is True
    assert breaker.state == OPEN and breaker.trips == 2 and breaker.wait() == 10


def test_success_resets_the_consecutive_count():
    breaker = CircuitBreaker(Clock(), failure_threshold=3)
    breaker.record_failure("a"), breaker.record_failure("b")
    breaker.record_success()
    breaker.record_failure("c"), breaker.record_failure("d")
    assert breaker.state == CLOSED


# -- connection budget -----------------------------------------------------

def test_budget_is_never_exceeded_in_any_rolling_window():
    clock = Clock()
    budget = ConnectionBudget(clock, attempts=150, window=600)
    admitted = []
    for _ in range(2000):  # one attempt per second for a long outage
        if budget.acquire():
            admitted.append(clock.seconds())
        clock.advance(0.25)
    for i, t in enumerate(admitted):
        in_window = [u for u in admitted[i:] if u - t < 600]
        assert len(in_window) <= 150
    assert len(admitted) == 150 and budget.refused > 0  # 500 s elapsed: one window


def test_budget_wait_says_when_the_oldest_attempt_expires():
    clock = Clock()
    budget = ConnectionBudget(clock, attempts=2, window=10)
    assert budget.acquire() and budget.wait() == 0
    clock.advance(3)
    assert budget.acquire() and budget.wait() == 7
    assert not budget.acquire()
    clock.advance(7)
    assert budget.wait() == 0 and budget.acquire()


# -- request throttle ------------------------------------------------------

def test_throttle_sends_a_burst_then_paces_in_order_with_one_timer():
    clock = Clock()
    sent, armed = [], []
    throttle = RequestThrottle(clock, sent.append, rate=2.0, burst=3)
    for i in range(7):
        throttle.send(b"%d" % i, lambda i=i: armed.append(i))
    assert sent == [b"0", b"1", b"2"] and armed == [0, 1, 2]
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(0.5)
    assert sent[-1] == b"3"
    clock.advance(1.5)
    assert sent == [b"%d" % i for i in range(7)] and armed == list(range(7))
    assert clock.getDelayedCalls() == []


def test_throttle_close_drops_the_queue_and_the_timer():
    clock = Clock()
    sent = []
    throttle = RequestThrottle(clock, sent.append, rate=1.0, burst=1)
    throttle.send(b"a"), throttle.send(b"b")
    throttle.close()
    clock.advance(10)
    assert sent == [b"a"] and clock.getDelayedCalls() == []


# -- liveness --------------------------------------------------------------

class Probe:
    def __init__(self, **limits):
        self.clock = Clock()
        self.pings, self.dead, self.stale = 0, [], []
        self.seen = {"book": {}, "ticker": {}, "trade": {}}
        self.monitor = LivenessMonitor(
            self.clock, data_timeout=limits.get("data", 5), ping_interval=limits.get("ping", 30),
            ping_timeout=limits.get("pong", 10), channel_timeouts=limits.get("channels", {}),
            seen=self.seen, subscribed=lambda channel: ["BTC/USD", "ETH/USD"] if channel == "book" else [],
            send_ping=self._ping, on_dead=self.dead.append, on_stale=lambda *a: self.stale.append(a),
        )
        self.monitor.start()

    def _ping(self, on_sent):
        self.pings += 1
        on_sent()

    def data(self):
        self.monitor.last_data = self.clock.seconds()


def test_silence_is_detected_within_the_limit_plus_one_check():
    probe = Probe(data=5)
    for _ in range(40):
        probe.clock.advance(0.25)
        probe.data()
    assert probe.dead == []
    probe.clock.advance(5.0)
    assert probe.dead == []
    probe.clock.advance(probe.monitor.check_interval + 0.01)
    assert len(probe.dead) == 1 and "no data for" in probe.dead[0]
    assert probe.clock.getDelayedCalls() == []  # it stopped itself


def test_pongs_are_not_data():
    probe = Probe(data=5, ping=1, pong=10)
    for _ in range(30):
        probe.clock.advance(0.25)
        probe.monitor.pong()  # the socket answers, the feed is silent
    assert probe.dead and "no data" in probe.dead[0]


def test_a_missing_pong_kills_the_connection():
    probe = Probe(data=100, ping=2, pong=3)
    probe.clock.advance(2.0)
    assert probe.pings == 1
    for _ in range(12):  # 3 s: not yet over the limit
        probe.clock.advance(0.25)
        probe.data()
    assert probe.dead == []
    for _ in range(4):
        probe.clock.advance(0.25)
        probe.data()
    assert probe.dead and "no pong" in probe.dead[0] and probe.pings == 1


def test_an_answered_ping_keeps_it_alive_and_pings_repeat():
    probe = Probe(data=100, ping=2, pong=3)
    for _ in range(10):
        probe.clock.advance(2.0)
        probe.monitor.pong()
        probe.data()
    assert probe.dead == [] and probe.pings == 10  # one per interval, for 20 s


def test_a_quiet_subscription_is_reported_once_per_limit():
    probe = Probe(data=100, channels={"book": 3, "trade": 0})
    for _ in range(20):  # ETH/USD keeps updating, BTC/USD goes quiet
        probe.clock.advance(0.25)
        probe.seen["book"]["ETH/USD"] = probe.clock.seconds()
        probe.data()
    assert [(c, s) for c, s, _ in probe.stale] == [("book", "BTC/USD")]
    assert probe.stale[0][2] > 3


def test_a_reactor_stall_longer_than_the_limit_does_not_kill_a_connection_whose_data_waits():
    probe = Probe(data=5)
    probe.clock.advance(1.25)
    probe.data()
    probe.clock.advance(15.0)  # the reactor stalled 15 s (a slow subscriber, a GC pause)
    assert probe.dead == []  # a late check judges nothing...
    probe.data()  # ...the frames waiting in the socket are read...
    probe.clock.advance(probe.monitor.check_interval)
    assert probe.dead == []  # ...and the next check finds the connection alive
    probe.monitor.stop()


def test_after_a_stall_a_truly_silent_connection_dies_at_the_next_check():
    probe = Probe(data=5)
    probe.clock.advance(15.0)
    assert probe.dead == []
    probe.clock.advance(probe.monitor.check_interval)
    assert len(probe.dead) == 1 and "no data for" in probe.dead[0]
