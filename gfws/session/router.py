"""One open connection's conversation: route every frame one way, down.

frame -> dialect (parse) -> frame gate (duplicates, sequences) -> the
channel's handler (market data, verified books) -> ``publish``.  A session
lives exactly as long as one connection; the endpoint sees it only as an
``IConnectionHandler`` and hears back through its ``IConnectionLink``.  It
subscribes the instrument channel first (pair precisions are needed to
format anything), then every configured subscription; what it can mend
(a book that fails its checksum, a stale or gapped stream) it renews in
place, what it cannot (silence, a missing pong or ack) makes the link
unusable so the endpoint replaces the connection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from sys import intern
from time import perf_counter
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gfws.account import ExecutionsHandler, FillLedger, OrderStates
from gfws.config import IntegrityConfig, LivenessConfig, RateLimitConfig, SubscriptionConfig
from gfws.events import Error, Event, Trade
from gfws.integrity.gate import DIGESTED, FrameGate
from gfws.integrity.report import IntegrityReporter
from gfws.interfaces import IConnectionHandler, IConnectionLink, IEventHandler, IEventOutlet, IVenueDialect
from gfws.market.books import BookHandler
from gfws.market.context import FeedContext, venue_seconds
from gfws.market.handlers import InstrumentHandler, StatusHandler, TickerHandler, TradeHandler
from gfws.market.instruments import Instruments
from gfws.messages import Ack, ChannelData, MessageError, Pong
from gfws.session.auth import Authenticator, ConnectionToken
from gfws.session.liveness import LivenessMonitor
from gfws.session.requests import PendingRequests
from gfws.session.stats import SAMPLE_EVERY, EndpointStats
from gfws.session.subscriptions import Subscriptions
from gfws.session.throttle import RequestThrottle


class _Unlinked:
    """The link before ``connection_made`` and after ``connection_lost``: says nothing."""

    def send(self, payload: bytes) -> None:
        pass

    def active(self, refused: str | None = None) -> None:
        pass

    def readiness_changed(self) -> None:
        pass

    def venue_status(self, system: str) -> None:
        pass

    def unusable(self, reason: str) -> None:
        pass


_UNLINKED: Any = _Unlinked()


@implementer(IEventOutlet)
class _PublishAll:
    """A session given a callable, not an outlet: every event, books included, goes to it."""

    __slots__ = ("market", "publish")

    def __init__(self, publish: Callable[[Event], None]) -> None:
        self.market = self.publish = publish

    def trades(self, events: list[Trade]) -> None:
        """One frame's trades: each to ``publish``."""
        for event in events:
            self.publish(event)


@implementer(IConnectionHandler)
class FeedSession:
    log = Logger()

    def __init__(
        self,
        dialect: IVenueDialect,
        subscriptions: Sequence[SubscriptionConfig],
        publish: Callable[[Event], None] | IEventOutlet,
        reporter: IntegrityReporter,
        clock: IReactorTime,
        endpoint: str,
        ack_timeout: float,
        liveness: LivenessConfig | None = None,
        rate_limit: RateLimitConfig | None = None,
        integrity: IntegrityConfig | None = None,
        stats: EndpointStats | None = None,
        authenticator: Authenticator | None = None,
        ledger: FillLedger | None = None,
        orders: OrderStates | None = None,
    ) -> None:
        """``publish``: where the session's events go, a callable or the endpoint's outlet (whose
        ``market`` route takes the compiled path's verified books straight to the bus while the
        endpoint leads).  ``authenticator``, ``ledger`` and ``orders`` are shared by every session of a
        feed's private endpoints: a fill is published once whichever connection brings it."""
        self._outlet: IEventOutlet = publish if IEventOutlet.providedBy(publish) else _PublishAll(publish)
        publish = self._publish = self._outlet.publish
        self._dialect = dialect
        self._reporter = reporter
        self._clock = clock
        self.endpoint = endpoint
        self.stats = stats or EndpointStats()
        self._link: IConnectionLink = _UNLINKED
        rate_limit = rate_limit or RateLimitConfig()
        integrity = integrity or IntegrityConfig()
        live = liveness or LivenessConfig()
        self.instruments = Instruments()
        expected: dict[str, set[str]] = {}
        for s in subscriptions:
            expected.setdefault(s.channel, set()).update(s.symbols)
        context = FeedContext(
            dialect, publish, reporter, self.instruments, endpoint, expected, integrity.max_message_age,
            self._venue_time,
        )
        self.requests = PendingRequests(clock, ack_timeout)
        self.throttle = RequestThrottle(clock, self._send, rate_limit.rate, rate_limit.burst)
        token = ConnectionToken(authenticator, clock).get if authenticator is not None else None
        self.subscriptions = Subscriptions(
            dialect, subscriptions, clock, self.requests, self.throttle,
            rate_limit.exceeded_retry_delay, self._error, self._unusable,
            on_refused=lambda: self._link.readiness_changed(),
            on_renewal=self._renewed,
            token=token,
            on_subscribe=self._subscribe_sent,
        )
        self.gate = FrameGate(
            reporter, endpoint, clock, self.subscriptions.renew_channel,
            integrity.duplicate_window, integrity.duplicate_max_age,
            dialect.digest_window(integrity.duplicate_window, integrity.duplicate_max_age),
        )
        self.books = BookHandler(
            context,
            {symbol: dict(s.options)["depth"] for s in subscriptions if s.channel == "book" for symbol in s.symbols},
            self._renew_book,
            lambda: self._link.readiness_changed(),
        )
        self.trades = TradeHandler(context)
        # The venue's usual book and trade updates in one pass (compiled; None where not built), checked
        # for resends in the gate's own window (both channels' update frames are digested: the gate's
        # rule, which the compiled path follows) and counted in the session's statistics.
        assert {"book", "trade"} <= DIGESTED, "the compiled path digests book and trade updates as the gate does"
        self.updates = dialect.fast_updates(
            dialect.name, self.books.books, context.seen["book"], context.last_times("book"),
            integrity.max_message_age > 0, self.instruments.precisions, expected.get("trade"),
            context.seen["trade"], context.last_times("trade"), self.gate.digests, self.stats.by_channel,
            self.stats.venue_delay.record)
        handlers: list[IEventHandler] = [
            StatusHandler(context, lambda system: self._link.venue_status(system)),
            InstrumentHandler(context, self._precision_changed, lambda symbol: self.trades.precision_known(symbol)),
            TickerHandler(context),
            self.trades,
            self.books,
        ]
        self.executions: ExecutionsHandler | None = None
        if any(s.channel == "executions" for s in subscriptions):
            self.executions = ExecutionsHandler(
                dialect.name, publish, context.reject,
                FillLedger() if ledger is None else ledger,  # "is None": an empty ledger is falsy
                OrderStates() if orders is None else orders,
            )
            handlers.append(self.executions)
        self._handlers = {h.channel: h for h in handlers}
        # Precisions are needed only to put market data at them: an account-only session skips them.
        self._instrument_channel = dialect.instrument_channel if any(
            s.channel not in dialect.private_channels for s in subscriptions) else None
        self._subscribing = False
        self.given_up = False  # this connection was declared unusable: it is replaced, never active
        self._ack_timeout = ack_timeout
        self._instruments_due: IDelayedCall | None = None
        self.active = False
        self.closed = False
        self.liveness = LivenessMonitor(
            clock,
            data_timeout=live.data_timeout,
            ping_interval=live.ping_interval,
            ping_timeout=live.ping_timeout,
            channel_timeouts=live.channel_timeouts,
            seen=context.seen,
            subscribed=self.subscriptions.live,
            send_ping=self._ping,
            on_dead=self._unusable,
            on_stale=self._stale,
        )
        # Every frame's way in: compiled where the venue's usual updates are (the same steps as
        # _received, in one call), else _received.
        self.frame_received: Callable[[bytes, float], None] = self._received if self.updates is None else (
            self.updates.receiver(self.stats, self.liveness, self._outlet, getattr(self._outlet, "trades", None)
                                  or _PublishAll(publish).trades,  # an outlet from before IEventOutlet.trades
                                  self._frame, self.gate.duplicate, self.trades.committed, self.books.committed,
                                  self._handler_failed, SAMPLE_EVERY).receive)

    # -- IConnectionHandler -------------------------------------------------

    @property
    def ready(self) -> bool:
        """Active, and every configured book the venue did not refuse verified.

        A book that is resyncing is not ready: the pool must not keep a
        leader whose book is dead while a standby's is live.
        """
        if not self.active:
            return False
        expected = self.subscriptions.expected("book")
        return self.books.all_live(expected)

    def connection_made(self, link: IConnectionLink) -> None:
        self._link = link
        self.liveness.start()
        channel = self._instrument_channel
        if channel is None:
            self._subscribe_configured()
        else:
            # Nothing is subscribed before the precisions are known: their snapshot is due in time
            # (due first: a transport that answers at once brings the snapshot inside the subscribe).
            self._instruments_due = self._clock.callLater(self._ack_timeout, self._instruments_late, channel)
            self.subscriptions.subscribe_channel(channel)

    def connection_lost(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.active = False
        self._link = _UNLINKED
        self._cancel_instruments_due()
        self.liveness.stop()
        self.subscriptions.close()
        self.books.reset(self._clock.seconds())
        for handler in self._handlers.values():
            if handler is not self.books:
                handler.reset()

    def leave(self) -> Deferred[Any]:
        if self.closed:
            return succeed(None)
        return self.subscriptions.leave()

    def restate(self, recv_ts: float) -> list[Event]:
        return list(self.books.restate(recv_ts))

    def binary_received(self, payload: bytes, recv_ts: float) -> None:
        self._reporter.report("binary_frame", f"{len(payload)}-byte binary frame", recv_ts, endpoint=self.endpoint)

    def _received(self, payload: bytes, recv_ts: float) -> None:
        """``frame_received`` where no compiled path is (the compiled receiver does the same)."""
        stats = self.stats
        stats.received += 1
        if stats.received & (SAMPLE_EVERY - 1):
            self._frame(payload, recv_ts)
        else:
            started = perf_counter()
            self._frame(payload, recv_ts)
            stats.record(perf_counter() - started)

    def _frame(self, payload: bytes, recv_ts: float) -> None:
        """A frame the compiled path did not take (every frame where there is none)."""
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
            self._route(message, recv_ts)
        elif kind is Ack:
            self._ack_received(message, recv_ts)

    # -- inbound ------------------------------------------------------------

    def _route(self, message: ChannelData, recv_ts: float) -> None:
        if not self.gate.admit(message, recv_ts):
            return
        channel = message.channel
        by_channel = self.stats.by_channel
        counted = by_channel.get(channel)
        if counted is None:  # the first key stays: interned, the compiled path's count finds it by identity
            by_channel[intern(channel)] = 1
        else:
            by_channel[channel] = counted + 1
        handler = self._handlers.get(channel)
        if handler is None:
            self._reporter.report("unexpected_channel", f"channel {channel!r} has no handler", recv_ts,
                                  channel=channel, endpoint=self.endpoint)
            return
        try:
            handler.handle(message, recv_ts)
        except Exception as e:  # a bug of ours must not kill the connection
            self._handler_failed(channel, e, recv_ts)
        if channel == self._instrument_channel and message.snapshot and not self._subscribing:
            self._subscribe_configured()

    def _handler_failed(self, channel: str, error: Exception, recv_ts: float) -> None:
        self.log.failure("{channel} handler failed", Failure(error), channel=channel)
        self._reporter.report("internal_error", repr(error), recv_ts, channel=channel, endpoint=self.endpoint)

    def _ack_received(self, ack: Ack, recv_ts: float) -> None:
        if ack.method == "ping":
            self.liveness.pong()  # refused (rate) or not, the venue answered
            return
        if self.requests.ack_received(ack):
            return
        if not ack.success:
            # Not an answer to any request of ours: still the venue's word.
            self._error(ack.error or "request refused", ack.channel, ack.symbol, "request")

    # -- outbound -----------------------------------------------------------

    def _send(self, payload: bytes) -> None:
        self._link.send(payload)

    def _ping(self, on_sent: Callable[[], None]) -> None:
        self.throttle.send(self._dialect.ping_request(self.requests.next_id()), on_sent)

    def _instruments_late(self, channel: str) -> None:
        self._instruments_due = None
        text = f"no {channel} snapshot within {self._ack_timeout:g}s: nothing can be subscribed"
        self._error(text, channel, None, "subscribe")
        self._unusable(text)

    def _cancel_instruments_due(self) -> None:
        if self._instruments_due is not None and self._instruments_due.active():
            self._instruments_due.cancel()
        self._instruments_due = None

    def _subscribe_configured(self) -> None:
        self._cancel_instruments_due()
        self._subscribing = True
        for sub in self.subscriptions.states():
            self.liveness.subscribed_at(sub.channel, [sub.symbol])
        self.subscriptions.subscribe_all().addCallback(self._all_answered)

    def _all_answered(self, results: object) -> None:
        if not self.closed and not self.given_up:  # an unanswered request is no success
            self.active = True
            refused = [f"{s.channel} {s.symbol} refused for good ({s.reason})"
                       for s in self.subscriptions.states() if s.state == "refused"]
            self._link.active("; ".join(refused) or None)
            self._link.readiness_changed()

    # -- reports and recovery -----------------------------------------------

    def _error(self, text: str, channel: str | None, symbol: str | None, method: str) -> None:
        self.log.error(
            "{endpoint}: {method} {channel} {symbol} refused: {text}",
            endpoint=self.endpoint, method=method, channel=channel, symbol=symbol or "", text=text,
        )
        self._publish(
            Error(
                venue=self._dialect.name,
                recv_ts=self._clock.seconds(),
                message=text,
                channel=channel,
                symbol=symbol,
                endpoint=self.endpoint,
            )
        )

    def _unusable(self, reason: str) -> None:
        self.given_up = True
        if not self.closed:
            self.log.warn("{endpoint}: connection unusable: {reason}", endpoint=self.endpoint, reason=reason)
            self._link.unusable(reason)

    def _stale(self, channel: str, symbol: str, age: float) -> None:
        self._reporter.report(
            "stale", f"no {channel} data for {symbol} in {age:.1f}s", self._clock.seconds(),
            symbol=symbol, channel=channel, endpoint=self.endpoint,
        )
        if channel == "book":
            self.books.invalidate(symbol, self._clock.seconds(), "stale")
        self.subscriptions.renew(channel, symbol)

    def _venue_time(self, ts: str, recv_ts: float) -> None:
        """Venue time to receipt of one item (the context samples one in 16: parsing costs ~1 us)."""
        sent = venue_seconds(ts)
        if sent is not None:
            self.stats.venue_delay.record(max(0.0, recv_ts - sent))

    def _subscribe_sent(self, channel: str, options: Any) -> None:
        """A subscribe leaves: an executions snapshot of open orders will say which closed unseen."""
        if channel == "executions" and self.executions is not None and options.get("snap_orders", True):
            self.executions.subscribing()

    def _renewed(self) -> None:
        self.stats.renewals += 1

    def _renew_book(self, symbol: str) -> None:
        self.subscriptions.renew("book", symbol)

    def _precision_changed(self, symbol: str) -> None:
        if ("book", symbol) in self.subscriptions.by_key:
            self.books.invalidate(symbol, self._clock.seconds(), "precision_changed")
            self.subscriptions.renew("book", symbol)
