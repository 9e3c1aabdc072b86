"""Accounting for data the feed refuses: counted, published, logged sparingly.

A bad message is never silently dropped and never raised out of the
protocol.  The first occurrence of each reason is logged in full; after that
one summary line per reason per ``log_interval`` keeps a flood from drowning
the log (no timer involved: the check rides on the next occurrence).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from gfws.events import Event, Integrity


class IntegrityReporter:
    def __init__(
        self,
        venue: str,
        publish: Callable[[Event], None],
        clock: IReactorTime,
        log_interval: float = 60.0,
    ) -> None:
        self._venue = venue
        self._publish = publish
        self._clock = clock
        self._log_interval = log_interval
        self.counts: Counter[str] = Counter()
        self._unlogged: Counter[str] = Counter()
        self._last_logged: dict[str, float] = {}
        self.log = Logger()

    def report(
        self,
        kind: str,
        detail: str,
        recv_ts: float,
        symbol: str | None = None,
        channel: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.counts[kind] += 1
        self._publish(
            Integrity(
                venue=self._venue,
                recv_ts=recv_ts,
                kind=kind,
                detail=detail,
                symbol=symbol,
                channel=channel,
                endpoint=endpoint,
            )
        )
        now = self._clock.seconds()
        last = self._last_logged.get(kind)
        if last is None:
            self._last_logged[kind] = now
            self.log.warn(
                "{kind} from {endpoint} (channel {channel}, symbol {symbol}): {detail}",
                kind=kind,
                endpoint=endpoint,
                channel=channel,
                symbol=symbol,
                detail=detail,
            )
            return
        self._unlogged[kind] += 1
        if now - last >= self._log_interval:
            self.log.warn(
                "{count} more {kind} in the last {seconds:.0f}s; latest: {detail}",
                count=self._unlogged.pop(kind),
                kind=kind,
                seconds=now - last,
                detail=detail,
            )
            self._last_logged[kind] = now
