"""``twistd gfws``: the feed service as a twistd plugin, and the demo.

The demo (a config with a ``[simulator]`` table and no endpoints) is
assembled here, not in the service: the simulator starts first on a free
loopback port, then a feed pointed at it; at shutdown the feed leaves
before the venue goes away.
"""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Callable, Generator
from importlib import resources
from typing import Any, ClassVar, NoReturn

import autobahn
import msgspec
import twisted
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred
from twisted.logger import jsonFileLogObserver
from twisted.python import usage

from gfws import __version__
from gfws.config import ConfigError, Credentials, EndpointConfig, FeedConfig, SubscriptionConfig, load_config
from gfws.service import FeedService
from gfws.sim import DEMO_KEY, DEMO_SECRET, SimAccount, SimulatorService, SimVenue, TokenService
from gfws.venues import dialect_for


def demo_config_path() -> str:
    return str(resources.files("gfws").joinpath("demo.toml"))


class Options(usage.Options):
    synopsis = "[--config FILE]"
    longdesc = (
        "Run a gfws feed: connect to the venue, subscribe, verify and normalize "
        "market data, and publish events to the configured sinks. Without "
        "--config, run the demo: the built-in Kraken v2 simulator on a free "
        "loopback port, with events printed to standard output as JSON lines."
    )
    optParameters: ClassVar[list[list[str | None]]] = [
        ["config", "c", None, "TOML configuration file (see docs/configuration.md). Default: the built-in demo."],
    ]
    optFlags: ClassVar[list[list[str | None]]] = [
        ["check", None, "Check the configuration (and the files it names) and exit, connecting to nothing."],
        ["private", None, "The demo with a simulated account: its fills and orders too (the simulator's "
                          "public test key; nothing leaves this machine)."],
    ]

    feed_config: FeedConfig

    def opt_version(self) -> None:
        """Print gfws's version and exit."""
        print(f"gfws {__version__} (Twisted {twisted.__version__}, Autobahn {autobahn.__version__})")
        raise SystemExit(0)

    def postOptions(self) -> None:
        path = self["config"] or demo_config_path()
        try:
            self.feed_config = load_config(path)
        except ConfigError as e:
            fail(str(e))
        if self["private"]:
            self.feed_config = _with_account(self.feed_config)
        if self["check"]:
            _refuse_what_cannot_work(self, self.feed_config)  # the ports and the daemon mode too
            print(f"{path}: OK", file=sys.stderr)
            raise SystemExit(0)


def fail(problem: str) -> NoReturn:
    """A start-up problem: one line on standard error, exit status 1, no traceback."""
    print(f"gfws: {problem}", file=sys.stderr)
    raise SystemExit(1)


def _with_account(config: FeedConfig) -> FeedConfig:
    """The demo's config with the simulated account and an executions subscription."""
    if config.simulator is None or config.endpoints:
        fail(f"{config.source}: --private runs the demo's simulated account; a config with endpoints "
             "names its own private endpoint and [auth] (docs/account.md)")
    subscriptions = config.subscriptions
    if not any(s.channel == "executions" for s in subscriptions):
        options = dialect_for(config.venue).default_options("executions")
        subscriptions = (*subscriptions, SubscriptionConfig("executions", (), options))
    simulator = msgspec.structs.replace(config.simulator, private=True)
    return msgspec.structs.replace(config, simulator=simulator, subscriptions=subscriptions)


class DemoService(MultiService):
    """A simulated venue and a feed connected to it, started in that order
    (the feed needs the venue's port) and stopped the other way round."""

    def __init__(self, config: FeedConfig, reactor: Any = None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        assert config.simulator is not None
        self._config = config
        self._reactor = reactor
        sim = config.simulator
        venue = SimVenue(clock=reactor, interval=sim.interval, seed=sim.seed)
        self.simulator = SimulatorService(venue, port=sim.port, reactor=reactor)
        self.simulator.setServiceParent(self)
        self.account: SimAccount | None = None
        self.tokens: TokenService | None = None
        if sim.private:
            self.account = SimAccount(reactor, seed=sim.seed)
            venue.account = self.account
            self.tokens = TokenService(self.account, port=0, reactor=reactor)
            self.tokens.setServiceParent(self)
        self.feed: FeedService | None = None

    def startService(self) -> None:
        super().startService()  # the simulator listens now
        endpoints = [EndpointConfig(name="simulator", url=self.simulator.url)]
        credentials = None
        if self.account is not None and self.tokens is not None:
            self.account.start(self._config.simulator.fill_interval)  # type: ignore[union-attr]
            endpoints.append(EndpointConfig(name="simulator-auth", url=self.simulator.url, private=True))
            secrets = dialect_for(self._config.venue).credentials(DEMO_KEY, DEMO_SECRET)
            credentials = Credentials(rest_url=self.tokens.url, secrets=secrets, source="the simulator's test key")
        config = msgspec.structs.replace(self._config, endpoints=tuple(endpoints), simulator=None,
                                         credentials=credentials)
        self.feed = FeedService(config, self._reactor)
        self.feed.stop_reactor_when_a_sink_closes = True
        self.feed.setServiceParent(self)  # its monitor logs the dashboard's address (standard error)

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        Service.stopService(self)
        if self.account is not None:
            self.account.stop()
        for child in reversed(list(self)):
            yield maybeDeferred(child.stopService)


def json_log() -> Any:
    """A log observer writing one JSON object per line to standard error, for log shippers:
    ``twistd -n --logger=gfws.tap.json_log gfws``."""
    return jsonFileLogObserver(sys.__stderr__ or sys.stderr, recordSeparator="")


def _events_own_stdout(config: FeedConfig) -> None:
    """When events go to standard output, twistd's log goes to standard error,
    so that ``twistd -n gfws | jq`` reads nothing but events.  (twistd opens
    its log on ``sys.stdout`` after this runs; the JSON Lines sink writes to
    file descriptor 1 itself.)"""
    if any(sink.type == "jsonl" and sink.path == "-" for sink in config.sinks):
        sys.stdout = sys.stderr


def _refuse_what_cannot_work(options: Options, config: FeedConfig) -> None:
    """Problems no config check can see, said before anything listens or connects."""
    parent = getattr(options, "parent", None)
    to_stdout = any(s.type == "jsonl" and s.path == "-" for s in config.sinks)
    if parent is not None and not parent.get("nodaemon") and to_stdout:
        fail(f"{config.source}: sinks: path = \"-\" writes to standard output, which a daemon does not have; "
             "run with -n, or write to a file")
    sim = config.simulator
    if sim is not None and not config.endpoints and sim.port:
        _can_listen(config.source, "simulator.port", "127.0.0.1", sim.port)
    if config.monitor is not None and config.monitor.port:
        _can_listen(config.source, "monitor.port", config.monitor.host, config.monitor.port)


def _can_listen(source: str, key: str, host: str, port: int) -> None:
    """Bind as Twisted will (SO_REUSEADDR: a port only in TIME_WAIT is free), then let go."""
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((host, port))
    except OSError as e:
        fail(f"{source}: {key}: cannot listen on {host}:{port}: {e.strerror}")
    finally:
        probe.close()


def _reopen_on_sighup(feed: Callable[[], FeedService | None]) -> None:
    """SIGHUP (logrotate's postrotate) reopens the file sinks, on the reactor thread."""
    from twisted.internet import reactor

    def hup(signum: int, frame: Any) -> None:
        service = feed()
        if service is not None:
            reactor.callFromThread(service.reopen_sinks)  # type: ignore[attr-defined]

    signal.signal(signal.SIGHUP, hup)


def makeService(options: Options) -> MultiService:
    config = options.feed_config
    _refuse_what_cannot_work(options, config)
    _events_own_stdout(config)
    if config.simulator is not None and not config.endpoints:
        demo = DemoService(config)
        _reopen_on_sighup(lambda: demo.feed)
        return demo
    feed = FeedService(config)
    feed.stop_reactor_when_a_sink_closes = True
    _reopen_on_sighup(lambda: feed)
    return feed
