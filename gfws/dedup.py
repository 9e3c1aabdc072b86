"""A bounded memory of recently seen keys (trade ids across endpoints).

A set for membership and a ring (deque) for eviction order: O(1) either way,
and memory bounded by ``capacity`` whatever the input.
"""

from __future__ import annotations

from collections import deque
from typing import Hashable


class RecentKeys:
    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._set: set[Hashable] = set()
        self._ring: deque[Hashable] = deque()
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._set)

    def first_time(self, key: Hashable) -> bool:
        """Remember ``key``; False if it was seen recently (a duplicate)."""
        if key in self._set:
            self.duplicates += 1
            return False
        self._set.add(key)
        self._ring.append(key)
        if len(self._ring) > self.capacity:
            self._set.discard(self._ring.popleft())
        return True
