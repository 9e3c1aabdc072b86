"""FeedService: gfws for one venue, wired from a FeedConfig.

A ``MultiService`` holding (in start order) the optional local simulator and
the venue endpoint; its publisher is where subscribers attach.  Nothing
connects or opens a file before ``startService``.
"""

from __future__ import annotations

from typing import Any, Callable, Generator, Optional

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred
from twisted.logger import Logger

from gfws.config import EndpointConfig, FeedConfig
from gfws.connection.endpoint import FeedEndpoint
from gfws.events import Event
from gfws.integrity import IntegrityReporter
from gfws.interfaces import IVenueDialect
from gfws.publish import JsonlSink, Publisher
from gfws.session import FeedSession
from gfws.sim import SimulatorService, SimVenue


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
        self.simulator: Optional[SimulatorService] = None
        if config.simulator is not None:
            sim = config.simulator
            venue = SimVenue(clock=reactor, interval=sim.interval, seed=sim.seed)
            self.simulator = SimulatorService(venue, port=sim.port, reactor=reactor)
        self.endpoint: Optional[FeedEndpoint] = None

    def subscribe(self, callback: Callable[[Event], object], *types: str) -> Callable[[], None]:
        """Receive events in-process; see ``Publisher.subscribe``."""
        return self.publisher.subscribe(callback, *types)

    def startService(self) -> None:
        for sink in self.config.sinks:
            self.publisher.add_sink(JsonlSink(sink.path))
        super().startService()
        if self.simulator is not None:
            self.simulator.setServiceParent(self)
        endpoints = self.config.endpoints
        if not endpoints:
            assert self.simulator is not None
            endpoints = (EndpointConfig(name="simulator", url=self.simulator.url),)
        preferred = endpoints[0]
        if len(endpoints) > 1:
            self.log.info(
                "using endpoint {name} (priority {priority}); the others wait for the endpoint pool",
                name=preferred.name,
                priority=preferred.priority,
            )
        self.endpoint = FeedEndpoint(
            preferred,
            self.config.connection,
            self._new_session,
            self.publisher.publish,
            self.reporter,
            self.dialect.name,
            self.reactor,
        )
        self.endpoint.setServiceParent(self)

    def _new_session(self, send: Callable[[bytes], None], endpoint: str, on_active: Callable[[], None]) -> FeedSession:
        return FeedSession(
            self.dialect,
            self.config.subscriptions,
            self.publisher.publish,
            self.reporter,
            self.reactor,
            send,
            endpoint,
            self.config.connection.ack_timeout,
            on_active,
        )

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        """Stop children one at a time, newest first, then flush the sinks.

        Sequential, unlike ``MultiService``: the endpoint's close handshake
        must finish before the simulator (when there is one) goes away.
        """
        Service.stopService(self)
        for child in reversed(list(self)):
            try:
                yield maybeDeferred(child.stopService)
            except Exception:
                self.log.failure("stopping {child!r} failed", child=child)
        self.publisher.close()
