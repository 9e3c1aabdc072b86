"""The account's orders, whole: Kraken's sparse updates carried forward.

Each execution item tells only what changed; an ``Order`` event carries
every field known so far.  Updates are merged idempotently, so the same
update from a second endpoint, a resend or a snapshot changes nothing and
publishes nothing, and an update older than what is known (a status or a
cumulative quantity going back: a lagging endpoint) is ignored.
"""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal
from typing import Any

from gfws.events import Order
from gfws.messages import ExecutionData

# How far along its life an order is: an update may only move it forward.
STATUS_RANK = {"pending_new": 0, "new": 1, "partially_filled": 2, "filled": 3, "canceled": 3, "expired": 3}
TERMINAL = frozenset({"filled", "canceled", "expired"})
CLOSED = "closed"  # no longer open at the venue; how it ended was not told (it ended while we were away)

# Order fields taken from an execution item when it carries them (item field -> event field).
_CARRIED = (
    ("symbol", "symbol"), ("side", "side"), ("order_type", "order_type"), ("order_qty", "order_qty"),
    ("limit_price", "limit_price"), ("cum_qty", "cum_qty"), ("cum_cost", "cum_cost"),
    ("avg_price", "avg_price"), ("time_in_force", "time_in_force"), ("cl_ord_id", "cl_ord_id"),
    ("order_userref", "order_userref"), ("reason", "reason"), ("timestamp", "ts"), ("order_status", "status"),
)


class StaleUpdate(Exception):
    """An update older than what is known of the order (it is not applied)."""


class OrderStates:
    """Every open order, and the latest ``keep_closed`` closed ones (so late repeats are known)."""

    def __init__(self, keep_closed: int = 10_000) -> None:
        self.open: dict[str, dict[str, Any]] = {}
        self.closed: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._keep_closed = keep_closed
        self.stale = 0  # updates ignored as older than what was known
        self.unchanged = 0  # updates that told nothing new

    def get(self, order_id: str) -> dict[str, Any] | None:
        return self.open.get(order_id) or self.closed.get(order_id)

    def update(self, item: ExecutionData, venue: str, recv_ts: float) -> Order | None:
        """The order after ``item``, or None when ``item`` changes nothing (or is stale)."""
        known = self.get(item.order_id)
        state = dict(known) if known is not None else {"status": "unknown"}
        for source, field in _CARRIED:
            value = getattr(item, source)
            if value is not None:
                state[field] = value
        if known is not None:
            try:
                _check_forward(known, state)
            except StaleUpdate:
                self.stale += 1
                return None
            if state == known:
                self.unchanged += 1
                return None
        self._store(item.order_id, state)
        return _event(item.order_id, item.exec_type, state, venue, recv_ts)

    def close_unseen(self, order_id: str, venue: str, recv_ts: float) -> Order | None:
        """``order_id`` is not among the venue's open orders any more, and nothing said how it ended."""
        known = self.open.get(order_id)
        if known is None:
            return None
        state = dict(known, status=CLOSED, reason="not among the venue's open orders after a reconnect")
        self._store(order_id, state)
        return _event(order_id, "restated", state, venue, recv_ts)

    def _store(self, order_id: str, state: dict[str, Any]) -> None:
        if state["status"] in TERMINAL or state["status"] == CLOSED:
            self.open.pop(order_id, None)
            self.closed[order_id] = state
            self.closed.move_to_end(order_id)
            while len(self.closed) > self._keep_closed:
                self.closed.popitem(last=False)
        else:
            self.open[order_id] = state


def _check_forward(known: dict[str, Any], new: dict[str, Any]) -> None:
    before, after = known["status"], new["status"]
    if before == CLOSED:
        return  # what we guessed gives way to what the venue says
    then, now = known.get("ts"), new.get("ts")
    if then is not None and now is not None and len(then) == len(now) and now < then:
        raise StaleUpdate  # older than what is known (a lagging endpoint's amend): never shown
    if before in STATUS_RANK and after in STATUS_RANK:
        if STATUS_RANK[after] < STATUS_RANK[before] or (before in TERMINAL and after != before):
            raise StaleUpdate
    done_before: Decimal | None = known.get("cum_qty")
    done_after: Decimal | None = new.get("cum_qty")
    if done_before is not None and done_after is not None and done_after < done_before:
        raise StaleUpdate


def _event(order_id: str, exec_type: str, state: dict[str, Any], venue: str, recv_ts: float) -> Order:
    return Order(venue=venue, recv_ts=recv_ts, order_id=order_id, exec_type=exec_type, **state)
