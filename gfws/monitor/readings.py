"""Health and diagnostics, read from the running feed's objects.

``health`` answers one question, is every configured subscription live with
verified books, and says why not.  ``diagnostics`` is everything an operator
looks at when it is not: each endpoint (state, since when, attempts, losses,
last failure, breaker, messages, processing latency), the budget, the
subscriptions and books of the leader, the sinks and the counters.
"""

from __future__ import annotations

import os
import resource
from typing import Any

import msgspec

_QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999))


def health(feed: Any) -> dict[str, Any]:
    """``{"healthy": bool, "reasons": [...], "leader": name}``: reasons empty when healthy."""
    reasons: list[str] = []
    pool = feed.pool
    leader = pool.leader
    account = feed.account_pool
    if account is not None and pool.running and not any(e.ready for e in account.endpoints):
        states = "; ".join(f"{e.name} {e.state}" for e in account.endpoints)
        refused = feed.authenticator.last_failure if feed.authenticator is not None else None
        reasons.append(f"no private endpoint carries the account: {states}"
                       + (f" (token refused: {refused})" if refused else ""))
    if not pool.running:
        reasons.append("the feed is stopped")
    elif not pool.endpoints:
        pass  # an account-only feed
    elif leader is None:
        reasons.append("no endpoint carries the feed: " + "; ".join(f"{e.name} {e.state}" for e in pool.endpoints))
    else:
        handler = leader.handler
        if handler is None:
            reasons.append(f"the leader {leader.name} is {leader.state}")
        else:
            for sub in handler.subscriptions.states():
                if sub.state != "live":
                    why = f" ({sub.reason})" if sub.reason else ""
                    reasons.append(f"{sub.channel} {sub.symbol} is {sub.state}{why}")
                elif sub.channel == "book" and not handler.books.is_live(sub.symbol):
                    reasons.append(f"book {sub.symbol} is not verified (waiting for a snapshot)")
    return {"healthy": not reasons, "reasons": reasons, "leader": leader.name if leader is not None else None}


def _latency(stats: Any) -> dict[str, Any]:
    """Percentiles in seconds; over the largest bucket is ``"+Inf"`` (JSON has no infinity)."""
    values = {name: stats.quantile(q) for name, q in _QUANTILES}
    return {name: "+Inf" if v == float("inf") else v for name, v in values.items()} | {"samples": stats.sampled}


def endpoint_reading(endpoint: Any, stats: Any, leader: Any) -> dict[str, Any]:
    breaker = endpoint.breaker
    return {
        "name": endpoint.name,
        "url": endpoint.config.url,
        "priority": endpoint.priority,
        "state": endpoint.state,
        "since": endpoint.since,
        "leader": endpoint is leader,
        "ready": endpoint.ready,
        "attempts": endpoint.attempts,
        "consecutive_failures": endpoint.failures,
        "losses": endpoint.losses,
        "last_failure": endpoint.last_failure,
        "breaker": {"state": breaker.state, "failures": breaker.failures, "trips": breaker.trips,
                    "wait": breaker.wait()},
        "messages_received": stats.received,
        "channels": dict(sorted(stats.by_channel.items())),
        "processing_seconds": _latency(stats),
        "venue_latency_seconds": _latency(stats.venue_delay),
    }


def process() -> dict[str, Any]:
    """This process's memory and CPU, as the dashboard shows them."""
    times = os.times()
    page = os.sysconf("SC_PAGE_SIZE")
    try:
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * page
    except OSError:  # not Linux: the peak is what there is
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rss_mib": round(rss / 2**20, 1), "cpu_seconds": round(times.user + times.system, 2), "pid": os.getpid()}


def _account(feed: Any) -> dict[str, Any] | None:
    """Private endpoints, tokens and the ledger (never a credential)."""
    if feed.account_pool is None:
        return None
    authenticator, ledger, leader = feed.authenticator, feed.ledger, feed.account_pool.leader
    return {
        "leader": leader.name if leader is not None else None,
        "endpoints": [e.name for e in feed.account_pool.endpoints],
        "tokens": {"requests": authenticator.requests, "failures": authenticator.failures,
                   "last_failure": authenticator.last_failure, "last_token_at": authenticator.last_token_at},
        "ledger": None if ledger is None else {"path": ledger.path, "fills": len(ledger), "recorded": ledger.recorded,
                                               "repeats": ledger.repeats},
        "orders": {"open": len(feed.orders.open), "closed": len(feed.orders.closed), "stale": feed.orders.stale},
    }


def diagnostics(feed: Any) -> dict[str, Any]:
    pool, leader = feed.pool, feed.pool.leader
    handler = leader.handler if leader is not None else None
    subscriptions, books = [], []
    if handler is not None:
        subscriptions = [{"channel": s.channel, "symbol": s.symbol, "state": s.state, "refused": s.reason or None}
                         for s in handler.subscriptions.states()]
        now = feed.reactor.seconds()
        verified = {book.symbol: book for book in handler.restate(now)}
        books = [{"symbol": s.symbol, "live": s.symbol in verified,
                  "checksum": verified[s.symbol].checksum if s.symbol in verified else None}
                 for s in handler.subscriptions.states() if s.channel == "book"]
    budget = feed.budget
    return {
        "status": "running" if pool.running else "stopped",
        "health": health(feed),
        "venue": {"name": feed.dialect.name, "status": pool.venue_status,
                  "compiled_core": getattr(feed.dialect, "compiled", False)},
        "mode": pool.config.mode,
        "leader": leader.name if leader is not None else None,
        "primary_endpoint": pool.endpoints[0].name if pool.endpoints else None,
        "total_endpoints": len(pool.endpoints),
        "active_connections": sum(1 for e in pool.endpoints if e.state == "active"),
        "leader_switches": pool.switches,
        "endpoints": [endpoint_reading(e, feed.stats[e.name], leader) for e in feed.endpoints],
        "account": _account(feed),
        "budget": {"attempts": budget.attempts, "window": budget.window, "used": budget.used, "wait": budget.wait()},
        "subscriptions": subscriptions,
        "books": books,
        "renewals": handler.subscriptions.renewals if handler is not None else 0,
        "events_published": dict(feed.publisher.published),
        "integrity": dict(feed.reporter.counts),
        "subscriber_errors": feed.publisher.subscriber_errors,
        "compiled_publish": feed.publisher.compiled,
        "alerts": {
            "firing": [{"name": name, "subject": subject, "detail": detail}
                       for (name, subject), detail in sorted(feed.alerts.firing.items(), key=str)],
            "recent": [msgspec.to_builtins(alert) for alert in reversed(feed.alerts.recent)],
        },
        "process": process(),
        "sinks": [{"sink": repr(sink), **{k: getattr(sink, k) for k in ("written", "dropped", "held", "unencodable",
                                                                          "write_errors", "reopened")
                                         if hasattr(sink, k)}}
                  for sink in feed.publisher.sinks],
    }
