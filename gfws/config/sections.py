"""The typed, frozen sections of a feed configuration.

The types are the schema: msgspec decodes the TOML tables straight into these
Structs (``forbid_unknown_fields``, so a misspelt key is an error), and the
``Meta`` constraints say what a value must be.  ``extra={"expected": ...}``
is the text the reader puts in an error line where the type alone would say
too little.  Frozen, so a running feed cannot see its configuration change.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta


def expect(text: str, **constraints: Any) -> Meta:
    """A constraint whose error line reads ``expected {text}``."""
    return Meta(extra={"expected": text}, **constraints)


Positive = Annotated[float, Meta(gt=0)]  # seconds, mostly
SecondsOrOff = Annotated[float, expect("a number of seconds >= 0 (0: off)", ge=0)]
Count = Annotated[int, Meta(gt=0)]


class Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A TOML table: no unknown key, read-only.  Subclasses say ``kw_only=True``
    themselves (msgspec does not inherit it): settings are passed by name."""


class EndpointConfig(Section, frozen=True, kw_only=True):
    """One venue URL; ``name`` empty means ``host:port`` (the reader fills it in)."""

    name: str = ""
    url: Annotated[str, expect("a ws:// or wss:// URL")]
    priority: Annotated[int, expect("an integer (lower is preferred)")] = 1
    allow_insecure: bool = False
    ca_bundle: Annotated[str, expect("a path to a PEM file of CA certificates")] | None = None
    private: bool = False  # carries the account's channels (executions); public ones use the other endpoints


class SubscriptionConfig(msgspec.Struct, frozen=True):
    """One channel for some symbols, with the final options (venue defaults
    included), read-only so no session can change what another one sends."""

    channel: str
    symbols: tuple[str, ...]
    options: Mapping[str, Any] = msgspec.field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        # Built by hand too (tests, tools): freeze whatever mapping was given.
        if not isinstance(self.options, MappingProxyType):
            msgspec.structs.force_setattr(self, "options", MappingProxyType(dict(self.options)))
        if not isinstance(self.symbols, tuple):
            msgspec.structs.force_setattr(self, "symbols", tuple(self.symbols))


class SinkConfig(Section, frozen=True, kw_only=True):
    """Where events go: ``jsonl`` (``path``) or ``redis`` (``url``, ``stream``, ``maxlen``, ``buffer``)."""

    type: Literal["jsonl", "redis"] = "jsonl"
    path: Annotated[str, expect('a file path, or "-" for standard output')] = "-"
    url: Annotated[str, expect("a redis://[:password@]host[:port][/db] URL")] = "redis://127.0.0.1:6379/0"
    stream: Annotated[str, expect('a stream name pattern with {venue}, {type}, {symbol}')] = (
        "gfws:{venue}:{type}:{symbol}")
    maxlen: Annotated[int, expect("entries kept per stream, >= 0 (trimmed approximately; 0: never)", ge=0)] = (
        1_000_000)
    buffer: Annotated[int, expect("events held while Redis is away, > 0", gt=0)] = 100_000


class AuthConfig(Section, frozen=True, kw_only=True):
    """Where the account's credentials come from, as written (``[auth]``).

    Environment variables by default, or files; inline values only with
    ``allow_inline_secrets = true``.  The reader turns this into ``Account``
    credentials and keeps no secret here.
    """

    # None: the venue's own (its REST API; environment variables named after it).
    rest_url: Annotated[str, expect("an https:// URL (plain http:// only to a loopback host)")] | None = None
    api_key_env: str | None = None
    api_secret_env: str | None = None
    api_key_file: str | None = None
    api_secret_file: str | None = None
    api_key: str | None = None
    api_secret: str | None = None
    allow_inline_secrets: bool = False
    token_timeout: Positive = 10.0

    def __repr__(self) -> str:  # the inline values, if any, never
        return f"AuthConfig(rest_url={self.rest_url!r}, ...)"


class AccountConfig(Section, frozen=True, kw_only=True):
    """The account's fills (``[account]``)."""

    ledger: Annotated[str, expect("a path to an SQLite file (created if missing)")] | None = None
    keep: Count = 1_000_000  # exec_ids remembered (far more than the venue's 50-fill snapshot brings back)


class Credentials(msgspec.Struct, frozen=True, kw_only=True):
    """Resolved credentials: the venue's credentials object (its ``repr`` hides the secret),
    where its token service is, and where each part came from (for messages, never the value)."""

    rest_url: str
    secrets: Any
    source: str
    token_timeout: float = 10.0

    def __repr__(self) -> str:
        return f"Credentials(rest_url={self.rest_url!r}, from {self.source})"


class ConnectionConfig(Section, frozen=True, kw_only=True):
    connect_timeout: Positive = 10.0
    open_handshake_timeout: Positive = 10.0
    close_handshake_timeout: Positive = 2.0
    ack_timeout: Positive = 10.0
    auto_ping_interval: Positive = 10.0
    auto_ping_timeout: Positive = 5.0
    max_message_size: Count = 1 << 20
    backoff_initial: Positive = 1.0
    backoff_factor: Annotated[float, Meta(ge=1)] = 2.0
    backoff_cap: Positive = 8.0  # back within ~10 s of the venue's return, ~100 attempts per 10 min
    connect_attempts: Count = 135  # a margin under the venue's own limit (about 150 per 10 minutes)
    connect_window: Positive = 600.0
    maintenance_reconnect_delay: Positive = 5.0
    shutdown_timeout: Positive = 5.0


class PoolConfig(Section, frozen=True, kw_only=True):
    """How the endpoints of a feed share the work."""

    mode: Literal["failover", "hot_standby"] = "failover"
    failback: bool = True


class BreakerConfig(Section, frozen=True, kw_only=True):
    failure_threshold: Count = 5
    recovery_time: Positive = 30.0


class RateLimitConfig(Section, frozen=True, kw_only=True):
    """Token bucket for outgoing requests, per connection."""

    rate: Positive = 10.0  # requests per second
    burst: Count = 20
    exceeded_retry_delay: Positive = 2.0


class IntegrityConfig(Section, frozen=True, kw_only=True):
    """Duplicate window and time checks for incoming messages."""

    # Keys remembered (frame digests per connection: a compiled window holds its table from the start,
    # ~29 bytes a key, ~37 with an age limit, so the bound keeps a mistyped value from asking for gigabytes at
    # every connect).
    duplicate_window: Annotated[int, expect("a whole number of keys, 1 to 10,000,000", gt=0, le=10_000_000)] = 100_000
    duplicate_max_age: Positive = 300.0  # seconds a key is remembered
    max_message_age: SecondsOrOff = 0.0  # flag items whose venue time is older


class LivenessConfig(Section, frozen=True, kw_only=True):
    data_timeout: Positive = 10.0
    ping_interval: Positive = 30.0
    ping_timeout: Positive = 10.0
    book: SecondsOrOff = 0.0  # per-subscription staleness limits
    ticker: SecondsOrOff = 0.0
    trade: SecondsOrOff = 0.0

    @property
    def channel_timeouts(self) -> dict[str, float]:
        return {"book": self.book, "ticker": self.ticker, "trade": self.trade}


class SimulatorConfig(Section, frozen=True, kw_only=True):
    """Run the built-in venue simulator on loopback (the demo)."""

    port: Annotated[int, expect("a port number 0-65535 (0: any free port)", ge=0, le=65535)] = 0
    seed: int = 1
    interval: Positive = 0.05
    private: bool = False  # a simulated account too: its fills and orders on the executions channel
    fill_interval: Positive = 1.0  # seconds between the account's bursts of fills


class AlertsConfig(Section, frozen=True, kw_only=True):
    """When an ``alert`` event fires (defaults from the design gfws comes from)."""

    connection_failures: Count = 3  # more than this many lost connections or failed attempts...
    connection_window: Positive = 300.0  # ...within this many seconds
    p95_latency: Positive = 0.1  # seconds of processing, parse to publish
    # integrity problems per frame...
    error_rate: Annotated[float, expect("a fraction between 0 and 1", gt=0, le=1)] = 0.01
    error_window: Positive = 60.0  # ...over this many seconds
    stale_after: Positive = 10.0  # seconds without a frame from the endpoint the consumer hears
    unverified_after: Positive = 30.0  # seconds a configured book may stay unverified
    check_interval: Positive = 1.0


class ShardConfig(Section, frozen=True, kw_only=True):
    """This process is shard ``index`` of ``count`` (``[shard]``); every shard runs the same
    subscriptions and keeps its part of the symbols.  ``by = "order"``: the configured symbols,
    sorted, dealt out in turn (even, but a new symbol may move others); ``"hash"``: by a fixed
    hash of each symbol (a symbol never moves, the split may be uneven).  The account's
    channels go to shard 0."""

    index: Annotated[int, expect("an integer >= 0 (below count)", ge=0)]
    count: Annotated[int, expect("an integer >= 1", ge=1)]
    by: Literal["order", "hash"] = "order"


class RecorderConfig(Section, frozen=True, kw_only=True):
    """Record every raw frame received (``[recorder]``), for replay: ``twistd gfws-sim --replay``."""

    path: Annotated[str, expect("a folder for the recording files (created if missing)")] = "recordings"
    rotate_mb: Annotated[float, expect("megabytes > 0 (of uncompressed frames per file)", gt=0)] = 256.0
    rotate_minutes: Annotated[float, expect("minutes > 0 per file", gt=0)] = 60.0


class MonitorConfig(Section, frozen=True, kw_only=True):
    """The monitoring web server: /metrics (Prometheus), /health, /diagnostics.  No table: no server."""

    host: str = "127.0.0.1"  # another interface only if set
    port: Annotated[int, expect("a port number 0-65535 (0: any free port)", ge=0, le=65535)] = 9120


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """The tables of settings, as written and as checked (nothing in them spans tables)."""

    connection: ConnectionConfig = msgspec.field(default_factory=ConnectionConfig)
    simulator: SimulatorConfig | None = None
    monitor: MonitorConfig | None = None
    recorder: RecorderConfig | None = None
    shard: ShardConfig | None = None
    alerts: AlertsConfig = msgspec.field(default_factory=AlertsConfig)
    pool: PoolConfig = msgspec.field(default_factory=PoolConfig)
    breaker: BreakerConfig = msgspec.field(default_factory=BreakerConfig)
    rate_limit: RateLimitConfig = msgspec.field(default_factory=RateLimitConfig)
    liveness: LivenessConfig = msgspec.field(default_factory=LivenessConfig)
    integrity: IntegrityConfig = msgspec.field(default_factory=IntegrityConfig)
    account: AccountConfig = msgspec.field(default_factory=AccountConfig)


class FeedConfig(Settings, frozen=True, kw_only=True):
    """A whole feed, checked: what ``FeedService`` is built from."""

    source: str
    venue: str
    endpoints: tuple[EndpointConfig, ...]
    subscriptions: tuple[SubscriptionConfig, ...]
    sinks: tuple[SinkConfig, ...]
    credentials: Credentials | None = None  # present when the feed has private endpoints
