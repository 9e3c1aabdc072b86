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
received: ``recv_ts endpoint connection kind frame`` where ``kind`` is
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
_SUFFIX = ".tsv.gz"


class Recorder:
    """Records frames into rotating gzip files under ``folder``; never blocks its caller."""

    log = Logger()

    def __init__(self, folder: str, rotate_bytes: int = 256 << 20, rotate_seconds: float = 3600.0,
                 level: int = 1) -> None:
        self.folder = folder
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self._level = level  # gzip: fast, still ~8x smaller on Kraken's JSON
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.put = self._queue.put  # the hot path: one call
        self.records = 0  # written by the thread
        self.lost = 0  # records dropped after the recording failed
        self.files: list[str] = []
        self.failed: str | None = None
        self._connections: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name=f"gfws-recorder {folder}", daemon=True)
        self._thread.start()

    def connection_number(self, endpoint: str) -> int:
        """The next connection's number for ``endpoint`` (1, 2, ...)."""
        number = self._connections.get(endpoint, 0) + 1
        self._connections[endpoint] = number
        return number

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued and close the file (blocks up to ``timeout``: call at shutdown)."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    # -- the writer thread --------------------------------------------------------------

    def _run(self) -> None:
        out: gzip.GzipFile | None = None
        written, opened = 0, 0.0
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < 4096:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = batch[-1] is _STOP
                lines = b"".join(_line(record) for record in batch if record is not _STOP)
                if lines:
                    if out is None or written >= self.rotate_bytes or time.monotonic() - opened >= self.rotate_seconds:
                        if out is not None:
                            out.close()
                        out, written, opened = self._open(), 0, time.monotonic()
                    out.write(lines)
                    written += len(lines)
                    self.records += len(batch) - stop
                if stop:
                    break
        except Exception as e:  # a full disk: the feed goes on, the recording stops, said once
            self.failed = repr(e)
            self.log.failure("recording to {folder} stopped", folder=self.folder)
            while self._queue.get() is not _STOP:  # what still comes is dropped, so memory stays flat
                self.lost += 1
        finally:
            if out is not None:
                try:
                    out.close()
                except OSError:
                    pass

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
    return b"%r\t%s\t%d\t%s\t%s\n" % (t, endpoint.encode(), connection, kind.encode(), frame)


def parse_line(line: bytes) -> dict[str, Any]:
    """One recorded line as ``{"t", "endpoint", "connection", "kind", "frame"}`` (frame: bytes or text)."""
    t, endpoint, connection, kind, frame = line.rstrip(b"\n").split(b"\t", 4)
    name = kind.decode()
    if name in ("frame64", "binary"):
        frame = base64.b64decode(frame)
        name = "frame" if name == "frame64" else name
    value: Any = frame.decode("utf-8", "replace") if name in ("open", "close") else frame
    return {"t": float(t), "endpoint": endpoint.decode(), "connection": int(connection), "kind": name,
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
        inner = handler.frame_received
        put, number = self._put, self._number

        def frame_received(payload: bytes, recv_ts: float) -> None:
            put((recv_ts, endpoint, number, "frame", payload))
            inner(payload, recv_ts)

        self.frame_received = frame_received

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
