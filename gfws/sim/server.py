"""The simulator's network side: Autobahn server, gates, twistd service.

A ``SimGate`` is one listening endpoint of the venue (as ws.kraken.com and
beta-ws.kraken.com are two doors to one exchange).  Several gates can share
one ``SimVenue``, and each carries its own faults: refuse connections (TCP or
HTTP 503), drop every connection without a close frame, stall (socket open,
nothing sent; optionally still answering pings), drop or delay acks, restart.
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from gfws.sim.gate import GateFaults
from gfws.sim.session import SimSession
from gfws.sim.venue import SimVenue


class KrakenSimProtocol(WebSocketServerProtocol):
    session: SimSession | None = None

    def connectionMade(self) -> None:
        super().connectionMade()
        self.tcp.setTcpNoDelay(True)  # as Kraken does; Autobahn's own attempt comes too early
        gate: SimulatorService = self.factory.gate
        gate.protocols.add(self)
        if gate.stalled == "silent":
            self.tcp.pauseProducing()

    @property
    def tcp(self) -> Any:
        """The TCP transport (typed loosely by Twisted)."""
        return self.transport

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        super().connectionLost(reason)
        self.factory.gate.protocol_lost(self)

    def onConnect(self, request: Any) -> None:
        if self.factory.gate.refuse == "http":
            raise ConnectionDeny(503, "Service Unavailable")

    def onOpen(self) -> None:
        gate = self.factory.gate
        self.session = gate.venue.connect(self._send_frame, gate, self._drop)

    def _send_frame(self, payload: bytes) -> None:
        # Not ``_send``: Autobahn's own ``_send()`` drains its queue of chopped writes.
        if self.state == self.STATE_OPEN:  # not while closing or dropped
            self.sendMessage(payload, False)

    def _drop(self) -> None:
        """Cut this connection with no close frame (the account's drop fault).

        Not aborted as ``close_all`` does: what was sent before the drop
        (the fills before it) is flushed first, then the TCP connection ends.
        """
        self.dropConnection(abort=False)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.session is not None:
            self.session.request_received(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.session is not None:
            self.factory.gate.venue.disconnect(self.session)
            self.session = None


class KrakenSimFactory(WebSocketServerFactory):
    protocol = KrakenSimProtocol

    def __init__(self, gate: SimulatorService, url: str = "ws://127.0.0.1/v2") -> None:
        super().__init__(url)
        self.gate = gate
        self.noisy = False


class SimulatorService(Service, GateFaults):
    """One listening endpoint (gate) of a ``SimVenue``, with its own faults.

    Port 0 picks a free port; a restart reuses the port it got.
    """

    log = Logger()

    def __init__(
        self,
        venue: SimVenue,
        port: int = 0,
        interface: str = "127.0.0.1",
        reactor: Any = None,
        name: str = "gfws-sim",
        tls: Any = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.venue = venue
        self.requested_port = port
        self.interface = interface
        self.name = name
        self.tls = tls  # an IOpenSSLContextFactory: serve wss:// instead of ws://
        self._reactor = reactor
        self._listening: Any = None
        self.port: int | None = None
        self.factory = KrakenSimFactory(self)
        self.protocols: set[KrakenSimProtocol] = set()
        self._close_waiters: list[Deferred[None]] = []
        self._restart_call: Any = None
        GateFaults.__init__(self)
        self.refuse: str | None = None  # "tcp": not listening; "http": handshake answered 503

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.interface}:{self.port}/v2"

    # -- service ----------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._listen()
        self.venue.retain()
        self.log.info("Kraken v2 simulator listening on {url}", url=self.url)

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        self.venue.release()
        if self._restart_call is not None and self._restart_call.active():
            self._restart_call.cancel()
        return DeferredList([self._stop_listening(), self.close_all()])

    def _listen(self) -> None:
        port = self.port or self.requested_port
        if self.tls is not None:
            self._listening = self._reactor.listenSSL(port, self.factory, self.tls, interface=self.interface)
        else:
            self._listening = self._reactor.listenTCP(port, self.factory, interface=self.interface)
        self.port = self._listening.getHost().port

    def _stop_listening(self) -> Deferred[Any]:
        if self._listening is None:
            return succeed(None)
        listening, self._listening = self._listening, None
        stopped: Deferred[None] = listening.stopListening()
        return stopped

    # -- faults -----------------------------------------------------------

    def close_all(self) -> Deferred[None]:
        """Drop every client connection at once, without a close frame."""
        if not self.protocols:
            return succeed(None)
        done: Deferred[None] = Deferred()
        self._close_waiters.append(done)
        for protocol in list(self.protocols):
            protocol.dropConnection(abort=True)
        return done

    def protocol_lost(self, protocol: KrakenSimProtocol) -> None:
        self.protocols.discard(protocol)
        if not self.protocols:
            waiters, self._close_waiters = self._close_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def stall(self, mode: str = "silent") -> None:
        """Keep sockets open and send nothing.  ``silent``: not even WebSocket
        pongs (reading stops); ``pings``: still answer WebSocket and Kraken pings."""
        if mode not in ("silent", "pings"):
            raise ValueError(f"stall mode {mode!r}: expected 'silent' or 'pings'")
        self.stalled = mode
        if mode == "silent":
            for protocol in self.protocols:
                protocol.tcp.pauseProducing()

    def unstall(self) -> None:
        if self.stalled == "silent":
            for protocol in self.protocols:
                protocol.tcp.resumeProducing()
        self.stalled = None

    def refuse_connections(self, mode: str = "tcp") -> Deferred[Any]:
        """``tcp``: stop listening (connection refused); ``http``: answer the
        WebSocket handshake with 503.  Existing connections stay."""
        if mode not in ("tcp", "http"):
            raise ValueError(f"refuse mode {mode!r}: expected 'tcp' or 'http'")
        self.refuse = mode
        return self._stop_listening() if mode == "tcp" else succeed(None)

    def accept_connections(self) -> None:
        if self.refuse == "tcp" and self.running:
            self._listen()
        self.refuse = None

    def restart(self, downtime: float = 1.0) -> Deferred[Any]:
        """Drop everyone, stop listening, and listen again after ``downtime``."""
        d = DeferredList([self._stop_listening(), self.close_all()])

        def relisten() -> None:
            self._restart_call = None
            if self.running and self.refuse != "tcp":
                self._listen()

        self._restart_call = self._reactor.callLater(downtime, relisten)
        return d
