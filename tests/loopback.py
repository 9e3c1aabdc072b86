"""Helpers for tests over real loopback sockets with the global reactor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, TimeoutError
from twisted.python.failure import Failure

from gfws.config import FeedConfig, parse_config
from gfws.events import Event
from gfws.service import FeedService


def feed_config(url: str, subscriptions: list[dict[str, Any]], **connection: Any) -> FeedConfig:
    return parse_config(
        {
            "venue": {"name": "kraken"},
            "endpoints": [{"name": "sim", "url": url}],
            "subscriptions": subscriptions,
            "connection": {"backoff_initial": 0.05, "backoff_cap": 0.2, **connection},
        },
        "<test>",
    )


def wait_for(service: FeedService, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Deferred[Event]:
    """Fires with the first event matching ``predicate`` (event driven, no polling).

    On timeout it fails with the non-market events seen while waiting, which
    is what one needs to see to understand why.
    """
    from twisted.internet import reactor

    d: Deferred[Event] = Deferred()
    seen: list[str] = []

    def check(event: Event) -> None:
        if tag(event) not in ("book", "ticker", "trade"):
            seen.append(f"{tag(event)} {getattr(event, 'endpoint', '')} {getattr(event, 'state', '')} "
                        f"{getattr(event, 'reason', '') or getattr(event, 'message', '') or getattr(event, 'detail', '')}")
        if not d.called and predicate(event):
            d.callback(event)

    stop = service.subscribe(check)
    d.addTimeout(timeout, reactor)

    def done(result: Any) -> Any:
        stop()
        if isinstance(result, Failure) and result.check(TimeoutError):
            raise AssertionError(f"no matching event in {timeout}s; saw:\n  " + "\n  ".join(seen[-40:]))
        return result

    return d.addBoth(done)


def tag(event: Event) -> str:
    return event.__struct_config__.tag  # type: ignore[attr-defined,no-any-return]
