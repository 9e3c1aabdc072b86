"""What one open WebSocket does: subscribe, route messages, keep data alive.

A session lives exactly as long as one connection.  It subscribes the
instrument channel first (its precisions are needed to format anything),
then every configured subscription once the instrument snapshot is in, and
routes each incoming message to its channel's handler.  It also owns the
connection's recovery short of reconnecting: books that fail verification
and subscriptions gone quiet are resubscribed; requests the venue refused
with ``Exceeded msg rate`` are sent again later.  What it cannot mend (a
silent socket, a missing pong, an unanswered subscribe) it reports through
``on_failure`` so the endpoint replaces the connection.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

from twisted.internet.defer import CancelledError, Deferred, DeferredList, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from gfws.config import IntegrityConfig, LivenessConfig, RateLimitConfig, SubscriptionConfig
from gfws.session.liveness import LivenessMonitor
from gfws.session.requests import PendingRequests, RequestFailed, RequestsClosed, RequestTimedOut
from gfws.session.throttle import RequestThrottle
from gfws.integrity.dedup import RecentKeys
from gfws.integrity.sequence import SequenceTracker
from gfws.events import Error, Event
from gfws.market.handlers import (
    BookHandler,
    FeedContext,
    InstrumentHandler,
    StatusHandler,
    TickerHandler,
    TradeHandler,
)
from gfws.market.instruments import Instruments
from gfws.integrity.report import IntegrityReporter
from gfws.interfaces import IEventHandler, IVenueDialect
from gfws.messages import Ack, ChannelData, MessageError, Pong

RATE_LIMITED = "Exceeded msg rate"
DIGESTED = frozenset({"book", "ticker", "trade"})  # data whose frames carry a venue time


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
        on_failure: Callable[[str], None] = lambda reason: None,
        liveness: Optional[LivenessConfig] = None,
        rate_limit: Optional[RateLimitConfig] = None,
        integrity: Optional[IntegrityConfig] = None,
    ) -> None:
        self._dialect = dialect
        self._subscriptions = subscriptions
        self._publish = publish
        self._reporter = reporter
        self._clock = clock
        self.endpoint = endpoint
        self._on_active = on_active
        self._on_failure = on_failure
        rate_limit = rate_limit or RateLimitConfig()
        self._retry_delay = rate_limit.exceeded_retry_delay
        self._throttle = RequestThrottle(clock, send, rate_limit.rate, rate_limit.burst)
        self._requests = PendingRequests(clock, ack_timeout)
        self.instruments = Instruments()
        integrity = integrity or IntegrityConfig()
        expected: dict[str, set[str]] = {}
        for s in subscriptions:
            expected.setdefault(s.channel, set()).update(s.symbols)
        context = FeedContext(
            dialect, publish, reporter, self.instruments, endpoint, expected, integrity.max_message_age
        )
        self._context = context
        # Byte-identical data frames seen recently (a venue or proxy resending).
        self.digests = RecentKeys(integrity.duplicate_window, integrity.duplicate_max_age, clock)
        self.sequences = SequenceTracker()
        self._options = {(s.channel, symbol): s.options for s in subscriptions for symbol in s.symbols}
        self.books = BookHandler(
            context,
            {symbol: options["depth"] for (channel, symbol), options in self._options.items() if channel == "book"},
            lambda symbol: self.resubscribe("book", symbol),
        )
        handlers: list[IEventHandler] = [
            StatusHandler(context),
            InstrumentHandler(context, self._precision_changed),
            TickerHandler(context),
            TradeHandler(context),
            self.books,
        ]
        self._handlers = {h.channel: h for h in handlers}
        self._subscribed: dict[str, set[str]] = {s.channel: set() for s in subscriptions}
        self._recovering: set[tuple[str, str]] = set()
        self._waiting: set[Deferred[Any]] = set()  # rate-limit retries in their pause
        self._subscribing = False
        self.active = False
        self.closed = False
        self.resyncs = 0
        live = liveness or LivenessConfig()
        self.liveness = LivenessMonitor(
            clock,
            data_timeout=live.data_timeout,
            ping_interval=live.ping_interval,
            ping_timeout=live.ping_timeout,
            channel_timeouts=live.channel_timeouts,
            seen=context.seen,
            subscribed=lambda channel: sorted(self._subscribed.get(channel, ())),
            send_ping=self._ping,
            on_dead=self._fail,
            on_stale=self._stale,
        )

    # -- connection life --------------------------------------------------

    @property
    def ready(self) -> bool:
        """Active, and every subscribed book verified from a snapshot."""
        return self.active and self.books.all_live(self._subscribed.get("book", ()))

    def start(self) -> None:
        """The WebSocket is open: begin subscribing and watching."""
        self.liveness.start()
        channel = self._dialect.instrument_channel
        if channel is None:
            self._subscribe_configured()
        else:
            self._track(self.request("subscribe", channel, (), {}), channel)

    def close(self) -> None:
        """The WebSocket is gone: stop timers, fail pending requests, forget books."""
        self.closed = True
        self.active = False
        self.liveness.stop()
        self._throttle.close()
        for waiting in list(self._waiting):
            waiting.cancel()
        self._requests.close()
        for handler in self._handlers.values():
            handler.reset()

    def unsubscribe_all(self) -> "Deferred[Any]":
        """Unsubscribe everything (graceful shutdown); fires when all answered."""
        if self.closed:
            return succeed(None)
        requests = [
            self.request("unsubscribe", channel, sorted(symbols), self._unsubscribe_options(channel, sorted(symbols)[0]))
            for channel, symbols in self._subscribed.items()
            if symbols
        ]
        for channel, symbols in self._subscribed.items():
            symbols.clear()
        return DeferredList(requests, consumeErrors=True)

    # -- inbound ----------------------------------------------------------

    def message_received(self, payload: bytes, recv_ts: float) -> None:
        try:
            message = self._dialect.parse(payload)
        except MessageError as e:
            self._reporter.report(e.reason, e.detail, recv_ts, channel=e.channel, endpoint=self.endpoint)
            return
        kind = type(message)
        if kind is Pong:
            self.liveness.pong()  # a pong is not data: it proves the socket, not the feed
            return
        self.liveness.last_data = recv_ts
        if kind is ChannelData:
            if not self._in_order(message, recv_ts):  # type: ignore[arg-type]
                return
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
            try:
                handler.handle(message, recv_ts)
            except Exception as e:  # a bug of ours must not kill the connection
                self.log.failure("{channel} handler failed", channel=message.channel)  # type: ignore[union-attr]
                self._reporter.report("internal_error", repr(e), recv_ts, channel=message.channel,  # type: ignore[union-attr]
                                      endpoint=self.endpoint)
            if (
                message.channel == self._dialect.instrument_channel  # type: ignore[union-attr]
                and message.snapshot  # type: ignore[union-attr]
                and not self._subscribing
            ):
                self._subscribe_configured()
        elif kind is Ack:
            self._ack_received(message, recv_ts)  # type: ignore[arg-type]

    def _in_order(self, message: ChannelData, recv_ts: float) -> bool:
        """Duplicate frames and sequence numbers: False drops the message."""
        channel = message.channel
        if not message.snapshot and channel in DIGESTED and not self.digests.first_time(hash(message.payload), recv_ts):
            self._reporter.counts["duplicate"] += 1  # counted, not published
            return False
        sequence = message.sequence
        if sequence is None:
            return True
        verdict = self.sequences.check(channel, sequence, message.snapshot)
        if verdict is None:
            return True
        kind, a, b = verdict
        if kind == "regression":
            self._reporter.report("sequence_regression", f"sequence {b} after {a}", recv_ts,
                                  channel=channel, endpoint=self.endpoint)
            return False
        self._reporter.report("gap", f"missing {channel} sequence {a}..{b}", recv_ts,
                              channel=channel, endpoint=self.endpoint)
        for symbol in sorted(self._subscribed.get(channel, ())):
            self.resubscribe(channel, symbol)
        return True

    def _ack_received(self, ack: Ack, recv_ts: float) -> None:
        if ack.method == "ping":
            self.liveness.pong()  # refused (rate) or not, the venue answered
            return
        if self._requests.ack_received(ack):
            return
        if not ack.success:
            # Not an answer to any request of ours: still the venue's word.
            self._error(ack.error or "request refused", ack.channel, ack.symbol, recv_ts)

    # -- outbound ---------------------------------------------------------

    def request(
        self, method: str, channel: str, symbols: Sequence[str], options: Mapping[str, Any]
    ) -> "Deferred[list[str]]":
        """Send a (un)subscribe; the Deferred fires when the venue acked it.

        The ack timeout runs from when the request leaves the throttle.
        """
        req_id = self._requests.next_id()
        build = self._dialect.subscribe_request if method == "subscribe" else self._dialect.unsubscribe_request
        payload = build(channel, symbols, options, req_id)
        expected = self._dialect.expected_acks(channel, symbols)
        d = self._requests.expect(req_id, method, channel, symbols, expected, armed=False)
        self._throttle.send(payload, lambda: self._requests.arm(req_id))
        return d

    def _ping(self, on_sent: Callable[[], None]) -> None:
        self._throttle.send(self._dialect.ping_request(self._requests.next_id()), on_sent)

    def _subscribe_configured(self) -> None:
        self._subscribing = True
        requests = [self._subscribe(s.channel, list(s.symbols), s.options) for s in self._subscriptions]
        for s in self._subscriptions:
            self.liveness.subscribed_at(s.channel, list(s.symbols))
        DeferredList(requests, consumeErrors=True).addCallback(self._all_answered)

    def _all_answered(self, results: object) -> None:
        if not self.closed:
            self.active = True
            self._on_active()

    def _subscribe(self, channel: str, symbols: list[str], options: Mapping[str, Any]) -> "Deferred[Any]":
        """Subscribe until every symbol is accepted or refused for good.

        Symbols refused with ``Exceeded msg rate`` are asked for again after
        a pause (not dropped); other refusals become ``error`` events.
        """

        def accepted(result: list[str]) -> list[str]:
            self._subscribed.setdefault(channel, set()).update(result)
            return result

        def refused(failure: Failure) -> Any:
            if not failure.check(RequestFailed):
                return failure
            error: RequestFailed = failure.value  # type: ignore[assignment]
            self._subscribed.setdefault(channel, set()).update(error.accepted)
            again = [s for s, text in error.rejected.items() if RATE_LIMITED in text and s != channel]
            self._report_refused(error, channel, skip=again)
            if not again or self.closed:
                return None
            pause = deferLater(self._clock, self._retry_delay, lambda: None)
            self._waiting.add(pause)
            pause.addBoth(lambda result: (self._waiting.discard(pause), result)[1])
            return pause.addCallback(lambda _: self._subscribe(channel, again, options))

        d = self.request("subscribe", channel, symbols, options).addCallbacks(accepted, refused)
        return self._track(d, channel)

    def _track(self, d: "Deferred[Any]", channel: str) -> "Deferred[Any]":
        """Report what no retry will mend: a timeout fails the connection."""

        def failed(failure: Failure) -> None:
            if failure.check(RequestTimedOut):
                self._error(str(failure.value), channel, None, self._clock.seconds())
                self._fail(str(failure.value))
            elif failure.check(RequestFailed):
                self._report_refused(failure.value, channel)  # type: ignore[arg-type]
            elif not failure.check(RequestsClosed) and not failure.check(CancelledError):
                self.log.failure("request on {channel} failed", failure, channel=channel)

        return d.addErrback(failed)

    def _report_refused(self, error: RequestFailed, channel: str, skip: Sequence[str] = ()) -> None:
        """One ``error`` event per symbol the venue refused (but ``skip``)."""
        now = self._clock.seconds()
        for symbol, text in error.rejected.items():
            if symbol not in skip:
                self._error(text, channel, None if symbol == channel else symbol, now, error.method)

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

    def _fail(self, reason: str) -> None:
        if not self.closed:
            self.log.warn("{endpoint}: connection unusable: {reason}", endpoint=self.endpoint, reason=reason)
            self._on_failure(reason)

    # -- recovery ---------------------------------------------------------

    def _unsubscribe_options(self, channel: str, symbol: str) -> dict[str, Any]:
        options = self._options.get((channel, symbol), {})
        return {"depth": options["depth"]} if "depth" in options else {}

    def resubscribe(self, channel: str, symbol: str) -> None:
        """Replace a subscription that can no longer be trusted: unsubscribe,
        then subscribe again (for a book: a fresh snapshot)."""
        key = (channel, symbol)
        if self.closed or key in self._recovering or key not in self._options:
            return
        self._recovering.add(key)
        self.resyncs += 1
        self._subscribed.get(channel, set()).discard(symbol)

        def again(_: object) -> object:
            # Whatever the unsubscribe's fate (refused: not subscribed; timed
            # out), ask again, unless the connection is gone.
            if self.closed:
                return None
            return self._subscribe(channel, [symbol], self._options[key])

        d = self.request("unsubscribe", channel, [symbol], self._unsubscribe_options(channel, symbol))
        d.addBoth(again)
        d.addErrback(lambda f: None)  # reported by _subscribe, or the connection went
        d.addBoth(lambda _: self._recovering.discard(key))

    def _stale(self, channel: str, symbol: str, age: float) -> None:
        self._reporter.report(
            "stale",
            f"no {channel} data for {symbol} in {age:.1f}s",
            self._clock.seconds(),
            symbol=symbol,
            channel=channel,
            endpoint=self.endpoint,
        )
        if channel == "book":
            self.books.invalidate(symbol)
        self.resubscribe(channel, symbol)

    def _precision_changed(self, symbol: str) -> None:
        if ("book", symbol) in self._options:
            self.books.invalidate(symbol)
            self.resubscribe("book", symbol)
