"""Local books of one connection, published only when verified.

Every message is applied at the pair's precision (exactly, or refused) and
the venue's checksum is compared after every one; no book event leaves
unverified.  A failure clears the book, reports why and asks for a fresh
snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from zope.interface import implementer

from gfws.events import Book
from gfws.interfaces import IEventHandler, IOrderBook
from gfws.market.context import FeedContext
from gfws.market.precision import BadValue, PairPrecision
from gfws.messages import BookData, ChannelData, Level


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
        self,
        context: FeedContext,
        depths: dict[str, int],
        resync: Callable[[str], None],
        live_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self._context = context
        self._resync = resync
        self._live_changed = live_changed
        self._books: dict[str, IOrderBook] = {
            symbol: context.dialect.new_book(symbol, depth) for symbol, depth in depths.items()
        }
        self._seen = context.seen["book"]
        self.updates_ignored = 0

    @property
    def books(self) -> dict[str, IOrderBook]:
        """symbol -> book (fixed for the connection's life)."""
        return self._books

    def book(self, symbol: str) -> IOrderBook | None:
        return self._books.get(symbol)

    def is_live(self, symbol: str) -> bool:
        """Verified since its snapshot (each book says so itself: the compiled path reads it)."""
        book = self._books.get(symbol)
        return book is not None and book.live

    def handle(self, message: ChannelData, recv_ts: float) -> None:
        item: BookData
        for item in message.items:
            self._apply(item, message.snapshot, recv_ts)

    def _apply(self, item: BookData, snapshot: bool, recv_ts: float) -> None:
        context = self._context
        symbol = item.symbol
        book = self._books.get(symbol)
        if book is None:  # not subscribed: not seen either (an unbounded set of symbols)
            context.reject("unexpected_symbol", f"book data for unsubscribed {symbol}", recv_ts, symbol, "book")
            return
        self._seen[book.symbol] = recv_ts  # the book's own symbol, interned: the key the compiled path finds
        if snapshot:
            context.forget_times("book", symbol)
        if item.timestamp is not None:
            context.check_time("book", symbol, item.timestamp, recv_ts)
        p = context.precision_for(symbol, "book", recv_ts)
        if p is None:
            # No renewal: the venue would send the same book, and no precision, again.
            self.invalidate(symbol, recv_ts, "unknown_instrument")
            return
        newly_live = False
        book.set_precision(p.price_decimals, p.qty_decimals)
        if snapshot:
            book.clear()
            if not book.live:
                book.live = newly_live = True
        elif not book.live:
            # Normal while a resync is under way (the old stream's tail: the
            # request below is then a no-op); otherwise the snapshot was lost.
            self.updates_ignored += 1
            self._resync(symbol)
            return
        try:
            bids = _exact_levels(item.bids, p)
            asks = _exact_levels(item.asks, p)
        except BadValue as e:
            context.reject(e.kind, str(e), recv_ts, symbol, "book")
            self._fail(symbol, recv_ts, e.kind)
            return
        book.apply(bids, asks)
        computed = book.checksum()
        if computed != item.checksum:
            self._mismatch(symbol, item.checksum, computed, recv_ts)
            return
        self._verified(self._event(book, computed, snapshot, recv_ts, item.timestamp), recv_ts)
        if newly_live:
            self._live_changed()

    def committed(self, result: tuple[Any, ...], recv_ts: float) -> None:
        """The rest of what ``handle`` does, for an update the compiled path took and applied
        (``fast_updates``) but handed back for the Python checks: a venue time out of the usual, the
        sampled one, a crossed book, a checksum mismatch.  (The usual case comes back as the event.)"""
        event, symbol, ts, venue_checksum, computed, sample = result
        if ts is not None:
            self._context.check_time("book", symbol, ts, recv_ts, sample)
        if event is None:
            self._mismatch(symbol, venue_checksum, computed, recv_ts)
        else:
            self._verified(event, recv_ts)

    def _verified(self, event: Book, recv_ts: float) -> None:
        best_bids, best_asks = event.bids, event.asks
        if best_bids and best_asks and best_bids[0][0] >= best_asks[0][0]:
            # Verified, so the venue's own book: published, and flagged.
            self._context.reject("crossed_book", f"best bid {best_bids[0][0]} >= best ask {best_asks[0][0]}",
                                 recv_ts, event.symbol, "book")
        self._context.publish(event)

    def _mismatch(self, symbol: str, venue_checksum: int, computed: int, recv_ts: float) -> None:
        self._context.reject("checksum_mismatch", f"venue checksum {venue_checksum}, local book gives {computed}",
                             recv_ts, symbol, "book")
        self._fail(symbol, recv_ts, "checksum_mismatch")

    def _event(self, book: IOrderBook, checksum: int, snapshot: bool, recv_ts: float, ts: str | None) -> Book:
        return Book(
            venue=self._context.venue,
            recv_ts=recv_ts,
            symbol=book.symbol,
            bids=book.top_bids(),
            asks=book.top_asks(),
            checksum=checksum,
            snapshot=snapshot,
            ts=ts,
        )

    def _fail(self, symbol: str, recv_ts: float, reason: str) -> None:
        self.invalidate(symbol, recv_ts, reason)
        self._resync(symbol)

    def all_live(self, symbols: Iterable[str]) -> bool:
        return all(self.is_live(symbol) for symbol in symbols)

    def current(self, symbol: str, recv_ts: float) -> Book | None:
        """The verified book as an event (for a consumer switching source)."""
        book = self._books.get(symbol)
        if book is None or not book.live:
            return None
        return self._event(book, book.checksum(), True, recv_ts, None)

    def restate(self, recv_ts: float) -> list[Book]:
        """Every verified book as a snapshot event, for a consumer switching source."""
        return [e for e in (self.current(s, recv_ts) for s in sorted(self._books)) if e is not None]

    def invalidate(self, symbol: str, recv_ts: float, reason: str) -> None:
        """Stop trusting a book until its next snapshot, and say so in the book stream."""
        book = self._books.get(symbol)
        if book is None:
            return
        book.clear()
        if book.live:
            book.live = False
            self._publish_invalid(symbol, recv_ts, reason)
            self._live_changed()

    def _publish_invalid(self, symbol: str, recv_ts: float, reason: str) -> None:
        self._context.publish(Book(venue=self._context.venue, recv_ts=recv_ts, symbol=symbol, bids=(), asks=(),
                                   checksum=0, snapshot=False, valid=False, reason=reason))

    def reset(self, recv_ts: float = 0.0) -> None:
        """The connection is gone: no book is live; each consumer of one is told."""
        for symbol in sorted(s for s, book in self._books.items() if book.live):
            self._publish_invalid(symbol, recv_ts, "connection_lost")
        for book in self._books.values():
            book.live = False
            book.clear()
