"""How the simulated venue writes Kraken v2 values on the wire.

Numbers, timestamps and the book checksum, from the simulator's own integer
steps.  Shared by the sessions, the venue's message bodies and the message
faults; it imports nothing of gfws, and nothing of the client side in
particular: the simulator is the independent oracle the client is checked
against.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

import msgspec

BOOK_DEPTHS = (10, 25, 100, 500, 1000)
"""The depths a book subscription may ask for."""
CHECKSUM_LEVELS = 10
"""Levels per side the book checksum covers."""
DATA_CHANNELS = frozenset({"book", "ticker", "trade"})
"""Channels whose messages are market data (message faults apply to them only)."""


def wire_number(units: int, decimals: int) -> msgspec.Raw:
    """A JSON number for ``units * 10**-decimals`` with trailing zeros
    trimmed as Kraken sends them (``4.0``, ``0.001``, ``29430.2``)."""
    sign = "-" if units < 0 else ""
    digits = str(abs(units)).rjust(decimals + 1, "0")
    whole, frac = (digits[:-decimals], digits[-decimals:]) if decimals else (digits, "")
    return msgspec.Raw(f"{sign}{whole}.{frac.rstrip('0') or '0'}".encode())


def rfc3339(seconds: float) -> str:
    """POSIX ``seconds`` as Kraken's timestamps: UTC, microseconds, ``Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def view_checksum(asks: list[tuple[int, int]], bids: list[tuple[int, int]]) -> int:
    """Kraken's CRC32 over the top 10 asks then bids, from integer steps."""
    text = "".join(f"{t}{q}" for t, q in asks[:CHECKSUM_LEVELS]) + "".join(
        f"{t}{q}" for t, q in bids[:CHECKSUM_LEVELS]
    )
    return zlib.crc32(text.encode("ascii"))
