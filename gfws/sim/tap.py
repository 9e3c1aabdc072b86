"""``twistd gfws-sim``: the Kraken v2 simulator on its own."""

from __future__ import annotations

from typing import Any, ClassVar

from twisted.application.service import MultiService, Service
from twisted.logger import Logger
from twisted.python import usage

from gfws.sim.account import DEMO_KEY, SimAccount
from gfws.sim.corruption import parse_message_faults
from gfws.sim.faults import PRIVATE, FaultSchedule, parse_fault
from gfws.sim.replay import ReplayService, load
from gfws.sim.server import SimulatorService
from gfws.sim.tokens import TOKEN_PATH, TokenService
from gfws.sim.venue import SimVenue


class Options(usage.Options):
    longdesc = (
        "Run a local Kraken WebSocket v2 venue over a deterministic simulated "
        "market (BTC/USD, ETH/USD, SOL/EUR, ADA/USD, DOGE/USD). Point any "
        "Kraken v2 client at ws://HOST:PORT/v2. Several ports give several "
        "endpoints (gates) onto the same market, each with its own faults. "
        "With --private, also an account's executions channel and its REST token endpoint."
    )
    optParameters: ClassVar[list[list[Any]]] = [
        ["port", "p", "8765", "TCP port(s) to listen on, comma-separated (0: any free port)."],
        ["interface", "i", "127.0.0.1", "Address to listen on."],
        ["seed", "s", 1, "Seed of the simulated market (same seed, same market).", int],
        ["interval", None, 0.05, "Seconds between market changes, per pair.", float],
        ["ack-delay", None, 0.0, "Seconds to delay every answer to a request.", float],
        ["message-faults", None, None,
         "Seeded faults on data messages, e.g. drop=0.01,duplicate=0.01,reorder=0.01,corrupt_checksum=0.01,"
         "stale_timestamp=0.01,malformed=0.01,oversized=0.001,invalid_utf8=0.001,seed=1."],
        ["msg-rate", None, 0.0, "Requests per second per connection before 'Exceeded msg rate' (0: no limit).", float],
        ["token-port", None, 8766, "With --private: TCP port of the REST token endpoint (0: any free port).", int],
        ["fill-interval", None, 1.0, "With --private: seconds between bursts of the account's fills.", float],
        ["replay", None, None, "Serve a recording (a file or folder written by gfws's [recorder]) instead of the "
                               "simulated market: each connection gets the next recorded one."],
        ["speed", None, "1", "With --replay: the recorded pace times X, or 'max' for as fast as possible."],
        ["endpoint", None, None, "With --replay: whose connections to serve (default: the first recorded)."],
    ]
    optFlags: ClassVar[list[list[str | None]]] = [
        ["loop", None, "With --replay: once every recorded connection was served, serve them again."],
        ["drop-acks", None, "Never answer subscribe/unsubscribe (the subscriptions still happen)."],
        ["private", None, "Also be ws-auth: a demo account trading (executions channel) and its REST token endpoint."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["faults"] = []
        self["reject"] = []

    def opt_fault(self, text: str) -> None:
        """A scheduled fault KIND@START[+DURATION][/EVERY][#GATE] (repeatable), e.g. stall@10+5.
        Kinds: refuse, refuse-http, close, stall, stall-pings, drop-acks, maintenance, restart; with --private:
        refuse-tokens, invalidate-sessions, expire-tokens, drop-private, skip-sequence, duplicate-execution,
        resend-fill."""
        try:
            self["faults"].append(parse_fault(text))
        except ValueError as e:
            raise usage.UsageError(str(e)) from None

    def opt_reject(self, symbol: str) -> None:
        """Refuse subscriptions to SYMBOL as unsupported (repeatable)."""
        self["reject"].append(symbol)

    def postOptions(self) -> None:
        try:
            self["ports"] = [int(p) for p in self["port"].split(",")]
        except ValueError:
            raise usage.UsageError(f"--port: expected port numbers separated by commas, got {self['port']!r}") from None
        if not all(0 <= p <= 65535 for p in self["ports"]):
            raise usage.UsageError(f"--port: expected 0-65535, got {self['port']}")
        if not self["interval"] > 0:
            raise usage.UsageError(f"--interval: expected a number > 0, got {self['interval']}")
        if self["message-faults"]:
            try:
                parse_message_faults(self["message-faults"])
            except ValueError as e:
                raise usage.UsageError(f"--message-faults: {e}") from None
        if self["speed"] == "max":
            self["speed"] = None
        else:
            try:
                self["speed"] = float(self["speed"])
            except ValueError:
                raise usage.UsageError(f"--speed: expected a number > 0 or 'max', got {self['speed']!r}") from None
            if not self["speed"] > 0:
                raise usage.UsageError(f"--speed: expected a number > 0 or 'max', got {self['speed']}")
        if self["replay"] is not None:
            try:
                self["recording"] = load(self["replay"], self["endpoint"])
            except (OSError, ValueError, KeyError) as e:
                raise usage.UsageError(f"--replay: {self['replay']}: cannot read the recording: {e}") from None
            if not self["recording"]:
                raise usage.UsageError(f"--replay: {self['replay']}: no connection of endpoint {self['endpoint']}")
        if not 0 <= self["token-port"] <= 65535:
            raise usage.UsageError(f"--token-port: expected 0-65535, got {self['token-port']}")
        if not self["fill-interval"] > 0:
            raise usage.UsageError(f"--fill-interval: expected a number > 0, got {self['fill-interval']}")
        for fault in self["faults"]:
            if fault.kind in PRIVATE and not self["private"]:
                raise usage.UsageError(f"--fault {fault.kind}: needs --private")
            if fault.gate >= len(self["ports"]):
                raise usage.UsageError(
                    f"--fault {fault.kind}: gate #{fault.gate} needs {fault.gate + 1} ports in --port"
                )


class SimulatorRoot(MultiService):
    """The gates, and the fault schedule started with them."""

    def __init__(self, schedule: FaultSchedule) -> None:
        super().__init__()
        self.schedule = schedule

    def startService(self) -> None:
        super().startService()
        self.schedule.start()

    def stopService(self) -> Any:
        self.schedule.cancel()
        return super().stopService()


class PrivateSide(Service):
    """The demo account's bursts of fills, and where its tokens come from."""

    log = Logger()

    def __init__(self, account: SimAccount, tokens: TokenService, interval: float) -> None:
        self.account = account
        self.tokens = tokens
        self.interval = interval

    def startService(self) -> None:
        super().startService()
        self.account.start(self.interval)
        self.log.info(
            "private side: tokens at POST {url}{path} with API key {key!r} and the secret "
            "gfws.sim.account.DEMO_SECRET (a public test key); executions on every gate",
            url=self.tokens.url, path=TOKEN_PATH, key=DEMO_KEY,
        )

    def stopService(self) -> Any:
        self.account.stop()
        return super().stopService()


def makeService(options: Options) -> MultiService:
    from twisted.internet import reactor

    if options["replay"] is not None:
        root = MultiService()
        ReplayService(options["recording"], port=options["ports"][0], interface=options["interface"],
                      speed=options["speed"], cycle=options["loop"]).setServiceParent(root)
        return root

    venue = SimVenue(clock=reactor, interval=options["interval"], seed=options["seed"])
    venue.refused_symbols.update(options["reject"])
    gates = []
    for i, port in enumerate(options["ports"]):
        gate = SimulatorService(venue, port=port, interface=options["interface"], name=f"gate-{i}")
        gate.ack_delay = options["ack-delay"]
        gate.drop_acks = options["drop-acks"]
        gate.msg_rate = options["msg-rate"]
        if options["message-faults"]:
            gate.message_faults = parse_message_faults(options["message-faults"])
        gates.append(gate)
    private: list[Service] = []
    if options["private"]:
        account = venue.account = SimAccount(reactor, seed=options["seed"])
        tokens = TokenService(account, port=options["token-port"], interface=options["interface"])
        private = [tokens, PrivateSide(account, tokens, options["fill-interval"])]
    root = SimulatorRoot(FaultSchedule(reactor, gates, options["faults"]))
    for service in [*gates, *private]:
        service.setServiceParent(root)
    return root
