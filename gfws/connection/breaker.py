"""A circuit breaker per endpoint: stop hammering what keeps failing.

closed --N consecutive failures--> open --recovery_time--> half-open
half-open admits one trial connection: success closes, failure re-opens.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    def __init__(self, clock: IReactorTime, failure_threshold: int = 5, recovery_time: float = 30.0) -> None:
        if failure_threshold < 1 or recovery_time <= 0:
            raise ValueError("breaker needs failure_threshold >= 1 and recovery_time > 0")
        self._clock = clock
        self.failure_threshold = failure_threshold
        self.recovery_time = recovery_time
        self.state = CLOSED
        self.failures = 0
        self.trips = 0
        self._opened_at = 0.0
        self._trial_running = False

    def allow(self) -> bool:
        """May a connection attempt start now?  (Starts the half-open trial.)"""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self._clock.seconds() - self._opened_at < self.recovery_time:
                return False
            self.state = HALF_OPEN
            self._trial_running = False
        if self._trial_running:
            return False
        self._trial_running = True
        return True

    def wait(self) -> float:
        """Seconds until an attempt may start (0 when it may now)."""
        if self.state != OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.recovery_time - self._clock.seconds())

    def record_success(self) -> None:
        self.state = CLOSED
        self.failures = 0
        self._trial_running = False

    def release(self) -> None:
        """The half-open trial was abandoned with no verdict (the endpoint was
        parked or stopped mid-way): let a later attempt be the trial."""
        self._trial_running = False

    @property
    def trial_running(self) -> bool:
        return self._trial_running

    def record_failure(self, reason: str) -> bool:
        """Count a failure; True when this one opened the breaker."""
        self.failures += 1
        if self.state == HALF_OPEN or (self.state == CLOSED and self.failures >= self.failure_threshold):
            self.state = OPEN
            self._opened_at = self._clock.seconds()
            self._trial_running = False
            self.trips += 1
            return True
        return False
