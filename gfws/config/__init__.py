"""TOML configuration: read, checked completely, typed.

Every problem is reported before anything connects, as one line naming the
file, the key and what was expected.  Unknown keys are errors too: a misspelt
option silently ignored is how a feed ends up misconfigured.

``sections`` holds the frozen typed sections (the schema), ``reader`` reads
and checks a file, ``errors`` words the problems.  What a channel may set and
how symbols are spelled come from the venue's dialect (``gfws.venues``).
"""

from gfws.config.errors import ConfigError
from gfws.config.reader import is_loopback, load_config, parse_config, shard_of
from gfws.config.sections import (
    AccountConfig,
    AlertsConfig,
    AuthConfig,
    BreakerConfig,
    ConnectionConfig,
    Credentials,
    EndpointConfig,
    FeedConfig,
    IntegrityConfig,
    LivenessConfig,
    MonitorConfig,
    PoolConfig,
    RateLimitConfig,
    RecorderConfig,
    ShardConfig,
    SimulatorConfig,
    SinkConfig,
    SubscriptionConfig,
)

__all__ = [
    "AccountConfig",
    "AlertsConfig",
    "AuthConfig",
    "BreakerConfig",
    "ConfigError",
    "ConnectionConfig",
    "Credentials",
    "EndpointConfig",
    "FeedConfig",
    "IntegrityConfig",
    "LivenessConfig",
    "MonitorConfig",
    "PoolConfig",
    "RateLimitConfig",
    "RecorderConfig",
    "ShardConfig",
    "SimulatorConfig",
    "SinkConfig",
    "SubscriptionConfig",
    "is_loopback",
    "load_config",
    "parse_config",
    "shard_of",
]
