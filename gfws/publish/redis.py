"""Redis Streams sink: every event an entry of a stream, written by a thread, never by the reactor.

Each event becomes one ``XADD`` to the stream its venue, type and symbol name
(``gfws:{venue}:{type}:{symbol}`` by default; ``{symbol}`` is ``-`` for an
event without one), trimmed with ``MAXLEN ~ maxlen``.  An entry has two
fields: ``id``, stable for the event, and ``event``, the same JSON object as
a JSON Lines line (``encode_event``).

What it promises:
- the reactor never waits for Redis, nor spends its time on it: ``write``
  numbers the events and queues them (``redis_queue``); a writer thread
  (``redis_writer``) encodes them and sends them as pipelines with redis-py
  and hiredis (``redis_client``), one at a time, so entries keep their order;
- while Redis is away the writer reconnects with backoff (capped) and the
  sink keeps up to ``buffer`` events; past it the oldest market data is
  dropped, counted and reported (``sink_overflow``); fills and orders are
  never dropped: they stay beyond the bound, and a report says so;
- a batch cut off by a lost connection is sent again after the reconnect,
  from the first entry Redis did not confirm, before anything newer: Redis
  may already hold some of it, so a consumer drops entries whose ``id`` it
  has seen (``redis_entry`` says which: trades ``symbol:trade_id``, fills
  ``exec_id``, orders ``order_id:run_id:seq``, every other ``run_id:seq``);
- an entry Redis refuses for good (a key of another type, ``WRONGTYPE``) is
  counted in ``rejected`` and reported (``sink_rejected``); the rest of its
  batch goes on;
- failures are logged once, then as counted summaries.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from gfws.events import Event
from gfws.interfaces import IEventSink
from gfws.publish.jsonl import REPORT_EVERY
from gfws.publish.redis_client import RedisConnection, connector, mask_url, parse_url
from gfws.publish.redis_entry import CRITICAL, Entry, EntryFormat
from gfws.publish.redis_queue import EntryQueue
from gfws.publish.redis_writer import RedisWriter

__all__ = ["RedisStreamSink", "mask_url", "parse_url"]

CLOSE_BOUND = 10.0  # seconds close() waits for what is queued before abandoning it


@implementer(IEventSink)
class RedisStreamSink:
    log = Logger()

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        reactor: Any = None,
        stream: str = "gfws:{venue}:{type}:{symbol}",
        maxlen: int | None = 1_000_000,
        buffer: int = 100_000,
        report: Callable[[str, str], None] = lambda kind, detail: None,
        connect: Callable[[], RedisConnection] | None = None,
    ) -> None:
        """``stream`` names each event's stream: ``{venue}``, ``{type}`` and ``{symbol}`` are
        replaced, every other character is kept (``{{symbol}}`` is a Cluster hash tag).
        ``maxlen`` None or 0: no trimming.  ``connect()``, called on the writer thread, returns a
        connected redis-py ``Connection`` (tests give their own; the default is ``url``'s)."""
        if reactor is None:
            from twisted.internet import reactor
        if maxlen is not None and maxlen < 0:
            raise ValueError(f"maxlen: 0 or more, not {maxlen}")
        self.url = mask_url(url)
        self.run_id = f"{int(time.time() * 1000):x}-{secrets.token_hex(4)}"  # this sink's events: run_id:seq
        self._format = EntryFormat(stream, self.run_id)
        self._queue = EntryQueue(buffer)
        self._reactor = reactor
        self._report = report
        self._seq = 0
        self._critical: dict[type, bool] = {}  # event class -> a fill or an order
        self._closing = False  # close() or abandon() was called: no more writes
        self._closed = False  # the writer has ended, or was given up on: close() fires at once
        self._close_waiters: list[Deferred[None]] = []
        self._close_timer: Any = None
        self._said: dict[str, float] = {}  # report kind -> when it was last said
        self._unsaid: dict[str, int] = {}  # report kind -> events since then
        self._late_said = False
        self._unencodable_logged = 0
        trim = (b"MAXLEN", b"~", str(maxlen).encode()) if maxlen else ()
        self._writer = RedisWriter(self._queue, self._format, connect or connector(parse_url(url)), reactor,
                                   side=self, name=repr(self), trim=trim)
        self._writer.thread.start()

    # -- the reactor's side: never blocks ---------------------------------------------------

    def write(self, events: Sequence[Event]) -> None:
        if self._closing:
            self._queue.count_dropped(len(events))  # nobody will send them: counted, never silent
            if not self._late_said:
                self._late_said = True
                self.log.error("{sink!r}: events written after close are dropped (counted in dropped)", sink=self)
            return
        seq, critical, make = self._seq, self._critical, tuple.__new__  # (Entry(...) costs twice as much)
        entries = []
        for event in events:
            seq += 1
            cls = type(event)
            kept = critical.get(cls)
            if kept is None:
                kept = critical[cls] = self._format.tag(event) in CRITICAL
            entries.append(make(Entry, (seq, event, kept)))
        self._seq = seq
        dropped, held, settled = self._queue.put(entries)
        if dropped or held:
            self._overflow(dropped, held)
        self.on_settled(settled)

    def _overflow(self, dropped: int, held: int) -> None:
        if dropped:
            self._say("dropped", dropped, lambda count: (
                f"{self!r}: {count} market-data events dropped ({self.dropped} so far): "
                f"Redis is away or behind and {self._queue.bound} events wait"))
        if held:
            self._say("held", held, lambda count: (
                f"{self!r}: {self.held} events beyond the bound of {self._queue.bound}: fills and orders "
                f"are kept, never dropped ({self.queued} waiting)"))

    def _say(self, what: str, count: int, detail: Callable[[int], str], kind: str = "sink_overflow") -> None:
        """Log and report ``kind`` at once, then at most every REPORT_EVERY seconds with
        the count since (the report is an event, which comes to this sink too)."""
        self._unsaid[what] = self._unsaid.get(what, 0) + count
        now = self._reactor.seconds()
        said = self._said.get(what)
        if said is not None and now - said < REPORT_EVERY:
            return
        self._said[what] = now
        text = detail(self._unsaid.pop(what))
        self.log.error("{detail}", detail=text)
        self._report(kind, text)

    def flush(self) -> Deferred[None]:
        """A Deferred firing once every event written so far has left the queue: in Redis, or given
        up (dropped by the overflow policy, rejected by Redis, abandoned at close: all counted)."""
        d: Deferred[None] = Deferred()
        return d if self._queue.mark(self._seq, d) else succeed(None)

    def close(self) -> Deferred[None]:
        """Send what is queued (for at most CLOSE_BOUND seconds, then ``abandon``), then disconnect;
        fires when done.  Events written after ``close`` are dropped, counted."""
        d: Deferred[None] = Deferred()
        if self._closed:
            d.callback(None)
            return d
        self._close_waiters.append(d)
        if not self._closing:
            self._closing = True
            self._queue.close()
            self._close_timer = self._reactor.callLater(CLOSE_BOUND, self.abandon)
        return d

    @property
    def lost_fills(self) -> list[str]:
        """exec_ids of fills given up at shutdown (the ledger forgets them: the venue brings them back)."""
        return self._queue.lost_fills

    def abandon(self) -> int:
        """Give up on what is still queued (a close that ran out of time): counted as dropped, and
        close() fires.  The pipeline under way, if any, is counted too, though Redis may have taken
        some of it; the writer thread ends once its socket call returns (10 s at most)."""
        lost, critical, marks = self._queue.abandon()
        self._closing = True
        if lost:
            self.log.error("{sink!r}: {lost} events abandoned at shutdown ({critical} of them fills or orders): "
                           "Redis did not take them in time", sink=self, lost=lost, critical=critical)
        self.on_settled(marks)
        self._finish()
        return lost

    def _finish(self) -> None:
        self._closed = True
        if self._close_timer is not None and self._close_timer.active():
            self._close_timer.cancel()
        self._close_timer = None
        waiters, self._close_waiters = self._close_waiters, []
        for d in waiters:
            d.callback(None)

    # -- what the writer thread tells, on the reactor thread -----------------------------------

    def on_settled(self, marks: list[Any]) -> None:
        for d in marks:
            if not d.called:
                d.callback(None)

    def on_rejected(self, count: int, key: bytes, error: str) -> None:
        """Said at once, then at most every REPORT_EVERY seconds: the report is an event that may
        well be refused the same way."""
        self._say("rejected", count, lambda n: (
            f"{self!r}: Redis refused {n} entries ({self.rejected} so far; they are skipped), e.g. on "
            f"{key.decode(errors='replace')}: {error}"), kind="sink_rejected")

    def on_unencodable(self, detail: str) -> None:
        self._unencodable_logged += 1
        n = self._unencodable_logged
        if n == 1 or n % 1000 == 0:
            self.log.error("{sink!r}: {detail} ({n} so far); skipped", sink=self, detail=detail, n=n)
        self._report("unencodable_event", detail)

    def on_unavailable(self, what: str, error: str) -> None:
        """The first failure of an outage (the writer logs the summaries and the recovery)."""
        self.log.error("{sink!r}: {what} failed: {error}; events wait (up to {buffer}), reconnecting with "
                       "backoff", sink=self, what=what, error=error, buffer=self._queue.bound)
        self._report("sink_unavailable", f"{self!r}: {what} failed: {error}")

    def on_ended(self, lost: int, marks: list[Any]) -> None:
        if lost:
            self.log.error("{sink!r}: {lost} events dropped: the writer ended", sink=self, lost=lost)
        self.on_settled(marks)
        self._closing = True
        self._finish()

    # -- readings -------------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Events not yet confirmed by Redis (waiting, and in the pipeline under way)."""
        return self._queue.queued

    @property
    def held(self) -> int:
        """Events beyond the bound: fills and orders kept while Redis is away."""
        return max(0, self.queued - self._queue.bound)

    @property
    def connected(self) -> bool:
        return self._writer.connected

    # Counters, as JsonlSink's (the monitor and the alert rules read them); the writer keeps most.
    dropped = property(lambda self: self._queue.dropped, doc="events given up: overflow, after close, abandoned")
    written = property(lambda self: self._writer.written, doc="entries Redis confirmed")
    unencodable = property(lambda self: self._writer.unencodable)
    write_errors = property(lambda self: self._writer.write_errors, doc="failed connects and pipelines")
    rejected = property(lambda self: self._writer.rejected, doc="entries Redis refused for good")
    resent = property(lambda self: self._writer.resent, doc="entries sent again after a failed pipeline")
    batches = property(lambda self: self._writer.batches, doc="batches that went through")
    reconnects = property(lambda self: self._writer.reconnects, doc="connections made after the first")

    def __repr__(self) -> str:
        return f"RedisStreamSink({self.url!r})"
