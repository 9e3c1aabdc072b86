"""A local Kraken v2 venue: a real Autobahn WebSocket server over a
deterministic simulated market, for demos, tests and users' own strategies.
"""

from gfws.sim.market import DEFAULT_PAIRS, SimMarket, SimPair
from gfws.sim.server import KrakenSimFactory, SimulatorService
from gfws.sim.venue import SimVenue

__all__ = ["DEFAULT_PAIRS", "KrakenSimFactory", "SimMarket", "SimPair", "SimVenue", "SimulatorService"]
