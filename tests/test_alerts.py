"""Alert rules on a Clock: each fires once when its condition starts, and resolves once."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from twisted.internet.task import Clock

from gfws.config import AlertsConfig, SubscriptionConfig
from gfws.monitor.alerts import AlertRules
from gfws.session.stats import EndpointStats


class Feed:
    """What the rules read of a feed: endpoints, their counts, the leader's books."""

    def __init__(self) -> None:
        self.live = {"BTC/USD"}
        books = SimpleNamespace(is_live=lambda symbol: symbol in self.live)
        self.endpoint = SimpleNamespace(name="a", losses=0, last_failure=None, handler=SimpleNamespace(books=books),
                                        breaker=SimpleNamespace(state="closed", trips=0))
        self.pool = SimpleNamespace(endpoints=[self.endpoint], leader=self.endpoint)
        self.endpoints = [self.endpoint]
        self.authenticator = None
        self.publisher = SimpleNamespace(sinks=[])
        self.stats = {"a": EndpointStats()}
        self.reporter = SimpleNamespace(counts=Counter())
        self.dialect = SimpleNamespace(name="kraken")
        self.config = SimpleNamespace(subscriptions=(SubscriptionConfig("book", ("BTC/USD",), {"depth": 10}),))

    def frames(self, n: int, problems: int = 0, latency: float = 0.0001) -> None:
        stats = self.stats["a"]
        stats.received += n
        for _ in range(n // 16):
            stats.record(latency)
        self.reporter.counts["schema"] += problems


def rig(**settings):
    clock, feed, alerts = Clock(), Feed(), []
    rules = AlertRules(feed, AlertsConfig(**settings), clock, alerts.append)
    rules.start()
    return clock, feed, rules, alerts


def run(clock, feed, seconds, per_second=100, **frames):
    for _ in range(int(seconds)):
        feed.frames(per_second, **frames)
        clock.advance(1.0)


def told(alerts):
    return [(a.name, a.state) for a in alerts]


def test_connection_failures_fire_once_past_the_limit_and_resolve_when_the_window_clears():
    clock, feed, rules, alerts = rig()
    for _ in range(3):  # three in five minutes: within the limit
        feed.endpoint.losses += 1
        run(clock, feed, 10)
    assert told(alerts) == []
    feed.endpoint.losses += 1
    feed.endpoint.last_failure = "connection refused by a.test:80"
    run(clock, feed, 30)
    assert told(alerts) == [("connection_failures", "firing")]  # once, not every second
    assert "4 connection failures in 300s" in alerts[0].detail and "refused" in alerts[0].detail
    run(clock, feed, 300)
    assert told(alerts) == [("connection_failures", "firing"), ("connection_failures", "resolved")]
    rules.stop()
    assert clock.getDelayedCalls() == []


def test_a_breaker_trip_fires_until_it_closes():
    clock, feed, rules, alerts = rig()
    run(clock, feed, 2)
    feed.endpoint.breaker.state, feed.endpoint.breaker.trips = "open", 1
    run(clock, feed, 5)
    feed.endpoint.breaker.state = "closed"
    run(clock, feed, 2)
    assert told(alerts) == [("breaker_open", "firing"), ("breaker_open", "resolved")]
    assert alerts[0].endpoint == "a"
    rules.stop()


def test_an_error_rate_over_one_percent_in_a_minute_fires():
    clock, feed, rules, alerts = rig()
    run(clock, feed, 60, problems=1)  # 1 in 100: at the limit, not over
    assert told(alerts) == []
    run(clock, feed, 30, problems=3)
    assert told(alerts) == [("error_rate", "firing")]
    run(clock, feed, 61)
    assert told(alerts)[-1] == ("error_rate", "resolved")
    rules.stop()


def test_a_slow_p95_fires():
    clock, feed, rules, alerts = rig()
    run(clock, feed, 10)
    run(clock, feed, 10, latency=0.2)  # 200 ms to process: over the 100 ms limit
    assert told(alerts) == [("processing_latency", "firing")]
    run(clock, feed, 61)
    assert told(alerts)[-1] == ("processing_latency", "resolved")
    rules.stop()


def test_silence_and_an_unverified_book_fire_after_their_limits():
    clock, feed, rules, alerts = rig(stale_after=10, unverified_after=30)
    run(clock, feed, 5)
    run(clock, feed, 11, per_second=0)  # nothing from the leader
    assert told(alerts) == [("stale", "firing")]
    run(clock, feed, 1)
    assert told(alerts) == [("stale", "firing"), ("stale", "resolved")]
    feed.live.clear()  # the book lost its verification
    run(clock, feed, 29)
    assert len(alerts) == 2
    run(clock, feed, 2)
    assert told(alerts)[-1] == ("book_unverified", "firing") and alerts[-1].symbol == "BTC/USD"
    feed.live.add("BTC/USD")
    run(clock, feed, 2)
    assert told(alerts)[-1] == ("book_unverified", "resolved") and len(alerts) == 4
    rules.stop()


def test_refused_credentials_fire_until_a_token_is_given_again():
    clock, feed, alerts = Clock(), Feed(), []
    feed.authenticator = SimpleNamespace(last_failure="EGeneral:Permission denied", failures=3)
    rules = AlertRules(feed, AlertsConfig(), clock, alerts.append)
    rules.start()
    clock.advance(1)
    clock.advance(1)
    assert [(a.name, a.state) for a in alerts] == [("authentication", "firing")]
    assert "EGeneral:Permission denied" in alerts[0].detail
    feed.authenticator.last_failure = None
    clock.advance(1)
    assert [(a.name, a.state) for a in alerts][-1] == ("authentication", "resolved")
    rules.stop()


def test_a_sink_holding_fills_past_its_bound_fires_backpressure():
    clock, feed, alerts = Clock(), Feed(), []
    sink = SimpleNamespace(held=0)
    feed.publisher.sinks.append(sink)
    rules = AlertRules(feed, AlertsConfig(), clock, alerts.append)
    rules.start()
    clock.advance(1)
    sink.held = 12
    clock.advance(1)
    sink.held = 0
    clock.advance(1)
    assert [(a.name, a.state) for a in alerts] == [("sink_backpressure", "firing"), ("sink_backpressure", "resolved")]
    assert "12 events" in alerts[0].detail
    rules.stop()
