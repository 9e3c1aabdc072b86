"""``twistd gfws-sim``: the Kraken v2 simulator on its own."""

from __future__ import annotations

from twisted.python import usage

from gfws.sim.server import SimulatorService, SimVenue


class Options(usage.Options):
    longdesc = (
        "Run a local Kraken WebSocket v2 venue over a deterministic simulated "
        "market (BTC/USD, ETH/USD, SOL/EUR, ADA/USD, DOGE/USD). Point any "
        "Kraken v2 client at ws://HOST:PORT/v2."
    )
    optParameters = [
        ["port", "p", 8765, "TCP port to listen on (0: any free port).", int],
        ["interface", "i", "127.0.0.1", "Address to listen on."],
        ["seed", "s", 1, "Seed of the simulated market (same seed, same market).", int],
        ["interval", None, 0.05, "Seconds between market changes, per pair.", float],
    ]

    def postOptions(self) -> None:
        if not 0 <= self["port"] <= 65535:
            raise usage.UsageError(f"--port: expected 0-65535, got {self['port']}")
        if not self["interval"] > 0:
            raise usage.UsageError(f"--interval: expected a number > 0, got {self['interval']}")


def makeService(options: Options) -> SimulatorService:
    venue = SimVenue(interval=options["interval"], seed=options["seed"])
    return SimulatorService(venue, port=options["port"], interface=options["interface"])
