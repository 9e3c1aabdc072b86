"""Alert rules: told before it hurts, once, and again when it is over.

Every ``check_interval`` the rules read the feed's counters (nothing is
recorded for them on the hot path) and compare with what they read a window
ago.  A rule that starts holding publishes an ``alert`` event ``firing`` and
logs at error; it says nothing more until it stops holding, then publishes
``resolved`` and logs at info.  Rules (defaults in ``[alerts]``):

- ``connection_failures``: more than N lost connections or failed attempts of
  one endpoint within the window (3 in 5 minutes);
- ``breaker_open``: an endpoint's circuit breaker is open (any trip);
- ``processing_latency``: p95 of the sampled parse-to-publish time over the
  error window above the limit (100 ms);
- ``error_rate``: integrity problems per frame over the error window above
  the limit (1 % over a minute);
- ``stale``: no frame from the endpoint the consumer hears for N seconds;
- ``book_unverified``: a configured book not verified for N seconds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from gfws.events import Alert, Event


class _Reading:
    """What the rules compare across time, read once per check."""

    __slots__ = ("at", "buckets", "losses", "problems", "received")

    def __init__(self, feed: Any, at: float) -> None:
        self.at = at
        self.losses = {e.name: e.losses for e in feed.endpoints}
        self.received = sum(s.received for s in feed.stats.values())
        self.problems = sum(feed.reporter.counts.values())
        self.buckets = [sum(counts) for counts in zip(*(s.counts for s in feed.stats.values()), strict=True)]


class AlertRules:
    log = Logger()

    def __init__(self, feed: Any, config: Any, clock: Any, publish: Callable[[Event], None]) -> None:
        self._feed = feed
        self._config = config
        self._clock = clock
        self._publish = publish
        # The processing-time buckets, as the feed's statistics define them (the same for every endpoint).
        self._bounds = (*next(iter(feed.stats.values())).bounds, float("inf"))
        self._history: deque[_Reading] = deque()
        self._firing: dict[tuple[str, str | None], str] = {}
        self.recent: deque[Alert] = deque(maxlen=50)  # the latest alerts said, firing and resolved
        self._last_frames: tuple[int, float] | None = None  # leader's frames, and since when unchanged
        self._unverified_since: dict[str, float] = {}
        self._loop = LoopingCall(self.check)
        self._loop.clock = clock

    @property
    def firing(self) -> dict[tuple[str, str | None], str]:
        """(rule, endpoint or None) -> detail, for every alert firing now."""
        return dict(self._firing)

    def start(self) -> None:
        self._history.clear()
        self._history.append(_Reading(self._feed, self._clock.seconds()))  # the baseline windows start from
        self._loop.start(self._config.check_interval, now=False)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def check(self) -> None:
        now = self._clock.seconds()
        reading = _Reading(self._feed, now)
        history = self._history
        history.append(reading)
        horizon = now - max(self._config.connection_window, self._config.error_window)
        while len(history) > 1 and history[1].at <= horizon:
            history.popleft()
        holding: dict[tuple[str, str | None], str] = {}
        self._connections(reading, holding)
        self._rates(reading, holding)
        self._staleness(now, holding)
        self._books(now, holding)
        self._authentication(holding)
        self._backpressure(holding)
        for key, detail in holding.items():
            if key not in self._firing:
                self._firing[key] = detail
                self._tell(key, "firing", detail)
        for key in [k for k in self._firing if k not in holding]:
            self._tell(key, "resolved", self._firing.pop(key))

    def _before(self, seconds: float) -> _Reading:
        """The reading the window of ``seconds`` starts from: the newest one at least
        that old, or the oldest there is."""
        start = self._history[-1].at - seconds
        chosen = self._history[0]
        for reading in self._history:
            if reading.at > start:
                break
            chosen = reading
        return chosen

    def _connections(self, reading: _Reading, holding: dict[tuple[str, str | None], str]) -> None:
        config = self._config
        start = self._before(config.connection_window)
        for endpoint in self._feed.endpoints:
            failed = reading.losses[endpoint.name] - start.losses.get(endpoint.name, 0)
            if failed > config.connection_failures:
                holding["connection_failures", endpoint.name] = (
                    f"{failed} connection failures in {config.connection_window:g}s; last: {endpoint.last_failure}")
            if endpoint.breaker.state == "open":
                holding["breaker_open", endpoint.name] = (
                    f"circuit breaker open (trip {endpoint.breaker.trips}); last: {endpoint.last_failure}")

    def _rates(self, reading: _Reading, holding: dict[tuple[str, str | None], str]) -> None:
        config = self._config
        start = self._before(config.error_window)
        frames = reading.received - start.received
        problems = reading.problems - start.problems
        if frames and problems / frames > config.error_rate:
            holding["error_rate", None] = (f"{problems} integrity problems in {frames} frames "
                                           f"({problems / frames:.1%}) in {config.error_window:g}s")
        counts = [now - then for now, then in zip(reading.buckets, start.buckets, strict=True)]
        sampled = sum(counts)
        if sampled:
            seen, p95 = 0, self._bounds[-1]
            for bound, count in zip(self._bounds, counts, strict=True):
                seen += count
                if seen >= 0.95 * sampled:
                    p95 = bound
                    break
            if p95 > config.p95_latency:
                holding["processing_latency", None] = (
                    f"p95 processing time over {p95 * 1000:g} ms (limit {config.p95_latency * 1000:g} ms)")

    def _staleness(self, now: float, holding: dict[tuple[str, str | None], str]) -> None:
        leader = self._feed.pool.leader
        if leader is None:
            self._last_frames = None
            return
        frames = self._feed.stats[leader.name].received
        if self._last_frames is None or self._last_frames[0] != frames:
            self._last_frames = (frames, now)
        elif now - self._last_frames[1] >= self._config.stale_after:
            holding["stale", leader.name] = f"no frame from {leader.name} for {now - self._last_frames[1]:.0f}s"

    def _books(self, now: float, holding: dict[tuple[str, str | None], str]) -> None:
        leader = self._feed.pool.leader
        handler = leader.handler if leader is not None else None
        for sub in self._feed.config.subscriptions:
            if sub.channel != "book":
                continue
            for symbol in sub.symbols:
                if handler is not None and handler.books.is_live(symbol):
                    self._unverified_since.pop(symbol, None)
                    continue
                since = self._unverified_since.setdefault(symbol, now)
                if now - since >= self._config.unverified_after:
                    holding["book_unverified", symbol] = f"book {symbol} not verified for {now - since:.0f}s"

    def _authentication(self, holding: dict[tuple[str, str | None], str]) -> None:
        """The venue refuses the account's credentials: no fill can arrive until that is mended."""
        authenticator = self._feed.authenticator
        if authenticator is not None and authenticator.last_failure is not None:
            holding["authentication", None] = (f"token refused {authenticator.failures} time(s); "
                                               f"last: {authenticator.last_failure}")

    def _backpressure(self, holding: dict[tuple[str, str | None], str]) -> None:
        """A sink holds fills or orders past its bound: it is not keeping up, and it never drops them."""
        for sink in self._feed.publisher.sinks:
            held = getattr(sink, "held", 0)
            if held:
                holding["sink_backpressure", None] = (f"{sink!r} holds {held} events past its bound "
                                                      "(fills and orders are never dropped)")

    def _tell(self, key: tuple[str, str | None], state: str, detail: str) -> None:
        name, subject = key
        if state == "firing":
            self.log.error("alert {name} firing: {detail}", name=name, detail=detail)
        else:
            self.log.info("alert {name} resolved (was: {detail})", name=name, detail=detail)
        on_symbol = name == "book_unverified"
        alert = Alert(venue=self._feed.dialect.name, recv_ts=self._clock.seconds(), name=name, state=state,
                      detail=detail, endpoint=None if on_symbol else subject, symbol=subject if on_symbol else None)
        self.recent.append(alert)
        self._publish(alert)
