"""FeedService: gfws for one venue, wired from a FeedConfig.

The only room that wires everything.  Data goes one way: each endpoint's
connections get a session (``gfws.session``) whose events enter the
selector through that endpoint's outlet, and the selector hands what the
consumer should hear to the publisher (subscribers, then sinks).  Control
goes the other way: the pool starts, parks and elects endpoints and tells
the selector who leads.  Nothing connects or opens a file before
``startService``; a stopped service can be started again.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet import defer, threads
from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred
from twisted.logger import Logger

from gfws.account import FillLedger, OrderStates
from gfws.config import EndpointConfig, FeedConfig
from gfws.connection.breaker import CircuitBreaker
from gfws.connection.budget import ConnectionBudget
from gfws.connection.endpoint import FeedEndpoint
from gfws.connection.pool import EndpointPool
from gfws.connection.protocol import FeedClientFactory
from gfws.connection.tls import client_endpoint
from gfws.events import Book, Connection, Error, Event
from gfws.integrity.report import IntegrityReporter
from gfws.interfaces import IConnectionHandler, IVenueDialect
from gfws.monitor.alerts import AlertRules
from gfws.monitor.metrics import registry_for
from gfws.monitor.readings import diagnostics, health
from gfws.monitor.web import MonitorServer, site
from gfws.publish import JsonlSink, Publisher
from gfws.publish.redis import RedisStreamSink
from gfws.publish.selector import Outlet, Selector
from gfws.recording import RecordedConnection, Recorder
from gfws.session import FeedSession
from gfws.session.auth import Authenticator
from gfws.session.stats import EndpointStats
from gfws.venues import dialect_for


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FeedService(MultiService):
    log = Logger()

    def __init__(self, config: FeedConfig, reactor: Any = None, dialect: IVenueDialect | None = None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        if not config.endpoints:
            raise ValueError(
                f"{config.source}: no endpoints to connect to (the [simulator] demo runs under twistd gfws)"
            )
        self.config = config
        self.reactor = reactor
        self.dialect = dialect or dialect_for(config.venue)
        self.publisher = Publisher(reactor)
        self.selector = Selector(self.publisher.publish, config.pool.mode == "hot_standby")
        self._outlet = self.selector.outlet()  # events of no endpoint (integrity reports, the pool)
        self.reporter = IntegrityReporter(self.dialect.name, self._outlet.publish, reactor)
        private = self.dialect.private_channels
        self._market_subscriptions = tuple(s for s in config.subscriptions if s.channel not in private)
        self._account_subscriptions = tuple(s for s in config.subscriptions if s.channel in private)
        # Market data and the account never share a pool: each elects its own leader.
        self.pool = EndpointPool(
            config.pool,
            reactor,
            on_leader=self._leader_changed,
            maintenance_delay=config.connection.maintenance_reconnect_delay,
        )
        self._market_leader: FeedEndpoint | None = None
        self.recorder: Recorder | None = None
        self.account_pool: EndpointPool | None = None
        self.authenticator: Authenticator | None = None
        self.ledger: FillLedger | None = None
        self.orders = OrderStates()
        if any(e.private for e in config.endpoints):
            self.account_pool = EndpointPool(
                config.pool, reactor, on_leader=self._account_leader_changed,
                maintenance_delay=config.connection.maintenance_reconnect_delay,
            )
            credentials = config.credentials
            if credentials is None:
                raise ValueError(f"{config.source}: private endpoints need credentials ([auth])")
            provider = self.dialect.token_provider(credentials.secrets, credentials.rest_url,
                                                   credentials.token_timeout)
            self.authenticator = Authenticator(provider, reactor, self._authentication_refused)
        self.budget = ConnectionBudget(reactor, config.connection.connect_attempts, config.connection.connect_window)
        self._stopping: Deferred[None] | None = None
        self.stop_reactor_when_a_sink_closes = False  # twistd sets it: the process has nothing left to do
        self.stats = {e.name: EndpointStats() for e in config.endpoints}
        for endpoint_config in config.endpoints:
            if endpoint_config.private:
                assert self.account_pool is not None
                self.account_pool.add(self._endpoint(endpoint_config))
            else:
                self.pool.add(self._endpoint(endpoint_config))
        self.pool.setServiceParent(self)
        if self.account_pool is not None:
            self.account_pool.setServiceParent(self)
        self.alerts = AlertRules(self, config.alerts, reactor, self._outlet.publish)
        self.monitor: MonitorServer | None = None
        if config.monitor is not None:
            web = site(registry_for(self), self.health, self.diagnostics)
            self.monitor = MonitorServer(reactor, config.monitor.host, config.monitor.port, web)
            self.monitor.setServiceParent(self)

    @property
    def endpoints(self) -> list[FeedEndpoint]:
        """Every endpoint, market data's first, then the account's."""
        return self.pool.endpoints + (self.account_pool.endpoints if self.account_pool is not None else [])

    @property
    def endpoint(self) -> FeedEndpoint | None:
        """The endpoint the consumer currently hears (the pool's leader)."""
        return self.pool.leader

    def subscribe(self, callback: Callable[[Event], object], *types: str) -> Callable[[], None]:
        """Receive events in-process; see ``Publisher.subscribe``."""
        return self.publisher.subscribe(callback, *types)

    def health(self) -> dict[str, Any]:
        """``{"healthy": ..., "reasons": [...], "leader": ...}``: healthy when every configured
        subscription is live on the endpoint the consumer hears, every book verified."""
        return health(self)

    def diagnostics(self) -> dict[str, Any]:
        """Every endpoint, breaker, the budget, subscriptions, books, sinks and counters."""
        return diagnostics(self)

    def book(self, symbol: str) -> Book | None:
        """The current verified book of ``symbol`` from the endpoint the consumer hears, or None."""
        leader = self.pool.leader
        handler = leader.handler if leader is not None else None
        if handler is None:
            return None
        for event in handler.restate(self.reactor.seconds()):
            if isinstance(event, Book) and event.symbol == symbol:
                return event
        return None

    # -- wiring ---------------------------------------------------------------

    def _endpoint(self, config: EndpointConfig) -> FeedEndpoint:
        c = self.config.connection
        breaker = self.config.breaker
        outlet = self.selector.outlet(config.name)
        pool = self.account_pool if config.private and self.account_pool is not None else self.pool
        return FeedEndpoint(
            config,
            c,
            self._sessions(outlet, config.private),
            outlet.publish,
            self.reactor,
            self.dialect.name,
            connect_endpoint=client_endpoint(self.reactor, config.url, config.ca_bundle, c.connect_timeout),
            factory=FeedClientFactory(config.url, c),
            reporter=self.reporter,
            breaker=CircuitBreaker(self.reactor, breaker.failure_threshold, breaker.recovery_time),
            budget=self.budget,
            reconnect_floor=pool.reconnect_floor,
            has_alternative=pool.has_alternative,
            on_change=pool.endpoint_changed,
            on_status=pool.status_changed,
        )

    def _sessions(self, outlet: Outlet, private: bool) -> Callable[[str], IConnectionHandler]:
        config = self.config
        subscriptions = self._account_subscriptions if private else self._market_subscriptions

        def new_session(endpoint: str) -> IConnectionHandler:
            session = FeedSession(
                self.dialect,
                subscriptions,
                outlet,
                self.reporter,
                self.reactor,
                endpoint,
                config.connection.ack_timeout,
                liveness=config.liveness,
                rate_limit=config.rate_limit,
                integrity=config.integrity,
                stats=self.stats[endpoint],
                authenticator=self.authenticator if private else None,
                ledger=self.ledger,
                orders=self.orders,
            )
            if self.recorder is not None:
                return RecordedConnection(session, self.recorder, endpoint, self.reactor)
            return session

        return new_session

    def _leader_changed(self, new: FeedEndpoint, reason: str) -> None:
        now = self.reactor.seconds()
        old, self._market_leader = self._market_leader, new
        if old is not None and not self.pool.hot and not old.ready:
            self._trade_coverage_gap(old, new, now)
        self._outlet.publish(
            Connection(venue=self.dialect.name, recv_ts=now, endpoint=new.name, state="leader",
                       url=new.config.url, reason=reason)
        )
        # The consumer's books came from elsewhere (or nowhere): restate.
        handler = new.handler
        self.selector.lead(new.name, handler.restate(now) if handler is not None else ())

    def _trade_coverage_gap(self, old: FeedEndpoint, new: FeedEndpoint, now: float) -> None:
        """A failover (not a failback: the old leader is gone) with trades subscribed without a
        snapshot: nothing can replay what happened in between, so say which span it is."""
        symbols = sorted(symbol for s in self._market_subscriptions if s.channel == "trade"
                         and not s.options.get("snapshot", False) for symbol in s.symbols)
        if not symbols:
            return
        since = self.selector.last_trade.get(old.name, old.since)
        self.reporter.report(
            "coverage_gap",
            f"no trade coverage from {_iso(since)} to {_iso(now)}: {old.name} stopped delivering and {new.name} "
            "subscribed without a trade snapshot; trades in between are missing "
            "(snapshot = true on the trade subscription has the venue replay its last 50)",
            now, channel="trade", symbol=",".join(symbols), endpoint=new.name,
        )

    def _account_leader_changed(self, new: FeedEndpoint, reason: str) -> None:
        """Fills pass from every private endpoint (the ledger makes them once): only said."""
        self._outlet.publish(
            Connection(venue=self.dialect.name, recv_ts=self.reactor.seconds(), endpoint=new.name,
                       state="account_leader", url=new.config.url, reason=reason)
        )

    def _authentication_refused(self, text: str) -> None:
        self._outlet.publish(
            Error(venue=self.dialect.name, recv_ts=self.reactor.seconds(), message=f"authentication refused: {text}",
                  channel="executions")
        )

    # -- service --------------------------------------------------------------

    def startService(self) -> None:
        """Open the sinks and start the endpoints; started again before a stop
        has finished, it starts once that stop is done (the sinks it closes
        are its own, never the new ones)."""
        stopping = self._stopping
        if stopping is not None and not stopping.called:
            Service.startService(self)
            stopping.addCallback(lambda _: self._start() if self.running else None)
            return
        self._start()

    def _start(self) -> None:
        if getattr(self.dialect, "compiled", True) is False:
            self.log.warn("{venue}: the compiled book core is not built here (no C compiler when gfws was "
                          "installed, or GFWS_PURE_PYTHON set): the pure-Python book gives the same events, "
                          "several times slower", venue=self.dialect.name)
        account = self.config.account
        if self._account_subscriptions and (self.ledger is None or account.ledger is not None):
            # A file is opened at start and released at stop; one in memory lives as long as the feed.
            self.ledger = FillLedger(account.ledger, account.keep)
        recording = self.config.recorder
        if recording is not None and self.recorder is None:
            self.recorder = Recorder(recording.path, int(recording.rotate_mb * 2**20), recording.rotate_minutes * 60)
        for sink in self.config.sinks:
            if sink.type == "redis":
                self.publisher.add_sink(RedisStreamSink(
                    sink.url, self.reactor, stream=sink.stream, maxlen=sink.maxlen, buffer=sink.buffer,
                    report=self._sink_report,
                ))
            else:
                self.publisher.add_sink(
                    JsonlSink(sink.path, self.reactor, report=self._sink_report, on_closed=self._sink_closed)
                )
        super().startService()
        self.alerts.start()

    def reopen_sinks(self) -> None:
        """Reopen every file sink at its path (after log rotation; twistd wires SIGHUP here)."""
        for sink in self.publisher.sinks:
            reopen = getattr(sink, "reopen", None)
            if reopen is not None:
                reopen()

    def _sink_report(self, kind: str, detail: str) -> None:
        self.reporter.report(kind, detail, self.reactor.seconds(), channel="sink")

    def _sink_closed(self, reason: str) -> None:
        """A sink's reader went away (``| head``): stop cleanly, once; under twistd, exit."""
        if not self.running:
            return
        self.log.error("stopping: {reason}", reason=reason)
        stopped = self.stopService()
        if self.stop_reactor_when_a_sink_closes:
            stopped.addBoth(lambda _: self.reactor.stop())

    def stopService(self) -> Deferred[None]:
        self._stopping = self._stop()
        return self._stopping

    @inlineCallbacks
    def _stop(self) -> Generator[Deferred[Any], Any, None]:
        """Stop the endpoints (gracefully, bounded by ``connection.shutdown_timeout``:
        what is still open then is dropped), then flush and close the sinks."""
        Service.stopService(self)
        self.alerts.stop()
        bound = self.config.connection.shutdown_timeout
        for child in reversed(list(self)):
            try:
                yield maybeDeferred(child.stopService).addTimeout(bound, self.reactor)
            except defer.TimeoutError:
                self.log.warn(
                    "{child!r} did not stop within {bound}s; dropping its connections", child=child, bound=bound
                )
                if child is self.pool:
                    self.pool.abort()
            except Exception:
                self.log.failure("stopping {child!r} failed", child=child)
        self.selector.leader = None
        self._market_leader = None
        sinks = list(self.publisher.sinks)  # closing takes them off the publisher
        yield self._close_sinks(bound)
        if self.ledger is not None:
            lost = [exec_id for sink in sinks for exec_id in getattr(sink, "lost_fills", ())]
            if lost:
                self.log.error("{n} fills a sink gave up at shutdown are forgotten by the ledger: the venue's "
                               "snapshot brings them back at the next start", n=len(lost))
                self.ledger.forget(lost)
            self.ledger.close()
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            yield threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), recorder.close, bound)
        self._stopping = None

    def _close_sinks(self, bound: float) -> Deferred[None]:
        """Close every sink; past ``bound`` (a writer blocked on a reader that does not read),
        what they still hold is abandoned, counted, and the shutdown goes on."""
        sinks = self.publisher.sinks
        done: Deferred[None] = Deferred()

        def finished(_: object = None) -> None:
            if not done.called:
                done.callback(None)

        def expired() -> None:
            for sink in sinks:
                abandon = getattr(sink, "abandon", None)
                if abandon is not None:
                    abandon()
            finished()

        def settled(result: object) -> object:
            if timer.active():
                timer.cancel()
            return result

        timer = self.reactor.callLater(bound, expired)
        self.publisher.close().addBoth(finished)
        return done.addBoth(settled)
