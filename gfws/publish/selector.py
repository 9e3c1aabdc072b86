"""Which endpoint's market data the consumer hears: the one route into the bus.

Every event of a feed passes here on its way to the bus, tagged by the
outlet of the endpoint it came from.  Books and tickers pass from the leader
only (the pool says who leads); trades pass from the leader, or in hot
standby from every endpoint, once each by the venue's trade id, so losing
one endpoint loses no trade another delivered.  Everything else
(connection, status, integrity, error) always passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twisted.internet.interfaces import IReactorTime

from gfws.events import Book, Event, Ticker, Trade
from gfws.integrity.dedup import RecentKeys


class Outlet:
    """Where one endpoint's events enter the feed."""

    __slots__ = ("_selector", "endpoint", "publish")

    def __init__(self, selector: Selector, endpoint: str | None) -> None:
        self._selector = selector
        self.endpoint = endpoint
        # Bound once: the hot path is one call.
        self.publish: Callable[[Event], None] = self._publish

    def _publish(self, event: Event) -> None:
        selector = self._selector
        kind = type(event)
        if kind is Book or kind is Ticker:
            if self.endpoint == selector.leader:
                selector.bus(event)
        elif kind is Trade:
            if self.endpoint == selector.leader or selector.hot:
                if selector.trades.first_time((event.symbol, event.trade_id)):  # type: ignore[union-attr]
                    selector.bus(event)
        else:
            selector.bus(event)


class Selector:
    def __init__(
        self,
        bus: Callable[[Event], None],
        hot: bool,
        clock: IReactorTime,
        dedup_capacity: int = 100_000,
        dedup_max_age: float = 0.0,
    ) -> None:
        self.bus = bus
        self.hot = hot
        self.leader: str | None = None
        self.trades = RecentKeys(dedup_capacity, dedup_max_age, clock)

    def outlet(self, endpoint: str | None = None) -> Outlet:
        """The way in for ``endpoint``'s events (None: events of no endpoint)."""
        return Outlet(self, endpoint)

    def lead(self, endpoint: str | None, restated: Iterable[Event] = ()) -> None:
        """``endpoint`` now carries books and tickers; ``restated`` (its current
        verified books) tells the consumer the state it switches to."""
        self.leader = endpoint
        for event in restated:
            self.bus(event)
