"""The thin Autobahn edge: moves frames between the socket and a connector.

No logic lives here.  ``onOpen`` asks the connector (the endpoint) for the
function that takes this connection's messages; the per-message path is one
call.  Autobahn may call ``onClose`` without ``onOpen`` (refused handshake),
which the connector must accept.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol


def disable_nagle(transport: Any) -> bool:
    """Turn on TCP_NODELAY.  Autobahn tries to, but before its options are
    copied onto the protocol, and swallows the AttributeError: measured here,
    Nagle stayed on and small frames waited up to ~40 ms for a delayed ACK."""
    try:
        transport.setTcpNoDelay(True)
        return True
    except (AttributeError, OSError):  # not TCP (a Unix socket, a test transport)
        return False


class FeedClientProtocol(WebSocketClientProtocol):
    _deliver: Optional[Callable[[bytes, bool], None]] = None

    def connectionMade(self) -> None:
        super().connectionMade()
        disable_nagle(self.transport)

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
        self.message_data = None

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        self._deliver = None
        self.factory.connector.connection_closed(self, wasClean, code, reason)


class FeedClientFactory(WebSocketClientFactory):
    protocol = FeedClientProtocol

    def __init__(self, connector: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connector = connector
