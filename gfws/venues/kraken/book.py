"""A Kraken book of one symbol: levels at the pair's precision, the venue's checksum.

Two implementations give identical results: the compiled one (``_book.c``, built as ``_gfws_book``,
levels in integer ticks and lots, built by ``pip install`` wherever a C
compiler is) and this pure-Python one, used where it is not built or when
``GFWS_PURE_PYTHON=1``.  Here each level keeps its ``(price, qty)`` pair and
its checksum text, made once when the level changes: formatting Decimals is
the costly part of a checksum, so it is never redone for levels that did not
move.
"""

from __future__ import annotations

import os
from bisect import insort
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from zlib import crc32

from gfws.events import PriceLevel
from gfws.venues.kraken.checksum import CHECKSUM_LEVELS, level_text


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

    def clear(self) -> None:
        self._keys.clear()
        self._pairs.clear()
        self._texts.clear()
        self._top_n = self._text_n = -1

    def set(self, price: Decimal, qty: Decimal) -> None:
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
        self._texts[key] = level_text(price, qty)

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


class PyBook:
    """The book of one symbol at a subscribed depth (pure Python)."""

    __slots__ = ("_decimals", "asks", "bids", "depth", "live", "symbol")

    def __init__(self, symbol: str, depth: int) -> None:
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self.symbol = symbol
        self.depth = depth
        self.live = False  # verified since its snapshot (the compiled update path reads it)
        self._decimals = (-1, -1)
        self.bids = BookSide(-1)
        self.asks = BookSide(1)

    def __len__(self) -> int:
        return len(self.bids) + len(self.asks)

    def set_precision(self, price_decimals: int, qty_decimals: int) -> None:
        """The pair's decimals; a change clears the book (its levels are in the old units)."""
        if (price_decimals, qty_decimals) != self._decimals:
            self.clear()
            self._decimals = (price_decimals, qty_decimals)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def apply(self, bids: Iterable[PriceLevel], asks: Iterable[PriceLevel]) -> None:
        """Apply levels at the pair's precision in order (a price may repeat), then truncate to depth."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, qty in levels:
                side.set(price, qty)
            side.truncate(self.depth)

    def top_bids(self) -> tuple[PriceLevel, ...]:
        return self.bids.top(self.depth)

    def top_asks(self) -> tuple[PriceLevel, ...]:
        return self.asks.top(self.depth)

    def checksum_text(self) -> str:
        return self.asks.text(CHECKSUM_LEVELS) + self.bids.text(CHECKSUM_LEVELS)

    def checksum(self) -> int:
        """The unsigned CRC32 Kraken sends with every book message."""
        return crc32(self.checksum_text().encode("ascii"))


def _compiled() -> Any:
    """The compiled book, unless not built here (no C compiler at install) or GFWS_PURE_PYTHON=1."""
    if os.environ.get("GFWS_PURE_PYTHON"):
        return None
    try:
        import _gfws_book  # type: ignore[import-not-found]
    except ImportError:
        return None
    return _gfws_book


_core = _compiled()
COMPILED = _core is not None
Book: Any = _core.Book if COMPILED else PyBook
Updates: Any = _core.Updates if COMPILED else None  # the usual update frame in one pass: compiled only
Digests: Any = _core.Digests if COMPILED else None  # the frame gate's window, which Updates checks in
