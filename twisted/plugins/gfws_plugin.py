"""twistd plugins ``gfws`` (the feed) and ``gfws-sim`` (the Kraken v2 simulator).

Kept import-light: Twisted scans this file for ``twistd --help``, so the
modules are named, not imported.
"""

from twisted.application.service import ServiceMaker

gfws = ServiceMaker(
    "gfws",
    "gfws.tap",
    "Verified, normalized venue market data over WebSockets (default: demo against the local simulator).",
    "gfws",
)
gfws_sim = ServiceMaker(
    "gfws-sim",
    "gfws.sim.tap",
    "A local Kraken WebSocket v2 venue simulator.",
    "gfws-sim",
)
