"""The Autobahn edge: what the transport reads reaches the connector whole, in order, once.

A read is handed to Autobahn in slices (``READ_SLICE``) so that a large read of small frames does not
cost its parser a copy of the rest of the buffer per frame; these tests feed one protocol, after a real
opening handshake over a string transport, reads far larger than a slice, with frames that straddle
slices and a message larger than a slice.
"""

from __future__ import annotations

import base64
import hashlib
import random

from twisted.internet.testing import StringTransport

from gfws.config.sections import ConnectionConfig
from gfws.connection.protocol import READ_SLICE, FeedClientFactory

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Transport(StringTransport):
    def unregisterProducer(self) -> None:  # Autobahn unregisters on failing a connection, registered or not
        self.producer = None


class Connector:
    def __init__(self) -> None:
        self.messages: list[tuple[bytes, bool]] = []
        self.closed: list[tuple[int | None, str | None]] = []

    def connection_opened(self, protocol):
        return lambda payload, is_binary: self.messages.append((payload, is_binary))

    def connection_closed(self, protocol, code, reason, clean, cause):
        self.closed.append((code, reason))


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked server frame."""
    n = len(payload)
    if n < 126:
        header = bytes([0x80 | opcode, n])
    elif n < 1 << 16:
        header = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return header + payload


def opened() -> tuple[object, Transport, Connector]:
    factory = FeedClientFactory("ws://127.0.0.1:9/v2", ConnectionConfig())
    # No timers of Autobahn's on the real reactor: nothing here waits.
    factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=0, autoPingInterval=0)
    factory.connector = Connector()
    protocol = factory.buildProtocol(None)
    transport = Transport()
    protocol.makeConnection(transport)
    request = transport.value().decode()
    key = next(line.split(":", 1)[1].strip() for line in request.split("\r\n")
               if line.lower().startswith("sec-websocket-key"))
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    protocol.dataReceived(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
    assert protocol.state == protocol.STATE_OPEN
    return protocol, transport, factory.connector


def test_reads_far_larger_than_a_slice_deliver_every_message_once_in_order():
    protocol, _, connector = opened()
    rng = random.Random(7)
    payloads = [f'{{"n":{i},"pad":"{"x" * rng.randint(0, 400)}"}}'.encode() for i in range(3000)]
    payloads[1234] = b'{"big":"' + b"y" * (3 * READ_SLICE) + b'"}'  # a message larger than a slice
    wire = b"".join(frame(p) for p in payloads)
    cut = 0
    while cut < len(wire):  # reads of 1 byte to 256 KiB: every frame straddles some slice boundary
        size = rng.choice([1, 7, READ_SLICE - 1, READ_SLICE + 3, 65536, 262144])
        protocol.dataReceived(wire[cut:cut + size])
        cut += size
    assert connector.messages == [(p, False) for p in payloads]


def test_nothing_after_a_failed_frame_is_read():
    protocol, _, connector = opened()
    good = [frame(b'{"n":%d}' % i) for i in range(100)]
    bad = bytes([0x80 | 0x3, 1]) + b"x"  # a reserved opcode: Autobahn fails the connection
    wire = b"".join(good[:50]) + bad + b"".join(good[50:]) * 200  # far more than a slice after it
    protocol.dataReceived(wire)
    assert [p for p, _ in connector.messages] == [b'{"n":%d}' % i for i in range(50)]
    assert protocol.state == protocol.STATE_CLOSED  # as Autobahn does with the read whole
