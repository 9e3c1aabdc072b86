"""Is this connection still delivering?  Checked on a timer, never per message.

Three signals, each with its own limit:
* data: any message but a pong (Kraken sends a heartbeat every second when
  nothing else flows), so a socket that stays open but goes silent is caught
  even while WebSocket pings are still answered;
* application ping: a Kraken ``ping`` every ``ping_interval``, its pong due
  within ``ping_timeout`` (it also keeps Kraken's idle timer from closing us);
* per subscription: the last item seen per (channel, symbol), with a limit per
  channel (0 turns it off: a quiet pair may not trade for minutes).
The hot path only stores receive times; this object reads them.

A check that runs late (the reactor itself stalled: a slow subscriber, a GC
pause) judges nothing: what arrived meanwhile is still waiting in the socket
and is read before the next check, which judges as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall


class LivenessMonitor:
    # Slots: the compiled session writes last_data for every frame, in place.
    __slots__ = ("_channel_timeouts", "_clock", "_last_check", "_last_ping", "_loop", "_on_dead", "_on_stale",
                 "_ping_outstanding", "_ping_queued", "_seen", "_send_ping", "_subscribed", "check_interval",
                 "data_timeout", "dead", "last_data", "ping_interval", "ping_timeout")

    def __init__(
        self,
        clock: IReactorTime,
        data_timeout: float,
        ping_interval: float,
        ping_timeout: float,
        channel_timeouts: Mapping[str, float],
        seen: Mapping[str, dict[str, float]],
        subscribed: Callable[[str], list[str]],
        send_ping: Callable[[Callable[[], None]], None],
        on_dead: Callable[[str], None],
        on_stale: Callable[[str, str, float], None],
        check_interval: float | None = None,
    ) -> None:
        self._clock = clock
        self.data_timeout = data_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._channel_timeouts = {c: t for c, t in channel_timeouts.items() if t > 0}
        self._seen = seen
        self._subscribed = subscribed
        self._send_ping = send_ping
        self._on_dead = on_dead
        self._on_stale = on_stale
        limits = [data_timeout, ping_timeout, *self._channel_timeouts.values()]
        self.check_interval = check_interval or max(0.05, min(1.0, min(limits) / 4))
        self.last_data = clock.seconds()
        self._last_ping = clock.seconds()
        self._last_check = clock.seconds()
        self._ping_outstanding: float | None = None
        self._ping_queued = False
        self._loop = LoopingCall(self.check)
        self._loop.clock = clock
        self.dead = False

    def start(self) -> None:
        now = self._clock.seconds()
        self.last_data = self._last_ping = self._last_check = now
        self._loop.start(self.check_interval, now=False)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def _ping_sent(self) -> None:
        self._ping_queued = False
        self._ping_outstanding = self._last_ping = self._clock.seconds()

    def pong(self) -> None:
        self._ping_outstanding = None

    def subscribed_at(self, channel: str, symbols: list[str]) -> None:
        """Start the clock of new subscriptions (before their first item)."""
        seen = self._seen.get(channel)
        if seen is not None:
            now = self._clock.seconds()
            for symbol in symbols:
                seen[symbol] = now

    def _verdict(self, now: float) -> str | None:
        silent = now - self.last_data
        if silent > self.data_timeout:
            return f"no data for {silent:.1f}s (limit {self.data_timeout:g}s)"
        if self._ping_outstanding is not None:
            waited = now - self._ping_outstanding
            if waited > self.ping_timeout:
                return f"no pong for {waited:.1f}s (limit {self.ping_timeout:g}s)"
        return None

    def check(self) -> None:
        if self.dead:
            return
        now = self._clock.seconds()
        late = now - self._last_check > 2 * self.check_interval
        self._last_check = now
        if self._ping_outstanding is None and not self._ping_queued and now - self._last_ping >= self.ping_interval:
            # The pong is due from when the ping leaves the request throttle.
            self._ping_queued = True
            self._last_ping = now
            self._send_ping(self._ping_sent)
        if late:
            return  # the reactor stalled: read the socket first, judge next time
        verdict = self._verdict(now)
        if verdict is not None:
            return self._die(verdict)
        for channel, limit in self._channel_timeouts.items():
            seen = self._seen[channel]
            for symbol in self._subscribed(channel):
                age = now - seen.setdefault(symbol, now)  # never seen: count from now
                if age > limit:
                    seen[symbol] = now  # one report per limit, while recovery runs
                    self._on_stale(channel, symbol, age)

    def _die(self, reason: str) -> None:
        self.dead = True
        self.stop()
        self._on_dead(reason)
