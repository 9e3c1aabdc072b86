"""Normalized, immutable events: what gfws hands to the trading system.

Every event is a frozen msgspec Struct whose ``type`` tag names it.  Prices
and sizes are exact ``Decimal`` values already expressed at the pair's
precision; ``ts`` is the venue's own RFC 3339 time when it sends one and
``recv_ts`` the local receive time in POSIX seconds.  The wire format of any
venue never appears here.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

PriceLevel = tuple[Decimal, Decimal]
"""One book level: ``(price, qty)``."""


class _Event(msgspec.Struct, frozen=True, gc=False, tag_field="type", kw_only=True):
    venue: str
    recv_ts: float


class Ticker(_Event, tag="ticker", frozen=True, gc=False, kw_only=True):
    symbol: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    last: Decimal
    volume: Decimal
    vwap: Decimal
    low: Decimal
    high: Decimal
    change: Decimal
    change_pct: Decimal
    ts: str | None = None


class Trade(_Event, tag="trade", frozen=True, gc=False, kw_only=True):
    symbol: str
    trade_id: int
    side: str
    price: Decimal
    qty: Decimal
    ord_type: str
    ts: str | None = None
    snapshot: bool = False  # from the venue's replay of recent trades on (re)subscribe


class Book(_Event, tag="book", frozen=True, gc=False, kw_only=True):
    """The full verified top-N of a symbol after one applied venue message.

    ``valid: false`` (no levels) says the book stopped being true (a checksum
    mismatch, a stale stream, a lost connection; ``reason`` says which): act on
    it no more until the next book, a snapshot, arrives.
    """

    symbol: str
    bids: tuple[PriceLevel, ...]
    asks: tuple[PriceLevel, ...]
    checksum: int
    snapshot: bool
    ts: str | None = None
    valid: bool = True
    reason: str | None = None


class Status(_Event, tag="status", frozen=True, gc=False, kw_only=True):
    """The venue's system status: online, maintenance, cancel_only, post_only."""

    system: str
    version: str | None = None
    connection_id: int | None = None
    endpoint: str | None = None


class Integrity(_Event, tag="integrity", frozen=True, gc=False, kw_only=True):
    """Data the feed refused to pass on, and why (``kind``)."""

    kind: str
    detail: str
    symbol: str | None = None
    channel: str | None = None
    endpoint: str | None = None


class Error(_Event, tag="error", frozen=True, gc=False, kw_only=True):
    """An error the venue reported, e.g. a rejected subscription."""

    message: str
    channel: str | None = None
    symbol: str | None = None
    endpoint: str | None = None


class Connection(_Event, tag="connection", frozen=True, gc=False, kw_only=True):
    """An endpoint changed state (connecting, active, disconnected, ...)."""

    endpoint: str
    state: str
    url: str
    reason: str | None = None


class Alert(_Event, tag="alert", frozen=True, gc=False, kw_only=True):
    """A rule about the feed's health started (``firing``) or stopped (``resolved``) holding.

    A firing alert is said once, and once more when it resolves: no storms.
    """

    name: str
    state: str  # "firing" or "resolved"
    detail: str
    endpoint: str | None = None
    symbol: str | None = None


class Fee(msgspec.Struct, frozen=True, gc=False):
    """One fee of a fill, in the asset it was charged in."""

    asset: str
    qty: Decimal


class Fill(_Event, tag="fill", frozen=True, gc=False, kw_only=True):
    """One execution of one of the account's own orders: published exactly once per ``exec_id``.

    ``snapshot``: it came from the venue's replay of recent fills (one that was
    missed while the connection was away), not live.
    """

    exec_id: str
    order_id: str
    trade_id: int | None
    symbol: str
    side: str
    last_qty: Decimal
    last_price: Decimal
    cost: Decimal
    fees: tuple[Fee, ...]
    liquidity: str | None  # "maker" or "taker"
    ts: str
    snapshot: bool = False
    order_userref: int | None = None
    cl_ord_id: str | None = None


class Order(_Event, tag="order", frozen=True, gc=False, kw_only=True):
    """The whole known state of one of the account's orders after a change.

    Kraken's updates are sparse: every field the venue told before is carried
    forward, so each event stands on its own.  ``exec_type`` says what changed.
    """

    order_id: str
    exec_type: str
    status: str
    symbol: str | None = None
    side: str | None = None
    order_type: str | None = None
    order_qty: Decimal | None = None
    limit_price: Decimal | None = None
    cum_qty: Decimal | None = None
    cum_cost: Decimal | None = None
    avg_price: Decimal | None = None
    time_in_force: str | None = None
    cl_ord_id: str | None = None
    order_userref: int | None = None
    reason: str | None = None
    ts: str | None = None


Event = Ticker | Trade | Book | Status | Integrity | Error | Connection | Alert | Fill | Order
EVENT_TYPES: dict[str, type] = {
    str(cls.__struct_config__.tag): cls
    for cls in (Ticker, Trade, Book, Status, Integrity, Error, Connection, Alert, Fill, Order)
}
