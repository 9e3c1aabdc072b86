"""What every handler of one connection shares: the venue, the way out,
the integrity reporter, pair precisions, and the per-symbol checks every
item passes (subscribed symbol, venue time order, age)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from sys import intern

from gfws.events import Event
from gfws.integrity.report import IntegrityReporter
from gfws.interfaces import IVenueDialect
from gfws.market.instruments import Instruments
from gfws.market.precision import PairPrecision

# How far a venue's clock may run ahead of ours before an item's time is an outlier.
FUTURE_TOLERANCE = 60.0


def venue_seconds(ts: str) -> float | None:
    """POSIX seconds of an RFC 3339 UTC time (nanoseconds are truncated)."""
    try:
        return datetime.fromisoformat(ts[:26].rstrip("Z")).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _not_before(ts: str, last: str) -> bool:
    """``ts`` is at or after ``last`` as instants (an unreadable time is not judged here)."""
    now, then = venue_seconds(ts), venue_seconds(last)
    return now is None or then is None or now >= then


class FeedContext:
    """What every handler of one connection shares."""

    def __init__(
        self,
        dialect: IVenueDialect,
        publish: Callable[[Event], None],
        reporter: IntegrityReporter,
        instruments: Instruments,
        endpoint: str,
        expected: dict[str, set[str]] | None = None,
        max_message_age: float = 0.0,
        venue_time: Callable[[str, float], None] = lambda ts, recv_ts: None,
    ) -> None:
        self.venue: str = dialect.name
        self.dialect = dialect
        self.publish = publish
        self.reporter = reporter
        self.instruments = instruments
        self.endpoint = endpoint
        # channel -> symbol -> receive time of its latest item (for liveness)
        self.seen: dict[str, dict[str, float]] = {"ticker": {}, "trade": {}, "book": {}}
        # channel -> symbols subscribed there: data for any other is refused
        self.expected = expected if expected is not None else {}
        # The subscribed symbols, interned: the seen and last-time dicts' keys, which a compiled path finds by
        # identity.  Only these: the venue's other symbols are an unbounded set (interned, they would stay).
        self.keys: dict[str, str] = {s: intern(s) for symbols in self.expected.values() for s in symbols}
        self._last_ts: dict[str, dict[str, str]] = {"ticker": {}, "trade": {}, "book": {}}
        self.max_message_age = max_message_age
        self._venue_time = venue_time  # one item's venue time and receipt in 16, for latency statistics
        self._timed_items = 0

    def admit(self, channel: str, symbol: str, ts: str | None, recv_ts: float) -> bool:
        """Is this item for a subscribed symbol?  Also flags venue times that
        go backwards or are older than ``max_message_age`` (counted, not dropped)."""
        expected = self.expected.get(channel)
        if expected is not None and symbol not in expected:
            self.reject("unexpected_symbol", f"{channel} data for unsubscribed {symbol}", recv_ts, symbol, channel)
            return False
        if ts is not None:
            self.check_time(channel, symbol, ts, recv_ts)
        return True

    def last_times(self, channel: str) -> dict[str, str]:
        """symbol -> its latest venue time on ``channel`` (a compiled path checks the usual case itself)."""
        return self._last_ts[channel]

    def check_time(self, channel: str, symbol: str, ts: str, recv_ts: float, sample: bool | None = None) -> None:
        """Flag a venue time that goes backwards, lies in the future or is too old (never drops).

        Times are compared as instants: as text only when both have the same
        shape (the venue's usual fixed width), else parsed.  A time in the
        future is an outlier, not the new reference: one such item must not
        make every following one look like a regression.  One item in 16 has
        its venue time sampled for the delay histogram: counted here, or, for
        items a compiled path takes, counted there and said by ``sample`` (so
        the two paths sample different items at the same rate).
        """
        self._timed_items += 1
        if sample or (sample is None and not self._timed_items & 15):  # a compiled path counts its own
            self._venue_time(ts, recv_ts)
        last_ts = self._last_ts[channel]
        last = last_ts.get(symbol)
        if last is None:
            last_ts[self.keys.get(symbol, symbol)] = ts  # the interned key: the compiled path finds it by identity
        elif ts >= last if len(ts) == len(last) else _not_before(ts, last):
            last_ts[symbol] = ts
        else:
            before = venue_seconds(last)
            if before is not None and before - recv_ts > FUTURE_TOLERANCE:
                self.reject("future_timestamp", f"{last} was {before - recv_ts:.0f}s ahead of receipt", recv_ts,
                            symbol, channel)
                last_ts[symbol] = ts
            else:
                self.reject("timestamp_regression", f"{ts} after {last}", recv_ts, symbol, channel)
                last_ts[symbol] = ts  # one outlier (even one slightly ahead) costs one report, not one per item
        if self.max_message_age > 0:
            sent = venue_seconds(ts)
            if sent is None:
                self.reject("bad_timestamp", f"{ts!r} is not an RFC 3339 time", recv_ts, symbol, channel)
            elif recv_ts - sent > self.max_message_age:
                self.reject("stale_message", f"venue time {ts} is {recv_ts - sent:.1f}s old", recv_ts, symbol, channel)

    def forget_times(self, channel: str, symbol: str) -> None:
        """A resubscription starts a new stream (a snapshot may be older)."""
        self._last_ts[channel].pop(symbol, None)

    def precision_for(self, symbol: str, channel: str, recv_ts: float) -> PairPrecision | None:
        precision = self.instruments.precision(symbol)
        if precision is None:
            self.reject("unknown_instrument", f"no precision known for {symbol}", recv_ts, symbol, channel)
        return precision

    def reject(
        self, kind: str, detail: str, recv_ts: float, symbol: str | None, channel: str
    ) -> None:
        self.reporter.report(kind, detail, recv_ts, symbol=symbol, channel=channel, endpoint=self.endpoint)
