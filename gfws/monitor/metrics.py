"""Prometheus metrics, read at scrape time from the feed's own counters.

Nothing is recorded on the hot path for Prometheus: the feed already counts
(frames per endpoint, events by type, integrity problems by kind, sampled
processing times); a custom collector turns those counts into metric
families when Prometheus asks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

_BREAKER_STATES = ("closed", "open", "half_open")


def _buckets(histogram: Any) -> list[tuple[str, float]]:
    """Cumulative (upper bound, count) pairs, as Prometheus reads a histogram."""
    cumulative, out = 0, []
    for bound, count in zip((*histogram.bounds, float("inf")), histogram.counts, strict=True):
        cumulative += count
        out.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    return out


class FeedCollector(Collector):
    def __init__(self, feed: Any) -> None:
        self._feed = feed

    def collect(self) -> Iterator[Any]:
        feed = self._feed
        pool = feed.pool
        received = CounterMetricFamily("gfws_messages_received", "Frames received, per endpoint", labels=["endpoint"])
        up = GaugeMetricFamily("gfws_endpoint_up", "1 while the endpoint is active", labels=["endpoint"])
        leader = GaugeMetricFamily("gfws_endpoint_leader", "1 for the endpoint the consumer hears", labels=["endpoint"])
        ready = GaugeMetricFamily("gfws_endpoint_ready", "1 while active with every book verified", labels=["endpoint"])
        reconnects = CounterMetricFamily("gfws_reconnects", "Connections lost or attempts failed", labels=["endpoint"])
        attempts = CounterMetricFamily("gfws_connection_attempts", "Connection attempts made", labels=["endpoint"])
        breaker = GaugeMetricFamily("gfws_breaker_state", "The endpoint's circuit breaker (1 for its state)",
                                    labels=["endpoint", "state"])
        trips = CounterMetricFamily("gfws_breaker_trips", "Times the breaker opened", labels=["endpoint"])
        resyncs = CounterMetricFamily("gfws_resyncs", "Subscriptions renewed in place (books resynced)",
                                      labels=["endpoint"])
        subscriptions = GaugeMetricFamily("gfws_subscription_state", "1 for each subscription's state (the leader's)",
                                          labels=["endpoint", "channel", "symbol", "state"])
        channels = CounterMetricFamily("gfws_channel_messages", "Data messages received, per endpoint and channel",
                                       labels=["endpoint", "channel"])
        venue = HistogramMetricFamily("gfws_venue_latency_seconds",
                                      "Venue time to receipt of an item (one in 16 sampled)", labels=["endpoint"])
        processing = HistogramMetricFamily("gfws_processing_seconds",
                                           "Parse-to-publish time of one frame (one in 16 sampled)",
                                           labels=["endpoint"])
        leaders = {pool.leader, feed.account_pool.leader if feed.account_pool is not None else None}
        for endpoint in feed.endpoints:
            name = endpoint.name
            stats = feed.stats[name]
            received.add_metric([name], stats.received)
            up.add_metric([name], 1.0 if endpoint.state == "active" else 0.0)
            leader.add_metric([name], 1.0 if endpoint in leaders else 0.0)
            ready.add_metric([name], 1.0 if endpoint.ready else 0.0)
            reconnects.add_metric([name], endpoint.losses)
            attempts.add_metric([name], endpoint.attempts)
            for state in _BREAKER_STATES:
                breaker.add_metric([name, state], 1.0 if endpoint.breaker.state == state else 0.0)
            trips.add_metric([name], endpoint.breaker.trips)
            resyncs.add_metric([name], stats.renewals)
            handler = endpoint.handler
            if handler is not None:
                for sub in handler.subscriptions.states():
                    subscriptions.add_metric([name, sub.channel, sub.symbol, sub.state], 1.0)
            for channel, count in sorted(stats.by_channel.items()):
                channels.add_metric([name, channel], count)
            processing.add_metric([name], _buckets(stats), stats.sum)
            venue.add_metric([name], _buckets(stats.venue_delay), stats.venue_delay.sum)
        yield from (received, up, leader, ready, reconnects, attempts, breaker, trips, resyncs, subscriptions,
                    channels, processing, venue)
        published = CounterMetricFamily("gfws_events_published", "Events published, by type", labels=["type"])
        for kind, count in sorted(feed.publisher.published.items()):
            published.add_metric([kind], count)
        yield published
        problems = CounterMetricFamily("gfws_integrity_problems", "Input refused or flagged, by kind", labels=["kind"])
        for kind, count in sorted(feed.reporter.counts.items()):
            problems.add_metric([kind], count)
        yield problems
        budget = feed.budget
        yield GaugeMetricFamily("gfws_connection_budget_used", "Attempts in the venue's rolling window",
                                value=budget.used)
        yield CounterMetricFamily("gfws_connection_budget_refusals", "Attempts the budget refused",
                                  value=budget.refused)
        sink_dropped = CounterMetricFamily("gfws_sink_dropped", "Events a sink dropped (queue full)", labels=["sink"])
        sink_queued = GaugeMetricFamily("gfws_sink_queued", "Events waiting for a sink's writer", labels=["sink"])
        sink_held = GaugeMetricFamily("gfws_sink_held", "Fills and orders a sink holds past its bound (never dropped)",
                                      labels=["sink"])
        for sink in feed.publisher.sinks:
            sink_dropped.add_metric([repr(sink)], getattr(sink, "dropped", 0))
            sink_queued.add_metric([repr(sink)], getattr(sink, "queued", 0))
            sink_held.add_metric([repr(sink)], getattr(sink, "held", 0))
        yield sink_dropped
        yield sink_queued
        yield sink_held
        yield from _account(feed)


def _account(feed: Any) -> Iterator[Any]:
    """Tokens asked and refused, fills offered again (and not published)."""
    authenticator = feed.authenticator
    if authenticator is not None:
        yield CounterMetricFamily("gfws_token_requests", "Tokens asked for (one per private connection)",
                                  value=authenticator.requests)
        yield CounterMetricFamily("gfws_token_failures", "Token requests refused or failed",
                                  value=authenticator.failures)
    ledger = feed.ledger
    if ledger is not None:
        yield CounterMetricFamily("gfws_fill_repeats", "Fills brought again (snapshot, other endpoint, resend): "
                                  "not published", value=ledger.repeats)
        yield GaugeMetricFamily("gfws_ledger_fills", "Fills the ledger remembers", value=len(ledger))


def registry_for(feed: Any) -> CollectorRegistry:
    """A registry of this feed only (not the process-wide default), so two feeds never mix."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(FeedCollector(feed))
    return registry
