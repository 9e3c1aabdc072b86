"""Kraken v2 book checksum (PROTOCOL.md section 4).

CRC32 over the top 10 asks (best first) then the top 10 bids, each level
written as its price then its qty, at the pair's precision, with the decimal
point removed and leading zeros stripped: the plain digits of the price in
ticks and the size in lots.
"""

from __future__ import annotations

from decimal import Decimal

CHECKSUM_LEVELS = 10


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
