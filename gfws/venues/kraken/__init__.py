"""Kraken Spot WebSocket API v2."""

from gfws.venues.kraken.dialect import KrakenV2Dialect

__all__ = ["KrakenV2Dialect"]
