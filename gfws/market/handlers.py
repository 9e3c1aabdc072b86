"""Channel handlers: checked venue messages in, normalized events out.

One handler per channel, all sharing a ``FeedContext``.  Values are put at
the pair's precision here (exactly, or the message is refused).  Books have
their own handler (``gfws.market.books``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zope.interface import implementer

from gfws.events import Event, Status, Ticker, Trade
from gfws.interfaces import IEventHandler
from gfws.market.context import FeedContext
from gfws.market.precision import BadValue, PairPrecision, bounded, non_negative, positive
from gfws.messages import U64_MAX, ChannelData, PairInfo, SystemStatus, TickerData, TradeData


@implementer(IEventHandler)
class StatusHandler:
    """Venue system status: an event, and the status told to the connection
    (maintenance changes how soon it may reconnect)."""

    channel = "status"

    def __init__(self, context: FeedContext, on_status: Callable[[str], None] = lambda system: None) -> None:
        self._context = context
        self._on_status = on_status

    def handle(self, message: ChannelData, recv_ts: float) -> None:
        context = self._context
        item: SystemStatus
        for item in message.items:
            if item.connection_id is not None and item.connection_id > U64_MAX:
                context.reject("schema", f"connection_id {item.connection_id} is over 64 bits", recv_ts, None,
                               self.channel)
                continue
            context.publish(
                Status(
                    venue=context.venue,
                    recv_ts=recv_ts,
                    system=item.system,
                    version=item.version,
                    connection_id=item.connection_id,
                    endpoint=context.endpoint,
                )
            )
            self._on_status(item.system)

    def reset(self) -> None:
        pass


@implementer(IEventHandler)
class InstrumentHandler:
    """Keeps pair precisions; a precision change forces a book resync."""

    channel = "instrument"

    def __init__(self, context: FeedContext, precision_changed: Callable[[str], None]) -> None:
        self._context = context
        self._precision_changed = precision_changed

    def handle(self, message: ChannelData, recv_ts: float) -> None:
        context = self._context
        for problem in message.problems:  # the bad pairs; the good ones are used
            context.reject("schema", problem, recv_ts, None, self.channel)
        pairs: list[PairInfo] = message.items
        instruments = context.instruments
        for symbol in instruments.apply(pairs, message.snapshot):
            self._precision_changed(symbol)
        for symbol in instruments.missing:
            context.reject("instrument_missing", f"{symbol} is not in the venue's instrument list; "
                           "its last known precision is kept", recv_ts, symbol, self.channel)
        instruments.missing.clear()

    def reset(self) -> None:
        pass


class _ItemHandler:
    """A channel whose items each become one event (ticker, trade): the
    checks every item passes, then ``event()`` for the channel's own fields."""

    channel = ""

    def __init__(self, context: FeedContext) -> None:
        self._context = context
        self._seen = context.seen[self.channel]

    def handle(self, message: ChannelData, recv_ts: float) -> None:
        context = self._context
        channel = self.channel
        snapshot = message.snapshot
        for item in self.in_order(message):
            self._seen[item.symbol] = recv_ts
            if not context.admit(channel, item.symbol, item.timestamp, recv_ts):
                continue
            p = context.precision_for(item.symbol, channel, recv_ts)
            if p is None:
                continue
            try:
                event = self.event(item, p, context.venue, recv_ts, snapshot)
            except BadValue as e:
                context.reject(e.kind, str(e), recv_ts, item.symbol, channel)
                continue
            context.publish(event)

    def in_order(self, message: ChannelData) -> list[Any]:
        return message.items

    def event(self, item: Any, p: PairPrecision, venue: str, recv_ts: float, snapshot: bool) -> Event:
        raise NotImplementedError

    def reset(self) -> None:
        pass


@implementer(IEventHandler)
class TickerHandler(_ItemHandler):
    channel = "ticker"

    def event(self, item: TickerData, p: PairPrecision, venue: str, recv_ts: float, snapshot: bool) -> Ticker:
        return Ticker(
            venue=venue,
            recv_ts=recv_ts,
            symbol=item.symbol,
            bid=positive(p.price(item.bid), "bid"),
            bid_qty=non_negative(p.qty(item.bid_qty), "bid_qty"),
            ask=positive(p.price(item.ask), "ask"),
            ask_qty=non_negative(p.qty(item.ask_qty), "ask_qty"),
            last=non_negative(p.price(item.last), "last"),
            volume=non_negative(p.qty(item.volume), "volume"),
            vwap=non_negative(bounded(item.vwap, "vwap"), "vwap"),
            low=non_negative(p.price(item.low), "low"),
            high=non_negative(p.price(item.high), "high"),
            change=bounded(item.change, "change"),
            change_pct=bounded(item.change_pct, "change_pct"),
            ts=item.timestamp,
        )


@implementer(IEventHandler)
class TradeHandler(_ItemHandler):
    channel = "trade"

    def in_order(self, message: ChannelData) -> list[Any]:
        """A snapshot's trades oldest first (the per-symbol mark downstream admits ids rising)."""
        if message.snapshot:
            return sorted(message.items, key=lambda item: item.trade_id)
        return message.items

    def event(self, item: TradeData, p: PairPrecision, venue: str, recv_ts: float, snapshot: bool) -> Trade:
        return Trade(
            venue=venue,
            recv_ts=recv_ts,
            symbol=item.symbol,
            trade_id=item.trade_id,
            side=item.side,
            price=positive(p.price(item.price), "price"),
            qty=positive(p.qty(item.qty), "qty"),
            ord_type=item.ord_type,
            ts=item.timestamp,
            snapshot=snapshot,
        )
