"""Outgoing requests through a token bucket.

A resubscribe after a reconnect sends many requests at once; Kraken answers
a burst with ``Exceeded msg rate``.  Requests beyond the bucket wait in FIFO
order; one timer (not one per request) drains the queue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class RequestThrottle:
    def __init__(self, clock: IReactorTime, send: Callable[[bytes], None], rate: float = 10.0, burst: int = 20) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("throttle needs rate > 0 and burst >= 1")
        self._clock = clock
        self._send = send
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = clock.seconds()
        self._queue: deque[tuple[bytes, Callable[[], None] | None]] = deque()
        self._timer: IDelayedCall | None = None
        self.sent = 0
        self.delayed = 0

    def __len__(self) -> int:
        return len(self._queue)

    def _refill(self) -> None:
        now = self._clock.seconds()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def send(self, payload: bytes, on_sent: Callable[[], None] | None = None) -> None:
        """Send now if a token is free, else after the requests queued before it."""
        if not self._queue:
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                self._transmit(payload, on_sent)
                return
        self.delayed += 1
        self._queue.append((payload, on_sent))
        self._schedule()

    def _transmit(self, payload: bytes, on_sent: Callable[[], None] | None) -> None:
        self.sent += 1
        self._send(payload)
        if on_sent is not None:
            on_sent()

    def _schedule(self) -> None:
        if self._timer is None:
            self._timer = self._clock.callLater(max(0.0, (1 - self._tokens) / self.rate), self._drain)

    def _drain(self) -> None:
        self._timer = None
        self._refill()
        while self._queue and self._tokens >= 1:
            self._tokens -= 1
            self._transmit(*self._queue.popleft())
        if self._queue:
            self._schedule()

    def close(self) -> None:
        """Forget queued requests (their connection is gone) and the timer."""
        self._queue.clear()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
