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

    def __init__(self, context: FeedContext, precision_changed: Callable[[str], None],
                 precision_known: Callable[[str], None] = lambda symbol: None) -> None:
        self._context = context
        self._precision_changed = precision_changed
        self._precision_known = precision_known

    def handle(self, message: ChannelData, recv_ts: float) -> None:
        context = self._context
        for problem in message.problems:  # the bad pairs; the good ones are used
            context.reject("schema", problem, recv_ts, None, self.channel)
        pairs: list[PairInfo] = message.items
        instruments = context.instruments
        for symbol in instruments.apply(pairs, message.snapshot):
            self._precision_changed(symbol)
        for symbol in instruments.added:
            self._precision_known(symbol)
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
        keys = context.keys
        for item in self.in_order(message):
            if not context.admit(channel, item.symbol, item.timestamp, recv_ts):
                continue  # not subscribed: not seen either (an unbounded set of symbols)
            self._seen[keys.get(item.symbol, item.symbol)] = recv_ts  # the interned key (see FeedContext.keys)
            p = context.instruments.precision(item.symbol)
            if p is None:
                self.unknown_precision(item, recv_ts, snapshot)
                continue
            try:
                event = self.event(item, p, context.venue, recv_ts, snapshot)
            except BadValue as e:
                context.reject(e.kind, str(e), recv_ts, item.symbol, channel)
                continue
            context.publish(event)

    def in_order(self, message: ChannelData) -> list[Any]:
        return message.items

    def unknown_precision(self, item: Any, recv_ts: float, snapshot: bool) -> None:
        """No precision for the pair yet: a ticker is refused (the next one says it all again)."""
        self._context.reject("unknown_instrument", f"no precision known for {item.symbol}", recv_ts, item.symbol,
                             self.channel)

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


HELD_TRADES = 1000  # per symbol, waiting for its precision


@implementer(IEventHandler)
class TradeHandler(_ItemHandler):
    """Trades become events; a trade of a pair whose precision is not known yet (a new listing the
    instrument list has not announced) is held, not lost, and published once the precision comes."""

    channel = "trade"

    def __init__(self, context: FeedContext) -> None:
        super().__init__(context)
        self.held: dict[str, list[tuple[Any, float, bool]]] = {}

    def committed(self, results: list[Any], recv_ts: float) -> None:
        """The events of a trade update the compiled path took (``fast_updates``), in order: what
        ``handle`` gives for it.  An item whose venue time needs the general check comes with whether
        it is the sampled one."""
        context = self._context
        publish = context.publish
        for result in results:
            if type(result) is Trade:
                publish(result)
            else:
                event, sample = result
                if event.ts is not None:
                    context.check_time("trade", event.symbol, event.ts, recv_ts, sample)
                publish(event)

    def unknown_precision(self, item: Any, recv_ts: float, snapshot: bool) -> None:
        held = self.held.setdefault(item.symbol, [])
        if not held:
            self._context.reject("unknown_instrument", f"no precision known for {item.symbol}: its trades are held "
                                 f"(up to {HELD_TRADES}) until the venue announces it", recv_ts, item.symbol,
                                 self.channel)
        if len(held) >= HELD_TRADES:
            dropped = held.pop(0)[0]
            self._context.reject("unknown_instrument", f"{item.symbol} trade {dropped.trade_id} dropped: "
                                 f"{HELD_TRADES} trades held and still no precision", recv_ts, item.symbol,
                                 self.channel)
        held.append((item, recv_ts, snapshot))

    def precision_known(self, symbol: str) -> None:
        """The venue announced ``symbol``: publish what was held, in order."""
        context = self._context
        p = context.instruments.precision(symbol)
        for item, recv_ts, snapshot in self.held.pop(symbol, ()):
            assert p is not None
            try:
                context.publish(self.event(item, p, context.venue, recv_ts, snapshot))
            except BadValue as e:
                context.reject(e.kind, str(e), recv_ts, item.symbol, self.channel)

    def reset(self) -> None:
        self.held.clear()

    def in_order(self, message: ChannelData) -> list[Any]:
        """A snapshot's trades oldest first (the per-symbol mark downstream admits ids rising)."""
        if message.snapshot:
            return sorted(message.items, key=lambda item: item.trade_id)
        return message.items

    def event(self, item: TradeData, p: PairPrecision, venue: str, recv_ts: float, snapshot: bool) -> Trade:
        price, qty = p.price(item.price), p.qty(item.qty)
        if not (price > 0 and qty > 0):  # positive(), inlined: this runs for every trade
            positive(price, "price")
            positive(qty, "qty")
        return Trade(
            venue=venue,
            recv_ts=recv_ts,
            symbol=item.symbol,
            trade_id=item.trade_id,
            side=item.side,
            price=price,
            qty=qty,
            ord_type=item.ord_type,
            ts=item.timestamp,
            snapshot=snapshot,
        )
