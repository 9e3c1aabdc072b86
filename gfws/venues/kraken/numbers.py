"""Numbers are numbers: a string where Kraken sends a number is refused.

msgspec decodes a ``Decimal`` from a JSON number and from a JSON string
alike (``" 29_430.2 "`` would become 29430.2).  Kraken sends every price and
size as a number, so a string there is a broken or forged message.  Checking
each value costs too much on the hot path; counting quotes costs one C loop:
a decoded message tells how many quote characters its keys and string values
need, and a frame with more has a quoted value somewhere.  Only then (or for a
frame with keys this count does not know, which the venue may add) is the
frame searched for a quoted number, to refuse it by name.
"""

from __future__ import annotations

import re
from typing import Any

_QUOTED_NUMBER = re.compile(
    rb'"(price|qty|bid|bid_qty|ask|ask_qty|last|volume|vwap|low|high|change|change_pct|'
    rb'last_qty|last_price|cost|order_qty|limit_price|cum_qty|cum_cost|avg_price|fee_usd_equiv)"\s*:\s*"'
)

# Quote characters per decoded piece: a key is two, a string value two more.
_ENVELOPE = 10  # "channel":"book","type":"update","data"
_BOOK_ITEM = 10  # "symbol":"...","bids","asks","checksum"
BOOK_LEVEL = 4  # "price","qty"
BOOK_UPDATE = _ENVELOPE + _BOOK_ITEM  # a one-item book update, but its levels and time (counted inline by the dialect)
_TRADE_ITEM = 18  # "symbol":"...","side":"...","price","qty","ord_type":"...","trade_id"
_TICKER_ITEM = 26  # "symbol":"..." and eleven numeric keys
TIMESTAMP = 4  # "timestamp":"..."


def quoted_number(payload: bytes) -> str | None:
    """The name of a numeric field whose value is a string, if there is one."""
    match = _QUOTED_NUMBER.search(payload)
    return match.group(1).decode() if match is not None else None


def expected_quotes(channel: str, items: list[Any], sequence: bool) -> int:
    """Quote characters a compact frame of these decoded items has when every number is a number."""
    quotes = _ENVELOPE + (2 if sequence else 0)
    if channel == "book":
        for item in items:
            quotes += _BOOK_ITEM + BOOK_LEVEL * (len(item.bids) + len(item.asks))
            if item.timestamp is not None:
                quotes += TIMESTAMP
    else:
        per_item = _TRADE_ITEM if channel == "trade" else _TICKER_ITEM
        for item in items:
            quotes += per_item + (TIMESTAMP if item.timestamp is not None else 0)
    return quotes
