"""A simulated trading account: its orders, their fills, the executions channel.

Orders are made up near the simulated market's price, deterministically from
the seed, and worked synchronously by ``burst``: ``pending_new``, ``new``, one
or more ``trade`` executions, and about one order in five ``canceled`` after a
partial fill.  Each execution goes to every connection subscribed to
``executions`` as its own message, numbered per connection (PROTOCOL.md
section 3).  The faults of that stream and of tokens are methods here.

The truth for tests (``fills``, ``orders``, ``executions``) holds what was
sent, decoded with numbers as ``Decimal`` (exactly the wire text), delivered
or not: a client's view can be compared with it directly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from gfws.sim.market import DEFAULT_PAIRS, SimMarket, SimPair
from gfws.sim.tokens import TokenLedger
from gfws.sim.wire import rfc3339, wire_number

if TYPE_CHECKING:
    from gfws.sim.session import SimSession

DEMO_KEY = "gfws-demo-key"
DEMO_SECRET = base64.b64encode(hashlib.sha512(b"gfws simulator: public demo key, grants nothing").digest()).decode()
"""The simulator's public test secret (base64 of 64 fixed bytes).  It is in the
source code: it grants nothing anywhere but a simulator."""

SNAPSHOT_FILLS = 50
"""Fills a ``snap_trades`` snapshot holds (Kraken: the last 50)."""
FEE_DECIMALS = 4  # fees in the quote currency, e.g. 0.3458 USD
MAKER_BPS, TAKER_BPS = 16, 26
CANCEL_SHARE = 0.2  # orders canceled after a partial fill
_MAX_WORKING = 3  # orders being worked at once (their executions interleave)
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_OPEN = ("new", "partially_filled")
_encode = msgspec.json.encode


def _truth(payload: bytes) -> Any:
    return json.loads(payload, parse_float=Decimal)


@dataclass(eq=False)
class _Order:
    """One order's state in integer steps (ticks, lots; cost in ticks*lots)."""

    order_id: str
    cl_ord_id: str
    userref: int
    pair: SimPair
    side: str
    qty: int
    price: int
    plan: list[int]  # lots of the fills still to come
    cancel: bool  # canceled once the plan is done
    status: str = "pending_new"
    cum_qty: int = 0
    cum_cost: int = 0
    fee: int = 0  # FEE_DECIMALS of the quote currency
    timestamp: str = ""

    def qty_text(self, lots: int) -> msgspec.Raw:
        return wire_number(lots, self.pair.qty_precision)

    def price_text(self, ticks: int) -> msgspec.Raw:
        return wire_number(ticks, self.pair.price_precision)

    def cost_text(self, cost: int) -> msgspec.Raw:
        return wire_number(cost, self.pair.price_precision + self.pair.qty_precision)

    def avg_text(self) -> msgspec.Raw:
        avg = (2 * self.cum_cost + self.cum_qty) // (2 * self.cum_qty) if self.cum_qty else 0
        return self.price_text(avg)  # rounded half up to the price precision


class SimAccount:
    """A deterministic account trading on the simulated market.

    Attach it with ``venue.account = account``: every gate of that venue then
    serves ``executions`` to subscribers with a valid token.
    """

    def __init__(
        self,
        clock: IReactorTime,
        seed: int = 1,
        symbols: tuple[str, ...] = ("BTC/USD", "ETH/USD"),
        keys: Mapping[str, str] | None = None,
    ) -> None:
        known = {p.symbol: p for p in DEFAULT_PAIRS}
        unknown = [s for s in symbols if s not in known]
        if unknown or not symbols:
            raise ValueError(f"symbols {unknown or symbols!r}: expected some of {', '.join(known)}")
        self.clock = clock
        self.symbols = tuple(symbols)
        self._pairs = {s: known[s] for s in symbols}
        self.market: SimMarket | None = None  # set by the venue it is attached to: prices follow it
        self.tokens = TokenLedger(clock, keys if keys is not None else {DEMO_KEY: DEMO_SECRET}, seed)
        self._rng = random.Random(f"{seed}:account")
        self.fills: list[dict[str, Any]] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.executions: list[dict[str, Any]] = []
        self._book: dict[str, _Order] = {}  # every order, oldest first
        self._working: list[_Order] = []
        self._recent: deque[bytes] = deque(maxlen=SNAPSHOT_FILLS)
        self._sent_fills: dict[str, bytes] = {}  # exec_id -> item, for resend_fill
        self._trade_ids: dict[str, int] = {}
        self._userref = 0
        self._last_us = 0
        self._subscribers: list[SimSession] = []
        self._drop_after: int | None = None
        self._skip = False
        self._duplicates = 0
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock

    # -- tokens -----------------------------------------------------------

    @property
    def tokens_issued(self) -> int:
        return self.tokens.issued

    def accepts(self, token: str) -> bool:
        """May ``token`` subscribe now?"""
        return self.tokens.valid(token)

    # -- subscribers ------------------------------------------------------

    def subscribe(self, session: SimSession, snap_orders: bool, snap_trades: bool) -> None:
        """``session`` gets executions from now on, after one snapshot if it asked for any."""
        if session not in self._subscribers:
            self._subscribers.append(session)
        if snap_orders or snap_trades:
            items = list(self._recent) if snap_trades else []
            if snap_orders:
                items += [_encode(self._open_order(o)) for o in self._book.values() if o.status in _OPEN]
            session.deliver(session.executions_message("snapshot", items))

    def forget(self, session: SimSession) -> None:
        if session in self._subscribers:
            self._subscribers.remove(session)

    @property
    def subscribers(self) -> tuple[SimSession, ...]:
        return tuple(self._subscribers)

    # -- trading ----------------------------------------------------------

    def burst(self, fills: int) -> None:
        """Work orders, now, until exactly ``fills`` more trade executions happened."""
        target = len(self.fills) + fills
        while len(self.fills) < target:
            self._step()

    def start(self, interval: float = 1.0) -> None:
        """Small bursts every ``interval`` seconds of the clock (for the demo)."""
        if not self._loop.running:
            self._loop.start(interval, now=False)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def _tick(self) -> None:
        self.burst(self._rng.randint(1, 3))

    def _step(self) -> None:
        rng = self._rng
        if not self._working or (len(self._working) < _MAX_WORKING and rng.random() < 0.3):
            self._open()
            return
        order = rng.choice(self._working)
        if order.plan:
            self._fill(order, order.plan.pop(0))
            if order.status == "filled":
                self._working.remove(order)
        else:
            self._cancel(order)
            self._working.remove(order)

    def _open(self) -> None:
        rng = self._rng
        pair = self._pair(rng.choice(self.symbols))
        # Sizes in steps that keep every cost exact at about 5 decimals, as Kraken's are.
        step = 10 ** (pair.qty_precision - min(pair.qty_precision, max(0, 5 - pair.price_precision)))
        steps = rng.randint(10, 5000)
        cancel = rng.random() < CANCEL_SHARE
        parts = rng.choice((1, 1, 2, 2, 3, 4))
        filled = rng.randint(parts, steps - 1) if cancel else steps
        cuts = sorted(rng.sample(range(1, filled), parts - 1))
        plan = [(b - a) * step for a, b in zip([0, *cuts], [*cuts, filled], strict=True)]
        side = rng.choice(("buy", "sell"))
        offset = rng.randrange(0, 6)
        reference = self._reference(pair)
        self._userref += 1
        order = _Order(
            order_id=self._id("O"), cl_ord_id=self._uuid(), userref=self._userref, pair=pair, side=side,
            qty=steps * step, price=max(1, reference - offset if side == "buy" else reference + offset),
            plan=plan, cancel=cancel,
        )
        self._book[order.order_id] = order
        self._working.append(order)
        order.timestamp = stamp = self._stamp()
        self._emit(order, {
            "order_id": order.order_id, "symbol": pair.symbol, "order_qty": order.qty_text(order.qty),
            "cum_qty": order.qty_text(0), "cum_cost": order.cost_text(0), "time_in_force": "GTC",
            "exec_type": "pending_new", "side": side, "order_type": "limit", "order_userref": order.userref,
            "limit_price": order.price_text(order.price), "cl_ord_id": order.cl_ord_id, "order_status": "pending_new",
            "fee_usd_equiv": wire_number(0, FEE_DECIMALS), "fee_ccy_pref": "fees_in_quote", "timestamp": stamp,
        })
        order.status = "new"
        order.timestamp = stamp = self._stamp()
        self._emit(order, {"timestamp": stamp, "order_status": "new", "exec_type": "new",
                           "order_userref": order.userref, "order_id": order.order_id})

    def _fill(self, order: _Order, lots: int) -> None:
        rng = self._rng
        pair = order.pair
        liquidity = "m" if rng.random() < 0.6 else "t"
        better = rng.randrange(0, 3) if liquidity == "t" else 0  # a taker may cross at a better price
        ticks = max(1, order.price - better if order.side == "buy" else order.price + better)
        cost = ticks * lots
        scale = 10 ** (pair.price_precision + pair.qty_precision)
        fee = (2 * cost * (MAKER_BPS if liquidity == "m" else TAKER_BPS) + scale) // (2 * scale)
        order.cum_qty += lots
        order.cum_cost += cost
        order.fee += fee
        order.status = "filled" if order.cum_qty == order.qty else "partially_filled"
        order.timestamp = stamp = self._stamp()
        trade_id = self._trade_ids.get(pair.symbol) or self._rng.randrange(10**7, 10**8)
        self._trade_ids[pair.symbol] = trade_id + 1
        fee_text = wire_number(fee, FEE_DECIMALS)
        self._emit(order, {
            "order_id": order.order_id, "order_userref": order.userref, "exec_id": self._id("T"),
            "exec_type": "trade", "trade_id": trade_id, "symbol": pair.symbol, "side": order.side,
            "last_qty": order.qty_text(lots), "last_price": order.price_text(ticks), "liquidity_ind": liquidity,
            "cost": order.cost_text(cost), "order_type": "limit", "timestamp": stamp,
            "order_status": order.status, "cum_qty": order.qty_text(order.cum_qty),
            "cum_cost": order.cost_text(order.cum_cost), "avg_price": order.avg_text(),
            "fee_usd_equiv": fee_text, "fees": [{"asset": pair.quote, "qty": fee_text}],
        })

    def _cancel(self, order: _Order) -> None:
        order.status = "canceled"
        order.timestamp = stamp = self._stamp()
        self._emit(order, {
            "timestamp": stamp, "order_status": "canceled", "exec_type": "canceled",
            "cum_qty": order.qty_text(order.cum_qty), "cum_cost": order.cost_text(order.cum_cost),
            "order_userref": order.userref, "order_id": order.order_id, "reason": "User requested",
        })

    def _state(self, order: _Order) -> dict[str, Any]:
        """An order's full current state; ``fee_usd_equiv`` is its total fee so far."""
        return {
            "order_id": order.order_id, "order_userref": order.userref, "cl_ord_id": order.cl_ord_id,
            "symbol": order.pair.symbol, "side": order.side, "order_type": "limit",
            "order_qty": order.qty_text(order.qty), "limit_price": order.price_text(order.price),
            "time_in_force": "GTC", "order_status": order.status, "cum_qty": order.qty_text(order.cum_qty),
            "cum_cost": order.cost_text(order.cum_cost), "avg_price": order.avg_text(),
            "fee_usd_equiv": wire_number(order.fee, FEE_DECIMALS), "fee_ccy_pref": "fees_in_quote",
            "timestamp": order.timestamp,
        }

    def _open_order(self, order: _Order) -> dict[str, Any]:
        """An open order as a snapshot lists it (exec_type ``new``, whatever its fills)."""
        return {**self._state(order), "exec_type": "new"}

    def _emit(self, order: _Order, item: dict[str, Any]) -> None:
        payload = _encode(item)
        truth = _truth(payload)
        self.executions.append(truth)
        self.orders[order.order_id] = _truth(_encode(self._state(order)))
        fill = item["exec_type"] == "trade"
        if fill:
            self.fills.append(truth)
            self._recent.append(payload)
            self._sent_fills[item["exec_id"]] = payload
        self._broadcast(payload, fill)

    def _broadcast(self, item: bytes, fill: bool) -> None:
        """One update message per subscriber, through the stream's faults."""
        sessions = [s for s in self._subscribers if not s.closed]
        if not sessions:
            return
        skip, self._skip = self._skip, False
        copies = 1
        if not skip and self._duplicates > 0:
            self._duplicates -= 1
            copies = 2
        for session in sessions:
            message = session.executions_message("update", [item])  # a skipped one still uses its number
            for _ in range(0 if skip else copies):
                session.deliver(message)
        if fill and not skip and self._drop_after is not None:
            self._drop_after -= 1
            if self._drop_after <= 0:
                self._drop_subscribers()

    # -- faults -----------------------------------------------------------

    def invalidate_sessions(self) -> None:
        """Every token issued so far is refused from now on (live subscriptions go on)."""
        self.tokens.invalidate_all()

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (as 900 s after its issue)."""
        self.tokens.expire_all()

    def refuse_tokens(self, n: int, error: str = "EGeneral:Permission denied") -> None:
        """The next ``n`` token requests are answered with ``error`` (0: none)."""
        self.tokens.refuse(n, error)

    def drop_after(self, k: int) -> None:
        """Once ``k`` more fills have been sent, drop every executions subscriber
        abruptly (no close frame); the account goes on trading unheard."""
        self._drop_after = k
        if k <= 0:
            self._drop_subscribers()

    def skip_sequence(self) -> None:
        """The next update is not sent, but uses its sequence number: a gap."""
        self._skip = True

    def duplicate_next(self, k: int) -> None:
        """The next ``k`` updates are each sent twice, byte for byte."""
        self._duplicates = k

    def resend_fill(self, exec_id: str) -> None:
        """Send an earlier fill again, in a new update with a new sequence number."""
        try:
            item = self._sent_fills[exec_id]
        except KeyError:
            raise ValueError(f"resend_fill: no fill {exec_id!r}") from None
        self._broadcast(item, fill=False)

    def _drop_subscribers(self) -> None:
        self._drop_after = None
        for session in list(self._subscribers):
            session.drop()
            self.forget(session)

    # -- made-up values ---------------------------------------------------

    def _pair(self, symbol: str) -> SimPair:
        if self.market is not None and symbol in self.market.pairs:
            return self.market.pairs[symbol]
        return self._pairs[symbol]

    def _reference(self, pair: SimPair) -> int:
        market = self.market.symbols.get(pair.symbol) if self.market is not None else None
        return market.last_ticks if market is not None else pair.mid_ticks

    def _id(self, prefix: str) -> str:
        """Kraken's id shape, e.g. ``OK4GJX-KSTLS-7DZZO5``."""
        text = prefix + "".join(self._rng.choice(_ID_CHARS) for _ in range(16))
        return f"{text[:6]}-{text[6:11]}-{text[11:]}"

    def _uuid(self) -> str:
        h = f"{self._rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def _stamp(self) -> str:
        """The clock's time, a microsecond later than the previous execution's at least."""
        self._last_us = max(int(self.clock.seconds() * 1_000_000), self._last_us + 1)
        return rfc3339(self._last_us / 1_000_000)
