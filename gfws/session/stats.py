"""What one endpoint's connections count, for whoever reads it (the monitor).

The hot path only increments: ``received`` for every frame, and one frame in
``SAMPLE_EVERY`` has its processing time (parse to publish) put into
histogram buckets.  Timing every frame would cost more than it tells.
"""

from __future__ import annotations

from bisect import bisect_left

SAMPLE_EVERY = 16  # a power of two: the test is one AND
# Upper bounds in seconds, as Prometheus histograms read them (the last is +Inf).
BUCKETS = (5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0)
# Venue time to receipt: network and venue delay, and clock skew (milliseconds to seconds).
VENUE_BUCKETS = (1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """Counts per bucket (not cumulative; the last is +Inf), their sum and number."""

    __slots__ = ("bounds", "counts", "sampled", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sampled = 0
        self.sum = 0.0

    def record(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sampled += 1
        self.sum += seconds

    def quantile(self, q: float) -> float | None:
        """The bucket bound under which a fraction ``q`` of the samples fall (None: no sample yet;
        ``inf``: over the largest bound)."""
        if not self.sampled:
            return None
        wanted, seen = q * self.sampled, 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            seen += count
            if seen >= wanted:
                return bound
        return float("inf")


class EndpointStats(Histogram):
    """Totals across every connection of one endpoint; itself the processing-time histogram."""

    __slots__ = ("by_channel", "received", "renewals", "venue_delay")

    def __init__(self) -> None:
        super().__init__(BUCKETS)
        self.received = 0
        self.renewals = 0  # subscriptions renewed in place (resyncs)
        self.by_channel: dict[str, int] = {}  # data messages per channel
        self.venue_delay = Histogram(VENUE_BUCKETS)  # venue time -> receipt, one item in 16
