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
        self._ring: deque[tuple[float, Hashable]] = deque()
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._seen)

    def first_time(self, key: Hashable, now: float | None = None) -> bool:
        """Remember ``key``; False if it is in the window (a duplicate).

        ``now`` saves a clock read when the caller already has the time.
        """
        if self.max_age <= 0:
            now = 0.0
        elif now is None:
            now = self._clock.seconds()  # type: ignore[union-attr]
        ring = self._ring
        seen = self._seen
        if self.max_age > 0:
            horizon = now - self.max_age
            while ring and ring[0][0] < horizon:
                _, old = ring.popleft()
                if seen.get(old) is not None and seen[old] < horizon:
                    del seen[old]
        if key in seen:
            self.duplicates += 1
            return False
        seen[key] = now
        ring.append((now, key))
        if len(ring) > self.capacity:
            _, old = ring.popleft()
            seen.pop(old, None)
        return True
