"""The thin Autobahn edge: moves frames between the socket and a connector.

No logic lives here.  ``onOpen`` asks the connector (``IConnector``, the
endpoint) for the function that takes this connection's messages; the
per-message path is one call.  Autobahn may call ``onClose`` without
``onOpen`` (a refused handshake), which the connector accepts.  The endpoint
uses three verbs of this protocol only (``send``, ``close``, ``abort``), so a
test can stand in for it with no socket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.python.failure import Failure

from gfws.config import ConnectionConfig


def disable_nagle(transport: Any) -> bool:
    """Turn on TCP_NODELAY.  Autobahn tries to, but before its options are
    copied onto the protocol, and swallows the AttributeError: measured here,
    Nagle stayed on and small frames waited up to ~40 ms for a delayed ACK."""
    try:
        transport.setTcpNoDelay(True)
        return True
    except (AttributeError, OSError):  # not TCP (a Unix socket, a test transport)
        return False


# Bytes handed to Autobahn at a time.  Autobahn keeps what it has not parsed in one bytes object and
# slices it twice for every frame it takes out, copying the rest each time: one 64 KiB read of ~200-byte
# frames (a burst, a catch-up) cost ~64 KiB of copying per frame, ~54 KB a message measured under a full
# replay.  At 4 KiB a slice the copying per frame is bounded by the slice.
READ_SLICE = 4096


class FeedClientProtocol(WebSocketClientProtocol):
    _deliver: Callable[[bytes, bool], None] | None = None
    _cause: Failure | None = None

    def connectionMade(self) -> None:
        super().connectionMade()
        disable_nagle(self.transport)

    def dataReceived(self, data: bytes) -> None:
        """What the transport read, to Autobahn's parser in slices of at most ``READ_SLICE`` bytes
        (and without the adapter's per-read debug formatting, which costs even when not logged)."""
        received = self._dataReceived
        if len(data) <= READ_SLICE:
            received(data)
            return
        for start in range(0, len(data), READ_SLICE):
            if self.state == self.STATE_CLOSED:  # the connection failed: nothing after is read
                return
            received(data[start:start + READ_SLICE])

    def onOpen(self) -> None:
        self._deliver = self.factory.connector.connection_opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        deliver = self._deliver
        if deliver is not None:
            deliver(payload, isBinary)

    def onMessageEnd(self) -> None:
        """Autobahn's own version also fires its observer event ``message``,
        which makes a Deferred per message even with nobody listening; gfws
        uses no observers, so a message goes straight to ``onMessage``."""
        if not self.failedByMe:
            self.onMessage(b"".join(self.message_data), self.message_is_binary)
        self.message_data = None  # type: ignore[assignment]

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._cause = reason  # the transport's own words (TLS checks say which failed)
        super().connectionLost(reason)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self._deliver = None
        self.factory.connector.connection_closed(self, code, reason, wasClean, self._cause)

    # -- the three verbs the endpoint uses ----------------------------------

    def send(self, payload: bytes) -> None:
        if self.state == self.STATE_OPEN:  # not while closing
            self.sendMessage(payload)

    def close(self, code: int, reason: str) -> None:
        self.sendClose(code, reason)

    def abort(self) -> None:
        self.dropConnection(abort=True)


class FeedClientFactory(WebSocketClientFactory):
    protocol = FeedClientProtocol
    noisy = False  # the endpoint's connection events say it better

    def __init__(self, url: str, connection: ConnectionConfig) -> None:
        super().__init__(url=url)
        self.connector: Any = None  # set by the endpoint that uses this factory
        self.setProtocolOptions(
            openHandshakeTimeout=connection.open_handshake_timeout,
            closeHandshakeTimeout=connection.close_handshake_timeout,
            autoPingInterval=connection.auto_ping_interval,
            autoPingTimeout=connection.auto_ping_timeout,
            maxMessagePayloadSize=connection.max_message_size,
            maxFramePayloadSize=connection.max_message_size,
        )
