"""Which endpoint's market data the consumer hears: the one route into the bus.

Every event of a feed passes here on its way to the bus, tagged by the
outlet of the endpoint it came from.  Books and tickers pass from the leader
only (the pool says who leads); trades pass from every endpoint, once each
by the venue's trade id (a high-water mark per symbol, which a replayed
trade snapshot cannot get past however old it is), so a trade that reached
the new leader before a switch and the old one after it is not lost.  A
trade snapshot that starts beyond the mark says which ids no endpoint
delivered.  Everything else (fills and orders, already once each by the
account's ledger; connection, status, integrity, error) always passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from weakref import WeakSet

from zope.interface import implementer

from gfws.events import Book, Event, Integrity, Ticker, Trade
from gfws.integrity.trades import TradeMarks
from gfws.interfaces import IEventOutlet


def _not_leading(event: Event) -> None:
    """Books and tickers of an endpoint that does not lead go nowhere."""


@implementer(IEventOutlet)
class Outlet:
    """Where one endpoint's events enter the feed."""

    __slots__ = ("__weakref__", "_selector", "endpoint", "market", "publish", "trades")

    def __init__(self, selector: Selector, endpoint: str | None) -> None:
        self._selector = selector
        self.endpoint = endpoint
        # The route of this endpoint's books and tickers, kept by the selector as the leader changes: a
        # session hands its verified books straight to it (no dispatch on the event's type).
        self.market: Callable[[Event], None] = selector.bus if endpoint == selector.leader else _not_leading
        # Bound once: the hot path is one call.
        self.publish: Callable[[Event], None] = self._publish
        # One frame's usual trades (the compiled path's); the endpoint bound positionally: the fast call.
        self.trades: Callable[[list[Trade]], None] = partial(selector.trade_update, endpoint)

    def _publish(self, event: Event) -> None:
        kind = type(event)
        if kind is Book or kind is Ticker:
            self.market(event)
        elif kind is Trade:
            self._selector.trade(event, self.endpoint)  # type: ignore[arg-type]
        else:
            self._selector.bus(event)


class Selector:
    def __init__(self, bus: Callable[[Event], None], hot: bool) -> None:
        self.bus = bus
        self.hot = hot
        self._leader: str | None = None
        self._outlets: WeakSet[Outlet] = WeakSet()
        self.trades = TradeMarks()
        self.last_trade: dict[str | None, float] = {}  # endpoint -> receipt of its latest trade

    def trade(self, event: Trade, endpoint: str | None) -> None:
        self.last_trade[endpoint] = event.recv_ts
        trades = self.trades
        if not trades.first_time(event.symbol, event.trade_id):
            return
        if trades.gap is not None and event.snapshot:
            first, last = trades.gap
            self.bus(Integrity(
                venue=event.venue, recv_ts=event.recv_ts, kind="trade_gap", symbol=event.symbol, channel="trade",
                endpoint=endpoint,
                detail=f"{event.symbol} trade ids {first}..{last} were never received "
                       "(the time without a connection outlasted the venue's trade snapshot)",
            ))
        self.bus(event)

    def trade_update(self, endpoint: str | None, events: list[Trade]) -> None:
        """One frame's trades, in order: ``trade`` for each, with its usual case (the symbol's next id,
        ``TradeMarks.first_time``'s first branch) inline."""
        if not events:
            return
        self.last_trade[endpoint] = events[-1].recv_ts  # one frame: one receipt
        marks, bus = self.trades.marks, self.bus
        usual = False
        for event in events:
            symbol, trade_id = event.symbol, event.trade_id
            mark = marks.get(symbol)
            usual = mark is not None and trade_id == mark + 1
            if usual:
                marks[symbol] = trade_id
                bus(event)
            else:
                self.trade(event, endpoint)
        if usual:
            self.trades.gap = None  # as first_time leaves it after the next id

    @property
    def leader(self) -> str | None:
        """The endpoint whose books and tickers pass (None: no endpoint's)."""
        return self._leader

    @leader.setter
    def leader(self, endpoint: str | None) -> None:
        self._leader = endpoint
        for outlet in self._outlets:
            outlet.market = self.bus if outlet.endpoint == endpoint else _not_leading

    def outlet(self, endpoint: str | None = None) -> Outlet:
        """The way in for ``endpoint``'s events (None: events of no endpoint)."""
        outlet = Outlet(self, endpoint)
        self._outlets.add(outlet)
        return outlet

    def lead(self, endpoint: str | None, restated: Iterable[Event] = ()) -> None:
        """``endpoint`` now carries books and tickers; ``restated`` (its current
        verified books) tells the consumer the state it switches to."""
        self.leader = endpoint
        for event in restated:
            self.bus(event)
