"""Endpoints and pools on a ``task.Clock``, with no socket and no session.

As in Twisted's own ClientService tests: a test endpoint whose ``connect()``
Deferreds the test fires by hand, protocols over an in-memory transport, and
handlers that only record.  ClientService itself is the real one, so its
retry, stop and restart behaviour is what the endpoint really meets.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gfws.config import BreakerConfig, ConnectionConfig, EndpointConfig, PoolConfig
from gfws.connection.backoff import Backoff
from gfws.connection.breaker import CircuitBreaker
from gfws.connection.budget import ConnectionBudget
from gfws.connection.endpoint import FeedEndpoint
from gfws.connection.pool import EndpointPool
from gfws.events import Event
from gfws.interfaces import IConnectionHandler


class ClockTransport(StringTransport):
    """Closing it ends the connection one clock turn later, as TCP does."""

    def __init__(self, clock: Clock, protocol: TestProtocol) -> None:
        super().__init__()
        self._clock = clock
        self._protocol = protocol

    def loseConnection(self) -> None:
        super().loseConnection()
        self._clock.callLater(0, self._protocol.lose, 1006, "connection lost")

    def abortConnection(self) -> None:
        self.loseConnection()


class TestProtocol(Protocol):
    """Stands in for the Autobahn protocol: ``open``, ``receive`` and ``lose``
    are the venue's doing; ``send``, ``close`` and ``abort`` the endpoint's."""

    factory: TestFactory

    def __init__(self) -> None:
        self.proxy: Any = None  # ClientService's wrapper, which must hear of the loss
        self.sent: list[bytes] = []
        self.closes: list[tuple[int, str]] = []
        self.aborted = False
        self.lost = False
        self.deliver: Callable[[bytes, bool], None] | None = None

    # the venue's side
    def open(self) -> None:
        self.deliver = self.factory.connector.connection_opened(self)

    def receive(self, payload: bytes) -> None:
        assert self.deliver is not None
        self.deliver(payload, False)

    def lose(self, code: int | None = 1006, reason: str = "gone", clean: bool = False,
             cause: Failure | None = None) -> None:
        if self.lost:
            return
        self.lost = True
        self._close_info = (code, reason, clean, cause)
        self.proxy.connectionLost(Failure(ConnectionDone() if clean else ConnectionLost()))

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        code, text, clean, cause = self._close_info
        self.factory.connector.connection_closed(self, code, text, clean, cause)

    # the endpoint's side
    def send(self, payload: bytes) -> None:
        self.sent.append(payload)

    def close(self, code: int, reason: str) -> None:
        self.closes.append((code, reason))

    def abort(self) -> None:
        self.aborted = True
        self.transport.abortConnection()


class TestFactory(Factory):
    protocol = TestProtocol
    connector: Any = None


@implementer(IStreamClientEndpoint)
class HandFiredEndpoint:
    """``connect()`` returns a Deferred the test fires; or, with ``auto``, a
    function of the clock decides at once (venue up: connected and opened)."""

    def __init__(self, clock: Clock, auto: Callable[[float], bool] | None = None) -> None:
        self.clock = clock
        self.auto = auto
        self.pending: list[tuple[Any, Deferred[Any]]] = []
        self.protocols: list[TestProtocol] = []
        self.connects = 0

    def connect(self, factory: Any) -> Deferred[Any]:
        self.connects += 1
        if self.auto is not None:
            if not self.auto(self.clock.seconds()):
                from twisted.internet.error import ConnectionRefusedError

                return fail(ConnectionRefusedError("refused"))
            proxy = self._build(factory)
            self.clock.callLater(0, proxy._protocol.open)
            return succeed(proxy)
        entry: tuple[Any, Deferred[Any]]

        def cancel(d: Deferred[Any]) -> None:  # ClientService stopped mid-attempt
            self.pending.remove(entry)

        entry = (factory, Deferred(cancel))
        self.pending.append(entry)
        return entry[1]

    def _build(self, factory: Any) -> Any:
        proxy = factory.buildProtocol(None)
        protocol: TestProtocol = proxy._protocol
        protocol.proxy = proxy
        proxy.makeConnection(ClockTransport(self.clock, protocol))
        self.protocols.append(protocol)
        return proxy

    def succeed_next(self, open: bool = True) -> TestProtocol:
        factory, d = self.pending.pop(0)
        proxy = self._build(factory)
        d.callback(proxy)
        if open:
            proxy._protocol.open()
        return proxy._protocol

    def fail_next(self, error: Exception) -> None:
        _factory, d = self.pending.pop(0)
        d.errback(error)


@implementer(IConnectionHandler)
class RecordingHandler:
    """A session that only records; ``auto_active`` answers at once."""

    def __init__(self, name: str, auto_active: bool = True, ready: bool = True) -> None:
        self.name = name
        self.auto_active = auto_active
        self._ready = ready
        self.link: Any = None
        self.frames: list[bytes] = []
        self.lost: list[str] = []
        self.leaving: Deferred[Any] | None = None  # set to make leave() slow

    @property
    def ready(self) -> bool:
        return self._ready and self.link is not None and not self.lost

    def set_ready(self, ready: bool) -> None:
        self._ready = ready
        self.link.readiness_changed()

    def connection_made(self, link: Any) -> None:
        self.link = link
        if self.auto_active:
            link.active()

    def frame_received(self, payload: bytes, recv_ts: float) -> None:
        self.frames.append(payload)

    def binary_received(self, payload: bytes, recv_ts: float) -> None:
        self.frames.append(payload)

    def leave(self) -> Deferred[Any]:
        return self.leaving if self.leaving is not None else succeed(None)

    def connection_lost(self, reason: str) -> None:
        self.lost.append(reason)
        if self.leaving is not None and not self.leaving.called:
            self.leaving.callback(None)  # as a session fails what is pending when its connection goes

    def restate(self, recv_ts: float) -> list[Event]:
        return []


class Rig:
    """Endpoints (and optionally their pool) on one clock, recording everything."""

    def __init__(self, connection: ConnectionConfig | None = None, breaker: BreakerConfig | None = None) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.connection = connection or ConnectionConfig()
        self.breaker = breaker or BreakerConfig()
        self.events: list[Event] = []
        self.logged: list[dict[str, Any]] = []
        self.handlers: dict[str, list[RecordingHandler]] = {}
        self.budget = ConnectionBudget(self.clock, self.connection.connect_attempts, self.connection.connect_window)
        self.pool: EndpointPool | None = None
        self.leaders: list[str] = []

    def with_pool(self, mode: str = "failover", failback: bool = True) -> EndpointPool:
        self.pool = EndpointPool(PoolConfig(mode=mode, failback=failback), self.clock,
                                 on_leader=lambda new, reason: self.leaders.append(new.name))
        return self.pool

    def endpoint(self, name: str, priority: int = 1, auto: Callable[[float], bool] | None = None,
                 handler: Callable[[str], RecordingHandler] | None = None,
                 jitter: Callable[[], float] | None = None) -> tuple[FeedEndpoint, HandFiredEndpoint]:
        hand = HandFiredEndpoint(self.clock, auto)

        def new_handler(endpoint: str) -> RecordingHandler:
            made = handler(endpoint) if handler is not None else RecordingHandler(endpoint)
            self.handlers.setdefault(endpoint, []).append(made)
            return made

        pool = self.pool
        endpoint = FeedEndpoint(
            EndpointConfig(name=name, url=f"ws://{name}.test:80/v2", priority=priority),
            self.connection,
            new_handler,
            self.events.append,
            self.clock,
            "kraken",
            connect_endpoint=hand,
            factory=TestFactory(),
            breaker=CircuitBreaker(self.clock, self.breaker.failure_threshold, self.breaker.recovery_time),
            budget=self.budget,
            backoff=Backoff(self.connection.backoff_initial, self.connection.backoff_factor,
                            self.connection.backoff_cap, jitter or random.Random(name).random),
            has_alternative=pool.has_alternative if pool else lambda endpoint: False,
            on_change=pool.endpoint_changed if pool else lambda endpoint: None,
            on_status=pool.status_changed if pool else lambda system: None,
            reconnect_floor=pool.reconnect_floor if pool else lambda: 0.0,
        )
        endpoint.log = Logger(namespace=name, observer=self.logged.append)
        if pool is not None:
            pool.add(endpoint)
        return endpoint, hand

    def stop(self, endpoint: FeedEndpoint) -> None:
        """Stop ``endpoint`` gracefully (the venue answers the close), and check
        that nothing is left on the clock."""
        endpoint.stop()
        self.turn()
        for handler in self.handlers.get(endpoint.name, []):
            if handler.link is not None and not handler.link.protocol.lost:
                handler.link.protocol.lose(1000, "client leaving", clean=True)
        self.turn()
        self.assert_quiet()

    def states(self, name: str) -> list[str]:
        return [e.state for e in self.events if getattr(e, "endpoint", None) == name and e.state != "leader"]

    def reasons(self, name: str) -> list[str]:
        return [e.reason for e in self.events if getattr(e, "endpoint", None) == name and e.reason]

    def turn(self, seconds: float = 0.0) -> None:
        """Let the clock run ``seconds`` (and everything due now)."""
        self.clock.advance(seconds)
        self.clock.advance(0)

    def assert_quiet(self) -> None:
        """Nothing left scheduled: no retry, no timer of any kind."""
        self.turn(0)
        assert self.clock.getDelayedCalls() == [], self.clock.getDelayedCalls()
