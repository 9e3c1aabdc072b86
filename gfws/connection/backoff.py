"""Reconnect delays: exponential growth, a cap, and "equal" jitter.

The delay is drawn in ``[ceiling/2, ceiling]``: the random half spreads a
fleet of clients that lost the venue at the same moment, so they do not come
back in lock step; the fixed half bounds the attempt rate from below, so a
long outage stays inside the venue's connection budget (Kraken: 150 per
10 minutes) while the cap bounds how long after the venue's return the feed
is back.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delay before reconnect attempt ``n`` (1 for the first retry)."""

    def __init__(
        self,
        initial: float = 1.0,
        factor: float = 2.0,
        cap: float = 60.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if initial <= 0 or factor < 1 or cap < initial:
            raise ValueError("backoff needs initial > 0, factor >= 1 and cap >= initial")
        self.initial = initial
        self.factor = factor
        self.cap = cap
        self._jitter = jitter

    def ceiling(self, attempt: int) -> float:
        """The largest delay attempt ``attempt`` may wait."""
        if attempt < 1:
            return 0.0
        # Cap the exponent too: factor ** 10_000 would overflow a float.
        exponent = min(attempt - 1, 1000)
        return min(self.cap, self.initial * self.factor**exponent)

    def delay(self, attempt: int) -> float:
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + ceiling / 2 * self._jitter()
