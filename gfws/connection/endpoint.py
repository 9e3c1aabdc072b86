"""One venue URL, kept connected by a Twisted ``ClientService``.

Built like ``ClientService`` itself: one object holding what every state
shares (the TCP endpoint, the factory, the retry policy, the clock, the
breaker and the budget), and states that carry their own data
(``gfws.connection.states``).  Each WebSocket that opens gets a fresh
handler from ``handlers`` (an ``IConnectionHandler``: the session), so every
reconnect resubscribes and rebuilds books from snapshots.  Each change of
state is published as a ``connection`` event, logged, and reported to the
pool through ``on_change``.

``ClientService`` counts a TCP connect as success, so it would reset its
backoff even when the WebSocket handshake is refused.  The retry delay comes
from this endpoint's own count of consecutive failures (reset once a
connection became active), and is never shorter than what the breaker, the
venue-wide budget or a venue maintenance allow.  Every attempt passes a
guard that enforces them.  The breaker exists to prefer another endpoint:
when no other endpoint carries the feed it does not hold this one back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.internet import ClientService
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gfws.config import ConnectionConfig, EndpointConfig
from gfws.connection.backoff import Backoff
from gfws.connection.breaker import CircuitBreaker
from gfws.connection.budget import ConnectionBudget
from gfws.connection.guard import GuardedEndpoint
from gfws.connection.reasons import AttemptRefused, close_reason, connect_failure, transport_refusal
from gfws.connection.states import Connecting, Idle, Leaving, Link, Open, State, Stopped, Waiting, check
from gfws.connection.tls import host_port
from gfws.events import Connection, Event
from gfws.integrity.report import IntegrityReporter
from gfws.interfaces import IConnectionHandler, IConnector


def _ignore(payload: bytes, is_binary: bool) -> None:
    pass


@implementer(IConnector)
class FeedEndpoint:
    """A venue URL the pool can start, park and stop."""

    log = Logger()

    def __init__(
        self,
        config: EndpointConfig,
        connection: ConnectionConfig,
        handlers: Callable[[str], IConnectionHandler],
        publish: Callable[[Event], None],
        clock: IReactorTime,
        venue: str,
        connect_endpoint: IStreamClientEndpoint,
        factory: Any,
        reporter: IntegrityReporter | None = None,
        breaker: CircuitBreaker | None = None,
        budget: ConnectionBudget | None = None,
        backoff: Backoff | None = None,
        reconnect_floor: Callable[[], float] = lambda: 0.0,
        has_alternative: Callable[[FeedEndpoint], bool] = lambda endpoint: False,
        on_change: Callable[[FeedEndpoint], None] = lambda endpoint: None,
        on_status: Callable[[str], None] = lambda system: None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.priority = config.priority
        self._connection = connection
        self._handlers = handlers
        self._publish = publish
        self._clock = clock
        self._venue = venue
        self._reporter = reporter
        self.breaker = breaker or CircuitBreaker(clock)
        self.budget = budget or ConnectionBudget(clock, connection.connect_attempts, connection.connect_window)
        self._backoff = backoff or Backoff(
            connection.backoff_initial, connection.backoff_factor, connection.backoff_cap
        )
        self._reconnect_floor = reconnect_floor
        self._has_alternative = has_alternative
        self._on_change = on_change
        self._on_status = on_status
        self._where = host_port(config.url)
        factory.connector = self
        self._client = ClientService(
            GuardedEndpoint(connect_endpoint, self), factory, retryPolicy=self._retry_delay, clock=clock
        )
        self._state: State = Idle()
        self.failures = 0  # consecutive, since the last connection that became active
        self.attempts = 0
        self.losses = 0  # connections lost or attempts failed: each a reconnect
        self.last_failure: str | None = None
        self.since = clock.seconds()  # when the current state began

    # -- reading ------------------------------------------------------------

    @property
    def state(self) -> str:
        return str(self._state.name)

    @property
    def handler(self) -> IConnectionHandler | None:
        """The open connection's handler (the session), if one is open."""
        state = self._state
        return state.handler if isinstance(state, Open) else None

    @property
    def protocol(self) -> Any:
        """The open connection's protocol, if one is open."""
        state = self._state
        return state.protocol if isinstance(state, Open) else None

    @property
    def ready(self) -> bool:
        """Delivering verified data: active, every configured book verified."""
        state = self._state
        return isinstance(state, Open) and state.phase == "active" and bool(state.handler.ready)

    @property
    def running(self) -> bool:
        """In use: started and neither parked nor stopped (nor leaving)."""
        return isinstance(self._state, (Connecting, Waiting, Open))

    # -- life cycle (driven by the pool) --------------------------------------

    def start(self) -> None:
        """Connect, and keep reconnecting until parked or stopped.

        A start while leaving wins: the old connection and its session are
        closed now and a new connection is made at once.
        """
        state = self._state
        if isinstance(state, (Idle, Stopped)):
            self._enter(Connecting())
            self._client.startService()
        elif isinstance(state, Leaving):
            old = state.connection
            self._enter(Connecting(replaced=old.protocol if old is not None else None))
            if old is not None:
                old.close("replaced: the endpoint was started again while leaving")
                old.protocol.abort()
            state.finish()
            # ClientService reconnects as soon as the old connection is gone
            # (its own stop-then-start), with no retry delay.
            self._client.stopService()
            self._client.startService()

    def park(self, reason: str = "not needed") -> Deferred[None]:
        """Leave gracefully (unsubscribe, close 1000) and stop retrying."""
        return self._leave(Idle, reason)

    def stop(self) -> Deferred[None]:
        """Shut down for good, gracefully; fires once the connection is closed."""
        return self._leave(Stopped, "shutdown")

    def abort(self) -> None:
        """Drop the connection now and stop retrying (a shutdown out of time)."""
        self.stop()  # leaves every live state first: the loss below cannot look like a failure to retry
        state = self._state
        if isinstance(state, Leaving) and state.connection is not None:
            state.connection.protocol.abort()

    def _leave(self, target: type, reason: str) -> Deferred[None]:
        state = self._state
        if isinstance(state, (Idle, Stopped)):
            if target is Stopped and isinstance(state, Idle):
                self._enter(Stopped(), "shutdown (was not connected)")
            return succeed(None)
        if isinstance(state, Leaving):
            if target is Stopped:
                state.target = "shutdown"
            return state.wait()
        if isinstance(state, (Connecting, Waiting)):
            self.breaker.release()  # an abandoned trial must not hold the breaker
            left = target()
            self._enter(left, f"{reason} (was not connected)")
            return self._stop_client(left)
        assert isinstance(state, Open)
        if state.phase != "active":
            self.breaker.release()  # the trial, if this was one, ends with no verdict
        leaving = Leaving(state, "shutdown" if target is Stopped else "disconnected", reason)
        self._enter(leaving, reason)
        self._run_leave(leaving)
        return leaving.wait()

    def _run_leave(self, leaving: Leaving) -> None:
        c = self._connection
        connection = leaving.connection
        assert connection is not None
        d = connection.handler.leave().addTimeout(c.ack_timeout, self._clock).addErrback(lambda f: None)

        def close(_: object) -> Deferred[None] | None:
            if self._state is not leaving or leaving.connection is None:
                return None
            protocol = leaving.connection.protocol
            closed: Deferred[None] = Deferred()
            leaving.closed_waiters.append(closed)
            protocol.close(1000, "client leaving")
            # Autobahn drops the socket after its close handshake timeout;
            # this bound only guards against that never happening.
            closed.addTimeout(c.close_handshake_timeout + 1.0, self._clock)
            closed.addErrback(lambda f: protocol.abort())
            return closed

        def stop_client(_: object) -> Deferred[None]:
            return self._stop_client(leaving)

        def left(_: object) -> None:
            if self._state is leaving:
                self._enter(Stopped() if leaving.target == "shutdown" else Idle(),
                            f"{leaving.reason} ({leaving.closed_with})")
            leaving.finish()

        d.addCallback(close)
        d.addBoth(stop_client)  # addBoth: even a leave cut short stops retrying
        d.addBoth(left)

    def _stop_client(self, state: State) -> Deferred[None]:
        """Stop ClientService on a fresh stack (its machine may be mid-transition),
        unless by then the endpoint is in use again (a restart wins)."""

        def stop(_: object) -> Deferred[None] | None:
            return None if self.running else self._client.stopService()

        fresh: Deferred[None] = deferLater(self._clock, 0, lambda: None)
        return fresh.addCallback(stop)

    # -- attempts (called by the guard and by ClientService) ------------------

    def admit(self) -> AttemptRefused | None:
        """Called for each attempt: None admits it.  A refused attempt costs
        nothing (no failure counted, no budget spent)."""
        state = self._state
        if not isinstance(state, (Connecting, Waiting)):
            return AttemptRefused("endpoint not in use")
        if not self.budget.admits():
            return AttemptRefused(
                f"connection budget spent ({self.budget.attempts} per {self.budget.window:g}s); "
                f"{self.budget.wait():.1f}s to wait"
            )
        # The breaker exists to prefer another endpoint: asked at every attempt, so an
        # endpoint it holds back comes back as soon as no other one carries the feed.
        if self._has_alternative(self) and not self.breaker.allow():
            return AttemptRefused(f"circuit breaker open; {self.breaker.wait():.1f}s to wait")
        if isinstance(state, Waiting):
            attempt = Connecting()
            self._enter(attempt, f"attempt {self.attempts + 1}")
            if self._state is not attempt:  # a subscriber stopped us on that event
                return AttemptRefused("endpoint not in use")
            state = attempt
        self.budget.acquire()
        self.attempts += 1
        state.attempt = self.attempts
        return None

    def connect_failed(self, failure: Failure) -> None:
        state = self._state
        if isinstance(state, Connecting):
            state.failure = connect_failure(failure, self._where, self._connection.connect_timeout)
            state.held_back = failure.check(AttemptRefused) is not None
        elif isinstance(state, Waiting) and failure.check(AttemptRefused):
            state.reason = connect_failure(failure, self._where, self._connection.connect_timeout)

    def _retry_delay(self, _client_service_attempts: int) -> float:
        """ClientService's retry policy: called after every failed or lost connection."""
        state = self._state
        if isinstance(state, Connecting):
            reason = state.failure or "connection failed"
            tripped = False
            if not state.held_back:
                self.failures += 1
                tripped = self.breaker.record_failure(reason)
                self.log.warn("{endpoint}: attempt {n} failed: {reason}", endpoint=self.name, n=state.attempt,
                              reason=reason)
            self._wait(reason, tripped)
        elif not isinstance(state, Waiting):
            return self._connection.backoff_cap  # leaving: ClientService is stopped right after this
        delay = self._delay()
        if self.budget.wait() > 0:
            self.log.error(
                "{endpoint}: connection budget spent ({attempts} per {window:g}s); next attempt in {wait:.1f}s",
                endpoint=self.name, attempts=self.budget.attempts, window=self.budget.window, wait=delay,
            )
        return delay

    def _wait(self, reason: str, tripped: bool) -> None:
        """Wait for the next attempt; a breaker that just tripped says so, at error."""
        self.losses += 1
        self.last_failure = reason
        if tripped:
            reason = (f"breaker open after {self.breaker.failures} consecutive failures "
                      f"(trip {self.breaker.trips}); last: {reason}")
            self.log.error("{endpoint}: {reason}", endpoint=self.name, reason=reason)
        self._enter(Waiting(reason, tripped or self.breaker.wait() > 0), reason)

    def _delay(self) -> float:
        # The breaker is not waited for here: whether another endpoint carries the feed may
        # change before then.  The guard asks it at each attempt; a refusal costs nothing.
        backoff = self._backoff.delay(self.failures) if self.failures else 0.0
        return max(backoff, self.budget.wait(), self._reconnect_floor())

    # -- IConnector (called by the protocol) -----------------------------------

    def connection_opened(self, protocol: Any) -> Callable[[bytes, bool], None]:
        state = self._state
        if not isinstance(state, Connecting):
            # Opened after the pool parked us (the attempt was already under way).
            protocol.abort()
            return _ignore
        handler = self._handlers(self.name)
        opened = Open(protocol, handler, Link(self, protocol))
        self._enter(opened)
        if self._state is not opened:  # a subscriber parked or stopped us on that event
            return _ignore
        frame, binary, seconds = handler.frame_received, handler.binary_received, self._clock.seconds

        def deliver(payload: bytes, is_binary: bool) -> None:
            if is_binary:
                binary(payload, seconds())
            else:
                frame(payload, seconds())

        opened.phase = "subscribing"  # the handler begins with its requests
        self._changed(opened, None)
        if self._state is not opened:
            return _ignore
        handler.connection_made(opened.link)
        return deliver

    def connection_closed(
        self, protocol: Any, code: int | None, reason: str | None, clean: bool, cause: Failure | None
    ) -> None:
        text = close_reason(code, reason, clean, cause)
        refused = transport_refusal(code, reason)
        if refused is not None and self._reporter is not None:
            # Autobahn refused a frame (too big, not UTF-8) and failed the connection.
            self._reporter.report(refused, text, self._clock.seconds(), endpoint=self.name)
        state = self._state
        if isinstance(state, Open) and state.protocol is protocol:
            state.close(text)
            why = f"{state.failure}; {text}" if state.failure else text
            self.failures += 1
            tripped = False
            if state.phase != "active" or state.failure:
                tripped = self.breaker.record_failure(why)
            self.log.warn("{endpoint}: connection lost: {reason}", endpoint=self.name, reason=why)
            self._wait(why, tripped)
        elif isinstance(state, Leaving) and state.connection is not None and state.connection.protocol is protocol:
            state.connection.close(text)
            state.socket_closed(text)
        elif isinstance(state, Connecting) and state.failure is None and protocol is not state.replaced:
            state.failure = text  # a handshake that never opened: HTTP status, TLS check, timeout

    # -- from the open connection's handler (through its Link) ----------------

    def _link_active(self, link: Link, refused: str | None) -> None:
        state = self._state
        if isinstance(state, Open) and state.link is link and state.phase != "active" and state.failure is None:
            self.failures = 0
            self.breaker.record_success()
            state.phase = "active"
            if refused:
                self.log.error("{endpoint}: active, but not fully: {refused}", endpoint=self.name, refused=refused)
            self._changed(state, f"not fully: {refused}" if refused else None)

    def _link_unusable(self, link: Link, reason: str) -> None:
        state = self._state
        if isinstance(state, Open) and state.link is link:
            state.failure = reason
        link.protocol.abort()

    def _readiness_changed(self, link: Link) -> None:
        self._on_change(self)

    def _venue_status(self, system: str) -> None:
        self._on_status(system)

    # -- state changes -----------------------------------------------------------

    def _enter(self, new: State, reason: str | None = None) -> None:
        check(self._state, new, lambda text: self.log.critical("{endpoint}: {text}", endpoint=self.name, text=text))
        self._state = new
        self._changed(new, reason)

    def _changed(self, state: State, reason: str | None) -> None:
        self.since = self._clock.seconds()
        self.log.info("{endpoint} {state}{why}", endpoint=self.name, state=state.name,
                      why=f": {reason}" if reason else "")
        self._publish(
            Connection(
                venue=self._venue,
                recv_ts=self._clock.seconds(),
                endpoint=self.name,
                state=state.name,
                url=self.config.url,
                reason=reason,
            )
        )
        self._on_change(self)

    def __repr__(self) -> str:
        return f"<FeedEndpoint {self.name} priority={self.priority} state={self.state}>"
