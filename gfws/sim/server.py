"""The simulator's WebSocket server, speaking Kraken v2 (PROTOCOL.md).

``SimVenue`` owns the market, the clock and every connected ``SimSession``;
the Autobahn protocol only moves frames.  What a session sends follows
Kraken's documented behaviour: status on connect, one ack per symbol echoing
``req_id``, snapshot then updates, no deletion sent for a level that merely
fell out of the subscribed depth, heartbeats when idle, pong for ping.
"""

from __future__ import annotations

import random
import zlib
from datetime import datetime, timezone
from typing import Any, Callable, Optional

import msgspec
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from gfws.sim.market import SimMarket, SimTrade, SymbolMarket

BOOK_DEPTHS = (10, 25, 100, 500, 1000)
CHECKSUM_LEVELS = 10
API_VERSION = "v2"
VERSION = "2.0.10"

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def wire_number(units: int, decimals: int) -> msgspec.Raw:
    """A JSON number for ``units * 10**-decimals`` with trailing zeros
    trimmed as Kraken sends them (``4.0``, ``0.001``, ``29430.2``)."""
    sign = "-" if units < 0 else ""
    digits = str(abs(units)).rjust(decimals + 1, "0")
    whole, frac = (digits[:-decimals], digits[-decimals:]) if decimals else (digits, "")
    return msgspec.Raw(f"{sign}{whole}.{frac.rstrip('0') or '0'}".encode())


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def view_checksum(asks: list[tuple[int, int]], bids: list[tuple[int, int]]) -> int:
    """Kraken's CRC32 over the top 10 asks then bids, from integer steps."""
    text = "".join(f"{t}{q}" for t, q in asks[:CHECKSUM_LEVELS]) + "".join(
        f"{t}{q}" for t, q in bids[:CHECKSUM_LEVELS]
    )
    return zlib.crc32(text.encode("ascii"))


class _BookView:
    """What one subscriber has been sent of one book (top ``depth``)."""

    __slots__ = ("depth", "bids", "asks")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}


class SimSession:
    """One client connection's subscriptions and what it has been sent."""

    def __init__(self, venue: "SimVenue", send: Callable[[bytes], None], connection_id: int) -> None:
        self.venue = venue
        self._send = send
        self.connection_id = connection_id
        self.books: dict[str, _BookView] = {}
        self.tickers: dict[str, str] = {}  # symbol -> event_trigger
        self.trades: set[str] = set()
        self.instrument = False
        self.last_sent = venue.clock.seconds()
        self.requests = 0

    @property
    def subscribed(self) -> bool:
        return bool(self.books or self.tickers or self.trades or self.instrument)

    def send(self, message: dict[str, Any]) -> None:
        self.last_sent = self.venue.clock.seconds()
        self._send(_encode(message))

    # -- requests ---------------------------------------------------------

    def request_received(self, payload: bytes) -> None:
        self.requests += 1
        time_in = rfc3339(self.venue.clock.seconds())
        try:
            request = _decode(payload)
        except msgspec.DecodeError:
            self.send({"error": "EGeneral:Invalid arguments", "success": False, "time_in": time_in, "time_out": time_in})
            return
        if not isinstance(request, dict):
            self.send({"error": "EGeneral:Invalid arguments", "success": False, "time_in": time_in, "time_out": time_in})
            return
        method = request.get("method")
        req_id = request.get("req_id")
        if method == "ping":
            self.send(self._stamp({"method": "pong", "req_id": req_id}, time_in))
        elif method in ("subscribe", "unsubscribe"):
            self._subscription(method, request.get("params"), req_id, time_in)
        else:
            self.send(self._stamp(
                {"error": f"EGeneral:Invalid arguments:method {method}", "method": method, "success": False, "req_id": req_id},
                time_in,
            ))

    def _stamp(self, message: dict[str, Any], time_in: str) -> dict[str, Any]:
        if message.get("req_id") is None:
            message.pop("req_id", None)
        message["time_in"] = time_in
        message["time_out"] = rfc3339(self.venue.clock.seconds())
        return message

    def _refuse(self, method: str, error: str, req_id: Any, time_in: str, symbol: Optional[str] = None) -> None:
        message: dict[str, Any] = {"error": error, "method": method, "success": False, "req_id": req_id}
        if symbol is not None:
            message["symbol"] = symbol
        self.send(self._stamp(message, time_in))

    def _subscription(self, method: str, params: Any, req_id: Any, time_in: str) -> None:
        if not isinstance(params, dict) or not isinstance(params.get("channel"), str):
            return self._refuse(method, "EGeneral:Invalid arguments:params", req_id, time_in)
        channel = params["channel"]
        if channel == "instrument":
            return self._instrument(method, req_id, time_in)
        if channel not in ("book", "ticker", "trade"):
            return self._refuse(method, f"EGeneral:Invalid arguments:channel {channel}", req_id, time_in)
        symbols = params.get("symbol")
        if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
            return self._refuse(method, "EGeneral:Invalid arguments:symbol", req_id, time_in)
        depth = params.get("depth", 10)
        if channel == "book" and depth not in BOOK_DEPTHS:
            return self._refuse(method, "EGeneral:Invalid arguments:depth", req_id, time_in)
        trigger = params.get("event_trigger", "trades")
        if channel == "ticker" and trigger not in ("trades", "bbo"):
            return self._refuse(method, "EGeneral:Invalid arguments:event_trigger", req_id, time_in)
        snapshot = params.get("snapshot", channel != "trade")
        for symbol in symbols:
            market = self.venue.market.symbols.get(symbol)
            if market is None or symbol in self.venue.refused_symbols:
                self._refuse(method, f"Currency pair not supported {symbol}", req_id, time_in, symbol)
            elif method == "subscribe":
                self._subscribe(channel, market, depth, trigger, snapshot, req_id, time_in)
            else:
                self._unsubscribe(channel, symbol, req_id, time_in)

    def _subscribe(
        self, channel: str, market: SymbolMarket, depth: int, trigger: str, snapshot: bool, req_id: Any, time_in: str
    ) -> None:
        symbol = market.pair.symbol
        already = (
            symbol in self.books if channel == "book" else symbol in self.tickers if channel == "ticker" else symbol in self.trades
        )
        if already:
            return self._refuse("subscribe", "Already subscribed", req_id, time_in, symbol)
        result: dict[str, Any] = {"channel": channel, "snapshot": snapshot, "symbol": symbol}
        if channel == "book":
            result["depth"] = depth
        if channel == "ticker":
            result["event_trigger"] = trigger
        self.send(self._stamp({"method": "subscribe", "result": result, "success": True, "req_id": req_id}, time_in))
        if channel == "book":
            view = self.books[symbol] = _BookView(depth)
            self._send_book(market, view, snapshot=True)
        elif channel == "ticker":
            self.tickers[symbol] = trigger
            if snapshot:
                self.send({"channel": "ticker", "type": "snapshot", "data": [self.venue.ticker(market)]})
        else:
            self.trades.add(symbol)
            if snapshot and market.trades:
                data = [self.venue.trade(market, t) for t in market.trades]
                self.send({"channel": "trade", "type": "snapshot", "data": data})

    def _unsubscribe(self, channel: str, symbol: str, req_id: Any, time_in: str) -> None:
        table: Any = self.books if channel == "book" else self.tickers if channel == "ticker" else self.trades
        if symbol not in table:
            return self._refuse("unsubscribe", "Subscription Not Found", req_id, time_in, symbol)
        result: dict[str, Any] = {"channel": channel, "symbol": symbol}
        if channel == "book":
            result["depth"] = self.books[symbol].depth
        if isinstance(table, set):
            table.discard(symbol)
        else:
            del table[symbol]
        self.send(self._stamp({"method": "unsubscribe", "result": result, "success": True, "req_id": req_id}, time_in))

    def _instrument(self, method: str, req_id: Any, time_in: str) -> None:
        if method == "subscribe" and self.instrument:
            return self._refuse(method, "Already subscribed", req_id, time_in)
        if method == "unsubscribe" and not self.instrument:
            return self._refuse(method, "Subscription Not Found", req_id, time_in)
        self.instrument = method == "subscribe"
        result = {"channel": "instrument", "snapshot": True} if self.instrument else {"channel": "instrument"}
        self.send(self._stamp({"method": method, "result": result, "success": True, "req_id": req_id}, time_in))
        if self.instrument:
            self.send({"channel": "instrument", "type": "snapshot", "data": self.venue.instruments()})

    # -- market data ------------------------------------------------------

    def market_moved(self, symbol: str, market: SymbolMarket, trade: Optional[SimTrade]) -> None:
        view = self.books.get(symbol)
        if view is not None:
            self._send_book(market, view, snapshot=False)
        if trade is not None:
            if symbol in self.trades:
                self.send({"channel": "trade", "type": "update", "data": [self.venue.trade(market, trade)]})
            if self.tickers.get(symbol) == "trades":
                self.send({"channel": "ticker", "type": "update", "data": [self.venue.ticker(market)]})

    def _send_book(self, market: SymbolMarket, view: _BookView, snapshot: bool) -> None:
        pair = market.pair
        pp, qp = pair.price_precision, pair.qty_precision
        changed = {}
        for name, side, sent in (("bids", market.bids, view.bids), ("asks", market.asks, view.asks)):
            top = side.top(view.depth)
            if snapshot:
                levels = top
            else:
                now = dict(top)
                # Deleted levels first, with qty 0, as Kraken orders them (a
                # client that truncates after every level, not after the
                # message, then still ends right); then new and changed
                # levels, best first.  Levels that only fell below the depth
                # are not sent: the client truncates them.
                levels = [(t, 0) for t in sent if t not in now and t not in side.lots]
                levels += [(t, q) for t, q in top if sent.get(t) != q]
            sent.clear()
            sent.update(top)
            changed[name] = levels
        if not snapshot and not changed["bids"] and not changed["asks"]:
            return
        checksum = view_checksum(market.asks.top(CHECKSUM_LEVELS), market.bids.top(CHECKSUM_LEVELS))
        if pair.symbol in self.venue.corrupt_checksums:
            self.venue.corrupt_checksums.discard(pair.symbol)
            checksum ^= 0x5A5A5A5A
        data: dict[str, Any] = {
            "symbol": pair.symbol,
            "bids": [{"price": wire_number(t, pp), "qty": wire_number(q, qp)} for t, q in changed["bids"]],
            "asks": [{"price": wire_number(t, pp), "qty": wire_number(q, qp)} for t, q in changed["asks"]],
            "checksum": checksum,
            "timestamp": rfc3339(self.venue.clock.seconds()),
        }
        self.send({"channel": "book", "type": "snapshot" if snapshot else "update", "data": [data]})


class SimVenue:
    """The simulated exchange: market, clock, sessions and faults."""

    log = Logger()

    def __init__(
        self,
        market: Optional[SimMarket] = None,
        clock: Optional[IReactorTime] = None,
        interval: float = 0.05,
        heartbeat_interval: float = 1.0,
        seed: int = 1,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as clock  # type: ignore[assignment]
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

    def start(self) -> None:
        self._step_loop.start(self.interval, now=False)
        self._heartbeat_loop.start(self.heartbeat_interval, now=False)

    def stop(self) -> None:
        for loop in (self._step_loop, self._heartbeat_loop):
            if loop.running:
                loop.stop()

    # -- sessions ---------------------------------------------------------

    def connect(self, send: Callable[[bytes], None]) -> SimSession:
        session = SimSession(self, send, self._ids.getrandbits(64))
        self.sessions.append(session)
        session.send({"channel": "status", "type": "update", "data": [self.status(session)]})
        return session

    def disconnect(self, session: SimSession) -> None:
        if session in self.sessions:
            self.sessions.remove(session)

    # -- the market -------------------------------------------------------

    def step(self) -> None:
        for symbol, trade in self.market.step().items():
            market = self.market.symbols[symbol]
            for session in list(self.sessions):
                session.market_moved(symbol, market, trade)

    def _heartbeats(self) -> None:
        now = self.clock.seconds()
        for session in list(self.sessions):
            if session.subscribed and now - session.last_sent >= self.heartbeat_interval:
                session.send({"channel": "heartbeat"})

    # -- faults -----------------------------------------------------------

    def corrupt_next_checksum(self, symbol: str) -> None:
        """The next book message for ``symbol`` carries a wrong checksum."""
        self.corrupt_checksums.add(symbol)

    # -- message bodies ---------------------------------------------------

    def status(self, session: SimSession) -> dict[str, Any]:
        return {"api_version": API_VERSION, "connection_id": session.connection_id, "system": self.system, "version": VERSION}

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


class KrakenSimProtocol(WebSocketServerProtocol):
    session: Optional[SimSession] = None

    def connectionMade(self) -> None:
        super().connectionMade()
        self.factory.protocols.add(self)

    def connectionLost(self, reason: Any) -> None:
        super().connectionLost(reason)
        self.factory.protocols.discard(self)
        waiters, self.factory.close_waiters = self.factory.close_waiters, []
        for waiter in waiters:
            if not self.factory.protocols:
                waiter.callback(None)
            else:
                self.factory.close_waiters.append(waiter)

    def onOpen(self) -> None:
        self.session = self.factory.venue.connect(lambda payload: self.sendMessage(payload, False))

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.session is not None:
            self.session.request_received(payload)

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        if self.session is not None:
            self.factory.venue.disconnect(self.session)
            self.session = None


class KrakenSimFactory(WebSocketServerFactory):
    protocol = KrakenSimProtocol

    def __init__(self, venue: SimVenue, url: str = "ws://127.0.0.1/v2") -> None:
        super().__init__(url)
        self.venue = venue
        self.protocols: set[KrakenSimProtocol] = set()
        self.close_waiters: list[Deferred[None]] = []

    def close_all(self) -> "Deferred[None]":
        """Drop every client connection; fires once all are gone."""
        if not self.protocols:
            return succeed(None)
        done: Deferred[None] = Deferred()
        self.close_waiters.append(done)
        for protocol in list(self.protocols):
            protocol.dropConnection(abort=True)
        return done


class SimulatorService(Service):
    """Runs a ``SimVenue`` on a loopback port (0 picks a free one)."""

    name = "gfws-sim"

    def __init__(self, venue: SimVenue, port: int = 0, interface: str = "127.0.0.1", reactor: Any = None) -> None:
        self.venue = venue
        self.requested_port = port
        self.interface = interface
        self._reactor = reactor
        self._listening: Any = None
        self.factory: Optional[KrakenSimFactory] = None
        self.port: Optional[int] = None

    @property
    def url(self) -> str:
        return f"ws://{self.interface}:{self.port}/v2"

    def startService(self) -> None:
        super().startService()
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor  # type: ignore[no-redef]
        self.factory = factory = KrakenSimFactory(self.venue)
        factory.noisy = False
        self._listening = reactor.listenTCP(self.requested_port, factory, interface=self.interface)
        self.port = self._listening.getHost().port
        self.venue.start()
        self.venue.log.info("Kraken v2 simulator listening on {url}", url=self.url)

    def stopService(self) -> Any:
        super().stopService()
        self.venue.stop()
        if self._listening is None:
            return None
        listening, self._listening = self._listening, None
        assert self.factory is not None
        return DeferredList([listening.stopListening(), self.factory.close_all()])
