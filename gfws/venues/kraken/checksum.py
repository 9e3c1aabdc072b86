"""Kraken v2 book checksum (PROTOCOL.md section 4).

CRC32 over the top 10 asks (best first) then the top 10 bids, each level
written as its price then its qty, at the pair's precision, with the decimal
point removed and leading zeros stripped.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol
from zlib import crc32

CHECKSUM_LEVELS = 10


class _Side(Protocol):
    def text(self, n: int) -> str: ...


class ChecksumBook(Protocol):
    """What the checksum reads of a book: each side's cached level text."""

    @property
    def asks(self) -> _Side: ...

    @property
    def bids(self) -> _Side: ...


def level_text(price: Decimal, qty: Decimal) -> str:
    """Checksum text of one level; values must already be at pair precision.

    ``str()`` is twice as fast as ``format(d, "f")`` and gives the same digits
    except in exponent form (``1E-8``), which takes the slow path.
    """
    p = str(price)
    if "E" in p:
        p = format(price, "f")
    q = str(qty)
    if "E" in q:
        q = format(qty, "f")
    return p.replace(".", "").lstrip("0") + q.replace(".", "").lstrip("0")


def book_checksum(book: ChecksumBook) -> int:
    """The unsigned CRC32 Kraken sends with every book message."""
    text = book.asks.text(CHECKSUM_LEVELS) + book.bids.text(CHECKSUM_LEVELS)
    return crc32(text.encode("ascii"))
