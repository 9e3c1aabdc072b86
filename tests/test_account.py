"""The account room: executions into fills (once) and orders (whole), and the ledger."""

from __future__ import annotations

import json
from decimal import Decimal

import msgspec
import pytest

from gfws.account import ExecutionsHandler, FillLedger, OrderStates
from gfws.account.executions import SNAPSHOT_FILLS
from gfws.account.ledger import LedgerError
from gfws.events import Fill, Order
from gfws.integrity.trades import TradeMarks
from gfws.venues.kraken import KrakenV2Dialect

DIALECT = KrakenV2Dialect()


def frame(items, sequence=1, snapshot=False):
    return json.dumps({"channel": "executions", "type": "snapshot" if snapshot else "update", "data": items,
                       "sequence": sequence}).encode()


def new(order_id="O1", **extra):
    return {"order_id": order_id, "exec_type": "pending_new", "order_status": "pending_new", "symbol": "BTC/USD",
            "side": "buy", "order_type": "limit", "order_qty": 1.0, "limit_price": 30000.0, "cl_ord_id": "c1",
            "order_userref": 3, "timestamp": "2023-09-22T10:33:05.700000Z", **extra}


def trade(exec_id, order_id="O1", qty=0.25, cum=0.25, status="partially_filled", **extra):
    return {"order_id": order_id, "exec_id": exec_id, "exec_type": "trade", "trade_id": 62887576,
            "symbol": "BTC/USD", "side": "buy", "last_qty": qty, "last_price": 30000.0, "liquidity_ind": "t",
            "cost": qty * 30000, "order_type": "limit", "timestamp": "2023-09-22T10:33:05.709993Z",
            "order_status": status, "cum_qty": cum, "cum_cost": cum * 30000, "avg_price": 30000.0,
            "fee_usd_equiv": 0.1, "fees": [{"asset": "USD", "qty": 0.3458}], **extra}


class Account:
    def __init__(self, ledger=None):
        self.events, self.rejected = [], []
        self.ledger = FillLedger() if ledger is None else ledger
        self.orders = OrderStates()
        self.handler = ExecutionsHandler(
            "kraken", self.events.append, lambda kind, detail, *rest: self.rejected.append((kind, detail)),
            self.ledger, self.orders,
        )

    def feed(self, items, snapshot=False):
        payload = frame(items, snapshot=snapshot).replace(b'"HUGE"', b"1e999999999")
        self.handler.handle(DIALECT.parse(payload), 1.0)

    def fills(self):
        return [e.exec_id for e in self.events if isinstance(e, Fill)]

    def orders_said(self):
        return [(e.order_id, e.exec_type, e.status, e.cum_qty) for e in self.events if isinstance(e, Order)]


def test_a_trade_execution_is_a_fill_with_exact_values_and_an_order_carried_forward():
    a = Account()
    a.feed([new()])
    a.feed([{"order_id": "O1", "exec_type": "new", "order_status": "new", "timestamp": "2023-09-22T10:33:05.7Z"}])
    a.feed([trade("T1")])
    fill = next(e for e in a.events if isinstance(e, Fill))
    assert (fill.last_qty, fill.last_price, fill.cost) == (Decimal("0.25"), Decimal("30000.0"), Decimal("7500.0"))
    assert fill.fees[0].asset == "USD" and fill.fees[0].qty == Decimal("0.3458")
    assert fill.liquidity == "taker" and fill.order_userref == 3 and not fill.snapshot
    last = [e for e in a.events if isinstance(e, Order)][-1]
    # The sparse "new" and the trade kept what pending_new told: symbol, limit price, client id.
    assert (last.status, last.symbol, last.limit_price, last.cl_ord_id, last.cum_qty) == (
        "partially_filled", "BTC/USD", Decimal("30000.0"), "c1", Decimal("0.25"))


def test_each_fill_is_published_once_whatever_brings_it_again():
    a = Account()
    a.feed([new(), trade("T1")])
    a.feed([trade("T1")])  # resent
    a.feed([new(), trade("T1"), trade("T2", cum=0.5)], snapshot=True)  # a snapshot after a reconnect
    assert a.fills() == ["T1", "T2"]
    assert [e.snapshot for e in a.events if isinstance(e, Fill)] == [False, True]
    assert a.ledger.repeats == 2
    # The order moved on once per real change; the repeats and the older snapshot state said nothing.
    assert a.orders_said() == [("O1", "pending_new", "pending_new", None),
                               ("O1", "trade", "partially_filled", Decimal("0.25")),
                               ("O1", "trade", "partially_filled", Decimal("0.5"))]


def test_an_older_update_never_moves_an_order_back():
    a = Account()
    a.feed([new(), trade("T1"), trade("T2", cum=1.0, qty=0.75, status="filled")])
    a.feed([{"order_id": "O1", "exec_type": "new", "order_status": "new"}])  # a lagging endpoint
    a.feed([trade("T1")])
    assert a.orders_said()[-1][2] == "filled" and a.orders.stale == 2  # the status and the cum_qty going back
    assert "O1" in a.orders.closed and "O1" not in a.orders.open


@pytest.mark.parametrize("bad, why", [
    ({"last_qty": 0}, "last_qty 0 is not > 0"),
    ({"last_price": -1}, "last_price -1 is not > 0"),
    ({"cost": "NaN"}, "cost"),
    ({"side": "short"}, "side"),
    ({"exec_id": ""}, "exec_id"),
    ({"timestamp": None}, "timestamp"),
    ({"fees": [{"asset": "USD", "qty": "HUGE"}]}, "fee qty"),
    ({"liquidity_ind": "x"}, "liquidity_ind"),
])
def test_a_malformed_fill_is_refused_loudly_and_never_published(bad, why):
    a = Account()
    item = {**trade("T9"), **bad}
    if bad.get("timestamp", 0) is None:
        del item["timestamp"]
    a.feed([item])
    assert a.fills() == []
    assert a.rejected and a.rejected[0][0] in ("fill_refused", "schema") and why in a.rejected[0][1]


def test_a_string_where_the_venue_sends_a_number_is_refused():
    a = Account()
    a.feed([{**trade("T9"), "last_qty": [1]}, trade("T10")])
    assert a.fills() == ["T10"]  # the bad item costs only itself
    assert a.rejected[0][0] == "fill_refused" and "T9" in a.rejected[0][1]


def test_a_full_snapshot_of_unknown_fills_after_an_outage_says_fills_may_be_missing():
    a = Account()
    a.feed([new("O0"), trade("OLD", order_id="O0", cum=0.25)])
    many = [trade(f"T{i}", order_id=f"O{i}", cum=0.25) for i in range(SNAPSHOT_FILLS)]
    a.feed(many, snapshot=True)
    assert len(a.fills()) == 1 + SNAPSHOT_FILLS
    assert [kind for kind, _ in a.rejected] == ["fills_may_be_missing"]
    a.rejected.clear()
    a.feed(many, snapshot=True)  # the same window again: it overlaps what was published
    assert a.rejected == []


def test_an_order_open_before_the_resubscribe_and_absent_from_its_snapshot_closed_unseen():
    a = Account()
    a.feed([new("O1"), new("O2")])
    a.handler.subscribing()
    a.feed([new("O2")], snapshot=True)
    closed = [e for e in a.events if isinstance(e, Order) and e.order_id == "O1"][-1]
    assert closed.status == "closed" and closed.exec_type == "restated"
    # The venue's word, if it comes, replaces the guess.
    a.feed([{"order_id": "O1", "exec_type": "canceled", "order_status": "canceled", "reason": "User requested"}])
    assert a.orders_said()[-1][:3] == ("O1", "canceled", "canceled")


def test_the_ledger_file_keeps_published_fills_across_a_restart(tmp_path):
    path = str(tmp_path / "fills.sqlite")
    a = Account(FillLedger(path))
    a.feed([new(), trade("T1"), trade("T2", cum=0.5)])
    a.ledger.close()
    b = Account(FillLedger(path))
    b.feed([new(), trade("T1"), trade("T2", cum=0.5), trade("T3", cum=0.75)], snapshot=True)
    assert b.fills() == ["T3"]


def test_the_ledger_forgets_by_count_never_by_age():
    ledger = FillLedger(keep=3)
    for i in range(5):
        ledger.record(msgspec.convert({"venue": "kraken", "recv_ts": 0.0, "exec_id": f"T{i}", "order_id": "O",
                                       "trade_id": None, "symbol": "BTC/USD", "side": "buy", "last_qty": "1",
                                       "last_price": "1", "cost": "1", "fees": [], "liquidity": None,
                                       "ts": "t"}, Fill))
    assert "T0" not in ledger and "T1" not in ledger and all(f"T{i}" in ledger for i in (2, 3, 4))


def test_a_file_that_is_not_a_ledger_is_an_error_naming_it(tmp_path):
    path = tmp_path / "fills.sqlite"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(LedgerError, match="fills.sqlite: not a usable fill ledger"):
        FillLedger(str(path))


def test_trade_marks_never_forget_and_let_a_lagging_endpoint_fill_holes():
    marks = TradeMarks()
    assert [marks.first_time("BTC/USD", i) for i in (1, 2, 3)] == [True] * 3
    assert [marks.first_time("BTC/USD", i) for i in (1, 2, 3)] == [False] * 3  # a snapshot replay, any time later
    assert marks.first_time("BTC/USD", 7) and marks.gap == (4, 6)
    assert marks.first_time("BTC/USD", 5) and not marks.first_time("BTC/USD", 5)  # a hole filled, once
    assert marks.first_time("ETH/USD", 3)  # per symbol


def test_a_quoted_number_in_one_fill_costs_only_that_fill():
    a = Account()
    a.feed([{**trade("T9"), "last_price": "30000.0"}, trade("T10")])
    assert a.fills() == ["T10"]
    assert a.rejected[0][0] == "fill_refused" and "last_price is a string" in a.rejected[0][1]


def test_an_amend_older_than_what_is_known_is_never_shown():
    a = Account()
    a.feed([new(), {"order_id": "O1", "exec_type": "amended", "order_qty": 2.0, "order_status": "new",
                    "timestamp": "2023-09-22T10:34:00.000000Z"}])
    a.feed([{"order_id": "O1", "exec_type": "amended", "order_qty": 1.5, "order_status": "new",
             "timestamp": "2023-09-22T10:33:30.000000Z"}])  # a lagging endpoint's earlier amend
    assert a.orders.get("O1")["order_qty"] == Decimal("2.0") and a.orders.stale == 1
