"""Raw frames in and out: what a feed received, exactly, for replay, tests and benchmarks.

``RecordedConnection`` wraps a connection's handler (the session): every frame
it receives is recorded with its endpoint, its connection (numbered per
endpoint) and its receive time, and so are the opening and the end of each
connection, so a replay can play each connection as it was.  ``Recorder``
writes off the reactor thread: the hot path only puts a tuple on a queue; a
writer thread turns batches into JSON lines in gzip files under one folder,
starting a new file past ``rotate_bytes`` (of uncompressed lines) or
``rotate_seconds``.

One line per record, five fields separated by tabs, the frame last and as
received: ``recv_us endpoint connection kind frame`` (the receive time in
integer microseconds since the epoch) where ``kind`` is
``open``, ``frame``, ``binary`` or ``close`` (``close`` carries the reason).
A frame that holds a newline (whitespace JSON allows), and every binary
frame, is written in base64 with ``kind`` ``frame64``/``binary``.  The frame
is not re-encoded (no JSON escaping): the writer only joins bytes, so it
keeps up with the feed.  ``read_recording`` reads a file or a folder of them
back in order, as dicts.
"""

from __future__ import annotations

import base64
import glob
import gzip
import os
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from twisted.logger import Logger
from zope.interface import implementer

from gfws.interfaces import IConnectionHandler, IConnectionLink

_STOP = object()
_HAND_OVER = 1 << 16  # bytes of records handed to the writer at a time
_MAX_CHUNKS = 4096  # chunks waiting for the writer (256 MiB) before records are dropped
_SUFFIX = ".tsv.gz"


class Recorder:
    """Records frames into rotating gzip files under ``folder``; never blocks its caller.

    The caller's thread (the reactor) formats each record into a buffer (~1 µs) and hands
    64 KiB at a time to the writer thread, which only compresses and writes: zlib lets go of
    the GIL while it works, so the writer takes next to nothing from the feed.  (A thread
    woken for every frame took a third of the feed's time.)
    """

    log = Logger()

    def __init__(self, folder: str, rotate_bytes: int = 256 << 20, rotate_seconds: float = 3600.0,
                 level: int = 1) -> None:
        self.folder = folder
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self._level = level  # gzip: fast, still ~8x smaller on Kraken's JSON
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._buffer = bytearray()
        self._handed_at = 0.0  # receive time of the last hand-over (the first record goes at once)
        self.records = 0  # written by the thread
        self.lost = 0  # records dropped after the recording failed
        self.files: list[str] = []
        self.failed: str | None = None
        self._connections: dict[str, int] = {}
        self._out: gzip.GzipFile | None = None
        self._written, self._opened = 0, 0.0
        self._thread = threading.Thread(target=self._run, name=f"gfws-recorder {folder}", daemon=True)
        self._thread.start()

    def put(self, record: tuple[float, str, int, str, Any]) -> None:
        """One record of any kind (openings, ends, binary frames)."""
        self._buffer += _line(record)
        self._maybe_hand_over(record[0])

    def recording(self, endpoint: str, number: int, inner: Callable[[bytes, float], None]
                  ) -> Callable[[bytes, float], None]:
        """``inner`` (a connection's ``frame_received``) with every text frame recorded first: the hot path,
        so one closure a connection and one formatting of each line."""
        buffer, put, hand_over = self._buffer, self.put, self._hand_over  # the buffer is only ever cleared
        prefix = b"%s\t%d\tframe\t" % (endpoint.encode(), number)
        newline = ord("\n")  # a byte's value: `b"\n" in payload` first tries it as one and formats an error

        def frame_received(payload: bytes, recv_ts: float) -> None:
            if newline in payload:
                put((recv_ts, endpoint, number, "frame", payload))
            else:
                buffer.extend(b"%d\t%b%b\n" % (recv_ts * 1_000_000, prefix, payload))
                if len(buffer) >= _HAND_OVER or recv_ts - self._handed_at >= 1.0:
                    hand_over(recv_ts)
            inner(payload, recv_ts)

        return frame_received

    def _maybe_hand_over(self, t: float) -> None:
        if len(self._buffer) >= _HAND_OVER or t - self._handed_at >= 1.0:
            self._hand_over(t)

    def _hand_over(self, now: float) -> None:
        if self._queue.qsize() >= _MAX_CHUNKS:  # the disk cannot keep up: drop, counted, never grow
            self.lost += self._buffer.count(b"\n")
        else:
            self._queue.put(bytes(self._buffer))
        self._buffer.clear()
        self._handed_at = now

    def connection_number(self, endpoint: str) -> int:
        """The next connection's number for ``endpoint`` (1, 2, ...)."""
        number = self._connections.get(endpoint, 0) + 1
        self._connections[endpoint] = number
        return number

    def close(self, timeout: float = 10.0) -> None:
        """Write what is buffered and queued, and close the file (blocks up to ``timeout``: call at shutdown)."""
        if self._buffer:
            self._hand_over(self._handed_at)
        self._queue.put(_STOP)
        self._thread.join(timeout)

    # -- the writer thread --------------------------------------------------------------

    def _run(self) -> None:
        chunk: Any = None
        try:
            # Compressing is the writer's only work: at the lowest priority (Linux), the feed comes first.
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        try:
            while True:
                chunk = self._queue.get()
                if chunk is _STOP:
                    break
                self._write(chunk)
                self.records += chunk.count(b"\n")
        except Exception as e:  # a full disk: the feed goes on, the recording stops, said once
            self.failed = repr(e)
            self.lost += chunk.count(b"\n") if isinstance(chunk, bytes) else 0
            self.log.failure("recording to {folder} stopped", folder=self.folder)
            while (chunk := self._queue.get()) is not _STOP:  # what still comes is dropped: memory stays flat
                self.lost += chunk.count(b"\n")
        finally:
            if self._out is not None:
                try:
                    self._out.close()
                except OSError:
                    pass

    def _write(self, chunk: bytes) -> None:
        """A chunk into the current file; a new file past the size or time limit."""
        if self._out is None or self._written >= self.rotate_bytes or (
                time.monotonic() - self._opened >= self.rotate_seconds):
            if self._out is not None:
                self._out.close()
            self._out, self._written, self._opened = self._open(), 0, time.monotonic()
        self._out.write(chunk)
        self._written += len(chunk)

    def _open(self) -> gzip.GzipFile:
        os.makedirs(self.folder, exist_ok=True)  # every missing level
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        path = os.path.join(self.folder, f"gfws-{stamp}-{os.getpid()}-{len(self.files):04d}{_SUFFIX}")
        self.files.append(path)
        return gzip.GzipFile(path, "ab", compresslevel=self._level)


def _line(record: tuple[float, str, int, str, Any]) -> bytes:
    t, endpoint, connection, kind, frame = record
    if type(frame) is not bytes:
        frame = str(frame).replace("\n", " ").encode()
    elif kind == "binary" or b"\n" in frame:
        frame, kind = base64.b64encode(frame), "binary" if kind == "binary" else "frame64"
    return b"%d\t%s\t%d\t%s\t%s\n" % (t * 1_000_000, endpoint.encode(), connection, kind.encode(), frame)


def parse_line(line: bytes) -> dict[str, Any]:
    """One recorded line as ``{"t", "endpoint", "connection", "kind", "frame"}`` (frame: bytes or text)."""
    t, endpoint, connection, kind, frame = line.rstrip(b"\n").split(b"\t", 4)
    name = kind.decode()
    if name in ("frame64", "binary"):
        frame = base64.b64decode(frame)
        name = "frame" if name == "frame64" else name
    value: Any = frame.decode("utf-8", "replace") if name in ("open", "close") else frame
    return {"t": int(t) / 1_000_000, "endpoint": endpoint.decode(), "connection": int(connection), "kind": name,
            "frame": value}


@implementer(IConnectionHandler)
class RecordedConnection:
    """A connection's handler, every frame recorded before it is handled.

    Everything else (``subscriptions``, ``books``...) is the wrapped handler's.
    """

    frame_received: Callable[[bytes, float], None]  # built once per connection: the hot path is one call

    def __init__(self, handler: IConnectionHandler, recorder: Recorder, endpoint: str, clock: Any) -> None:
        self.handler = handler
        self._put = recorder.put
        self._endpoint = endpoint = endpoint.replace("\t", " ")  # a field of a tab-separated line
        self._clock = clock
        self._number = recorder.connection_number(endpoint)
        self.frame_received = recorder.recording(endpoint, self._number, handler.frame_received)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handler, name)

    @property
    def ready(self) -> bool:
        return bool(self.handler.ready)

    def connection_made(self, link: IConnectionLink) -> None:
        self._put((self._clock.seconds(), self._endpoint, self._number, "open", ""))
        self.handler.connection_made(link)

    def binary_received(self, payload: bytes, recv_ts: float) -> None:
        self._put((recv_ts, self._endpoint, self._number, "binary", payload))
        self.handler.binary_received(payload, recv_ts)

    def leave(self) -> Any:
        return self.handler.leave()

    def connection_lost(self, reason: str) -> None:
        self._put((self._clock.seconds(), self._endpoint, self._number, "close", reason))
        self.handler.connection_lost(reason)

    def restate(self, recv_ts: float) -> Any:
        return self.handler.restate(recv_ts)


def recording_files(path: str) -> list[str]:
    """A recording file, or every recording file of a folder in the order written."""
    if os.path.isdir(path):
        return sorted(glob.glob(os.path.join(path, f"*{_SUFFIX}")))
    return [path]


def read_recording(path: str) -> Iterator[dict[str, Any]]:
    """Every record of a file or folder, in order (a file cut short ends where it was cut)."""
    for name in recording_files(path):
        with gzip.open(name, "rb") as f:
            try:
                for line in f:
                    yield parse_line(line)
            except (EOFError, OSError, zlib.error, ValueError):  # a writer killed mid-file: the rest is there
                continue
