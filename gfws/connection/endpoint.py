"""One venue URL kept connected by a Twisted ``ClientService``.

Each WebSocket that opens gets a fresh ``FeedSession`` (so every reconnect
resubscribes and rebuilds books from snapshots).  ``ClientService`` counts a
TCP connect as success, so it would reset its backoff even when the
WebSocket handshake is refused; the retry delay therefore comes from this
endpoint's own count of consecutive failures, reset only once a WebSocket
has stayed open for ``backoff_reset_after`` seconds.
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.application.internet import ClientService
from twisted.application.service import Service
from twisted.internet import ssl
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IDelayedCall, IStreamClientEndpoint
from twisted.internet.task import deferLater
from twisted.logger import Logger

from autobahn.websocket.util import parse_url

from gfws.config import ConnectionConfig, EndpointConfig
from gfws.connection.backoff import Backoff
from gfws.connection.protocol import FeedClientFactory, FeedClientProtocol
from gfws.events import Connection, Event
from gfws.integrity import IntegrityReporter
from gfws.session import FeedSession

SessionFactory = Callable[[Callable[[bytes], None], str, Callable[[], None]], FeedSession]
"""(send, endpoint name, on_active) -> a new session for one connection."""


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


class FeedEndpoint(Service):
    log = Logger()

    def __init__(
        self,
        config: EndpointConfig,
        connection: ConnectionConfig,
        session_factory: SessionFactory,
        publish: Callable[[Event], None],
        reporter: IntegrityReporter,
        venue: str,
        reactor: object,
        backoff: Optional[Backoff] = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self._connection = connection
        self._session_factory = session_factory
        self._publish = publish
        self._reporter = reporter
        self._venue = venue
        self._reactor = reactor
        self._backoff = backoff or Backoff(
            connection.backoff_initial, connection.backoff_factor, connection.backoff_cap
        )
        self.failures = 0
        self.state = "disconnected"
        self.session: Optional[FeedSession] = None
        self._protocol: Optional[FeedClientProtocol] = None
        self._reset_call: Optional[IDelayedCall] = None
        self._closed_waiters: list[Deferred[None]] = []
        self._client: Optional[ClientService] = None

    # -- service ----------------------------------------------------------

    def startService(self) -> None:
        super().startService()
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
        self._client = ClientService(endpoint, factory, retryPolicy=self._retry_delay, clock=self._reactor)
        self._set_state("connecting")
        self._client.startService()

    def stopService(self) -> Deferred[None]:
        """Close with code 1000 and the close handshake, then stop retrying."""
        super().stopService()
        protocol = self._protocol
        closed: Deferred[None] = succeed(None)
        if protocol is not None:
            closed = Deferred()
            self._closed_waiters.append(closed)
            protocol.sendClose(1000, "client shutting down")
        client = self._client

        def stop_client(_: object) -> object:
            # On a fresh stack: a subscriber may be stopping us from inside
            # ClientService's own state machine (the retry policy publishes),
            # and Automat refuses re-entry.
            return deferLater(self._reactor, 0, client.stopService) if client is not None else None

        closed.addCallback(stop_client)
        closed.addCallback(lambda _: self._set_state("shutdown"))
        return closed

    def _retry_delay(self, _client_service_attempts: int) -> float:
        self.failures += 1
        delay = self._backoff.delay(self.failures)
        if self.running:
            self._set_state("reconnecting", f"retry {self.failures} in {delay:.2f}s")
        return delay

    # -- connector (called by FeedClientProtocol) --------------------------

    def connection_opened(self, protocol: FeedClientProtocol) -> Callable[[bytes, bool], None]:
        self._protocol = protocol
        self._set_state("connected")
        clock = self._reactor
        self._reset_call = clock.callLater(self._connection.backoff_reset_after, self._stayed_open)  # type: ignore[attr-defined]
        session = self._session_factory(protocol.sendMessage, self.name, self._active)
        self.session = session
        receive = session.message_received
        seconds = clock.seconds  # type: ignore[attr-defined]
        reporter = self._reporter

        def deliver(payload: bytes, is_binary: bool) -> None:
            if is_binary:
                reporter.report("binary_frame", f"{len(payload)}-byte binary frame", seconds(), endpoint=self.name)
                return
            receive(payload, seconds())

        session.start()
        return deliver

    def connection_closed(
        self, protocol: FeedClientProtocol, clean: bool, code: Optional[int], reason: Optional[str]
    ) -> None:
        if self._reset_call is not None and self._reset_call.active():
            self._reset_call.cancel()
        self._reset_call = None
        if self.session is not None and protocol is self._protocol:
            self.session.close()
            self.session = None
        if protocol is self._protocol:
            self._protocol = None
        self._set_state("disconnected", f"code {code}{'' if clean else ' (unclean)'}: {reason or 'no reason'}")
        waiters, self._closed_waiters = self._closed_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _active(self) -> None:
        self._set_state("active")

    def _stayed_open(self) -> None:
        self._reset_call = None
        self.failures = 0

    def _set_state(self, state: str, reason: Optional[str] = None) -> None:
        self.state = state
        self.log.info(
            "{endpoint} {state}{why}", endpoint=self.name, state=state, why=f": {reason}" if reason else ""
        )
        self._publish(
            Connection(
                venue=self._venue,
                recv_ts=self._reactor.seconds(),  # type: ignore[attr-defined]
                endpoint=self.name,
                state=state,
                url=self.config.url,
                reason=reason,
            )
        )
