"""The Redis sink's writer thread: the only code that talks to Redis, so the reactor never does.

It takes batches from the queue, encodes them, sends each as one pipeline and reads every
entry's reply; reconnects with capped exponential backoff; and tells the sink (counts, reports,
flushes settled, its end) only through ``reactor.callFromThread``.  One batch at a time, and what
Redis did not confirm goes back in front, so entries keep their order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from twisted.logger import Logger
from twisted.python.failure import Failure

from gfws.publish.redis_client import RedisConnection, XaddPacker, error_text, is_refusal, send_pipeline
from gfws.publish.redis_entry import Entry, EntryFormat
from gfws.publish.redis_queue import EntryQueue

# Entries taken at a time: pipelines of 200 already reach ~76,000 XADD/s (redis-py and hiredis, measured);
# bigger ones mostly add latency, and entries sent twice after a cut.
MAX_BATCH = 200
MAX_BATCH_BYTES = 1 << 18  # event bytes in one pipeline (a batch of big books goes as several)
RETRY_FIRST, RETRY_CAP = 0.1, 5.0  # seconds before a reconnect (doubling, capped)
SUMMARY_EVERY = 60.0  # seconds between summaries of an outage that goes on


class SinkSide(Protocol):
    """What the writer tells the sink; every call made on the reactor thread."""

    def on_settled(self, marks: list[Any]) -> None: ...

    def on_rejected(self, count: int, key: bytes, error: str) -> None: ...

    def on_unencodable(self, detail: str) -> None: ...

    def on_unavailable(self, what: str, error: str) -> None: ...

    def on_ended(self, lost: int, marks: list[Any]) -> None: ...


class Backoff:
    """Seconds to wait before the next connect: RETRY_FIRST, doubling to RETRY_CAP; from the
    start again once a batch goes through (not a mere connect: a server that accepts and then
    fails every pipeline must not be hammered)."""

    def __init__(self) -> None:
        self.failures = 0

    def next(self) -> float:
        delay = min(RETRY_FIRST * 2 ** min(self.failures, 30), RETRY_CAP)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class Outage:
    """Failures are said once, then as a summary at most every SUMMARY_EVERY seconds, and the
    recovery once: a Redis away for an hour is not 700 log lines."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.failures = 0
        self._summary_at = 0.0

    def failed(self, now: float) -> str | None:
        """``"first"``, ``"summary"``, or None (nothing to say)."""
        if self.since is None:
            self.since, self.failures, self._summary_at = now, 1, now
            return "first"
        self.failures += 1
        if now - self._summary_at >= SUMMARY_EVERY:
            self._summary_at = now
            return "summary"
        return None

    def recovered(self, now: float) -> tuple[int, float] | None:
        """(failures, seconds) of the outage that just ended, or None if there was none."""
        if self.since is None:
            return None
        over, self.since = (self.failures, now - self.since), None
        return over


class RedisWriter:
    log = Logger()

    def __init__(self, queue: EntryQueue, entries: EntryFormat, connect: Callable[[], RedisConnection],
                 reactor: Any, side: SinkSide, name: str, trim: tuple[bytes, ...],
                 clock: Callable[[], float] = time.monotonic,
                 pause: Callable[[float], bool] | None = None) -> None:
        """``pause(seconds)`` waits before a reconnect and returns True when the sink gave up
        meanwhile (the queue's, interrupted by ``abandon``; tests give one that takes no time)."""
        self.queue = queue
        self._entries = entries
        self._connect_fn = connect
        self._reactor = reactor
        self._side = side
        self.name = name
        self._pack = XaddPacker(trim)
        self._clock = clock
        self._pause = pause if pause is not None else queue.pause
        self.backoff = Backoff()
        self.outage = Outage()
        self._connection: RedisConnection | None = None
        self._retry = False  # the last connect or pipeline failed: wait before the next connect
        self._connects = 0
        # Counters: written by this thread only, read by anyone.
        self.written = 0  # entries Redis confirmed
        self.unencodable = 0
        self.write_errors = 0  # failed connects and failed pipelines
        self.rejected = 0  # entries Redis refused for good
        self.resent = 0  # entries sent again after a failed pipeline (Redis may hold them twice)
        self.batches = 0  # batches that went through (a pipeline each; several for big events)
        self.reconnects = 0  # connections made after the first
        self.thread = threading.Thread(target=self.run, name=f"gfws-redis {name}", daemon=True)

    @property
    def connected(self) -> bool:
        return self._connection is not None

    def _tell(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._reactor.callFromThread(f, *args, **kwargs)

    def run(self) -> None:
        try:
            while self.step():
                pass
        except Exception:  # a bug of ours: said, never a silent dead writer
            self._tell(self.log.failure, "{sink}: the writer failed; events are dropped", Failure(),
                       sink=self.name)
        finally:
            self._disconnect()
            lost, marks = self.queue.end()
            self._tell(self._side.on_ended, lost, marks)

    def step(self) -> bool:
        """Connect (after the backoff's wait, after a failure), or send one batch; False at the end."""
        queue = self.queue
        if self._connection is None:
            if queue.over() or (self._retry and self._pause(self.backoff.next())):
                return False
            self._connect()
            return True
        if not queue.wait():
            return False
        batch = queue.take(MAX_BATCH)
        if batch:
            self._send(batch)
        return True

    # -- the connection ---------------------------------------------------------------------

    def _connect(self) -> None:
        try:
            connection = self._connect_fn()
        except Exception as e:  # refused, timed out, AUTH refused...
            self._failed(e, "connect")
            return
        if self.queue.finished:  # given up while connecting: not wanted
            _close(connection)
            return
        self._connection = connection
        self._connects += 1
        if self._connects > 1:
            self.reconnects += 1
        if not self.queue.queued:
            self._recovered()  # nothing to prove it with: connected is enough

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            _close(connection)

    def _failed(self, error: BaseException, what: str) -> None:
        """A connect or a pipeline failed: drop the connection, say it (once, then summaries), wait."""
        self.write_errors += 1
        self._retry = True
        self._disconnect()
        if self.queue.finished:
            return
        said = self.outage.failed(self._clock())
        if said == "first":
            self._tell(self._side.on_unavailable, what, error_text(error))
        elif said == "summary":
            self._tell(self.log.error, "{sink}: Redis still unavailable: {n} failures in {t:.0f}s, {queued} "
                       "events waiting, {dropped} dropped so far; last: {error}", sink=self.name,
                       n=self.outage.failures, t=self._clock() - (self.outage.since or 0.0),
                       queued=self.queue.queued, dropped=self.queue.dropped, error=error_text(error))

    def _recovered(self) -> None:
        over = self.outage.recovered(self._clock())
        if over is not None:
            self._tell(self.log.info, "{sink}: Redis available again after {n} failures in {t:.1f}s; "
                       "{queued} events waiting", sink=self.name, n=over[0], t=over[1], queued=self.queue.queued)

    # -- sending ----------------------------------------------------------------------------

    def _send(self, batch: list[Entry]) -> None:
        """Encode ``batch`` and send it (as several pipelines if its events are big); put back in
        the queue what Redis did not confirm."""
        fields, pack = self._entries.fields, self._pack
        packed: list[bytes] = []
        sent: list[tuple[Entry, bytes]] = []  # (entry, its stream)
        size = 0
        back: list[Entry] = []
        error: BaseException | None = None
        for i, entry in enumerate(batch):
            try:
                key, ident, payload = fields(entry)
            except (TypeError, ValueError, OverflowError) as e:  # e.g. an integer over 64 bits
                self.unencodable += 1
                self._tell(self._side.on_unencodable,
                           f"{type(entry.event).__name__} event cannot be written as JSON: {e}")
                continue
            packed.append(pack(key, ident, payload))
            sent.append((entry, key))
            size += len(payload)
            if size >= MAX_BATCH_BYTES and i + 1 < len(batch):
                error = self._pipeline(packed, sent, back)
                packed, sent, size = [], [], 0
                if error is not None:
                    back.extend(batch[i + 1:])  # never sent: back, not resent
                    break
        if error is None and sent:
            error = self._pipeline(packed, sent, back)
        settled = self.queue.done(back)
        if settled:
            self._tell(self._side.on_settled, settled)
        if error is not None:
            self._failed(error, "send")
        else:
            self.batches += 1
            self.backoff.reset()
            self._recovered()

    def _pipeline(self, packed: list[bytes], sent: list[tuple[Entry, bytes]],
                  back: list[Entry]) -> BaseException | None:
        """One round trip; appends to ``back`` what Redis did not confirm; the error that says why."""
        assert self._connection is not None
        replies, error = send_pipeline(self._connection, b"".join(packed), len(sent))
        refused: list[tuple[bytes, BaseException]] = []
        written = 0
        for (entry, key), reply in zip(sent, replies, strict=False):
            if not isinstance(reply, Exception):
                written += 1
            elif is_refusal(reply):
                refused.append((key, reply))
            else:  # "not now": sent again after the reconnect
                back.append(entry)
                error = error or reply
        back.extend(entry for entry, _ in sent[len(replies):])
        if error is not None:
            self.resent += len(back)
        self.written += written
        if refused:
            self.rejected += len(refused)
            key, reason = refused[0]
            self._tell(self._side.on_rejected, len(refused), key, error_text(reason))
        return error


def _close(connection: RedisConnection) -> None:
    try:
        connection.disconnect()
    except Exception:  # closing a connection that failed: nothing more to learn
        pass
