"""The simulated exchange: one market, its clock, every connected session,
and (for the private side) the account trading on it."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from gfws.sim.gate import GateFaults
from gfws.sim.market import SimMarket, SimTrade, SymbolMarket
from gfws.sim.session import SimSession
from gfws.sim.wire import rfc3339, wire_number

if TYPE_CHECKING:
    from gfws.sim.account import SimAccount

__all__ = ["API_VERSION", "VERSION", "GateFaults", "SimVenue"]

API_VERSION = "v2"
VERSION = "2.0.10"


class SimVenue:
    """The simulated exchange: market, clock, sessions and faults."""

    log = Logger()

    def __init__(
        self,
        market: SimMarket | None = None,
        clock: IReactorTime | None = None,
        interval: float = 0.05,
        heartbeat_interval: float = 1.0,
        seed: int = 1,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.market = market or SimMarket(seed=seed)
        self.clock: IReactorTime = clock  # type: ignore[assignment]
        self.interval = interval
        self.heartbeat_interval = heartbeat_interval
        self.sessions: list[SimSession] = []
        self.system = "online"
        self.corrupt_checksums: set[str] = set()
        self.refused_symbols: set[str] = set()
        self._ids = random.Random(seed)
        self._step_loop = LoopingCall(self.step)
        self._step_loop.clock = self.clock
        self._heartbeat_loop = LoopingCall(self._heartbeats)
        self._heartbeat_loop.clock = self.clock
        self.default_gate = GateFaults()
        self._gates = 0
        self._account: SimAccount | None = None

    @property
    def account(self) -> SimAccount | None:
        """The account behind the private ``executions`` channel (None: no private side)."""
        return self._account

    @account.setter
    def account(self, account: SimAccount | None) -> None:
        self._account = account
        if account is not None:
            account.market = self.market  # its orders trade near this market's prices

    def start(self) -> None:
        if not self._step_loop.running:
            self._step_loop.start(self.interval, now=False)
            self._heartbeat_loop.start(self.heartbeat_interval, now=False)

    def stop(self) -> None:
        for loop in (self._step_loop, self._heartbeat_loop):
            if loop.running:
                loop.stop()

    def retain(self) -> None:
        """A gate opened: the market runs while at least one gate is open."""
        self._gates += 1
        self.start()

    def release(self) -> None:
        self._gates -= 1
        if self._gates <= 0:
            self._gates = 0
            self.stop()

    # -- sessions ---------------------------------------------------------

    def connect(
        self, send: Callable[[bytes], None], gate: GateFaults | None = None, drop: Callable[[], None] | None = None
    ) -> SimSession:
        """A new connection: ``send`` takes its outgoing frames, ``drop`` cuts it abruptly."""
        session = SimSession(self, gate or self.default_gate, send, self._ids.getrandbits(64), drop)
        self.sessions.append(session)
        session.send({"channel": "status", "type": "update", "data": [self.status(session)]})
        return session

    def disconnect(self, session: SimSession) -> None:
        session.closed = True
        session.cancel_answers()
        if session in self.sessions:
            self.sessions.remove(session)
        if self._account is not None:
            self._account.forget(session)

    # -- the market -------------------------------------------------------

    def step(self) -> None:
        for symbol, trade in self.market.step().items():
            market = self.market.symbols[symbol]
            for session in list(self.sessions):
                try:
                    session.market_moved(symbol, market, trade)
                except Exception:
                    # One broken connection must never stop the market.
                    self.log.failure("session {id} failed; disconnecting it", id=session.connection_id)
                    self.disconnect(session)

    def _heartbeats(self) -> None:
        now = self.clock.seconds()
        for session in list(self.sessions):
            if session.subscribed and now - session.last_sent >= self.heartbeat_interval:
                session.send({"channel": "heartbeat"})

    # -- faults -----------------------------------------------------------

    def corrupt_next_checksum(self, symbol: str) -> None:
        """The next book message for ``symbol`` carries a wrong checksum."""
        self.corrupt_checksums.add(symbol)

    def set_system(self, system: str) -> None:
        """Change the engine state (online, maintenance, cancel_only, post_only)
        and tell every connected client, as Kraken's status channel does."""
        self.system = system
        for session in list(self.sessions):
            session.send({"channel": "status", "type": "update", "data": [self.status(session)]})

    # -- message bodies ---------------------------------------------------

    def status(self, session: SimSession) -> dict[str, Any]:
        return {
            "api_version": API_VERSION,
            "connection_id": session.connection_id,
            "system": self.system,
            "version": VERSION,
        }

    def instruments(self) -> dict[str, Any]:
        assets: dict[str, dict[str, Any]] = {}
        pairs = []
        for pair in self.market.pairs.values():
            for asset in (pair.base, pair.quote):
                assets.setdefault(
                    asset,
                    {"id": asset, "status": "enabled", "precision": 10, "precision_display": 5,
                     "borrowable": False, "collateral_value": 0.0, "margin_rate": 0.0},
                )
            pairs.append({
                "symbol": pair.symbol, "base": pair.base, "quote": pair.quote, "status": "online",
                "qty_precision": pair.qty_precision, "qty_increment": wire_number(1, pair.qty_precision),
                "price_precision": pair.price_precision, "cost_precision": 5, "marginable": False,
                "has_index": True, "cost_min": "0.5", "tick_size": wire_number(1, pair.price_precision),
                "price_increment": wire_number(1, pair.price_precision),
                "qty_min": wire_number(10 ** max(0, pair.qty_precision - 4), pair.qty_precision),
            })
        return {"assets": list(assets.values()), "pairs": pairs}

    def ticker(self, market: SymbolMarket) -> dict[str, Any]:
        pp, qp = market.pair.price_precision, market.pair.qty_precision
        bid, bid_q = market.bids.top(1)[0]
        ask, ask_q = market.asks.top(1)[0]
        vwap = market.notional // market.volume_lots if market.volume_lots else market.last_ticks
        change = market.last_ticks - market.open_ticks
        return {
            "symbol": market.pair.symbol,
            "bid": wire_number(bid, pp), "bid_qty": wire_number(bid_q, qp),
            "ask": wire_number(ask, pp), "ask_qty": wire_number(ask_q, qp),
            "last": wire_number(market.last_ticks, pp), "volume": wire_number(market.volume_lots, qp),
            "vwap": wire_number(vwap, pp), "low": wire_number(market.low_ticks, pp),
            "high": wire_number(market.high_ticks, pp), "change": wire_number(change, pp),
            "change_pct": wire_number(change * 10000 // market.open_ticks, 2),
            "timestamp": rfc3339(self.clock.seconds()),
        }

    def trade(self, market: SymbolMarket, trade: SimTrade) -> dict[str, Any]:
        pair = market.pair
        return {
            "symbol": pair.symbol, "side": trade.side,
            "price": wire_number(trade.ticks, pair.price_precision),
            "qty": wire_number(trade.lots, pair.qty_precision),
            "ord_type": trade.ord_type, "trade_id": trade.trade_id,
            "timestamp": rfc3339(self.clock.seconds()),
        }
