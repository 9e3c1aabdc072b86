"""gfws: a production WebSocket feed client for trading systems.

Public API: ``FeedService`` (run or embed a feed), ``load_config``, the event
types in ``gfws.events`` and the interfaces in ``gfws.interfaces``.
"""

from gfws.config import ConfigError, FeedConfig, load_config, parse_config
from gfws.service import FeedService

__all__ = ["ConfigError", "FeedConfig", "FeedService", "load_config", "parse_config"]
__version__ = "0.1.0"
