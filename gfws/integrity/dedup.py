"""A bounded memory of recently seen keys: trade ids, message digests.

A dict for membership and a ring (deque) for eviction order, both O(1); a
key is forgotten when the window holds ``capacity`` newer keys or when it is
older than ``max_age`` seconds.  Memory is bounded by ``capacity`` whatever
the input.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

from twisted.internet.interfaces import IReactorTime


class RecentKeys:
    def __init__(self, capacity: int = 100_000, max_age: float = 0.0, clock: IReactorTime | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        if max_age > 0 and clock is None:
            raise ValueError("an age limit needs a clock")
        self.capacity = capacity
        self.max_age = max_age
        self._clock = clock
        self._seen: dict[Hashable, float] = {}
        self._ring: deque[Hashable] = deque()
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._seen)

    def first_frame(self, payload: bytes, now: float) -> bool:
        """``first_time`` for a frame, keyed by its digest ``hash(payload)`` (a compiled window of the
        dialect's, with the same rules and a digest of its own, stands in for this one: ``FrameGate``)."""
        return self.first_time(hash(payload), now)

    def first_time(self, key: Hashable, now: float | None = None) -> bool:
        """Remember ``key``; False if it is in the window (a duplicate).

        ``now`` saves a clock read when the caller already has the time.  The
        ring holds each remembered key once, oldest first, and the dict its
        time: no tuple is made per key (this runs for every frame).
        """
        seen = self._seen
        ring = self._ring
        if self.max_age > 0:
            if now is None:
                now = self._clock.seconds()  # type: ignore[union-attr]
            horizon = now - self.max_age
            while ring and seen[ring[0]] < horizon:
                del seen[ring.popleft()]
        else:
            now = 0.0
        if key in seen:
            self.duplicates += 1
            return False
        seen[key] = now
        ring.append(key)
        if len(ring) > self.capacity:
            del seen[ring.popleft()]
        return True
