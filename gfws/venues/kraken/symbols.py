"""Kraken's asset names: one name per asset, the v2 one.

Kraken's v1 and REST APIs spell some assets differently (XBT for bitcoin,
XDG for dogecoin); users copy those spellings into configs, and a feed that
subscribed both spellings would publish one market twice under two names.
"""

from __future__ import annotations

#: Kraken's legacy asset names (v1, REST) and the v2 names gfws uses.
ASSET_ALIASES: dict[str, str] = {"XBT": "BTC", "XDG": "DOGE"}


def normalize_symbol(symbol: str) -> str:
    """``XBT/USD`` -> ``BTC/USD``, ``XDG/EUR`` -> ``DOGE/EUR``; others unchanged."""
    base, sep, quote = symbol.partition("/")
    return f"{ASSET_ALIASES.get(base, base)}{sep}{ASSET_ALIASES.get(quote, quote)}"
