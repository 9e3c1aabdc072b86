"""The Redis sink's queue: the one place the reactor (which puts) and the writer thread (which takes)
share, under one lock, so that neither ever waits for the other longer than a few list operations.

It holds the entries waiting, the batch in flight (taken, not yet confirmed), the flush marks
(each fires once everything written before it has left), and the overflow policy: past the bound
the oldest market data is dropped, fills and orders never.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

from gfws.events import Fill
from gfws.publish.redis_entry import Entry


class EntryQueue:
    def __init__(self, bound: int) -> None:
        if bound < 1:
            raise ValueError(f"buffer: 1 or more events, not {bound}")
        self.bound = bound
        self.lock = threading.Condition()
        self.lost_fills: list[str] = []
        self._market: deque[Entry] = deque()
        self._critical: deque[Entry] = deque()
        self._inflight: list[Entry] = []
        self._marks: deque[tuple[int, Any]] = deque()  # (last seq it waits for, what the sink fires)
        self.closing = False  # no more entries come: the writer ends once none is left
        self.finished = False  # nothing more is sent (abandoned, or the writer ended)
        self.dropped = 0  # entries given up: overflow, abandoned, or put after the end

    # -- both sides ------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Entries not yet confirmed: waiting, and in flight."""
        with self.lock:
            return self._count()

    def _count(self) -> int:
        return len(self._market) + len(self._critical) + len(self._inflight)

    def mark(self, seq: int, waiter: Any) -> bool:
        """Keep ``waiter`` until every entry up to ``seq`` has left; False (not kept) when none waits."""
        with self.lock:
            if not self._count():
                return False
            self._marks.append((seq, waiter))
            return True

    def _settled(self) -> list[Any]:
        """The marks whose entries have all left (called under the lock)."""
        marks = self._marks
        if not marks:
            return []
        low = min((q[0].seq for q in (self._market, self._critical, self._inflight) if q), default=None)
        settled = []
        while marks and (low is None or marks[0][0] < low):
            settled.append(marks.popleft()[1])
        return settled

    # -- the reactor's side ------------------------------------------------------------------

    def put(self, entries: Iterable[Entry]) -> tuple[int, int, list[Any]]:
        """Queue ``entries``; past the bound drop the oldest market data waiting.

        Returns (entries dropped now, entries held beyond the bound: fills and orders, marks settled)."""
        with self.lock:
            if self.finished:  # the writer is gone: nobody will send them
                count = sum(1 for _ in entries)
                self.dropped += count
                return count, 0, []
            market, critical = self._market, self._critical
            for entry in entries:
                if entry[2]:  # critical (by index: the hot loop of the reactor's side)
                    critical.append(entry)
                else:
                    market.append(entry)
            over = self._count() - self.bound
            drop = held = 0
            if over > 0:
                drop = min(over, len(market))
                for _ in range(drop):
                    market.popleft()  # the oldest go first: the newest are what a consumer acts on
                self.dropped += drop
                held = over - drop
            self.lock.notify()
            return drop, held, self._settled() if drop else []

    def count_dropped(self, count: int) -> None:
        with self.lock:
            self.dropped += count

    def close(self) -> None:
        """No more entries: the writer sends what is left, then ends."""
        with self.lock:
            self.closing = True
            self.lock.notify_all()

    def abandon(self) -> tuple[int, int, list[Any]]:
        """Give up on every entry, the batch in flight too: (lost, of them fills or orders, every mark).
        The exec_ids of the fills given up are kept in ``lost_fills``."""
        with self.lock:
            lost = self._count()
            critical = len(self._critical) + sum(1 for e in self._inflight if e.critical)
            self.lost_fills += [e.event.exec_id for e in (*self._critical, *self._inflight)
                                if e.critical and type(e.event) is Fill]
            marks = self._give_up(lost)
            self.lock.notify_all()
        return lost, critical, marks

    # -- the writer's side -------------------------------------------------------------------

    def over(self) -> bool:
        """True once nothing more will be sent: given up, or closing with nothing left."""
        with self.lock:
            return self.finished or (self.closing and not self._count())

    def wait(self) -> bool:
        """Block until entries wait (True), or until the end (False)."""
        with self.lock:
            while not (self._market or self._critical):
                if self.finished or self.closing:
                    return False
                self.lock.wait()
            return not self.finished

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if everything is given up meanwhile; True if it was."""
        with self.lock:
            return self.lock.wait_for(lambda: self.finished, seconds)

    def take(self, limit: int) -> list[Entry]:
        """The oldest entries waiting, at most ``limit``, in the order written (fills and market
        data merged); they are in flight until ``done``."""
        with self.lock:
            market, critical = self._market, self._critical
            batch = self._inflight = []
            while (market or critical) and len(batch) < limit:
                if critical and (not market or critical[0].seq < market[0].seq):
                    batch.append(critical.popleft())
                else:
                    batch.append(market.popleft())
            return batch

    def done(self, back: list[Entry]) -> list[Any] | None:
        """The batch in flight has left, but for ``back``, put in front again in their order
        (older than anything waiting).  Returns the marks settled, or None when the batch was
        abandoned meanwhile (and counted there)."""
        with self.lock:
            if self.finished:
                return None
            self._inflight = []
            for entry in reversed(back):
                (self._critical if entry.critical else self._market).appendleft(entry)
            return self._settled()

    def end(self) -> tuple[int, list[Any]]:
        """The writer has ended: whatever is left is lost (counted); every mark is returned."""
        with self.lock:
            lost = 0 if self.finished else self._count()
            marks = self._give_up(lost)
        return lost, marks

    def _give_up(self, lost: int) -> list[Any]:
        """Empty every queue, count ``lost`` as dropped, finish; every mark (under the lock)."""
        self._market.clear()
        self._critical.clear()
        self._inflight = []
        self.dropped += lost
        self.closing = self.finished = True
        marks = [waiter for _, waiter in self._marks]
        self._marks.clear()
        return marks

