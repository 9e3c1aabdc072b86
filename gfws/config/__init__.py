"""TOML configuration: read, checked completely, typed.

Every problem is reported before anything connects, as one message naming
the file, the key and what was expected.  Unknown keys are errors too: a
misspelt option silently ignored is how a feed ends up misconfigured.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from autobahn.websocket.util import parse_url

from gfws.venues.kraken.dialect import normalize_symbol

BOOK_DEPTHS = (10, 25, 100, 500, 1000)
CHANNEL_OPTIONS: dict[str, dict[str, Callable[[Any], Optional[str]]]] = {
    # channel -> option -> check returning what was expected, or None if fine
    "ticker": {
        "snapshot": lambda v: None if isinstance(v, bool) else "true or false",
        "event_trigger": lambda v: None if v in ("trades", "bbo") else '"trades" or "bbo"',
    },
    "trade": {"snapshot": lambda v: None if isinstance(v, bool) else "true or false"},
    "book": {
        "depth": lambda v: None if v in BOOK_DEPTHS and type(v) is int else f"one of {BOOK_DEPTHS}",
        "snapshot": lambda v: None if v is True else "true (books are built from a snapshot)",
    },
}
VENUES = ("kraken",)
SINK_TYPES = ("jsonl",)


class ConfigError(ValueError):
    """The configuration cannot be used; the message says where and why."""


@dataclass(frozen=True)
class EndpointConfig:
    name: str
    url: str
    priority: int = 1
    allow_insecure: bool = False
    ca_bundle: Optional[str] = None


@dataclass(frozen=True)
class SubscriptionConfig:
    channel: str
    symbols: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SinkConfig:
    type: str = "jsonl"
    path: str = "-"


@dataclass(frozen=True)
class ConnectionConfig:
    connect_timeout: float = 10.0
    open_handshake_timeout: float = 10.0
    close_handshake_timeout: float = 2.0
    ack_timeout: float = 10.0
    auto_ping_interval: float = 10.0
    auto_ping_timeout: float = 5.0
    max_message_size: int = 1 << 20
    backoff_initial: float = 1.0
    backoff_factor: float = 2.0
    backoff_cap: float = 60.0
    backoff_reset_after: float = 30.0
    connect_attempts: int = 150
    connect_window: float = 600.0
    maintenance_reconnect_delay: float = 5.0
    shutdown_timeout: float = 5.0


@dataclass(frozen=True)
class PoolConfig:
    """How the endpoints of a feed share the work."""

    mode: str = "failover"  # or "hot_standby"
    failback: bool = True


@dataclass(frozen=True)
class BreakerConfig:
    failure_threshold: int = 5
    recovery_time: float = 30.0


@dataclass(frozen=True)
class RateLimitConfig:
    """Token bucket for outgoing requests, per connection."""

    rate: float = 10.0
    burst: int = 20
    exceeded_retry_delay: float = 2.0


@dataclass(frozen=True)
class IntegrityConfig:
    """Duplicate window and time checks for incoming messages."""

    duplicate_window: int = 100_000  # keys remembered (trade ids, digests)
    duplicate_max_age: float = 300.0  # seconds a key is remembered
    max_message_age: float = 0.0  # flag items whose venue time is older (0: off)


@dataclass(frozen=True)
class LivenessConfig:
    data_timeout: float = 10.0
    ping_interval: float = 30.0
    ping_timeout: float = 10.0
    book: float = 0.0  # per-subscription staleness limits; 0 is off
    ticker: float = 0.0
    trade: float = 0.0

    @property
    def channel_timeouts(self) -> dict[str, float]:
        return {"book": self.book, "ticker": self.ticker, "trade": self.trade}


@dataclass(frozen=True)
class SimulatorConfig:
    """Run the built-in venue simulator on loopback (the demo)."""

    port: int = 0
    seed: int = 1
    interval: float = 0.05


@dataclass(frozen=True)
class FeedConfig:
    source: str
    venue: str
    endpoints: tuple[EndpointConfig, ...]
    subscriptions: tuple[SubscriptionConfig, ...]
    sinks: tuple[SinkConfig, ...]
    connection: ConnectionConfig
    simulator: Optional[SimulatorConfig] = None
    pool: PoolConfig = PoolConfig()
    breaker: BreakerConfig = BreakerConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()
    liveness: LivenessConfig = LivenessConfig()
    integrity: IntegrityConfig = IntegrityConfig()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Reader:
    """Walks the parsed TOML, turning each problem into a ConfigError."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, expected: str, got: Any = None, show: bool = True) -> ConfigError:
        shown = f", got {got!r}" if show else ""
        return ConfigError(f"{self.source}: {where}: expected {expected}{shown}")

    def table(self, data: Any, where: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(where, "a table", data)
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(
                f"{self.source}: {where}.{unknown[0]}: unknown key; expected one of {sorted(allowed)}"
            )
        return data

    def get(
        self,
        data: dict[str, Any],
        where: str,
        key: str,
        kind: type | tuple[type, ...],
        expected: str,
        default: Any = ...,
    ) -> Any:
        if key not in data:
            if default is ...:
                raise ConfigError(f"{self.source}: {where}.{key}: missing; expected {expected}")
            return default
        value = data[key]
        # bool is an int in Python; a TOML true is never a valid number here.
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            raise self.fail(f"{where}.{key}", expected, value)
        return value

    def number(self, data: dict[str, Any], where: str, key: str, default: float, positive: bool = True) -> float:
        value = self.get(data, where, key, (int, float), "a number", default)
        if positive and not value > 0:
            raise self.fail(f"{where}.{key}", "a number > 0", value)
        return float(value)

    def array(self, data: dict[str, Any], key: str) -> list[Any]:
        value = data.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, f"an array of tables ([[{key}]])", value)
        return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def load_config(path: str) -> FeedConfig:
    """Read and check ``path``; raise ConfigError naming what is wrong."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return parse_config(data, path)


def parse_config(data: dict[str, Any], source: str = "<config>") -> FeedConfig:
    r = _Reader(source)
    r.table(data, "(top level)", {"venue", "endpoints", "subscriptions", "sinks", "connection", "simulator", "pool", "breaker", "rate_limit", "liveness", "integrity"})
    if "venue" not in data:
        raise ConfigError(f'{source}: venue: missing; expected a [venue] table with name = "kraken"')
    venue = r.table(data["venue"], "venue", {"name"})
    name = r.get(venue, "venue", "name", str, f"one of {list(VENUES)}")
    if name not in VENUES:
        raise r.fail("venue.name", f"one of {list(VENUES)}", name)

    simulator = None
    if "simulator" in data:
        s = r.table(data["simulator"], "simulator", {"port", "seed", "interval"})
        port = r.get(s, "simulator", "port", int, "a port number 0-65535 (0: any free port)", 0)
        if not 0 <= port <= 65535:
            raise r.fail("simulator.port", "a port number 0-65535 (0: any free port)", port)
        simulator = SimulatorConfig(
            port=port,
            seed=r.get(s, "simulator", "seed", int, "an integer", 1),
            interval=r.number(s, "simulator", "interval", 0.05),
        )

    endpoints = tuple(
        _endpoint(r, item, f"endpoints[{i}]", os.path.dirname(source))
        for i, item in enumerate(r.array(data, "endpoints"))
    )
    if not endpoints and simulator is None:
        raise ConfigError(f"{source}: endpoints: missing; expected at least one [[endpoints]] table with a url")
    names = [e.name for e in endpoints]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise r.fail(f"endpoints[{i}].name", "a name no other endpoint has", n)
    endpoints = tuple(sorted(endpoints, key=lambda e: e.priority))

    subscriptions = tuple(
        _subscription(r, item, f"subscriptions[{i}]") for i, item in enumerate(r.array(data, "subscriptions"))
    )
    if not subscriptions:
        raise ConfigError(f"{source}: subscriptions: missing; expected at least one [[subscriptions]] table")
    seen: dict[tuple[str, str], int] = {}
    for i, sub in enumerate(subscriptions):
        for symbol in sub.symbols:
            if (sub.channel, symbol) in seen:
                raise r.fail(
                    f"subscriptions[{i}].symbols",
                    f"each symbol once per channel ({symbol} is also in subscriptions[{seen[sub.channel, symbol]}])",
                    list(sub.symbols),
                )
            seen[sub.channel, symbol] = i

    sinks = tuple(_sink(r, item, f"sinks[{i}]") for i, item in enumerate(r.array(data, "sinks")))
    connection = _connection(r, data.get("connection", {}))
    return FeedConfig(
        pool=_settings(r, data.get("pool", {}), "pool", PoolConfig, {"mode": ("failover", "hot_standby")}),
        breaker=_settings(r, data.get("breaker", {}), "breaker", BreakerConfig),
        rate_limit=_settings(r, data.get("rate_limit", {}), "rate_limit", RateLimitConfig),
        liveness=_settings(r, data.get("liveness", {}), "liveness", LivenessConfig, zero_ok={"book", "ticker", "trade"}),
        integrity=_settings(r, data.get("integrity", {}), "integrity", IntegrityConfig, zero_ok={"max_message_age"}),
        source=source,
        venue=name,
        endpoints=endpoints,
        subscriptions=subscriptions,
        sinks=sinks,
        connection=connection,
        simulator=simulator,
    )


def _endpoint(r: _Reader, data: Any, where: str, base_dir: str) -> EndpointConfig:
    t = r.table(data, where, {"name", "url", "priority", "allow_insecure", "ca_bundle"})
    url = r.get(t, where, "url", str, "a ws:// or wss:// URL")
    try:
        secure, host, port, _resource, _path, _params = parse_url(url)
    except Exception:
        raise r.fail(f"{where}.url", "a ws:// or wss:// URL", url) from None
    allow_insecure = r.get(t, where, "allow_insecure", bool, "true or false", False)
    if not secure and not is_loopback(host) and not allow_insecure:
        raise r.fail(
            f"{where}.url",
            "wss:// (plain ws:// only to a loopback host, or with allow_insecure = true)",
            url,
        )
    ca_bundle = r.get(t, where, "ca_bundle", str, "a path to a PEM file of CA certificates", None)
    if ca_bundle is not None:
        ca_bundle = os.path.join(base_dir, ca_bundle) if base_dir else ca_bundle
        if not os.path.isfile(ca_bundle):
            raise r.fail(f"{where}.ca_bundle", "a path to an existing PEM file", ca_bundle)
    priority = r.get(t, where, "priority", int, "an integer (lower is preferred)", 1)
    return EndpointConfig(
        name=r.get(t, where, "name", str, "a name", f"{host}:{port}"),
        url=url,
        priority=priority,
        allow_insecure=allow_insecure,
        ca_bundle=ca_bundle,
    )


def _subscription(r: _Reader, data: Any, where: str) -> SubscriptionConfig:
    t = r.table(data, where, {"channel", "symbols"} | {o for opts in CHANNEL_OPTIONS.values() for o in opts})
    channel = r.get(t, where, "channel", str, f"one of {sorted(CHANNEL_OPTIONS)}")
    if channel not in CHANNEL_OPTIONS:
        raise r.fail(f"{where}.channel", f"one of {sorted(CHANNEL_OPTIONS)}", channel)
    symbols = r.get(t, where, "symbols", list, 'a non-empty list of "BASE/QUOTE" symbols')
    if not symbols:
        raise r.fail(f"{where}.symbols", 'a non-empty list of "BASE/QUOTE" symbols', symbols)
    for i, symbol in enumerate(symbols):
        if not isinstance(symbol, str) or symbol.count("/") != 1 or "" in symbol.split("/"):
            raise r.fail(f"{where}.symbols[{i}]", 'a "BASE/QUOTE" symbol such as "BTC/USD"', symbol)
    # One name per asset, the v2 one: XBT/USD is BTC/USD, XDG is DOGE.
    symbols = [normalize_symbol(s) for s in symbols]
    for i, symbol in enumerate(symbols):
        if symbols.index(symbol) != i:
            raise r.fail(f"{where}.symbols[{i}]", "each symbol once (after XBT->BTC, XDG->DOGE)", symbol)
    allowed = CHANNEL_OPTIONS[channel]
    options: dict[str, Any] = {}
    for key in sorted(set(t) - {"channel", "symbols"}):
        if key not in allowed:
            raise ConfigError(
                f"{r.source}: {where}.{key}: not an option of the {channel} channel; expected one of {sorted(allowed)}"
            )
        problem = allowed[key](t[key])
        if problem:
            raise r.fail(f"{where}.{key}", problem, t[key])
        options[key] = t[key]
    if channel == "book":
        options.setdefault("depth", 10)
        options["snapshot"] = True
    return SubscriptionConfig(channel=channel, symbols=tuple(symbols), options=options)


def _sink(r: _Reader, data: Any, where: str) -> SinkConfig:
    t = r.table(data, where, {"type", "path"})
    kind = r.get(t, where, "type", str, f"one of {list(SINK_TYPES)}")
    if kind not in SINK_TYPES:
        raise r.fail(f"{where}.type", f"one of {list(SINK_TYPES)}", kind)
    path = r.get(t, where, "path", str, 'a file path, or "-" for standard output', "-")
    if path != "-":
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise r.fail(f"{where}.path", "a file in an existing folder", path)
    return SinkConfig(type=kind, path=path)


def _settings(
    r: _Reader,
    data: Any,
    name: str,
    cls: Any,
    choices: Optional[dict[str, tuple[str, ...]]] = None,
    zero_ok: frozenset[str] | set[str] = frozenset(),
) -> Any:
    """A table of plain settings whose defaults (and so types) come from ``cls``."""
    defaults = cls()
    t = r.table(data, name, set(cls.__dataclass_fields__))
    values: dict[str, Any] = {}
    for key in t:
        default = getattr(defaults, key)
        where = f"{name}.{key}"
        if isinstance(default, bool):
            value = r.get(t, name, key, bool, "true or false")
        elif isinstance(default, str):
            allowed = (choices or {}).get(key, ())
            value = r.get(t, name, key, str, f"one of {list(allowed)}")
            if value not in allowed:
                raise r.fail(where, f"one of {list(allowed)}", value)
        elif isinstance(default, int):
            value = r.get(t, name, key, int, "a whole number > 0")
            if value <= 0:
                raise r.fail(where, "a whole number > 0", value)
        elif key in zero_ok:
            value = r.get(t, name, key, (int, float), "a number of seconds >= 0 (0: off)")
            if value < 0:
                raise r.fail(where, "a number of seconds >= 0 (0: off)", value)
            value = float(value)
        else:
            value = r.number(t, name, key, default)
        values[key] = value
    return cls(**values)


def _connection(r: _Reader, data: Any) -> ConnectionConfig:
    config: ConnectionConfig = _settings(r, data, "connection", ConnectionConfig)
    if config.backoff_factor < 1:
        raise r.fail("connection.backoff_factor", "a number >= 1", config.backoff_factor)
    if config.backoff_cap < config.backoff_initial:
        raise r.fail("connection.backoff_cap", "a number >= backoff_initial", config.backoff_cap)
    return config
