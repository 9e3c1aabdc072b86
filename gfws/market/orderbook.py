"""A local L2 order book per symbol, kept from a snapshot plus updates.

Each level stores its ``(price, qty)`` pair together with the text the venue's
checksum needs for it, computed once when the level changes: formatting
Decimals is the costly part of a checksum, so it is never redone for levels
that did not move.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Iterable
from decimal import Decimal

from gfws.events import PriceLevel

LevelText = Callable[[Decimal, Decimal], str]
"""Venue rule turning one level into its checksum text."""


class BookSide:
    """One side of a book, best level first.

    Levels are keyed by ``sign * price`` so that ascending key order is best
    first on both sides (asks: sign 1, bids: sign -1).  The top-N tuple and
    the checksum text are cached until the side changes: most messages touch
    one side only, and the untouched side's tuple is shared by the next event.
    """

    __slots__ = ("_keys", "_pairs", "_sign", "_text", "_text_n", "_texts", "_top", "_top_n")

    def __init__(self, sign: int) -> None:
        self._sign = sign
        self._keys: list[Decimal] = []
        self._pairs: dict[Decimal, PriceLevel] = {}
        self._texts: dict[Decimal, str] = {}
        self._top: tuple[PriceLevel, ...] = ()
        self._top_n = -1
        self._text = ""
        self._text_n = -1

    def __len__(self) -> int:
        return len(self._keys)

    def _changed(self) -> None:
        self._top_n = self._text_n = -1

    def clear(self) -> None:
        self._keys.clear()
        self._pairs.clear()
        self._texts.clear()
        self._changed()

    def set(self, price: Decimal, qty: Decimal, text: str) -> None:
        """Set a level's size; a zero size deletes the level."""
        key = price if self._sign > 0 else -price
        pairs = self._pairs
        self._top_n = self._text_n = -1
        if not qty:
            if pairs.pop(key, None) is not None:
                del self._texts[key]
                self._keys.remove(key)
            return
        if key not in pairs:
            insort(self._keys, key)
        pairs[key] = (price, qty)
        self._texts[key] = text

    def truncate(self, depth: int) -> None:
        """Drop levels beyond ``depth``: venues send no delete for them."""
        keys = self._keys
        while len(keys) > depth:
            key = keys.pop()
            del self._pairs[key]
            del self._texts[key]

    def top(self, n: int) -> tuple[PriceLevel, ...]:
        if self._top_n != n:
            pairs = self._pairs
            self._top = tuple([pairs[k] for k in self._keys[:n]])
            self._top_n = n
        return self._top

    def text(self, n: int) -> str:
        if self._text_n != n:
            texts = self._texts
            self._text = "".join([texts[k] for k in self._keys[:n]])
            self._text_n = n
        return self._text


class OrderBook:
    """The book of one symbol at a subscribed depth."""

    __slots__ = ("_level_text", "asks", "bids", "depth", "symbol")

    def __init__(self, symbol: str, depth: int, level_text: LevelText) -> None:
        self.symbol = symbol
        self.depth = depth
        self.bids = BookSide(-1)
        self.asks = BookSide(1)
        self._level_text = level_text

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def apply(
        self,
        bids: Iterable[PriceLevel],
        asks: Iterable[PriceLevel],
    ) -> None:
        """Apply levels in order (a price may repeat), then truncate to depth."""
        level_text = self._level_text
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, qty in levels:
                side.set(price, qty, level_text(price, qty) if qty else "")
            side.truncate(self.depth)
