"""One client connection to the simulated venue: Kraken v2 requests and data.

What a session sends follows Kraken's documented behaviour (PROTOCOL.md):
status on connect, one ack per symbol echoing ``req_id``, snapshot then
updates, deletions first, no deletion for a level that merely fell out of
the subscribed depth, heartbeats when idle, pong for ping.  The session's
gate (the listening endpoint it came through) may be stalled, drop or delay
acks: those are the faults tests inject.  The private ``executions`` channel
needs a token of the venue's account, which sends its messages; the session
numbers them (``sequence``, per connection).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgspec
from twisted.internet.interfaces import IReactorTime

from gfws.sim.gate import GateFaults
from gfws.sim.market import SimMarket, SimTrade, SymbolMarket
from gfws.sim.wire import BOOK_DEPTHS, CHECKSUM_LEVELS, DATA_CHANNELS, rfc3339, view_checksum, wire_number

_encode = msgspec.json.encode
_decode = msgspec.json.decode
INVALID_SESSION = "ESession:Invalid session"  # an unknown, expired or invalidated token
MAX_RATE_COUNT = 125  # the executions ack's ``maxratecount``, as Kraken's


class SessionAccount(Protocol):
    """What a session uses of the venue's account (``SimAccount``)."""

    def accepts(self, token: str) -> bool: ...

    def subscribe(self, session: SimSession, snap_orders: bool, snap_trades: bool) -> None: ...

    def forget(self, session: SimSession) -> None: ...


class SessionVenue(Protocol):
    """What a session uses of its venue (``SimVenue`` is the one there is):
    typed here so that the session need not import the venue that makes it."""

    clock: IReactorTime
    market: SimMarket
    refused_symbols: set[str]
    corrupt_checksums: set[str]

    @property
    def account(self) -> SessionAccount | None: ...

    def disconnect(self, session: SimSession) -> None: ...

    def ticker(self, market: SymbolMarket) -> dict[str, Any]: ...

    def trade(self, market: SymbolMarket, trade: SimTrade) -> dict[str, Any]: ...

    def instruments(self) -> dict[str, Any]: ...


class _BookView:
    """What one subscriber has been sent of one book (top ``depth``)."""

    __slots__ = ("asks", "bids", "depth")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}


class SimSession:
    """One client connection's subscriptions and what it has been sent."""

    def __init__(
        self,
        venue: SessionVenue,
        gate: GateFaults,
        send: Callable[[bytes], None],
        connection_id: int,
        drop: Callable[[], None] | None = None,
    ) -> None:
        self.venue = venue
        self.gate = gate
        self._send = send
        self._drop = drop  # cuts the connection abruptly (the server's); None: only forget it
        self.connection_id = connection_id
        self.books: dict[str, _BookView] = {}
        self.tickers: dict[str, str] = {}  # symbol -> event_trigger
        self._bbo: dict[str, tuple[Any, ...]] = {}  # symbol -> best bid and ask last told (event_trigger "bbo")
        self.trades: set[str] = set()
        self.instrument = False
        self.executions = False
        self.executions_token: str | None = None
        self.executions_sequence = 0
        self.last_sent = venue.clock.seconds()
        self.requests = 0
        self.closed = False
        self._delayed: list[Any] = []  # answers held back by an ack delay
        self._tokens = float(gate.msg_rate)
        self._stamp_at = venue.clock.seconds()

    @property
    def subscribed(self) -> bool:
        return bool(self.books or self.tickers or self.trades or self.instrument or self.executions)

    def send(self, message: dict[str, Any], ack: bool = False) -> None:
        gate = self.gate
        if gate.stalled is not None and not (gate.stalled == "pings" and message.get("method") == "pong"):
            return  # stalled: the socket stays open, nothing comes out
        if ack and gate.drop_acks:
            return
        self.last_sent = self.venue.clock.seconds()
        faults = gate.message_faults
        if faults is not None and message.get("channel") in DATA_CHANNELS:
            faults.emit(message, self.last_sent, self._send)
            return
        self._send(_encode(message))

    def deliver(self, payload: bytes) -> None:
        """Send an encoded message as is (the private channels frame their own)."""
        if self.gate.stalled is not None or self.closed:
            return
        self.last_sent = self.venue.clock.seconds()
        self._send(payload)

    def executions_message(self, kind: str, items: Sequence[bytes]) -> bytes:
        """This connection's next executions message: ``items`` (encoded), numbered in turn."""
        self.executions_sequence += 1
        return b'{"channel":"executions","type":"%s","data":[%s],"sequence":%d}' % (
            kind.encode(), b",".join(items), self.executions_sequence)

    def drop(self) -> None:
        """Cut this connection abruptly, with no close frame (as a crashing venue does)."""
        if self._drop is not None and not self.closed:
            self._drop()
        self.venue.disconnect(self)

    # -- requests ---------------------------------------------------------

    def request_received(self, payload: bytes) -> None:
        self.requests += 1
        if self.closed:  # nothing is answered, nor left on the clock, for a connection that went
            return
        if self.gate.ack_delay > 0:
            self._delayed = [c for c in self._delayed if c.active()]
            self._delayed.append(self.venue.clock.callLater(self.gate.ack_delay, self._answer, payload))
        else:
            self._answer(payload)

    def cancel_answers(self) -> None:
        """The connection is gone: answers still delayed are never sent (nor left on the clock)."""
        for call in self._delayed:
            if call.active():
                call.cancel()
        self._delayed = []

    def _answer(self, payload: bytes) -> None:
        if self.closed:
            return
        time_in = rfc3339(self.venue.clock.seconds())
        try:
            request = _decode(payload)
        except msgspec.DecodeError:
            request = None
        if not isinstance(request, dict):
            error = "EGeneral:Invalid arguments"
            self.send({"error": error, "success": False, "time_in": time_in, "time_out": time_in})
            return
        method = request.get("method")
        req_id = request.get("req_id")
        if self._over_rate():
            params = request.get("params")
            symbols = params.get("symbol") if isinstance(params, dict) else None
            for symbol in symbols if isinstance(symbols, list) and symbols else [None]:
                self._refuse(str(method), "Exceeded msg rate", req_id, time_in, symbol)
            return
        if method == "ping":
            self.send(self._stamp({"method": "pong", "req_id": req_id}, time_in))
        elif method in ("subscribe", "unsubscribe"):
            self._subscription(method, request.get("params"), req_id, time_in)
        else:
            error = f"EGeneral:Invalid arguments:method {method}"
            self.send(self._stamp({"error": error, "method": method, "success": False, "req_id": req_id}, time_in))

    def _over_rate(self) -> bool:
        """The gate's message-rate limit (a token bucket per connection)."""
        rate = self.gate.msg_rate
        if rate <= 0:
            return False
        now = self.venue.clock.seconds()
        self._tokens = min(rate, self._tokens + (now - self._stamp_at) * rate)
        self._stamp_at = now
        if self._tokens < 1:
            return True
        self._tokens -= 1
        return False

    def _stamp(self, message: dict[str, Any], time_in: str) -> dict[str, Any]:
        if message.get("req_id") is None:
            message.pop("req_id", None)
        message["time_in"] = time_in
        message["time_out"] = rfc3339(self.venue.clock.seconds())
        return message

    def _refuse(self, method: str, error: str, req_id: Any, time_in: str, symbol: str | None = None) -> None:
        message: dict[str, Any] = {"error": error, "method": method, "success": False, "req_id": req_id}
        if symbol is not None:
            message["symbol"] = symbol
        self.send(self._stamp(message, time_in), ack=True)

    def _succeed(self, method: str, result: dict[str, Any], req_id: Any, time_in: str) -> None:
        message = {"method": method, "result": result, "success": True, "req_id": req_id}
        self.send(self._stamp(message, time_in), ack=True)

    def _subscription(self, method: str, params: Any, req_id: Any, time_in: str) -> None:
        if not isinstance(params, dict) or not isinstance(params.get("channel"), str):
            return self._refuse(method, "EGeneral:Invalid arguments:params", req_id, time_in)
        channel = params["channel"]
        if channel == "instrument":
            return self._instrument(method, req_id, time_in)
        if channel == "executions":
            return self._executions(method, params, req_id, time_in)
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

    def _table(self, channel: str) -> Any:
        """What this session has subscribed of ``channel``: symbols (a set) or symbol -> details (a dict)."""
        return self.books if channel == "book" else self.tickers if channel == "ticker" else self.trades

    def _subscribe(
        self, channel: str, market: SymbolMarket, depth: int, trigger: str, snapshot: bool, req_id: Any, time_in: str
    ) -> None:
        symbol = market.pair.symbol
        table = self._table(channel)
        if symbol in table:
            return self._refuse("subscribe", "Already subscribed", req_id, time_in, symbol)
        result: dict[str, Any] = {"channel": channel, "snapshot": snapshot, "symbol": symbol}
        if channel == "book":
            result["depth"] = depth
        if channel == "ticker":
            result["event_trigger"] = trigger
        self._succeed("subscribe", result, req_id, time_in)
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
        table = self._table(channel)
        if symbol not in table:
            return self._refuse("unsubscribe", "Subscription Not Found", req_id, time_in, symbol)
        result: dict[str, Any] = {"channel": channel, "symbol": symbol}
        if channel == "book":
            result["depth"] = self.books[symbol].depth
        if isinstance(table, set):
            table.discard(symbol)
        else:
            del table[symbol]
        self._succeed("unsubscribe", result, req_id, time_in)

    def _instrument(self, method: str, req_id: Any, time_in: str) -> None:
        if method == "subscribe" and self.instrument:
            return self._refuse(method, "Already subscribed", req_id, time_in)
        if method == "unsubscribe" and not self.instrument:
            return self._refuse(method, "Subscription Not Found", req_id, time_in)
        self.instrument = method == "subscribe"
        result = {"channel": "instrument", "snapshot": True} if self.instrument else {"channel": "instrument"}
        self._succeed(method, result, req_id, time_in)
        if self.instrument:
            self.send({"channel": "instrument", "type": "snapshot", "data": self.venue.instruments()})

    # -- private ----------------------------------------------------------

    def _executions(self, method: str, params: dict[str, Any], req_id: Any, time_in: str) -> None:
        """Executions need a token of the venue's account on subscribe and unsubscribe alike."""
        token = params.get("token")
        token = token if isinstance(token, str) else ""
        snaps = {name: params.get(name, default) for name, default in (("snap_orders", True), ("snap_trades", False))}
        bad = [name for name, value in snaps.items() if not isinstance(value, bool)]
        if not token:
            bad.insert(0, "token")
        if bad:
            return self._refuse_private(method, f"EGeneral:Invalid arguments:{bad[0]}", req_id, time_in)
        account = self.venue.account
        # Kraken keeps a live subscription whatever becomes of its token: leaving with it is allowed.
        mine = method == "unsubscribe" and self.executions and token == self.executions_token
        if account is None or not (mine or account.accepts(token)):
            return self._refuse_private(method, INVALID_SESSION, req_id, time_in)
        if method == "unsubscribe":
            if not self.executions:
                return self._refuse_private(method, "Subscription Not Found", req_id, time_in)
            self.executions, self.executions_token = False, None
            account.forget(self)
            return self._succeed(method, {"channel": "executions"}, req_id, time_in)
        # Subscribing again on the same connection is allowed: a fresh snapshot follows.
        result = {"channel": "executions", "maxratecount": MAX_RATE_COUNT, **snaps}
        self._succeed(method, result, req_id, time_in)
        self.executions, self.executions_token = True, token
        account.subscribe(self, snaps["snap_orders"], snaps["snap_trades"])

    def _refuse_private(self, method: str, error: str, req_id: Any, time_in: str) -> None:
        message = {"error": error, "method": method, "result": {"channel": "executions"}, "success": False,
                   "req_id": req_id}
        self.send(self._stamp(message, time_in), ack=True)

    # -- market data ------------------------------------------------------

    def market_moved(self, symbol: str, market: SymbolMarket, trade: SimTrade | None) -> None:
        view = self.books.get(symbol)
        if view is not None:
            self._send_book(market, view, snapshot=False)
        if trade is not None:
            if symbol in self.trades:
                self.send({"channel": "trade", "type": "update", "data": [self.venue.trade(market, trade)]})
            if self.tickers.get(symbol) == "trades":
                self.send({"channel": "ticker", "type": "update", "data": [self.venue.ticker(market)]})
        if self.tickers.get(symbol) == "bbo":
            # event_trigger "bbo": a ticker whenever the best bid or offer (price or size) changes.
            bbo = (tuple(market.bids.top(1)), tuple(market.asks.top(1)))
            if self._bbo.get(symbol) != bbo:
                self._bbo[symbol] = bbo
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
