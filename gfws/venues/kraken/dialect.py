"""Kraken v2 wire protocol: request bytes out, ``gfws.messages`` in.

Messages are classified by their envelope (``channel`` for data, ``method``
for acks and pongs), never guessed from which keys happen to be present.
Decoding is done by msgspec straight into typed Structs, so numbers become
exact Decimals and wrong shapes are rejected in the same pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

import msgspec
from zope.interface import implementer

from gfws.events import Book as BookEvent
from gfws.events import Trade as TradeEvent
from gfws.interfaces import IVenueDialect
from gfws.messages import (
    Ack,
    BookData,
    ChannelData,
    ExecutionData,
    Heartbeat,
    Id,
    MessageError,
    PairInfo,
    Pong,
    SystemStatus,
    TickerData,
    TradeData,
    VenueMessage,
)
from gfws.venues.kraken import book as _book
from gfws.venues.kraken import options as _options
from gfws.venues.kraken import symbols as _symbols
from gfws.venues.kraken.numbers import BOOK_LEVEL, BOOK_UPDATE, TIMESTAMP, expected_quotes, quoted_number
from gfws.venues.kraken.symbols import ASSET_ALIASES, normalize_symbol
from gfws.venues.kraken.token import Credentials, KrakenTokens

__all__ = ["ASSET_ALIASES", "KrakenV2Dialect", "normalize_symbol"]


class _AckResult(msgspec.Struct, gc=False):
    channel: str | None = None
    symbol: str | None = None


class _Envelope(msgspec.Struct, gc=False):
    channel: str | None = None
    method: str | None = None
    type: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")
    sequence: Id | None = None
    req_id: Id | None = None
    success: bool | None = None
    error: str | None = None
    symbol: str | None = None
    result: _AckResult | None = None


class _BookUpdate(msgspec.Struct, gc=False):
    """The most frequent message, decoded in one pass (see ``parse``)."""

    channel: Literal["book"]
    type: Literal["update"]
    data: list[BookData]
    sequence: Id | None = None


class _TradeUpdate(msgspec.Struct, gc=False):
    """The next most frequent, decoded in one pass too."""

    channel: Literal["trade"]
    type: Literal["update"]
    data: list[TradeData]
    sequence: Id | None = None


class _Instruments(msgspec.Struct, gc=False):
    # Each pair decoded on its own: one malformed pair must not cost the others.
    pairs: list[msgspec.Raw] = []


_HEARTBEAT = Heartbeat()
_SNAPSHOT_TYPES = {"snapshot": True, "update": False}
_ENVELOPE = msgspec.json.Decoder(_Envelope)
_BOOK_UPDATE = msgspec.json.Decoder(_BookUpdate)
_BOOK_UPDATE_PREFIX = b'{"channel":"book","type":"update",'
_TRADE_UPDATE = msgspec.json.Decoder(_TradeUpdate)
_TRADE_UPDATE_PREFIX = b'{"channel":"trade","type":"update",'

_DATA_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "book": msgspec.json.Decoder(list[BookData]),
    "ticker": msgspec.json.Decoder(list[TickerData]),
    "trade": msgspec.json.Decoder(list[TradeData]),
    "status": msgspec.json.Decoder(list[SystemStatus]),
    "instrument": msgspec.json.Decoder(_Instruments),
    # Each execution decoded on its own: one malformed item is reported, never the others lost.
    "executions": msgspec.json.Decoder(list[msgspec.Raw]),
}
_PAIR = msgspec.json.Decoder(PairInfo)
_EXECUTION = msgspec.json.Decoder(ExecutionData)
_encode = msgspec.json.encode


_NUMBERS = frozenset({"book", "ticker", "trade"})  # channels whose quotes are counted (see numbers.py)


def _refuse_quoted_numbers(channel: str, payload: bytes) -> None:
    field = quoted_number(payload)
    if field is not None:
        raise MessageError("schema", f"{channel}: {field} is a string; the venue sends numbers", channel)


@implementer(IVenueDialect)
class KrakenV2Dialect:
    """Kraken Spot WebSocket API v2 (PROTOCOL.md sections 2 to 4)."""

    name = "kraken"
    channels = frozenset({"ticker", "trade", "book"})
    private_channels = _options.PRIVATE_CHANNELS
    instrument_channel = "instrument"
    # What a configuration may set, and how symbols are spelled: the config
    # reader asks the dialect, so it knows no venue.
    channel_options = _options.CHANNEL_OPTIONS
    default_options = staticmethod(_options.default_options)
    normalize_symbol = staticmethod(_symbols.normalize_symbol)
    auth_defaults = MappingProxyType({
        "rest_url": "https://api.kraken.com", "api_key_env": "KRAKEN_API_KEY", "api_secret_env": "KRAKEN_API_SECRET",
    })

    @staticmethod
    def credentials(key: str, secret: str) -> Credentials:
        """The account's key and secret, checked (ValueError says what is wrong, never the value)."""
        return Credentials(key, secret)

    @staticmethod
    def token_provider(credentials: Credentials, rest_url: str, timeout: float) -> KrakenTokens:
        """Tokens for the account channels, from the venue's REST API (treq).

        One request per connect: no connection is kept open between them."""
        from treq.client import HTTPClient
        from twisted.internet import reactor
        from twisted.web.client import Agent, HTTPConnectionPool

        agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
        return KrakenTokens(credentials, HTTPClient(agent), rest_url, timeout=timeout)

    def subscribe_request(
        self, channel: str, symbols: Sequence[str], options: Mapping[str, Any], req_id: int
    ) -> bytes:
        return self._request("subscribe", channel, symbols, options, req_id)

    def unsubscribe_request(
        self, channel: str, symbols: Sequence[str], options: Mapping[str, Any], req_id: int
    ) -> bytes:
        return self._request("unsubscribe", channel, symbols, options, req_id)

    def _request(
        self,
        method: str,
        channel: str,
        symbols: Sequence[str],
        options: Mapping[str, Any],
        req_id: int,
    ) -> bytes:
        params: dict[str, Any] = {"channel": channel}
        if symbols:
            params["symbol"] = list(symbols)
        params.update(options)
        return _encode({"method": method, "params": params, "req_id": req_id})

    def ping_request(self, req_id: int) -> bytes:
        return _encode({"method": "ping", "req_id": req_id})

    def expected_acks(self, channel: str, symbols: Sequence[str]) -> int:
        return len(symbols) or 1

    def __init__(self, compiled: bool = True) -> None:
        """``compiled=False``: the pure-Python book and no compiled path, whether or not the core is built
        (what the compiled path must give the same events as)."""
        self.compiled = compiled and _book.COMPILED  # the compiled core is built and used

    def new_book(self, symbol: str, depth: int) -> Any:
        """A local book kept in ticks and lots (compiled where built, else pure Python: the same results)."""
        return (_book.Book if self.compiled else _book.PyBook)(symbol, depth)

    def digest_window(self, capacity: int, max_age: float) -> Any:
        """The compiled twin of the frame gate's ``RecentKeys`` (None where not built): ``fast_updates``
        checks its frames for resends in it, so both ways a frame can come share one window."""
        return _book.Digests(capacity, max_age) if self.compiled else None

    def fast_updates(self, venue: str, books: dict[str, Any], book_seen: dict[str, float],
                     book_last_ts: dict[str, str], strict_times: bool, precisions: dict[str, Any],
                     trade_expected: set[str] | None, trade_seen: dict[str, float],
                     trade_last_ts: dict[str, str], digests: Any = None,
                     counts: dict[str, int] | None = None,
                     venue_delay: Callable[[float], object] | None = None) -> Any:
        """The usual book and trade updates parsed and applied in one pass (compiled only; None otherwise)."""
        if not self.compiled:
            return None
        return _book.Updates(venue, BookEvent, books, book_seen, book_last_ts, strict_times, TradeEvent, precisions,
                             trade_expected, trade_seen, trade_last_ts, digests, counts, venue_delay)

    def parse(self, payload: bytes) -> VenueMessage:
        if payload.startswith(_BOOK_UPDATE_PREFIX):
            # Fast path, one decode instead of two.  Not a guess: the typed
            # decode checks channel and type; anything unusual takes the
            # general path below, which explains what is wrong.
            try:
                update = _BOOK_UPDATE.decode(payload)
            except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
                pass
            else:
                # Numbers are numbers (numbers.py); the usual one-item update counted inline.
                items = update.data
                if len(items) == 1 and update.sequence is None:
                    item = items[0]
                    quotes = BOOK_UPDATE + BOOK_LEVEL * (len(item.bids) + len(item.asks)) + (
                        TIMESTAMP if item.timestamp is not None else 0)
                else:
                    quotes = expected_quotes("book", items, update.sequence is not None)
                if payload.count(b'"') != quotes:
                    _refuse_quoted_numbers("book", payload)
                return ChannelData("book", False, items, update.sequence, payload)
        elif payload.startswith(_TRADE_UPDATE_PREFIX):
            try:
                trades = _TRADE_UPDATE.decode(payload)
            except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
                pass
            else:
                if payload.count(b'"') != expected_quotes("trade", trades.data, trades.sequence is not None):
                    _refuse_quoted_numbers("trade", payload)
                return ChannelData("trade", False, trades.data, trades.sequence, payload)
        try:
            envelope = _ENVELOPE.decode(payload)
        except msgspec.ValidationError as e:
            raise MessageError("schema", f"envelope: {e}") from None
        except msgspec.DecodeError as e:
            raise MessageError("malformed_json", str(e)) from None
        except RecursionError:
            raise MessageError("too_deep", f"nesting too deep in a {len(payload)}-byte message") from None
        except UnicodeDecodeError as e:  # the transport checks UTF-8 too; this is for other transports
            raise MessageError("invalid_utf8", str(e)) from None
        channel = envelope.channel
        if channel is not None:
            return self._channel_data(channel, envelope, payload)
        method = envelope.method
        if method == "pong":
            return Pong(req_id=envelope.req_id)
        if method in ("subscribe", "unsubscribe") or (method is not None and envelope.success is not None):
            # Any answer to a request; a refused ping ("Exceeded msg rate") too.
            return self._ack(method, envelope)
        if method is not None:
            raise MessageError("unknown_method", f"method {method!r}")
        raise MessageError("schema", "neither 'channel' nor 'method' in message")

    def _channel_data(self, channel: str, envelope: _Envelope, payload: bytes) -> VenueMessage:
        if channel == "heartbeat":
            return _HEARTBEAT
        decoder = _DATA_DECODERS.get(channel)
        if decoder is None:
            raise MessageError("unknown_channel", f"channel {channel!r}", channel)
        snapshot = _SNAPSHOT_TYPES.get(envelope.type)  # type: ignore[arg-type]
        if snapshot is None:
            raise MessageError("schema", f"type {envelope.type!r} is not snapshot or update", channel)
        try:
            data = decoder.decode(envelope.data)
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            raise MessageError("schema", f"{channel} data: {e}", channel) from None
        except RecursionError:
            raise MessageError("too_deep", f"{channel} data nested too deep", channel) from None
        except UnicodeDecodeError as e:
            raise MessageError("invalid_utf8", f"{channel} data: {e}", channel) from None
        if channel == "instrument":
            return self._instruments(data, snapshot, envelope, payload)
        if channel == "executions":
            return self._executions(data, snapshot, envelope, payload)
        if channel in _NUMBERS and payload.count(b'"') != expected_quotes(channel, data, envelope.sequence is not None):
            _refuse_quoted_numbers(channel, payload)
        return ChannelData(channel, snapshot, data, envelope.sequence, payload)

    @staticmethod
    def _executions(raws: list[msgspec.Raw], snapshot: bool, envelope: _Envelope, payload: bytes) -> ChannelData:
        items, problems = [], []
        for i, raw in enumerate(raws):
            text = bytes(raw)
            try:
                field = quoted_number(text)  # checked item by item: one bad fill costs only itself
                if field is not None:
                    raise msgspec.ValidationError(f"{field} is a string; the venue sends numbers")
                items.append(_EXECUTION.decode(raw))
            except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError) as e:
                problems.append(f"executions data[{i}]: {e}: {text[:200].decode('utf-8', 'replace')}")
        return ChannelData("executions", snapshot, items, envelope.sequence, payload, tuple(problems))

    @staticmethod
    def _instruments(data: _Instruments, snapshot: bool, envelope: _Envelope, payload: bytes) -> ChannelData:
        pairs, problems = [], []
        for i, raw in enumerate(data.pairs):
            try:
                pairs.append(_PAIR.decode(raw))
            except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError) as e:
                problems.append(f"instrument pairs[{i}]: {e}")
        return ChannelData("instrument", snapshot, pairs, envelope.sequence, payload, tuple(problems))

    def _ack(self, method: str, envelope: _Envelope) -> Ack:
        if envelope.success is None:
            raise MessageError("schema", f"{method} ack without 'success'")
        result = envelope.result
        return Ack(
            method=method,
            success=envelope.success,
            req_id=envelope.req_id,
            channel=result.channel if result is not None else None,
            symbol=(result.symbol if result is not None else None) or envelope.symbol,
            error=envelope.error,
        )
