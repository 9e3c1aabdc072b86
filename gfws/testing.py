"""For users' own tests of their strategies: a simulated venue and a feed on it.

Works the same under trial and under pytest-twisted (see
``examples/trial_strategy.py`` and ``examples/test_strategy_pytest.py``)::

    market = SimulatedMarket(subscriptions=[{"channel": "book", "symbols": ["BTC/USD"]}])
    yield market.start()                      # fires once every book is verified
    market.feed.subscribe(strategy.on_book, "book")
    yield market.next(lambda e: e.__struct_config__.tag == "book")
    market.venue.corrupt_next_checksum("BTC/USD")   # faults on demand
    yield market.gate.close_all()
    yield market.stop()                       # leaves the reactor clean

Everything runs on loopback; nothing reaches the internet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, TimeoutError

from gfws.config import parse_config
from gfws.events import Event
from gfws.service import FeedService
from gfws.sim import SimulatorService, SimVenue


class SimulatedMarket:
    """A Kraken v2 simulator (``gate``, its ``venue``) and a ``feed`` connected to it."""

    def __init__(
        self,
        subscriptions: Sequence[dict[str, Any]] = ({"channel": "book", "symbols": ["BTC/USD"]},),
        seed: int = 1,
        interval: float = 0.05,
        reactor: Any = None,
        **settings: Any,
    ) -> None:
        """``settings``: more tables of the feed's configuration (``connection``, ``liveness``...)."""
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self._subscriptions = list(subscriptions)
        self._settings = settings
        self.venue = SimVenue(clock=reactor, interval=interval, seed=seed)
        self.gate = SimulatorService(self.venue, port=0, reactor=reactor)
        self.feed: FeedService | None = None
        self.events: list[Event] = []

    def start(self, timeout: float = 10.0) -> Deferred[None]:
        """Start the venue and the feed; fires once the feed is ready (every book verified)."""
        self.gate.startService()
        self.feed = FeedService(parse_config({
            "venue": {"name": "kraken"},
            "endpoints": [{"name": "simulator", "url": self.gate.url}],
            "subscriptions": self._subscriptions,
            **self._settings,
        }, "<gfws.testing>"), self._reactor)
        self.feed.subscribe(self.events.append)
        self.feed.startService()
        feed = self.feed
        return self.next(lambda e: feed.pool.leader is not None and feed.pool.leader.ready, timeout).addCallback(
            lambda _: None)

    def next(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Deferred[Event]:
        """Fires with the next event matching ``predicate`` (or an already true condition at the next event)."""
        assert self.feed is not None, "start() first"
        d: Deferred[Event] = Deferred()

        def check(event: Event) -> None:
            if not d.called and predicate(event):
                d.callback(event)

        stop = self.feed.subscribe(check)

        def done(result: Any) -> Any:
            stop()
            if isinstance(getattr(result, "value", None), TimeoutError):
                raise AssertionError(f"no matching event within {timeout}s") from None
            return result

        return d.addTimeout(timeout, self._reactor).addBoth(done)

    def stop(self) -> Deferred[None]:
        """Stop the feed (gracefully), then the venue; the reactor is left with no timer of theirs."""
        stopping: Deferred[Any] = self.feed.stopService() if self.feed is not None else Deferred()
        if self.feed is None:
            stopping.callback(None)
        return stopping.addBoth(lambda _: self.gate.stopService()).addCallback(lambda _: None)
