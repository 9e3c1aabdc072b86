"""What a configuration may set per Kraken v2 subscription, and the defaults.

Each check returns what was expected (for the config's error line), or None
when the value is fine; the config reader knows no channel and no option.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

Check = Callable[[Any], str | None]

#: Book depths Kraken v2 accepts; checksums cover the top 10 of each.
BOOK_DEPTHS: tuple[int, ...] = (10, 25, 100, 500, 1000)


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def _event_trigger(value: Any) -> str | None:
    return None if value in ("trades", "bbo") else '"trades" or "bbo"'


def _book_depth(value: Any) -> str | None:
    # bool is an int in Python; a TOML true is never a depth.
    return None if type(value) is int and value in BOOK_DEPTHS else f"one of {BOOK_DEPTHS}"


def _book_snapshot(value: Any) -> str | None:
    return None if value is True else "true (books are built from a snapshot)"


CHANNEL_OPTIONS: Mapping[str, Mapping[str, Check]] = MappingProxyType({
    "ticker": MappingProxyType({"snapshot": _boolean, "event_trigger": _event_trigger}),
    "trade": MappingProxyType({"snapshot": _boolean}),
    "book": MappingProxyType({"depth": _book_depth, "snapshot": _book_snapshot}),
    "executions": MappingProxyType({
        "snap_trades": _boolean, "snap_orders": _boolean, "order_status": _boolean, "ratecounter": _boolean,
    }),
})

#: Channels of the account itself: a token in every request, a private endpoint, no symbols.
PRIVATE_CHANNELS = frozenset({"executions"})

#: Books are built from a snapshot, so one is always asked for.
DEFAULT_OPTIONS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "book": MappingProxyType({"depth": 10, "snapshot": True}),
    # Fills missed while away come back with every (re)subscribe: the ledger drops the known ones.
    "executions": MappingProxyType({"snap_trades": True, "snap_orders": True}),
})


def default_options(channel: str) -> dict[str, Any]:
    """A fresh dict of the options ``channel`` gets unless configured."""
    return dict(DEFAULT_OPTIONS.get(channel, {}))
