"""The endpoints of one feed: who runs, and who leads.

``failover``: one endpoint (the leader) carries the feed.  When it fails the
next endpoint by priority is started at once; with ``failback`` the better
endpoints keep retrying (backoff, breaker) and, as soon as one is ready
(active, every configured book verified), it takes over and the worse one
is parked: subscribe on the better one before dropping the other, so there
is no gap.

``hot_standby``: every endpoint is connected and subscribed; the leader is
the best ready one.  Which endpoint's data the consumer hears is the
selector's job (``gfws.publish.selector``); the pool only tells it, through
``on_leader``, who leads.  No event passes through the pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from gfws.config import PoolConfig
from gfws.connection.endpoint import FeedEndpoint

LeaderChange = Callable[[FeedEndpoint, str], None]
"""(new leader, why: "first leader" or "took over from NAME")."""


class EndpointPool(Service):
    log = Logger()

    def __init__(
        self,
        config: PoolConfig,
        clock: IReactorTime,
        on_leader: LeaderChange = lambda new, reason: None,
        maintenance_delay: float = 5.0,
    ) -> None:
        self.config = config
        self.hot = config.mode == "hot_standby"
        self._clock = clock
        self._on_leader = on_leader
        self._maintenance_delay = maintenance_delay
        self.endpoints: list[FeedEndpoint] = []
        self.leader: FeedEndpoint | None = None
        self.venue_status = "online"
        self.switches = 0
        self._pending: IDelayedCall | None = None

    def add(self, endpoint: FeedEndpoint) -> None:
        self.endpoints.append(endpoint)
        self.endpoints.sort(key=lambda e: e.priority)

    # -- what endpoints ask of the pool (wired by whoever builds them) ----------

    def reconnect_floor(self) -> float:
        """Kraken: after maintenance, no faster than one attempt per 5 s."""
        return self._maintenance_delay if self.venue_status != "online" else 0.0

    def has_alternative(self, endpoint: FeedEndpoint) -> bool:
        """Can another endpoint carry the feed?  (Only then may a breaker
        hold ``endpoint`` back.)"""
        return any(other.ready for other in self.endpoints if other is not endpoint)

    def status_changed(self, system: str) -> None:
        self.venue_status = system

    def endpoint_changed(self, endpoint: FeedEndpoint) -> None:
        """Every state or readiness change of every endpoint: reconsider."""
        self.elect()

    # -- service --------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._elect()

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        self.leader = None
        return DeferredList([endpoint.stop() for endpoint in self.endpoints], consumeErrors=True)

    def abort(self) -> None:
        for endpoint in self.endpoints:
            endpoint.abort()

    # -- who runs, who leads -----------------------------------------------------

    def elect(self) -> None:
        """Reconsider soon, on a fresh stack: this is called from inside
        endpoints' state changes, which must not be re-entered."""
        if self.running and self._pending is None:
            self._pending = self._clock.callLater(0, self._elect)

    def _elect(self) -> None:
        self._pending = None
        if not self.running:
            return
        endpoints = self.endpoints
        ready = [e for e in endpoints if e.ready]
        current = self.leader
        failback = self.config.failback
        if current is not None and current.ready and not (failback and ready[0] is not current):
            leader: FeedEndpoint | None = current
        elif ready:
            leader = ready[0]
        else:
            # Nothing verified yet: hear the best endpoint that has data flowing.
            flowing = [e for e in endpoints if e.running and e.state in ("subscribing", "active")]
            leader = current if current in flowing else (flowing[0] if flowing else current)
        if leader is not current and leader is not None:
            self._switch(leader)
            if not self.running:
                return
        needed = list(endpoints) if self.hot else self._failover_walk(ready)
        # Each start or park publishes events, and a subscriber may stop the
        # feed from its callback: check before every step.
        for endpoint in needed:
            if not self.running:
                return
            endpoint.start()
        if not needed or not needed[-1].ready:
            # Nothing ready to hand over to: park nobody.  (A failing better
            # endpoint retrying looks hopeful for a moment; parking the
            # working one then would only make it flap.)
            return
        for endpoint in endpoints:
            if not self.running:
                return
            if endpoint not in needed and endpoint.running:
                endpoint.park(f"{self.leader.name if self.leader else 'another endpoint'} carries the feed")

    def _failover_walk(self, ready: list[FeedEndpoint]) -> list[FeedEndpoint]:
        """Walk by priority (without failback: from the leader on), running each
        endpoint, until one that is ready, or, when none is, one that is still
        hopeful (not failing)."""
        endpoints = self.endpoints
        start = 0 if self.config.failback or self.leader is None else endpoints.index(self.leader)
        needed = []
        for endpoint in endpoints[start:] + endpoints[:start]:
            needed.append(endpoint)
            if endpoint.ready or (not ready and endpoint.state not in ("reconnecting", "failed")):
                break
        return needed

    def _switch(self, new: FeedEndpoint) -> None:
        old, self.leader = self.leader, new
        self.switches += 1
        reason = f"took over from {old.name}" if old is not None else "first leader"
        self.log.info("{new} leads ({reason})", new=new.name, reason=reason)
        self._on_leader(new, reason)
