"""The endpoints of one feed, and which of them the consumer hears.

``failover``: one endpoint (the leader) carries the feed.  When it fails the
next endpoint by priority is started at once; with ``failback`` the better
endpoints keep retrying (backoff, breaker) and, as soon as one is ready
(subscribed, books verified), it takes over and the worse one is parked:
subscribe on the better one before dropping the other, so there is no gap.

``hot_standby``: every endpoint is connected and subscribed.  Trades are
published once, from whichever endpoint delivers them first (deduplicated by
the venue's trade id), so losing one endpoint loses no trade another
delivered.  Books and tickers come from the leader only; when it fails the
leadership moves to an endpoint whose books are already verified, and that
endpoint's current books are published at once.

Every endpoint publishes through its own outlet; the outlet lets market data
through only as described above, and connection, status, integrity and error
events always.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger

from gfws.config import PoolConfig
from gfws.connection.endpoint import FeedEndpoint
from gfws.integrity.dedup import RecentKeys
from gfws.events import Book, Connection, Event, Status, Ticker, Trade


class EndpointOutlet:
    """Where one endpoint's events enter the feed."""

    __slots__ = ("_pool", "endpoint")

    def __init__(self, pool: "EndpointPool") -> None:
        self._pool = pool
        self.endpoint: Optional[FeedEndpoint] = None

    def publish(self, event: Event) -> None:
        pool = self._pool
        kind = type(event)
        if kind is Book or kind is Ticker:
            if self.endpoint is pool.leader:
                pool.publish(event)
            elif kind is Book and event.snapshot:  # type: ignore[union-attr]
                pool.elect()  # a standby may just have become ready
        elif kind is Trade:
            if self.endpoint is pool.leader or pool.hot:
                if pool.trades.first_time((event.symbol, event.trade_id)):  # type: ignore[union-attr]
                    pool.publish(event)
        else:
            if kind is Status:
                pool.venue_status = event.system  # type: ignore[union-attr]
            pool.publish(event)


class EndpointPool(Service):
    log = Logger()

    def __init__(
        self,
        config: PoolConfig,
        publish: Callable[[Event], None],
        clock: Any,
        venue: str,
        maintenance_delay: float = 5.0,
        dedup_capacity: int = 100_000,
        dedup_max_age: float = 0.0,
    ) -> None:
        self.config = config
        self.hot = config.mode == "hot_standby"
        self.publish = publish
        self._clock = clock
        self._venue = venue
        self._maintenance_delay = maintenance_delay
        self.endpoints: list[FeedEndpoint] = []
        self.leader: Optional[FeedEndpoint] = None
        self.trades = RecentKeys(dedup_capacity, dedup_max_age, clock)
        self.venue_status = "online"
        self.switches = 0
        self._pending: Any = None

    def outlet(self) -> EndpointOutlet:
        return EndpointOutlet(self)

    def add(self, endpoint: FeedEndpoint, outlet: EndpointOutlet) -> None:
        outlet.endpoint = endpoint
        self.endpoints.append(endpoint)
        self.endpoints.sort(key=lambda e: e.priority)

    def reconnect_floor(self) -> float:
        """Kraken: after maintenance, no faster than one attempt per 5 s."""
        return self._maintenance_delay if self.venue_status != "online" else 0.0

    # -- service ----------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._elect()

    def stopService(self) -> "Deferred[Any]":
        super().stopService()
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        self.leader = None
        return DeferredList([endpoint.stop() for endpoint in self.endpoints], consumeErrors=True)

    def abort(self) -> None:
        for endpoint in self.endpoints:
            endpoint.abort()

    # -- who runs, who leads ------------------------------------------------

    def endpoint_changed(self, endpoint: FeedEndpoint, state: str) -> None:
        """Every state change of every endpoint: reconsider."""
        self.elect()

    def elect(self) -> None:
        """Reconsider soon, on a fresh stack: this is called from inside
        endpoints' state transitions, which must not be re-entered."""
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
            leader: Optional[FeedEndpoint] = current
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
        if self.hot:
            needed = list(endpoints)
        else:
            # Failover: walk by priority (without failback: from the leader
            # on), running each endpoint, until one that is ready, or, when
            # none is, one that is still hopeful (not failing).
            start = 0 if failback or self.leader is None else endpoints.index(self.leader)
            needed = []
            for endpoint in endpoints[start:] + endpoints[:start]:
                needed.append(endpoint)
                if endpoint.ready or (not ready and endpoint.state not in ("reconnecting", "failed")):
                    break
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

    def _switch(self, new: FeedEndpoint) -> None:
        old, self.leader = self.leader, new
        self.switches += 1
        reason = f"took over from {old.name}" if old is not None else "first leader"
        self.log.info("{new} leads ({reason})", new=new.name, reason=reason)
        now = self._clock.seconds()
        self.publish(Connection(venue=self._venue, recv_ts=now, endpoint=new.name, state="leader",
                                url=new.config.url, reason=reason))
        session = new.session
        if session is not None:
            # The consumer's books came from elsewhere (or nowhere): restate.
            for event in session.books.current_all(now):
                self.publish(event)
