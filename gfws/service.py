"""FeedService: gfws for one venue, wired from a FeedConfig.

A ``MultiService`` holding (in start order) the optional local simulator and
the venue endpoint; its publisher is where subscribers attach.  Nothing
connects or opens a file before ``startService``.
"""

from __future__ import annotations

from typing import Any, Callable, Generator, Optional

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred
from twisted.logger import Logger

from gfws.config import EndpointConfig, FeedConfig
from gfws.connection.breaker import CircuitBreaker
from gfws.connection.budget import ConnectionBudget
from gfws.connection.endpoint import FeedEndpoint
from gfws.connection.pool import EndpointOutlet, EndpointPool
from gfws.events import Event
from gfws.integrity.report import IntegrityReporter
from gfws.interfaces import IVenueDialect
from gfws.publish import JsonlSink, Publisher
from gfws.session import FeedSession


def dialect_for(venue: str) -> IVenueDialect:
    if venue == "kraken":
        from gfws.venues.kraken import KrakenV2Dialect

        return KrakenV2Dialect()
    raise ValueError(f"no dialect for venue {venue!r}")


class FeedService(MultiService):
    log = Logger()

    def __init__(self, config: FeedConfig, reactor: Any = None, dialect: Optional[IVenueDialect] = None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor  # type: ignore[no-redef]
        self.config = config
        self.reactor = reactor
        self.dialect = dialect or dialect_for(config.venue)
        self.publisher = Publisher(reactor)
        self.reporter = IntegrityReporter(self.dialect.name, self.publisher.publish, reactor)
        if not config.endpoints:
            raise ValueError(f"{config.source}: no endpoints to connect to (the [simulator] demo runs under twistd gfws)")
        self.pool = EndpointPool(
            config.pool,
            self.publisher.publish,
            reactor,
            self.dialect.name,
            maintenance_delay=config.connection.maintenance_reconnect_delay,
            dedup_capacity=config.integrity.duplicate_window,
            dedup_max_age=config.integrity.duplicate_max_age,
        )
        self.budget = ConnectionBudget(reactor, config.connection.connect_attempts, config.connection.connect_window)

    @property
    def endpoint(self) -> Optional[FeedEndpoint]:
        """The endpoint the consumer currently hears (the pool's leader)."""
        return self.pool.leader

    def subscribe(self, callback: Callable[[Event], object], *types: str) -> Callable[[], None]:
        """Receive events in-process; see ``Publisher.subscribe``."""
        return self.publisher.subscribe(callback, *types)

    def startService(self) -> None:
        for sink in self.config.sinks:
            self.publisher.add_sink(JsonlSink(sink.path))
        super().startService()
        for endpoint_config in self.config.endpoints:
            outlet = self.pool.outlet()
            self.pool.add(self._endpoint(endpoint_config, outlet), outlet)
        self.pool.setServiceParent(self)

    def _endpoint(self, endpoint_config: EndpointConfig, outlet: EndpointOutlet) -> FeedEndpoint:
        breaker = self.config.breaker
        return FeedEndpoint(
            endpoint_config,
            self.config.connection,
            self._new_session(outlet.publish),
            outlet.publish,
            self.reporter,
            self.dialect.name,
            self.reactor,
            breaker=CircuitBreaker(self.reactor, breaker.failure_threshold, breaker.recovery_time),
            budget=self.budget,
            reconnect_floor=self.pool.reconnect_floor,
            on_state=self.pool.endpoint_changed,
        )

    def _new_session(self, publish: Callable[[Event], None]) -> Callable[..., FeedSession]:
        def new_session(
            send: Callable[[bytes], None],
            endpoint: str,
            on_active: Callable[[], None],
            on_failure: Callable[[str], None],
        ) -> FeedSession:
            return FeedSession(
                self.dialect,
                self.config.subscriptions,
                publish,
                self.reporter,
                self.reactor,
                send,
                endpoint,
                self.config.connection.ack_timeout,
                on_active,
                on_failure,
                liveness=self.config.liveness,
                rate_limit=self.config.rate_limit,
                integrity=self.config.integrity,
            )

        return new_session

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        """Stop children one at a time, newest first, then flush the sinks.

        Sequential, unlike ``MultiService``: the endpoints' close handshakes
        must finish before the simulator (when there is one) goes away.  The
        whole shutdown is bounded by ``connection.shutdown_timeout``: what is
        still open then is dropped.
        """
        Service.stopService(self)
        bound = self.config.connection.shutdown_timeout
        for child in reversed(list(self)):
            try:
                yield maybeDeferred(child.stopService).addTimeout(bound, self.reactor)
            except defer.TimeoutError:
                self.log.warn("{child!r} did not stop within {bound}s; dropping its connections", child=child, bound=bound)
                if child is self.pool:
                    self.pool.abort()
            except Exception:
                self.log.failure("stopping {child!r} failed", child=child)
        self.publisher.close()
