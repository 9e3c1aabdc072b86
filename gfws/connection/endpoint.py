"""One venue URL, kept connected by a Twisted ``ClientService``.

Each WebSocket that opens gets a fresh ``FeedSession`` (so every reconnect
resubscribes and rebuilds books from snapshots).  The endpoint's life cycle
is an explicit state machine (``ConnectionState``); each change is published
as a ``connection`` event and reported to the pool.

``ClientService`` counts a TCP connect as success, so it would reset its
backoff even when the WebSocket handshake is refused.  The retry delay
therefore comes from this endpoint's own count of consecutive failures
(reset once a WebSocket stayed open ``backoff_reset_after`` seconds), and is
never shorter than what the circuit breaker, the venue-wide connection
budget or a venue maintenance allow.  Every attempt passes a guard that
enforces the breaker and the budget.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.application.internet import ClientService
from twisted.internet import ssl
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IDelayedCall, IStreamClientEndpoint
from twisted.internet.task import deferLater
from twisted.logger import Logger
from zope.interface import implementer

from autobahn.websocket.util import parse_url

from gfws.config import ConnectionConfig, EndpointConfig
from gfws.connection.backoff import Backoff
from gfws.connection.breaker import CircuitBreaker
from gfws.connection.budget import ConnectionBudget
from gfws.connection.protocol import FeedClientFactory, FeedClientProtocol
from gfws.connection.state import LIVE, ConnectionState
from gfws.events import Connection, Event
from gfws.integrity.report import IntegrityReporter
from gfws.session import FeedSession

SessionFactory = Callable[..., FeedSession]
"""(send, endpoint name, on_active, on_failure) -> a new session for one connection."""


def transport_refusal(code: Optional[int], reason: Optional[str]) -> Optional[str]:
    """The integrity kind of a frame Autobahn refused, from how it closed.

    Autobahn sends 1009/1007, or (when it fails by dropping the socket)
    reports 1006 with its own reason text.
    """
    text = reason or ""
    if code == 1009 or "exceeds payload limit" in text:
        return "oversized_message"
    if code == 1007 or "UTF-8" in text:
        return "invalid_utf8"
    return None


class AttemptRefused(Exception):
    """A connection attempt was held back (breaker open, budget spent)."""


def load_trust_root(ca_bundle: str) -> ssl.IOpenSSLTrustRoot:
    """Every certificate of a PEM bundle as the trust root."""
    with open(ca_bundle, "rb") as f:
        pem = f.read()
    marker = b"-----END CERTIFICATE-----"
    blocks = [block + marker for block in pem.split(marker) if b"-----BEGIN CERTIFICATE-----" in block]
    if not blocks:
        raise ValueError(f"{ca_bundle}: no PEM certificate in it")
    return ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(b) for b in blocks])


def client_endpoint(
    reactor: object, url: str, ca_bundle: Optional[str] = None, timeout: float = 10.0
) -> IStreamClientEndpoint:
    """A TCP endpoint for ``url``; for ``wss://`` verified TLS with SNI.

    Never Autobahn's ``connectWS``: without a context factory it checks
    neither the certificate nor the host name.
    """
    secure, host, port, _resource, _path, _params = parse_url(url)
    endpoint: IStreamClientEndpoint = HostnameEndpoint(reactor, host, port, timeout=timeout)
    if secure:
        trust_root = load_trust_root(ca_bundle) if ca_bundle else None
        options = ssl.optionsForClientTLS(host, trustRoot=trust_root)
        endpoint = wrapClientTLS(options, endpoint)
    return endpoint


@implementer(IStreamClientEndpoint)
class _GuardedEndpoint:
    """Admits an attempt only when the breaker and the budget allow it."""

    def __init__(self, inner: IStreamClientEndpoint, owner: "FeedEndpoint") -> None:
        self._inner = inner
        self._owner = owner

    def connect(self, factory: Any) -> "Deferred[Any]":
        refusal = self._owner._admit()
        if refusal is not None:
            return fail(AttemptRefused(refusal))
        return self._inner.connect(factory)


class FeedEndpoint:
    """A venue URL the pool can start, park and stop."""

    log = Logger()

    def __init__(
        self,
        config: EndpointConfig,
        connection: ConnectionConfig,
        session_factory: SessionFactory,
        publish: Callable[[Event], None],
        reporter: IntegrityReporter,
        venue: str,
        reactor: Any,
        breaker: Optional[CircuitBreaker] = None,
        budget: Optional[ConnectionBudget] = None,
        backoff: Optional[Backoff] = None,
        reconnect_floor: Callable[[], float] = lambda: 0.0,
        on_state: Callable[["FeedEndpoint", str], None] = lambda endpoint, state: None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.priority = config.priority
        self._connection = connection
        self._session_factory = session_factory
        self.publish = publish
        self._reporter = reporter
        self._venue = venue
        self._reactor = reactor
        self.breaker = breaker or CircuitBreaker(reactor)
        self.budget = budget or ConnectionBudget(reactor, connection.connect_attempts, connection.connect_window)
        self._backoff = backoff or Backoff(
            connection.backoff_initial, connection.backoff_factor, connection.backoff_cap
        )
        self._reconnect_floor = reconnect_floor
        self._on_state = on_state
        self._machine = ConnectionState(self._changed)
        self.failures = 0
        self.attempts = 0
        self.session: Optional[FeedSession] = None
        self._protocol: Optional[FeedClientProtocol] = None
        self._reset_call: Optional[IDelayedCall] = None
        self._closed_waiters: list[Deferred[None]] = []
        self._client: Optional[ClientService] = None
        self._wanted = False
        self._failure: Optional[str] = None  # why the current attempt is failing
        self._last_close = ""
        self._reached_active = False

    @property
    def state(self) -> str:
        return self._machine.state

    @property
    def ready(self) -> bool:
        """Delivering verified data: active, every book built from a snapshot."""
        return self.state == "active" and self.session is not None and self.session.ready

    @property
    def running(self) -> bool:
        return self._wanted

    # -- life cycle (driven by the pool) -----------------------------------

    def start(self) -> None:
        """Connect, and keep reconnecting until parked or stopped."""
        if self._wanted:
            return
        self._wanted = True
        c = self._connection
        factory = FeedClientFactory(self, url=self.config.url)
        factory.noisy = False  # our own connection events say it better
        factory.setProtocolOptions(
            openHandshakeTimeout=c.open_handshake_timeout,
            closeHandshakeTimeout=c.close_handshake_timeout,
            autoPingInterval=c.auto_ping_interval,
            autoPingTimeout=c.auto_ping_timeout,
            maxMessagePayloadSize=c.max_message_size,
            maxFramePayloadSize=c.max_message_size,
        )
        endpoint = client_endpoint(self._reactor, self.config.url, self.config.ca_bundle, c.connect_timeout)
        self._client = ClientService(
            _GuardedEndpoint(endpoint, self), factory, retryPolicy=self._retry_delay, clock=self._reactor
        )
        self._client.startService()

    def park(self, reason: str = "not needed") -> "Deferred[None]":
        """Leave gracefully (unsubscribe, close 1000) and stop retrying."""
        return self._leave("disconnected", lambda closed: self._machine.inputs.park(f"{reason} ({closed})"))

    def stop(self) -> "Deferred[None]":
        """Shut down for good, gracefully."""
        return self._leave("shutdown", lambda closed: self._machine.inputs.stop(f"shutdown ({closed})"))

    def abort(self) -> None:
        """Drop the connection now and stop retrying (a shutdown that ran out of time)."""
        self._wanted = False
        if self._protocol is not None:
            self._protocol.dropConnection(abort=True)
        client, self._client = self._client, None
        if client is not None:
            self._reactor.callLater(0, client.stopService)

    def _leave(self, target: str, transition: Callable[[str], None]) -> "Deferred[None]":
        def settle(closed: str) -> None:
            if self.state not in (target, "shutdown"):
                transition(closed)

        was_wanted, self._wanted = self._wanted, False
        self._last_close = "was not connected"
        if not was_wanted:
            settle(self._last_close)
            return succeed(None)
        session, protocol = self.session, self._protocol
        d: Deferred[Any] = succeed(None)
        if session is not None and protocol is not None:
            c = self._connection
            d = session.unsubscribe_all().addTimeout(c.ack_timeout, self._reactor).addErrback(lambda f: None)

            def close(_: object) -> "Deferred[None]":
                if self._protocol is not protocol:
                    return succeed(None)
                closed: Deferred[None] = Deferred()
                self._closed_waiters.append(closed)
                protocol.sendClose(1000, "client leaving")
                # Autobahn drops the socket after its close handshake timeout;
                # this bound only guards against that never happening.
                closed.addTimeout(c.close_handshake_timeout + 1.0, self._reactor)
                closed.addErrback(lambda f: protocol.dropConnection(abort=True))
                return closed

            d.addCallback(close)
        client, self._client = self._client, None

        def stop_client(_: object) -> object:
            # On a fresh stack: a subscriber may be stopping us from inside
            # ClientService's own state machine (the retry policy publishes),
            # and Automat refuses re-entry.
            return deferLater(self._reactor, 0, client.stopService) if client is not None else None

        # addBoth: even a shutdown cut short by its bound stops retrying.
        d.addBoth(stop_client)
        d.addBoth(lambda _: settle(self._last_close))
        return d

    # -- attempts and failures --------------------------------------------

    def _admit(self) -> Optional[str]:
        """Called by the guard for each attempt: None admits it."""
        refusal = None
        wait = self.budget.wait()
        if not self._wanted:
            refusal = "endpoint not in use"
        elif wait > 0:
            refusal = f"connection budget spent ({self.budget.attempts} per {self.budget.window:g}s); {wait:.1f}s to wait"
        elif not self.breaker.allow():
            refusal = f"circuit breaker open; {self.breaker.wait():.1f}s to wait"
        if refusal is not None:
            self._failure = f"held back: {refusal}"
            return refusal
        self.budget.acquire()
        self.attempts += 1
        self._failure = None
        self._reached_active = False
        inputs = self._machine.inputs
        if self.state == "disconnected":
            inputs.start()
        elif self.state in ("reconnecting", "failed"):
            inputs.retry(f"attempt {self.attempts}")
        return None

    def _retry_delay(self, _client_service_attempts: int) -> float:
        """ClientService's retry policy: called after every failed or lost connection."""
        if not self._wanted:
            return self._connection.backoff_cap  # leaving: ClientService is stopped right after this
        reason = self._failure or "connection failed"
        refused = reason.startswith("held back:")
        if self.state in LIVE:
            self._machine.inputs.lost(reason)
        if not refused:
            self.failures += 1
            if not self._reached_active:
                if self.breaker.record_failure(reason) and self.state == "reconnecting":
                    self._machine.inputs.tripped(
                        f"breaker open after {self.breaker.failures} consecutive failures "
                        f"(trip {self.breaker.trips}); last: {reason}"
                    )
        delay = max(
            self._backoff.delay(self.failures),
            self.breaker.wait(),
            self.budget.wait(),
            self._reconnect_floor(),
        )
        self._failure = None
        return delay

    def _connection_failed(self, reason: str) -> None:
        """The session found the connection unusable: replace it."""
        self._failure = reason
        self._reached_active = False  # counts against the breaker
        if self._protocol is not None:
            self._protocol.dropConnection(abort=True)

    # -- connector (called by FeedClientProtocol) --------------------------

    def connection_opened(self, protocol: FeedClientProtocol) -> Callable[[bytes, bool], None]:
        if not self._wanted or self.state != "connecting":
            # Opened after the pool parked us (the attempt was already under way).
            protocol.dropConnection(abort=True)
            return lambda payload, is_binary: None
        self._protocol = protocol
        self._machine.inputs.opened()
        clock = self._reactor
        self._reset_call = clock.callLater(self._connection.backoff_reset_after, self._stayed_open)
        def send(payload: bytes) -> None:
            if protocol.state == protocol.STATE_OPEN:  # not while closing
                protocol.sendMessage(payload)

        session = self._session_factory(send, self.name, self._active, self._connection_failed)
        self.session = session
        receive = session.message_received
        seconds = clock.seconds
        reporter = self._reporter

        def deliver(payload: bytes, is_binary: bool) -> None:
            if is_binary:
                reporter.report("binary_frame", f"{len(payload)}-byte binary frame", seconds(), endpoint=self.name)
                return
            receive(payload, seconds())

        self._machine.inputs.subscribing()
        session.start()
        return deliver

    def connection_closed(
        self, protocol: FeedClientProtocol, clean: bool, code: Optional[int], reason: Optional[str]
    ) -> None:
        if self._reset_call is not None and self._reset_call.active():
            self._reset_call.cancel()
        self._reset_call = None
        if protocol is self._protocol:
            if self.session is not None:
                self.session.close()
                self.session = None
            self._protocol = None
        text = f"code {code}{'' if clean else ' (unclean)'}: {reason or 'no reason'}"
        refused = transport_refusal(code, reason)
        if refused is not None:
            # Autobahn refused a frame (too big, not UTF-8) and failed the connection.
            self._reporter.report(refused, text, self._reactor.seconds(), endpoint=self.name)
        self._last_close = f"closed with {text}"
        if self._failure is None:
            self._failure = text
        elif not self._failure.endswith(text):
            self._failure = f"{self._failure}; {text}"
        if self._wanted and self.state in LIVE:
            self._machine.inputs.lost(self._failure)
        waiters, self._closed_waiters = self._closed_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _active(self) -> None:
        self._reached_active = True
        self.breaker.record_success()
        if self.state == "subscribing":
            self._machine.inputs.subscribed()

    def _stayed_open(self) -> None:
        self._reset_call = None
        self.failures = 0

    def _changed(self, state: str, reason: Optional[str]) -> None:
        self.log.info(
            "{endpoint} {state}{why}", endpoint=self.name, state=state, why=f": {reason}" if reason else ""
        )
        self.publish(
            Connection(
                venue=self._venue,
                recv_ts=self._reactor.seconds(),
                endpoint=self.name,
                state=state,
                url=self.config.url,
                reason=reason,
            )
        )
        self._on_state(self, state)

    def __repr__(self) -> str:
        return f"<FeedEndpoint {self.name} priority={self.priority} state={self.state}>"
