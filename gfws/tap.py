"""``twistd gfws``: the feed service as a twistd plugin."""

from __future__ import annotations

from importlib import resources

from twisted.python import usage

from gfws.config import ConfigError, FeedConfig, load_config
from gfws.service import FeedService


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
    optParameters = [
        ["config", "c", None, "TOML configuration file (see docs/configuration.md). Default: the built-in demo."],
    ]

    feed_config: FeedConfig

    def postOptions(self) -> None:
        path = self["config"] or demo_config_path()
        try:
            self.feed_config = load_config(path)
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None


def makeService(options: Options) -> FeedService:
    return FeedService(options.feed_config)
