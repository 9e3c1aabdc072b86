"""The vocabulary a venue dialect parses its wire messages into.

These are checked but not yet normalized: values are exact Decimals as the
venue sent them, not yet put at the pair's precision nor applied to a book.
Where a venue's wire shape already matches (Kraken v2 does), the dialect
decodes straight into these Structs; another venue builds them by hand.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

# Bounds msgspec checks while decoding (it cannot constrain Decimals: price
# and size checks live in the handlers, with the pair's precision).
Checksum = Annotated[int, msgspec.Meta(ge=0, lt=2**32)]
Id = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
U64_MAX = 2**64 - 1  # msgspec bounds stop at int64: unsigned 64-bit ids are checked after the decode
Decimals = Annotated[int, msgspec.Meta(ge=0, le=18)]


class Level(msgspec.Struct, frozen=True, gc=False):
    price: Decimal
    qty: Decimal


class BookData(msgspec.Struct, frozen=True, gc=False):
    symbol: str
    bids: list[Level]
    asks: list[Level]
    checksum: Checksum
    timestamp: str | None = None


class TickerData(msgspec.Struct, frozen=True, gc=False):
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
    timestamp: str | None = None


class TradeData(msgspec.Struct, frozen=True, gc=False):
    symbol: str
    side: Literal["buy", "sell"]
    price: Decimal
    qty: Decimal
    ord_type: Literal["limit", "market"]
    trade_id: Id
    timestamp: str | None = None


class PairInfo(msgspec.Struct, frozen=True, gc=False):
    """A tradable pair and the precisions its prices and sizes use."""

    symbol: str
    price_precision: Decimals
    qty_precision: Decimals
    status: str = "online"


class SystemStatus(msgspec.Struct, frozen=True, gc=False):
    system: str
    version: str | None = None
    connection_id: Annotated[int, msgspec.Meta(ge=0)] | None = None  # <= U64_MAX, checked by the handler
    api_version: str | None = None


Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class FeeData(msgspec.Struct, frozen=True, gc=False):
    asset: str
    qty: Decimal


class ExecutionData(msgspec.Struct, frozen=True, gc=False):
    """One item of the private executions channel: sparse, so all but the
    order id and the execution type may be missing (checked by the handler)."""

    order_id: str
    exec_type: str
    exec_id: str | None = None
    trade_id: Id | None = None
    symbol: str | None = None
    side: str | None = None
    last_qty: Decimal | None = None
    last_price: Decimal | None = None
    cost: Decimal | None = None
    fees: list[FeeData] | None = None
    liquidity_ind: str | None = None
    order_type: str | None = None
    order_status: str | None = None
    order_qty: Decimal | None = None
    limit_price: Decimal | None = None
    cum_qty: Decimal | None = None
    cum_cost: Decimal | None = None
    avg_price: Decimal | None = None
    time_in_force: str | None = None
    cl_ord_id: str | None = None
    order_userref: Int64 | None = None
    reason: str | None = None
    timestamp: str | None = None


class ChannelData(msgspec.Struct, frozen=True, gc=False):
    """A data message: ``items`` are BookData, TickerData, TradeData,
    PairInfo, SystemStatus or ExecutionData according to ``channel``."""

    channel: str
    snapshot: bool
    items: list
    sequence: Id | None = None
    payload: bytes = b""  # the frame it came from (for duplicate digests)
    problems: tuple[str, ...] = ()  # entries the dialect refused, one by one (the rest is usable)


class Ack(msgspec.Struct, frozen=True, gc=False):
    """The venue's answer to one request (for Kraken: one per symbol)."""

    method: str
    success: bool
    req_id: Id | None = None
    channel: str | None = None
    symbol: str | None = None
    error: str | None = None


class Pong(msgspec.Struct, frozen=True, gc=False):
    req_id: Id | None = None


class Heartbeat(msgspec.Struct, frozen=True, gc=False):
    pass


VenueMessage = ChannelData | Ack | Pong | Heartbeat


class MessageError(ValueError):
    """An incoming message that cannot be used; ``reason`` is a short key
    for counting (``malformed_json``, ``schema``, ``unknown_channel``...)."""

    def __init__(self, reason: str, detail: str, channel: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.channel = channel


class AuthenticationError(Exception):
    """The venue refused the account's credentials (a token request, an invalid
    session); the message is the venue's own text, never a secret."""
