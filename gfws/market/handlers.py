"""Channel handlers: checked venue messages in, normalized events out.

One handler per channel, all sharing a ``FeedContext``.  Values are put at
the pair's precision here (exactly, or the message is refused), and books are
verified against the venue's checksum before any book event leaves.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Optional

from zope.interface import implementer

from gfws.market.orderbook import OrderBook
from gfws.events import Book, Event, Status, Ticker, Trade
from gfws.market.instruments import Instruments
from gfws.integrity.report import IntegrityReporter
from gfws.interfaces import IEventHandler, IVenueDialect
from gfws.messages import BookData, ChannelData, Level, PairInfo, SystemStatus, TickerData, TradeData
from gfws.market.precision import BadValue, PairPrecision, non_negative, positive


def venue_seconds(ts: str) -> Optional[float]:
    """POSIX seconds of an RFC 3339 UTC time (nanoseconds are truncated)."""
    try:
        return datetime.fromisoformat(ts[:26].rstrip("Z")).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


class FeedContext:
    """What every handler of one connection shares."""

    def __init__(
        self,
        dialect: IVenueDialect,
        publish: Callable[[Event], None],
        reporter: IntegrityReporter,
        instruments: Instruments,
        endpoint: str,
        expected: Optional[dict[str, set[str]]] = None,
        max_message_age: float = 0.0,
    ) -> None:
        self.venue: str = dialect.name
        self.dialect = dialect
        self.publish = publish
        self.reporter = reporter
        self.instruments = instruments
        self.endpoint = endpoint
        # channel -> symbol -> receive time of its latest item (for liveness)
        self.seen: dict[str, dict[str, float]] = {"ticker": {}, "trade": {}, "book": {}}
        # channel -> symbols subscribed there: data for any other is refused
        self.expected = expected if expected is not None else {}
        self._last_ts: dict[str, dict[str, str]] = {"ticker": {}, "trade": {}, "book": {}}
        self.max_message_age = max_message_age

    def admit(self, channel: str, symbol: str, ts: Optional[str], recv_ts: float) -> bool:
        """Is this item for a subscribed symbol?  Also flags venue times that
        go backwards or are older than ``max_message_age`` (counted, not dropped)."""
        expected = self.expected.get(channel)
        if expected is not None and symbol not in expected:
            self.reject("unexpected_symbol", f"{channel} data for unsubscribed {symbol}", recv_ts, symbol, channel)
            return False
        if ts is not None:
            self.check_time(channel, symbol, ts, recv_ts)
        return True

    def check_time(self, channel: str, symbol: str, ts: str, recv_ts: float) -> None:
        """Flag a venue time that goes backwards or is too old (never drops)."""
        last_ts = self._last_ts[channel]
        last = last_ts.get(symbol)
        if last is not None and ts < last:
            self.reject("timestamp_regression", f"{ts} after {last}", recv_ts, symbol, channel)
        else:
            last_ts[symbol] = ts
        if self.max_message_age > 0:
            sent = venue_seconds(ts)
            if sent is None:
                self.reject("bad_timestamp", f"{ts!r} is not an RFC 3339 time", recv_ts, symbol, channel)
            elif recv_ts - sent > self.max_message_age:
                self.reject("stale_message", f"venue time {ts} is {recv_ts - sent:.1f}s old", recv_ts, symbol, channel)

    def forget_times(self, channel: str, symbol: str) -> None:
        """A resubscription starts a new stream (a snapshot may be older)."""
        self._last_ts[channel].pop(symbol, None)

    def precision_for(self, symbol: str, channel: str, recv_ts: float) -> Optional[PairPrecision]:
        precision = self.instruments.precision(symbol)
        if precision is None:
            self.reject("unknown_instrument", f"no precision known for {symbol}", recv_ts, symbol, channel)
        return precision

    def reject(
        self, kind: str, detail: str, recv_ts: float, symbol: Optional[str], channel: str
    ) -> None:
        self.reporter.report(kind, detail, recv_ts, symbol=symbol, channel=channel, endpoint=self.endpoint)


@implementer(IEventHandler)
class StatusHandler:
    channel = "status"

    def __init__(self, context: FeedContext) -> None:
        self._context = context

    def handle(self, message: ChannelData, recv_ts: float) -> None:
        context = self._context
        item: SystemStatus
        for item in message.items:
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
        pairs: list[PairInfo] = message.items
        for symbol in self._context.instruments.apply(pairs, message.snapshot):
            self._precision_changed(symbol)

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
        for item in message.items:
            self._seen[item.symbol] = recv_ts
            if not context.admit(channel, item.symbol, item.timestamp, recv_ts):
                continue
            p = context.precision_for(item.symbol, channel, recv_ts)
            if p is None:
                continue
            try:
                event = self.event(item, p, context.venue, recv_ts)
            except BadValue as e:
                context.reject(e.kind, str(e), recv_ts, item.symbol, channel)
                continue
            context.publish(event)

    def event(self, item: Any, p: PairPrecision, venue: str, recv_ts: float) -> Event:
        raise NotImplementedError

    def reset(self) -> None:
        pass


@implementer(IEventHandler)
class TickerHandler(_ItemHandler):
    channel = "ticker"

    def event(self, item: TickerData, p: PairPrecision, venue: str, recv_ts: float) -> Ticker:
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
            vwap=item.vwap,
            low=p.price(item.low),
            high=p.price(item.high),
            change=item.change,
            change_pct=item.change_pct,
            ts=item.timestamp,
        )


@implementer(IEventHandler)
class TradeHandler(_ItemHandler):
    channel = "trade"

    def event(self, item: TradeData, p: PairPrecision, venue: str, recv_ts: float) -> Trade:
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
        )


def _exact_levels(levels: Iterable[Level], p: PairPrecision) -> list[tuple]:
    price, qty = p.price, p.qty
    out = []
    for level in levels:
        q = qty(level.qty)
        if q < 0:
            raise BadValue(f"negative size {level.qty} at {level.price}")
        px = price(level.price)
        if not px > 0:
            raise BadValue(f"price {level.price} is not > 0")
        out.append((px, q))
    return out


@implementer(IEventHandler)
class BookHandler:
    """Local books of one connection, published only when verified.

    A book is *live* from its snapshot until a message fails: then it is
    cleared, an ``integrity`` event says why, ``resync(symbol)`` asks the
    connection for a fresh snapshot, and updates are ignored until it comes.
    """

    channel = "book"

    def __init__(
        self, context: FeedContext, depths: dict[str, int], resync: Callable[[str], None]
    ) -> None:
        self._context = context
        self._resync = resync
        self._books = {
            symbol: OrderBook(symbol, depth, context.dialect.level_text)
            for symbol, depth in depths.items()
        }
        self._live: set[str] = set()
        self._checksum = context.dialect.book_checksum
        self._seen = context.seen["book"]
        self.updates_ignored = 0

    def book(self, symbol: str) -> Optional[OrderBook]:
        return self._books.get(symbol)

    def is_live(self, symbol: str) -> bool:
        return symbol in self._live

    def handle(self, message: ChannelData, recv_ts: float) -> None:
        item: BookData
        seen = self._seen
        for item in message.items:
            seen[item.symbol] = recv_ts
            self._apply(item, message.snapshot, recv_ts)

    def _apply(self, item: BookData, snapshot: bool, recv_ts: float) -> None:
        context = self._context
        symbol = item.symbol
        book = self._books.get(symbol)
        if book is None:
            context.reject("unexpected_symbol", f"book data for unsubscribed {symbol}", recv_ts, symbol, "book")
            return
        if snapshot:
            context.forget_times("book", symbol)
        if item.timestamp is not None:
            context.check_time("book", symbol, item.timestamp, recv_ts)
        if snapshot:
            book.clear()
            self._live.add(symbol)
        elif symbol not in self._live:
            # Normal while a resync is under way (the old stream's tail: the
            # request below is then a no-op); otherwise the snapshot was lost.
            self.updates_ignored += 1
            self._resync(symbol)
            return
        p = context.precision_for(symbol, "book", recv_ts)
        if p is None:
            self.invalidate(symbol)
            return
        try:
            bids = _exact_levels(item.bids, p)
            asks = _exact_levels(item.asks, p)
        except BadValue as e:
            context.reject(e.kind, str(e), recv_ts, symbol, "book")
            self._fail(symbol)
            return
        book.apply(bids, asks)
        computed = self._checksum(book)
        if computed != item.checksum:
            context.reject(
                "checksum_mismatch",
                f"venue checksum {item.checksum}, local book gives {computed}",
                recv_ts,
                symbol,
                "book",
            )
            self._fail(symbol)
            return
        context.publish(self._event(book, computed, snapshot, recv_ts, item.timestamp))

    def _event(self, book: OrderBook, checksum: int, snapshot: bool, recv_ts: float, ts: Optional[str]) -> Book:
        depth = book.depth
        return Book(
            venue=self._context.venue,
            recv_ts=recv_ts,
            symbol=book.symbol,
            bids=book.bids.top(depth),
            asks=book.asks.top(depth),
            checksum=checksum,
            snapshot=snapshot,
            ts=ts,
        )

    def _fail(self, symbol: str) -> None:
        self.invalidate(symbol)
        self._resync(symbol)

    def all_live(self, symbols: Iterable[str]) -> bool:
        return all(symbol in self._live for symbol in symbols)

    def current(self, symbol: str, recv_ts: float) -> Optional[Book]:
        """The verified book as an event (for a consumer switching source)."""
        book = self._books.get(symbol)
        if book is None or symbol not in self._live:
            return None
        return self._event(book, self._checksum(book), True, recv_ts, None)

    def current_all(self, recv_ts: float) -> list[Book]:
        return [e for e in (self.current(s, recv_ts) for s in sorted(self._books)) if e is not None]

    def invalidate(self, symbol: str) -> None:
        """Stop trusting a book until its next snapshot."""
        self._live.discard(symbol)
        book = self._books.get(symbol)
        if book is not None:
            book.clear()

    def reset(self) -> None:
        for symbol in list(self._books):
            self.invalidate(symbol)
