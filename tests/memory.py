"""A client FeedSession wired to a simulator SimSession in memory.

Frames go straight from one to the other (bytes, both ways), the clock is a
``task.Clock``: the whole Kraken v2 conversation runs deterministically with
no socket, as treq's StubTreq does for HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.task import Clock
from zope.interface import implementer

from gfws.config import SubscriptionConfig
from gfws.events import Event
from gfws.integrity.report import IntegrityReporter
from gfws.interfaces import IConnectionLink
from gfws.session import FeedSession
from gfws.sim import SimVenue
from gfws.venues.kraken import KrakenV2Dialect


def sub(channel: str, *symbols: str, **options: Any) -> SubscriptionConfig:
    if channel == "book":
        options.setdefault("depth", 10)
        options["snapshot"] = True
    return SubscriptionConfig(channel, symbols, options)


@implementer(IConnectionLink)
class SessionLink:
    """Forwards the session's words to the MemoryLink (whose counters share the names)."""

    def __init__(self, owner: MemoryLink) -> None:
        self._owner = owner

    def send(self, payload: bytes) -> None:
        self._owner.send(payload)

    def active(self, refused: str | None = None) -> None:
        self._owner.active += 1
        self._owner.refused = refused

    def readiness_changed(self) -> None:
        self._owner.readiness_changes += 1
        self._owner.readiness.append(self._owner.client.ready)

    def venue_status(self, system: str) -> None:
        self._owner.statuses.append(system)

    def unusable(self, reason: str) -> None:
        self._owner.unusable.append(reason)


class MemoryLink:
    def __init__(
        self,
        subscriptions: Sequence[SubscriptionConfig],
        seed: int = 1,
        ack_timeout: float = 5.0,
        gate: Any = None,
        integrity: Any = None,
        dialect: Any = None,
    ) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.venue = SimVenue(clock=self.clock, interval=0.05, seed=seed)
        self.events: list[Event] = []
        self.sent: list[bytes] = []  # client -> venue
        self.received: list[bytes] = []  # venue -> client
        dialect = dialect or KrakenV2Dialect()
        self.reporter = IntegrityReporter(dialect.name, self.events.append, self.clock)
        self.active = 0
        self.unusable: list[str] = []
        self.refused: str | None = None  # what the session said the venue refused for good
        self.statuses: list[str] = []
        self.readiness_changes = 0
        self.readiness: list[bool] = []  # the session's ready, each time it said it may have changed
        self.client = FeedSession(
            dialect, subscriptions, self.events.append, self.reporter, self.clock,
            "memory", ack_timeout, integrity=integrity,
        )
        self.also: list[Any] = []  # other receivers of the same frames at the same times
        self.server = self.venue.connect(self._to_client, gate)

    def send(self, payload: bytes) -> None:
        self.sent.append(payload)
        self.server.request_received(payload)

    def _to_client(self, payload: bytes) -> None:
        self.received.append(payload)
        for receiver in self.also:  # first: what the client answers may bring frames at once
            receiver(payload, self.clock.seconds())
        self.client.frame_received(payload, self.clock.seconds())

    def start(self) -> MemoryLink:
        self.venue.start()
        self.client.connection_made(SessionLink(self))
        return self

    def run(self, seconds: float) -> None:
        steps = round(seconds / 0.05)
        for _ in range(steps):
            self.clock.advance(0.05)

    def of(self, kind: str, **match: Any) -> list[Event]:
        return [
            e for e in self.events
            if e.__struct_config__.tag == kind and all(getattr(e, k) == v for k, v in match.items())
        ]
