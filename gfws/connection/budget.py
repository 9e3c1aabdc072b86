"""A connection-attempt budget shared by every endpoint of a venue.

Kraken (behind Cloudflare) bans an IP for 10 minutes after about 150
connection attempts in a rolling 10 minutes.  Backoff alone cannot promise
that across several endpoints and a long outage; this sliding window can.
"""

from __future__ import annotations

from collections import deque

from twisted.internet.interfaces import IReactorTime


class ConnectionBudget:
    def __init__(self, clock: IReactorTime, attempts: int = 150, window: float = 600.0) -> None:
        if attempts < 1 or window <= 0:
            raise ValueError("budget needs attempts >= 1 and window > 0")
        self._clock = clock
        self.attempts = attempts
        self.window = window
        self._times: deque[float] = deque()
        self.refused = 0

    def _expire(self, now: float) -> None:
        times = self._times
        while times and now - times[0] >= self.window:
            times.popleft()

    def acquire(self) -> bool:
        """Spend one attempt if the window has room."""
        now = self._clock.seconds()
        self._expire(now)
        if len(self._times) >= self.attempts:
            self.refused += 1
            return False
        self._times.append(now)
        return True

    def admits(self) -> bool:
        """Would an attempt be admitted now?  A no is counted as a refusal."""
        if self.wait() > 0:
            self.refused += 1
            return False
        return True

    def wait(self) -> float:
        """Seconds until an attempt would be admitted."""
        now = self._clock.seconds()
        self._expire(now)
        if len(self._times) < self.attempts:
            return 0.0
        return self._times[0] + self.window - now

    @property
    def used(self) -> int:
        self._expire(self._clock.seconds())
        return len(self._times)
