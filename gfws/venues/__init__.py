"""Venue dialects: each turns one venue's wire protocol into gfws messages.

The registry below is the one place that maps a configured venue name to its
dialect, so neither the configuration nor the service has to know any venue.
Dialects are imported only when asked for: reading a config pulls in one venue.
"""

from __future__ import annotations

from collections.abc import Callable

from gfws.interfaces import IVenueDialect


def _kraken() -> IVenueDialect:
    from gfws.venues.kraken import KrakenV2Dialect

    # Adapting checks at run time that the dialect declares the interface.
    return IVenueDialect(KrakenV2Dialect())


_FACTORIES: dict[str, Callable[[], IVenueDialect]] = {"kraken": _kraken}

#: Names accepted as ``[venue] name``.
VENUES: tuple[str, ...] = tuple(_FACTORIES)


def dialect_for(name: str) -> IVenueDialect:
    """A fresh dialect for the venue called ``name``; ValueError names the known ones."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValueError(f"no dialect for venue {name!r}; known venues: {list(VENUES)}")
    return factory()


__all__ = ["VENUES", "dialect_for"]
