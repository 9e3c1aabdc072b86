"""JSON Lines sink: one event per line, written off the reactor thread.

Decimals are written as fixed-point strings keeping the pair's precision
(``"0.00000100"``, never ``1E-6``); ``recv_ts`` as ISO 8601 UTC.

What it promises:
- the reactor never waits for the file or pipe: lines are queued and a
  writer thread writes them (a slow reader of standard output stalls only
  that thread);
- the queue is bounded (``max_queue`` lines): past it the oldest market data
  lines are dropped and counted, and ``report`` is told (an ``integrity``
  event); the account's fills and orders are never dropped: they stay queued
  past the bound (``held``), said the same way, and the ``sink_backpressure``
  alert fires while any is held;
- one event that cannot be encoded is reported and skipped, never its batch;
- a failed write is retried with backoff from where it stopped, so no
  partial line is ever left for the next one to be glued onto;
- a file moved or removed (logrotate) is reopened at its path;
- a closed standard output (EPIPE) is said once, then ``on_closed`` runs.
"""

from __future__ import annotations

import errno
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import orjson
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from gfws.events import Book, Event, Fill, Order
from gfws.interfaces import IEventSink

_CHUNK = 1 << 16  # bytes the writer takes from the queue at a time
_RETRY_FIRST, _RETRY_CAP = 0.05, 5.0  # seconds between write retries (doubling)
_CLOSE_RETRIES = 20  # failed writes of one chunk, once closing, before its lines count as lost
REPORT_EVERY = 5.0  # seconds between reports of an overflow that goes on (its own reports go to this sink too)
_write = os.write  # the one system call the writer makes (a test stands a full disk in for it)


def _decimal_text(value: Any) -> str:
    if type(value) is Decimal:
        return format(value, "f")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


# A book level's text, by the identity of its (price, qty) pair: consecutive book events share the pairs
# of the levels that did not change, so a depth-10 book writes out ~2 new Decimals instead of 40 (the
# Decimals written in Python were most of a sink's cost per book).  The cache holds each pair it names, so
# an id is never reused while cached (replaced pairs live on until it is emptied); it starts afresh when
# full: ~11 MB at most, and a feed with more live levels than it holds (25 pairs at depth 1000) empties it
# often and saves less.  Writer threads share it: each step is one dict operation, atomic under the GIL.
_LEVEL_TEXTS: dict[int, tuple[Any, list[str]]] = {}
_LEVEL_TEXTS_MAX = 20_000


class _NotDecimalLevels(Exception):
    """A level that is not a (Decimal, Decimal) pair: the general encoder writes it as it is."""


def _levels_text(levels: tuple[Any, ...]) -> list[list[str]]:
    texts = _LEVEL_TEXTS
    out = []
    for pair in levels:
        known = texts.get(id(pair))
        if known is None or known[0] is not pair:
            if type(pair) is not tuple or len(pair) != 2 or type(pair[0]) is not Decimal or \
                    type(pair[1]) is not Decimal:
                raise _NotDecimalLevels
            if len(texts) >= _LEVEL_TEXTS_MAX:
                texts.clear()
            known = (pair, [format(pair[0], "f"), format(pair[1], "f")])
            texts[id(pair)] = known
        out.append(known[1])
    return out


_second: tuple[int | None, str] = (None, "")  # the last whole second written, and its text


def _iso(recv_ts: float) -> str:
    """ISO 8601 UTC to the microsecond, as ``datetime.fromtimestamp(...).isoformat()`` writes it (rounded half
    to even, as it rounds); the text of the second is made once a second, not once an event."""
    global _second
    second = int(recv_ts // 1)
    micros = round((recv_ts - second) * 1_000_000)
    if micros == 1_000_000:
        second, micros = second + 1, 0
    known = _second
    if known[0] != second:
        known = _second = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{known[1]}.{micros:06d}Z"


def encode_event(event: Event) -> bytes:
    """One event as a JSON object (no newline)."""
    if type(event) is Book:  # the most frequent, its levels written once per pair (above)
        try:
            return orjson.dumps({
                "type": "book", "venue": event.venue, "recv_ts": _iso(event.recv_ts), "symbol": event.symbol,
                "bids": _levels_text(event.bids), "asks": _levels_text(event.asks), "checksum": event.checksum,
                "snapshot": event.snapshot, "ts": event.ts, "valid": event.valid, "reason": event.reason})
        except _NotDecimalLevels:
            pass
    data = msgspec.to_builtins(event, builtin_types=(Decimal,))
    data["recv_ts"] = _iso(event.recv_ts)
    return orjson.dumps(data, default=_decimal_text)


KEPT = (Fill, Order)  # the account's own events: never dropped by a sink


class _Kept(bytes):
    """A line a full queue never drops."""


def _drop_oldest(queue: deque[bytes], over: int) -> int:
    """Drop up to ``over`` of the oldest lines that may be dropped; return how many went.
    (The newest are what a consumer acts on; fills and orders stay.)"""
    if over <= 0:
        return 0
    kept: list[bytes] = []
    dropped = 0
    while dropped < over and queue:
        line = queue.popleft()
        if type(line) is _Kept:
            kept.append(line)
        else:
            dropped += 1
    queue.extendleft(reversed(kept))
    return dropped


@implementer(IEventSink)
class JsonlSink:
    log = Logger()

    def __init__(
        self,
        path: str,
        reactor: Any = None,
        max_queue: int = 100_000,
        report: Callable[[str, str], None] = lambda kind, detail: None,
        on_closed: Callable[[str], None] = lambda reason: None,
    ) -> None:
        """``path`` is a file appended to, or ``-`` for standard output."""
        if reactor is None:
            from twisted.internet import reactor
        self.path = path
        self._reactor = reactor
        self._max_queue = max_queue
        self._report = report
        self._on_closed = on_closed
        self._fd = os.dup(1) if path == "-" else self._open()  # fd 1 itself: twistd replaces sys.stdout
        self._lines: deque[bytes] = deque()
        self._wake = threading.Condition()
        self._idle = threading.Event()
        self._idle.set()
        self._closing = False
        self._finished = False  # the writer has ended (set under the lock, with the waiters taken)
        self._closed: list[Deferred[None]] = []
        self._unreported = 0  # lines dropped since the last overflow report
        self._reader_lost = False
        self._reported_at: float | None = None
        self.written = 0  # lines written
        self.dropped = 0  # lines dropped because the queue was full
        self.unencodable = 0
        self.write_errors = 0
        self.reopened = 0
        self.reopen_errors = 0
        self.lost_fills: list[str] = []  # exec_ids of fills given up at shutdown (the ledger forgets them)
        self._reopen_asked = False
        self._thread = threading.Thread(target=self._run, name=f"gfws-jsonl {path}", daemon=True)
        self._thread.start()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    # -- the reactor's side: never blocks -------------------------------------------

    def write(self, events: Sequence[Event]) -> None:
        lines: list[bytes] = []
        for event in events:
            try:
                line = encode_event(event) + b"\n"
                lines.append(_Kept(line) if type(event) in KEPT else line)
            except (TypeError, ValueError, OverflowError) as e:  # e.g. an integer over 64 bits
                self.unencodable += 1
                detail = f"{type(event).__name__} event cannot be written as JSON: {e}"
                if self.unencodable == 1 or self.unencodable % 1000 == 0:
                    self.log.error("{sink!r}: {detail} ({n} so far); skipped", sink=self, detail=detail,
                                   n=self.unencodable)
                self._report("unencodable_event", detail)
        if not lines:
            return
        with self._wake:
            if self._closing or self._finished:
                self.dropped += len(lines)  # nobody will write them: counted, never silent
                over = 0 if self._reader_lost else len(lines)  # (a reader gone was said once already)
            else:
                queue = self._lines
                queue.extend(lines)
                over = _drop_oldest(queue, len(queue) - self._max_queue)
                self.dropped += over
                self._idle.clear()
                self._wake.notify()
        if over:
            self._overflowed(over)

    def _overflowed(self, lines: int) -> None:
        """Report dropped lines at once, then at most every REPORT_EVERY seconds with the count since:
        the report is an event, which comes to this sink too."""
        self._unreported += lines
        now = self._reactor.seconds()
        if self._reported_at is not None and now - self._reported_at < REPORT_EVERY:
            return
        self._reported_at = now
        count, self._unreported = self._unreported, 0
        self.log.error("{sink!r}: {count} lines dropped ({total} so far): the writer is behind or gone",
                       sink=self, count=count, total=self.dropped)
        self._report("sink_overflow", f"{self!r}: {count} lines dropped ({self.dropped} so far)")

    @property
    def queued(self) -> int:
        """Lines waiting for the writer."""
        return len(self._lines)

    @property
    def held(self) -> int:
        """Fills and orders queued past the bound (never dropped): back-pressure to be alerted on."""
        over = len(self._lines) - self._max_queue
        return over if over > 0 else 0

    def flush(self) -> None:
        """Nothing to wait for: the writer thread writes as soon as lines are queued."""

    def close(self) -> Deferred[None]:
        """Write what is queued, then close; fires when done (on the reactor thread, which must run).

        The caller bounds the wait (the service: ``shutdown_timeout``) and then calls ``abandon``.
        """
        d: Deferred[None] = Deferred()
        with self._wake:
            if self._finished:
                d.callback(None)
                return d
            self._closed.append(d)
            self._closing = True
            self._wake.notify()
        return d

    def abandon(self) -> int:
        """Give up on what is still queued (a close that ran out of time): counted as dropped."""
        with self._wake:
            lines = list(self._lines)
            self._lines.clear()
            self.dropped += len(lines)
            self._closing = True
            self._wake.notify()
        self.lost_fills += [orjson.loads(line)["exec_id"] for line in lines
                            if type(line) is _Kept and line.startswith(b'{"type":"fill"')]
        if lines:
            self.log.error("{sink!r}: {lost} lines abandoned at shutdown (the writer is blocked)", sink=self,
                           lost=len(lines))
        return len(lines)

    def drained(self, timeout: float) -> bool:
        """Block until every queued line is written (for tests and scripts; never on the reactor thread)."""
        return self._idle.wait(timeout)

    # -- the writer thread --------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._wake:
                    while not self._lines and not self._closing:
                        self._idle.set()
                        self._wake.wait()
                    if not self._lines and self._closing:
                        break
                    chunk, count = self._take()
                if self._reopen_asked:  # rotated (and told): the next lines go to the new file
                    self._follow_rotation()
                if not self._write(chunk):
                    with self._wake:  # the reader is gone, or closing gave up: what is left is lost
                        lost = count + len(self._lines)
                        self._lines.clear()
                        self.dropped += lost
                    if lost and not self._reader_lost:  # (a reader that went away was said once already)
                        self._reactor.callFromThread(self._overflowed, lost)
                    break
                self.written += count
                self._follow_rotation()
        except Exception:  # a bug of ours: said, never a silent dead writer
            self._reactor.callFromThread(self.log.failure, "{sink!r}: the writer failed; events are dropped",
                                         sink=self)
        finally:
            os.close(self._fd)
            with self._wake:
                self._finished = True
                waiters, self._closed = self._closed, []
            self._idle.set()
            for d in waiters:
                self._reactor.callFromThread(d.callback, None)

    def _take(self) -> tuple[bytes, int]:
        lines, size, taken = self._lines, 0, []
        while lines and size < _CHUNK:
            line = lines.popleft()
            taken.append(line)
            size += len(line)
        return b"".join(taken), len(taken)

    def _write(self, chunk: bytes) -> bool:
        """Write all of ``chunk``, retrying the rest after a failure; False when the reader is gone."""
        view, delay, retries = memoryview(chunk), _RETRY_FIRST, 0
        while view:
            try:
                view = view[_write(self._fd, view):]
                delay = _RETRY_FIRST
            except OSError as e:
                if e.errno == errno.EPIPE:
                    self._reader_lost = True
                    self._reactor.callFromThread(self._reader_gone)
                    return False
                self.write_errors += 1
                if self.write_errors == 1 or self.write_errors % 100 == 0:
                    self._reactor.callFromThread(
                        self.log.error, "{sink!r}: write failed ({n} so far): {error}; retrying in {delay:.2f}s",
                        sink=self, n=self.write_errors, error=e.strerror, delay=delay,
                    )
                retries += 1
                if self._closing and retries > _CLOSE_RETRIES:
                    return False  # closing, and this chunk keeps failing: give up (counted by the caller)
                threading.Event().wait(delay)
                delay = min(delay * 2, _RETRY_CAP)
        return True

    def reopen(self) -> None:
        """Reopen the path before the next write (SIGHUP, as logrotate's postrotate sends it)."""
        self._reopen_asked = True
        with self._wake:
            self._wake.notify()

    def _follow_rotation(self) -> None:
        """Reopen the path when the file there is not ours any more (moved or removed), or when asked."""
        if self.path == "-":
            return
        asked, self._reopen_asked = self._reopen_asked, False
        try:
            moved = asked or os.stat(self.path).st_ino != os.fstat(self._fd).st_ino
        except FileNotFoundError:
            moved = True
        if moved:
            try:
                fresh = self._open()
            except OSError as e:  # the folder went, or is not ours: keep the old file, try again next time
                self.reopen_errors += 1
                if self.reopen_errors == 1 or self.reopen_errors % 100 == 0:
                    self._reactor.callFromThread(self.log.error, "{sink!r}: cannot reopen {path}: {error}",
                                                 sink=self, path=self.path, error=e.strerror)
                return
            old, self._fd = self._fd, fresh
            os.close(old)
            self.reopened += 1

    def _reader_gone(self) -> None:
        reason = f"{self.path if self.path != '-' else 'standard output'} was closed by its reader (EPIPE)"
        self.log.error("{sink!r}: {reason}; stopping", sink=self, reason=reason)
        with self._wake:
            self._closing = True
        self._on_closed(reason)

    def __repr__(self) -> str:
        return f"JsonlSink({self.path!r})"
