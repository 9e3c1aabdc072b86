"""A local Kraken v2 venue: a real Autobahn WebSocket server over a
deterministic simulated market, for demos, tests and users' own strategies;
with ``SimAccount`` and ``TokenService``, its private (ws-auth) side too.
"""

from gfws.sim.account import DEMO_KEY, DEMO_SECRET, SimAccount
from gfws.sim.market import DEFAULT_PAIRS, SimMarket, SimPair
from gfws.sim.server import KrakenSimFactory, SimulatorService
from gfws.sim.tokens import TokenService
from gfws.sim.venue import SimVenue

__all__ = [
    "DEFAULT_PAIRS",
    "DEMO_KEY",
    "DEMO_SECRET",
    "KrakenSimFactory",
    "SimAccount",
    "SimMarket",
    "SimPair",
    "SimVenue",
    "SimulatorService",
    "TokenService",
]
