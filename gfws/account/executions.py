"""The executions channel: each ``trade`` execution a ``Fill`` (once), every
execution a change of an ``Order``.

Every field a fill carries is checked (ids present, side, quantities and
prices positive and of sane magnitude, fees finite, a time); a fill that
fails is refused loudly (an ``integrity`` event naming its exec_id), never
published half-right.  Fills go through the shared ``FillLedger``: one
published already (replayed by a snapshot, delivered by the other endpoint,
resent) is dropped.  After a snapshot the handler says what no snapshot can
mend: orders that closed unseen, and fills that may be older than the
venue's window of recent fills.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from zope.interface import implementer

from gfws.account.ledger import FillLedger
from gfws.account.orders import TERMINAL, OrderStates
from gfws.events import Event, Fee, Fill
from gfws.integrity.values import BadValue, bounded, non_negative, positive
from gfws.interfaces import IEventHandler
from gfws.messages import ChannelData, ExecutionData

SNAPSHOT_FILLS = 50  # Kraken's snapshot holds the last 50 fills
_LIQUIDITY = {"t": "taker", "m": "maker"}
_SIDES = frozenset({"buy", "sell"})
_MAX_ID = 64  # characters of an id (Kraken's are about 20)

Reject = Callable[[str, str, float, "str | None", str], None]
"""(kind, detail, recv_ts, symbol, channel) of data refused."""


def _text(value: str | None, what: str, exec_id: str) -> str:
    if not value or len(value) > _MAX_ID or not value.isprintable():
        raise BadValue(f"fill {exec_id[:_MAX_ID]!r}: {what} {value!r} is missing or malformed")
    return value


@implementer(IEventHandler)
class ExecutionsHandler:
    channel = "executions"

    def __init__(
        self,
        venue: str,
        publish: Callable[[Event], None],
        reject: Reject,
        ledger: FillLedger,
        orders: OrderStates,
    ) -> None:
        self._venue = venue
        self._publish = publish
        self._reject = reject
        self.ledger = ledger
        self.orders = orders
        self._open_before: set[str] | None = None  # open orders when the (re)subscribe left

    def subscribing(self) -> None:
        """A subscribe with a snapshot of open orders leaves: orders open now and
        absent from that snapshot closed while nobody was listening."""
        self._open_before = set(self.orders.open)

    def handle(self, message: ChannelData, recv_ts: float) -> None:
        for problem in message.problems:
            self._reject("fill_refused" if "exec_id" in problem else "schema", problem, recv_ts, None, self.channel)
        fills = known = 0
        oldest: str | None = None
        listed: set[str] = set()  # orders a snapshot lists as open (its fills name closed ones too)
        filled: set[str] = set()
        for item in message.items:
            if item.exec_type == "trade":
                filled.add(item.order_id)
                fill = self._fill(item, message.snapshot, recv_ts)
                if fill is None:
                    continue
                fills += 1
                if fill.exec_id in self.ledger:
                    known += 1
                    self.ledger.repeats += 1
                else:
                    self._publish(fill)
                    self.ledger.record(fill)
                if oldest is None or fill.ts < oldest:
                    oldest = fill.ts
            else:
                listed.add(item.order_id)
            if not _order_values_ok(item, self._reject, recv_ts):
                continue
            order = self.orders.update(item, self._venue, recv_ts)
            if order is not None:
                self._publish(order)
        if message.snapshot:
            self._after_snapshot(listed, filled, fills, known, oldest, recv_ts)

    def _after_snapshot(self, listed: set[str], filled: set[str], fills: int, known: int, oldest: str | None,
                        recv_ts: float) -> None:
        if fills >= SNAPSHOT_FILLS and known == 0 and len(self.ledger) > fills:
            # A full window of fills, none seen before: the outage was longer than the window.
            self._reject(
                "fills_may_be_missing",
                f"the venue's snapshot of its last {fills} fills holds none published before: fills older than "
                f"{oldest} may be missing (reconcile with the venue's trade history)",
                recv_ts, None, self.channel,
            )
        before, self._open_before = self._open_before, None
        if before is None:  # no snapshot of open orders was asked for: absence says nothing
            return
        # Open before we asked, or known only from the snapshot's fills (it lived while we were away).
        for order_id in sorted((before | filled) - listed):
            state = self.orders.get(order_id)
            if state is not None and state["status"] not in TERMINAL:
                order = self.orders.close_unseen(order_id, self._venue, recv_ts)
                if order is not None:
                    self._publish(order)

    def _fill(self, item: ExecutionData, snapshot: bool, recv_ts: float) -> Fill | None:
        exec_id = item.exec_id or ""
        order = self.orders.get(item.order_id) or {}  # a trade item need not repeat the order's ids
        try:
            _text(exec_id, "exec_id", exec_id)
            fees = tuple(
                Fee(asset=_text(fee.asset, "fee asset", exec_id), qty=bounded(fee.qty, "fee qty"))
                for fee in item.fees or ()
            )
            side = item.side
            if side not in _SIDES:
                raise BadValue(f"fill {exec_id!r}: side {side!r} is not buy or sell")
            if item.liquidity_ind is not None and item.liquidity_ind not in _LIQUIDITY:
                raise BadValue(f"fill {exec_id!r}: liquidity_ind {item.liquidity_ind!r} is not t or m")
            return Fill(
                venue=self._venue,
                recv_ts=recv_ts,
                exec_id=exec_id,
                order_id=_text(item.order_id, "order_id", exec_id),
                trade_id=item.trade_id,
                symbol=_text(item.symbol, "symbol", exec_id),
                side=side,
                last_qty=positive(_number(item.last_qty, "last_qty", exec_id), "last_qty"),
                last_price=positive(_number(item.last_price, "last_price", exec_id), "last_price"),
                cost=non_negative(_number(item.cost, "cost", exec_id), "cost"),
                fees=fees,
                liquidity=_LIQUIDITY.get(item.liquidity_ind or ""),
                ts=_text(item.timestamp, "timestamp", exec_id),
                snapshot=snapshot,
                order_userref=item.order_userref if item.order_userref is not None else order.get("order_userref"),
                cl_ord_id=item.cl_ord_id if item.cl_ord_id is not None else order.get("cl_ord_id"),
            )
        except BadValue as e:
            detail = str(e) if exec_id in str(e) else f"fill {exec_id!r}: {e}"
            self._reject("fill_refused", detail, recv_ts, item.symbol, self.channel)
            return None

    def reset(self) -> None:
        self._open_before = None


def _number(value: Decimal | None, what: str, exec_id: str) -> Decimal:
    if value is None:
        raise BadValue(f"fill {exec_id!r}: {what} is missing")
    return bounded(value, what)


def _order_values_ok(item: ExecutionData, reject: Reject, recv_ts: float) -> bool:
    """An order update's numbers are finite, sane and not negative (its fill was checked apart)."""
    try:
        for what in ("order_qty", "limit_price", "cum_qty", "cum_cost", "avg_price"):
            value = getattr(item, what)
            if value is not None:
                non_negative(bounded(value, what), what)
        if len(item.order_id) > _MAX_ID or not item.order_id:
            raise BadValue(f"order_id {item.order_id[:_MAX_ID]!r} is malformed")
    except BadValue as e:
        reject("order_refused", f"order {item.order_id[:_MAX_ID]!r} ({item.exec_type}): {e}", recv_ts, item.symbol,
               "executions")
        return False
    return True
