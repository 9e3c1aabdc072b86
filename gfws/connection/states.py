"""The states of one endpoint, each holding its own data.

As in Twisted's ``ClientService``, what a state needs lives in it and goes
with it: an attempt knows why it failed, an open connection holds its
protocol and its handler (the session), a leaving endpoint holds what it
is closing and who waits for it.  ``TRANSITIONS`` lists every legal move;
``FeedEndpoint`` refuses any other with ``IllegalTransition``.

Public names (the ``state`` of ``connection`` events): disconnected,
connecting, connected, subscribing, active, reconnecting, failed,
disconnecting, shutdown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from gfws.interfaces import IConnectionHandler, IConnectionLink


class IllegalTransition(Exception):
    """A move the endpoint's life cycle does not have (a bug of ours)."""


class Idle:
    """Not in use (never started, or parked)."""

    name = "disconnected"


class Stopped:
    """Shut down (may be started again, as a restarted service does)."""

    name = "shutdown"


class Connecting:
    """A connection attempt is under way (or about to be made by ClientService)."""

    name = "connecting"

    def __init__(self, replaced: Any = None) -> None:
        self.attempt = 0  # its number, once the guard admitted it
        self.replaced = replaced  # the protocol a restart is replacing: its close is not this attempt's
        self.failure: str | None = None  # why it failed, once it did
        self.held_back = False  # refused before it began: counts against nothing


class Waiting:
    """Waiting for ClientService's next attempt (its delayed call)."""

    def __init__(self, reason: str, tripped: bool) -> None:
        self.reason = reason
        self.tripped = tripped

    @property
    def name(self) -> str:
        return "failed" if self.tripped else "reconnecting"


@implementer(IConnectionLink)
class Link:
    """What an open connection offers its handler; silent once the connection
    it belongs to is gone, so a late call of an old session changes nothing."""

    def __init__(self, endpoint: Any, protocol: Any) -> None:
        self._endpoint = endpoint
        self.protocol = protocol
        self.live = True

    def send(self, payload: bytes) -> None:
        if self.live:
            self.protocol.send(payload)

    def active(self, refused: str | None = None) -> None:
        if self.live:
            self._endpoint._link_active(self, refused)

    def readiness_changed(self) -> None:
        if self.live:
            self._endpoint._readiness_changed(self)

    def venue_status(self, system: str) -> None:
        if self.live:
            self._endpoint._venue_status(system)

    def unusable(self, reason: str) -> None:
        if self.live:
            self._endpoint._link_unusable(self, reason)


class Open:
    """The WebSocket is open: its protocol, its handler and its link."""

    def __init__(self, protocol: Any, handler: IConnectionHandler, link: Link) -> None:
        self.protocol = protocol
        self.handler = handler
        self.link = link
        self.phase = "connected"  # then subscribing, then active
        self.failure: str | None = None  # why the handler gave up on it

    @property
    def name(self) -> str:
        return self.phase

    def close(self, reason: str) -> None:
        """The connection is gone (or abandoned): end its conversation."""
        if self.link.live:
            self.link.live = False
            self.handler.connection_lost(reason)


class Leaving:
    """Leaving gracefully: unsubscribe, close 1000, stop retrying."""

    name = "disconnecting"

    def __init__(self, connection: Open | None, target: str, reason: str) -> None:
        self.connection = connection  # None once its socket has closed
        self.target = target  # "disconnected" (parked) or "shutdown"
        self.reason = reason
        self.closed_waiters: list[Deferred[None]] = []
        self.closed_with = "still open"  # how its socket closed, once it did
        self._done: list[Deferred[None]] = []
        self.finished = False

    def wait(self) -> Deferred[None]:
        """Fires when the endpoint has left (or a restart superseded leaving)."""
        if self.finished:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._done.append(d)
        return d

    def socket_closed(self, how: str | None = None) -> None:
        if how is not None:
            self.closed_with = how
        if self.connection is not None:
            self.connection = None
        waiters, self.closed_waiters = self.closed_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def finish(self) -> None:
        self.finished = True
        self.socket_closed()
        done, self._done = self._done, []
        for d in done:
            d.callback(None)


State = Any  # one of the classes above
TRANSITIONS: dict[type, tuple[type, ...]] = {
    Idle: (Connecting, Stopped),
    Stopped: (Connecting,),
    Connecting: (Open, Waiting, Idle, Stopped),
    Waiting: (Connecting, Idle, Stopped),
    Open: (Waiting, Leaving),  # its phases (connected, subscribing, active) are data, not states
    Leaving: (Idle, Stopped, Connecting),
}


def check(old: State, new: State, on_error: Callable[[str], None] = lambda text: None) -> None:
    """Raise ``IllegalTransition`` unless ``old`` -> ``new`` is listed."""
    if type(new) not in TRANSITIONS[type(old)]:
        text = f"{old.name} -> {new.name} is not a transition of an endpoint"
        on_error(text)
        raise IllegalTransition(text)
