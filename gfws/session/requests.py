"""Requests waiting for the venue's acks, matched by ``req_id``.

A subscribe for three symbols brings three acks (Kraken sends one per
symbol).  The request's Deferred fires once all have arrived, or errbacks
when any was refused or when they did not all come in time.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from gfws.messages import Ack


class RequestFailed(Exception):
    """The venue refused part or all of a request."""

    def __init__(self, method: str, channel: str, rejected: dict[str, str], accepted: list[str]):
        detail = "; ".join(f"{symbol or channel}: {error}" for symbol, error in rejected.items())
        super().__init__(f"{method} {channel} refused: {detail}")
        self.method = method
        self.channel = channel
        self.rejected = rejected
        self.accepted = accepted


class RequestTimedOut(Exception):
    """Not every ack for a request arrived within the timeout."""

    def __init__(self, method: str, channel: str, missing: int, timeout: float):
        super().__init__(f"{method} {channel}: {missing} ack(s) missing after {timeout:g}s")
        self.method = method
        self.channel = channel
        self.missing = missing


class RequestsClosed(Exception):
    """The connection closed before the request was answered."""


class _Pending:
    __slots__ = ("accepted", "channel", "deferred", "method", "rejected", "remaining", "symbols", "timer")

    def __init__(self, method: str, channel: str, symbols: Sequence[str], expected: int) -> None:
        self.method = method
        self.channel = channel
        self.symbols = tuple(symbols)
        self.remaining = expected
        self.accepted: list[str] = []
        self.rejected: dict[str, str] = {}
        self.deferred: Deferred[list[str]] = Deferred()
        self.timer: IDelayedCall | None = None


class PendingRequests:
    """Tracks the requests of one connection."""

    def __init__(self, clock: IReactorTime, timeout: float) -> None:
        self._clock = clock
        self._timeout = timeout
        self._next_id = 0
        self._pending: dict[int, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def expect(
        self, req_id: int, method: str, channel: str, symbols: Sequence[str], expected: int, armed: bool = True
    ) -> Deferred[list[str]]:
        """Register a request; the Deferred fires with the accepted symbols.

        The timeout starts now, or at ``arm(req_id)`` for a request that
        waits in a queue before it is actually sent.
        """
        pending = _Pending(method, channel, symbols, expected)
        self._pending[req_id] = pending
        if armed:
            self.arm(req_id)
        return pending.deferred

    def arm(self, req_id: int) -> None:
        pending = self._pending.get(req_id)
        if pending is not None and pending.timer is None:
            pending.timer = self._clock.callLater(self._timeout, self._expire, req_id)

    def ack_received(self, ack: Ack) -> bool:
        """Account one ack; False when it answers no request of ours."""
        if ack.req_id is None:
            return False
        pending = self._pending.get(ack.req_id)
        if pending is None or ack.method != pending.method:
            return False
        if ack.symbol is not None and (ack.symbol in pending.accepted or ack.symbol in pending.rejected):
            return True  # the venue (or a proxy) said it twice: one answer per symbol
        if ack.success:
            pending.accepted.append(ack.symbol or pending.channel)
        else:
            error = ack.error or "refused without a reason"
            if ack.symbol is None:
                # Refused as a whole (bad parameters): no other ack follows.
                for symbol in pending.symbols or (pending.channel,):
                    if symbol not in pending.accepted:
                        pending.rejected[symbol] = error
                pending.remaining = 0
            else:
                pending.rejected[ack.symbol] = error
        pending.remaining -= 1
        if pending.remaining <= 0:
            self._finish(ack.req_id, pending)
        return True

    def _finish(self, req_id: int, pending: _Pending) -> None:
        del self._pending[req_id]
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        if pending.rejected:
            pending.deferred.errback(
                RequestFailed(pending.method, pending.channel, pending.rejected, pending.accepted)
            )
        else:
            pending.deferred.callback(pending.accepted)

    def _expire(self, req_id: int) -> None:
        pending = self._pending.pop(req_id)
        pending.deferred.errback(
            RequestTimedOut(pending.method, pending.channel, pending.remaining, self._timeout)
        )

    def close(self) -> None:
        """Fail every outstanding request: its connection is gone."""
        pending, self._pending = self._pending, {}
        for request in pending.values():
            if request.timer is not None and request.timer.active():
                request.timer.cancel()
            request.deferred.errback(RequestsClosed(f"{request.method} {request.channel}: connection closed"))
