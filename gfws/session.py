"""What one open WebSocket does: subscribe, route messages, resync books.

A session lives exactly as long as one connection.  It subscribes the
instrument channel first (its precisions are needed to format anything),
then every configured subscription once the instrument snapshot is in, and
routes each incoming message to its channel's handler.  Books that fail
verification are resynced here: unsubscribe, then subscribe for a fresh
snapshot.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from gfws.config import SubscriptionConfig
from gfws.connection.requests import PendingRequests, RequestFailed, RequestsClosed
from gfws.events import Error, Event
from gfws.handlers import (
    BookHandler,
    FeedContext,
    InstrumentHandler,
    StatusHandler,
    TickerHandler,
    TradeHandler,
)
from gfws.instruments import Instruments
from gfws.integrity import IntegrityReporter
from gfws.interfaces import IEventHandler, IVenueDialect
from gfws.messages import Ack, ChannelData, Heartbeat, MessageError, Pong


class FeedSession:
    log = Logger()

    def __init__(
        self,
        dialect: IVenueDialect,
        subscriptions: Sequence[SubscriptionConfig],
        publish: Callable[[Event], None],
        reporter: IntegrityReporter,
        clock: IReactorTime,
        send: Callable[[bytes], None],
        endpoint: str,
        ack_timeout: float,
        on_active: Callable[[], None] = lambda: None,
    ) -> None:
        self._dialect = dialect
        self._subscriptions = subscriptions
        self._publish = publish
        self._reporter = reporter
        self._clock = clock
        self._send = send
        self.endpoint = endpoint
        self._on_active = on_active
        self._requests = PendingRequests(clock, ack_timeout)
        self.instruments = Instruments()
        context = FeedContext(dialect, publish, reporter, self.instruments, endpoint)
        self._book_options = {
            symbol: s.options for s in subscriptions if s.channel == "book" for symbol in s.symbols
        }
        self.books = BookHandler(
            context,
            {symbol: options["depth"] for symbol, options in self._book_options.items()},
            self.resync,
        )
        handlers: list[IEventHandler] = [
            StatusHandler(context),
            InstrumentHandler(context, self._precision_changed),
            TickerHandler(context),
            TradeHandler(context),
            self.books,
        ]
        self._handlers = {h.channel: h for h in handlers}
        self._resyncing: set[str] = set()
        self._subscribing = False
        self.active = False
        self.closed = False
        self.last_received: Optional[float] = None
        self.resyncs = 0

    # -- connection life --------------------------------------------------

    def start(self) -> None:
        """The WebSocket is open: begin subscribing."""
        channel = self._dialect.instrument_channel
        if channel is None:
            self._subscribe_configured()
        else:
            self._report_failure(self.request("subscribe", channel, (), {}), channel)

    def close(self) -> None:
        """The WebSocket is gone: fail pending requests, forget books."""
        self.closed = True
        self.active = False
        self._requests.close()
        for handler in self._handlers.values():
            handler.reset()

    # -- inbound ----------------------------------------------------------

    def message_received(self, payload: bytes, recv_ts: float) -> None:
        self.last_received = recv_ts
        try:
            message = self._dialect.parse(payload)
        except MessageError as e:
            self._reporter.report(e.reason, e.detail, recv_ts, channel=e.channel, endpoint=self.endpoint)
            return
        kind = type(message)
        if kind is ChannelData:
            handler = self._handlers.get(message.channel)  # type: ignore[union-attr]
            if handler is None:
                self._reporter.report(
                    "unexpected_channel",
                    f"channel {message.channel!r} has no handler",  # type: ignore[union-attr]
                    recv_ts,
                    channel=message.channel,  # type: ignore[union-attr]
                    endpoint=self.endpoint,
                )
                return
            handler.handle(message, recv_ts)
            if (
                message.channel == self._dialect.instrument_channel  # type: ignore[union-attr]
                and message.snapshot  # type: ignore[union-attr]
                and not self._subscribing
            ):
                self._subscribe_configured()
        elif kind is Ack:
            self._ack_received(message, recv_ts)  # type: ignore[arg-type]
        elif kind is Heartbeat or kind is Pong:
            pass  # last_received is the liveness signal for now

    def _ack_received(self, ack: Ack, recv_ts: float) -> None:
        if self._requests.ack_received(ack):
            return
        if not ack.success:
            # Not an answer to any request of ours: still the venue's word.
            self._error(ack.error or "request refused", ack.channel, ack.symbol, recv_ts)

    # -- outbound ---------------------------------------------------------

    def request(
        self, method: str, channel: str, symbols: Sequence[str], options: Mapping[str, Any]
    ) -> "Deferred[list[str]]":
        """Send a (un)subscribe; the Deferred fires when the venue acked it."""
        req_id = self._requests.next_id()
        build = self._dialect.subscribe_request if method == "subscribe" else self._dialect.unsubscribe_request
        payload = build(channel, symbols, options, req_id)
        d = self._requests.expect(req_id, method, channel, symbols, self._dialect.expected_acks(channel, symbols))
        self._send(payload)
        return d

    def _subscribe_configured(self) -> None:
        self._subscribing = True
        requests = [
            self._report_failure(self.request("subscribe", s.channel, s.symbols, s.options), s.channel)
            for s in self._subscriptions
        ]
        DeferredList(requests, consumeErrors=True).addCallback(self._subscribed)

    def _subscribed(self, results: object) -> None:
        if not self.closed:
            self.active = True
            self._on_active()

    def _report_failure(self, d: "Deferred[list[str]]", channel: str) -> "Deferred[list[str]]":
        def failed(failure: Failure) -> Failure:
            now = self._clock.seconds()
            if failure.check(RequestFailed):
                error: RequestFailed = failure.value  # type: ignore[assignment]
                for symbol, text in error.rejected.items():
                    self._error(text, channel, None if symbol == channel else symbol, now, error.method)
            elif not failure.check(RequestsClosed):
                self._error(str(failure.value), channel, None, now)
            return failure

        return d.addErrback(failed)

    def _error(
        self,
        text: str,
        channel: Optional[str],
        symbol: Optional[str],
        recv_ts: float,
        method: str = "request",
    ) -> None:
        self.log.error(
            "{endpoint}: {method} {channel} {symbol} refused: {text}",
            endpoint=self.endpoint,
            method=method,
            channel=channel,
            symbol=symbol or "",
            text=text,
        )
        self._publish(
            Error(
                venue=self._dialect.name,
                recv_ts=recv_ts,
                message=text,
                channel=channel,
                symbol=symbol,
                endpoint=self.endpoint,
            )
        )

    # -- book recovery ----------------------------------------------------

    def resync(self, symbol: str) -> None:
        """Replace a book that can no longer be trusted by a fresh snapshot."""
        if self.closed or symbol in self._resyncing or symbol not in self._book_options:
            return
        self._resyncing.add(symbol)
        self.resyncs += 1
        options = self._book_options[symbol]

        def resubscribe(_: object) -> object:
            # Whatever the unsubscribe's fate (refused: not subscribed; timed
            # out), ask for the snapshot, unless the connection is gone.
            if self.closed:
                return None
            return self._report_failure(self.request("subscribe", "book", [symbol], options), "book")

        d = self.request("unsubscribe", "book", [symbol], {"depth": options["depth"]})
        d.addBoth(resubscribe)
        d.addErrback(lambda f: None)  # reported by _report_failure, or the connection went
        d.addBoth(lambda _: self._resyncing.discard(symbol))

    def _precision_changed(self, symbol: str) -> None:
        if symbol in self._book_options:
            self.books.invalidate(symbol)
            self.resync(symbol)
