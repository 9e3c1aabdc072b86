"""A recording served as a Kraken v2 venue: yesterday's feed, again.

Each client connection is served the next connection of the recording (one
endpoint's: the first one recorded unless named), frame by frame, at the
recorded pace times ``speed`` or as fast as possible (``speed=None``).  The
recorded answers to the recorded client's requests are kept in their place:
when one comes up, the replay waits for this client's matching request
(method, channel, symbol) and sends the recorded answer with this client's
``req_id``, so the client sees every frame in the order the original client
saw it.  Pings are answered at once (recorded pongs are dropped).  When a
recorded connection ended, this client's connection is dropped too, and the
next connection gets the next one.

The file format (gzip, one tab-separated line per record: receive time in µs,
endpoint, connection, kind, frame) is read here independently of the client
side's recorder: the simulator is the oracle and imports nothing of it.
"""

from __future__ import annotations

import base64
import glob
import gzip
import os
import zlib
from collections.abc import Iterable
from typing import Any

import msgspec
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.logger import Logger

_decode = msgspec.json.decode
_encode = msgspec.json.encode
CHUNK = 1000  # frames sent per reactor turn at full speed (the client's requests get a turn too)


class RecordedConnection:
    """One recorded connection: its frames (recv time, text) and how it ended."""

    def __init__(self, endpoint: str, number: int) -> None:
        self.endpoint = endpoint
        self.number = number
        self.frames: list[tuple[float, bytes]] = []
        self.closed: str | None = None  # the reason, when the recording saw it end


def load(path: str, endpoint: str | None = None) -> list[RecordedConnection]:
    """The connections of ``endpoint`` (default: the first recorded) in a file or folder of recordings."""
    names = sorted(glob.glob(os.path.join(path, "*.tsv.gz"))) if os.path.isdir(path) else [path]
    if not names:
        raise ValueError(f"{path}: no recording files (*.tsv.gz)")
    connections: list[RecordedConnection] = []
    current: dict[int, RecordedConnection] = {}  # connection number -> the latest opened (numbers restart per run)
    for name in names:
        with gzip.open(name, "rb") as f:
            try:
                for line in f:
                    t, who, number_text, kind, frame = line.rstrip(b"\n").split(b"\t", 4)
                    endpoint = endpoint or who.decode()
                    if who.decode() != endpoint:
                        continue
                    number = int(number_text)
                    connection = current.get(number)
                    if kind == b"open" or connection is None:
                        connection = current[number] = RecordedConnection(endpoint, number)
                        connections.append(connection)
                    if kind == b"frame":
                        connection.frames.append((int(t) / 1_000_000, frame))
                    elif kind == b"frame64":
                        connection.frames.append((int(t) / 1_000_000, base64.b64decode(frame)))
                    elif kind == b"close":
                        connection.closed = frame.decode("utf-8", "replace") or "closed"
            except (EOFError, OSError, zlib.error, ValueError):
                pass  # cut short (a killed writer): what was written is served, and the next files too
    return connections


class _Request:
    __slots__ = ("channel", "method", "req_id", "symbols")

    def __init__(self, method: str, channel: str | None, symbols: set[str], req_id: Any) -> None:
        self.method, self.channel, self.symbols, self.req_id = method, channel, symbols, req_id


class Playback:
    """Plays one recorded connection to one client."""

    def __init__(self, recorded: RecordedConnection, protocol: Any, clock: Any, speed: float | None,
                 ack_wait: float) -> None:
        self._recorded = recorded
        self._protocol = protocol
        self._clock = clock
        self._speed = speed
        self._ack_wait = ack_wait
        self.position = 0
        self._requests: list[_Request] = []
        self._timer: Any = None
        self._waiting_since: float | None = None
        self._t0 = recorded.frames[0][0] if recorded.frames else 0.0
        self._started = clock.seconds()
        self.done = False

    def start(self) -> None:
        self._pump()

    def stop(self) -> None:
        self.done = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()

    def request(self, payload: bytes) -> None:
        try:
            request = _decode(payload)
            method, req_id = request.get("method"), request.get("req_id")
        except (msgspec.DecodeError, AttributeError):
            return
        if method == "ping":
            self._protocol.sendMessage(_encode({"method": "pong", "req_id": req_id}))
            return
        params = request.get("params") or {}
        self._requests.append(_Request(method, params.get("channel"), set(params.get("symbol") or ()), req_id))
        if self._waiting_since is not None:
            self._schedule(0)

    def _schedule(self, delay: float) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = self._clock.callLater(delay, self._pump)

    def _pump(self) -> None:
        self._timer = None
        frames, sent = self._recorded.frames, 0
        while not self.done and self.position < len(frames):
            t, frame = frames[self.position]
            if self._speed is not None:
                due = self._started + (t - self._t0) / self._speed - self._clock.seconds()
                if due > 0:
                    self._schedule(due)
                    return
            elif sent >= CHUNK:
                self._schedule(0)
                return
            if b'"method"' not in frame[:200]:
                self._protocol.sendMessage(frame)
            elif not self._answer(frame):
                return  # waiting for this client's request
            self.position += 1
            sent += 1
        if not self.done and self.position >= len(frames):
            self.done = True
            if self._recorded.closed is not None:
                self._protocol.dropConnection(abort=False)  # as the recorded one ended: no close frame

    def _answer(self, frame: bytes) -> bool:
        """Send a recorded answer (False: its request has not come yet)."""
        message = _decode(frame)
        method = message.get("method")
        if method == "pong" or (method == "ping" and "success" in message):
            return True  # pings are answered as they come
        if method not in ("subscribe", "unsubscribe"):
            self._protocol.sendMessage(frame)
            return True
        result = message.get("result") or {}
        channel = result.get("channel") or message.get("channel")
        symbol = result.get("symbol") or message.get("symbol")
        for request in self._requests:
            if request.method == method and (channel is None or request.channel == channel) and (
                    symbol is None or not request.symbols or symbol in request.symbols):
                request.symbols.discard(symbol)
                if not request.symbols:
                    self._requests.remove(request)
                message["req_id"] = request.req_id
                self._protocol.sendMessage(_encode(message))
                self._waiting_since = None
                return True
        now = self._clock.seconds()
        if self._waiting_since is None:
            self._waiting_since = now
        if now - self._waiting_since >= self._ack_wait:
            self._waiting_since = None  # the recorded client asked what this one never will: skip it
            return True
        self._schedule(self._ack_wait - (now - self._waiting_since))
        return False


class _ReplayProtocol(WebSocketServerProtocol):
    playback: Playback | None = None

    def onOpen(self) -> None:
        self.transport.setTcpNoDelay(True)  # type: ignore[union-attr]
        self.playback = self.factory.service.connected(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.playback is not None:
            self.playback.request(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.playback is not None:
            self.playback.stop()
        self.factory.service.protocols.discard(self)


class ReplayService(Service):
    """Serves ``connections`` (from ``load``) on a loopback port, one per client connection."""

    log = Logger()

    def __init__(self, connections: Iterable[RecordedConnection], port: int = 0, interface: str = "127.0.0.1",
                 speed: float | None = 1.0, ack_wait: float = 5.0, reactor: Any = None, cycle: bool = False) -> None:
        """``cycle``: once every recorded connection was served, the next client starts over (benchmarks)."""
        if reactor is None:
            from twisted.internet import reactor
        self.connections = list(connections)
        self.requested_port = port
        self.interface = interface
        self.speed = speed
        self.ack_wait = ack_wait
        self.cycle = cycle
        self._reactor = reactor
        self.port: int | None = None
        self._listening: Any = None
        self.played: list[Playback] = []
        self.protocols: set[Any] = set()
        self.factory = WebSocketServerFactory("ws://127.0.0.1/v2")
        self.factory.protocol = _ReplayProtocol
        self.factory.service = self  # type: ignore[attr-defined]
        self.factory.noisy = False

    @property
    def url(self) -> str:
        return f"ws://{self.interface}:{self.port}/v2"

    @property
    def data_remaining(self) -> int:
        """Recorded frames not yet served that are not answers to requests (those wait for the client's)."""
        left = 0
        for i, connection in enumerate(self.connections):
            start = self.played[i].position if i < len(self.played) else 0
            left += sum(1 for _, frame in connection.frames[start:] if b'"method"' not in frame[:200])
        return left

    def connected(self, protocol: Any) -> Playback | None:
        self.protocols.add(protocol)
        if self.cycle and len(self.played) >= len(self.connections):
            self.played = []
        if len(self.played) >= len(self.connections):
            self.log.info("replay: every recorded connection served; closing a new one")
            protocol.sendClose(1000, "the recording is over")
            return None
        playback = Playback(self.connections[len(self.played)], protocol, self._reactor, self.speed, self.ack_wait)
        self.played.append(playback)
        playback.start()
        return playback

    def startService(self) -> None:
        super().startService()
        self._listening = self._reactor.listenTCP(self.requested_port, self.factory, interface=self.interface)
        self.port = self._listening.getHost().port
        frames = sum(len(c.frames) for c in self.connections)
        self.log.info("replaying {frames} frames of {n} connection(s) on {url} at {speed}", frames=frames,
                      n=len(self.connections), url=self.url,
                      speed="full speed" if self.speed is None else f"{self.speed:g}x")

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        for playback in self.played:
            playback.stop()
        for protocol in list(self.protocols):
            if protocol.transport is not None:
                protocol.transport.abortConnection()
        listening, self._listening = self._listening, None
        return DeferredList([listening.stopListening() if listening is not None else succeed(None)])
