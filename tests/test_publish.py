"""Publisher and JSONL sink: in-process delivery, batching, exact formatting."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import Logger, formatEvent
from zope.interface import implementer
from zope.interface.verify import verifyObject

from gfws.events import Book, Error, Trade
from gfws.interfaces import IEventSink
from gfws.publish import JsonlSink, Publisher
from gfws.publish.jsonl import encode_event

D = Decimal


@pytest.fixture(autouse=True, params=["compiled", "pure"])
def bus_kind(request, monkeypatch):
    """Every test here runs against each publish (compiled, pure Python): they must behave the same."""
    from gfws.publish import bus

    if request.param == "pure":
        monkeypatch.setattr(bus, "FANOUT", None)
    elif bus.FANOUT is None:
        pytest.skip("the compiled bus is not built here")
    return request.param


def trade(i=1, qty="0.00000001"):
    return Trade(venue="kraken", recv_ts=1700000000.25, symbol="BTC/USD", trade_id=i, side="buy",
                 price=D("30000.0"), qty=D(qty), ord_type="limit", ts="2023-09-25T07:49:37.708706Z")


@implementer(IEventSink)
class ListSink:
    def __init__(self):
        self.batches, self.flushes, self.closed = [], 0, False

    def write(self, events):
        self.batches.append(list(events))

    def flush(self):
        self.flushes += 1

    def close(self):
        self.closed = True


def test_subscribers_by_type_and_for_all():
    p = Publisher(Clock())
    trades, everything = [], []
    p.subscribe(trades.append, "trade")
    stop = p.subscribe(everything.append)
    error = Error(venue="kraken", recv_ts=1.0, message="x")
    p.publish(trade())
    p.publish(error)
    assert trades == [trade()] and everything == [trade(), error]
    stop()
    p.publish(trade(2))
    assert len(everything) == 2 and len(trades) == 2
    assert p.published == {"trade": 2, "error": 1}


def test_unknown_event_type_is_refused():
    with pytest.raises(ValueError, match="unknown event type"):
        Publisher(Clock()).subscribe(print, "trades")


def test_a_failing_subscriber_does_not_stop_the_others():
    p = Publisher(Clock())
    got = []

    def broken(event):
        raise RuntimeError("strategy bug")

    p.subscribe(broken)
    p.subscribe(got.append)
    p.publish(trade())
    assert got == [trade()] and p.subscriber_errors == 1


def test_sinks_get_one_batch_per_reactor_turn():
    clock = Clock()
    p = Publisher(clock)
    sink = ListSink()
    verifyObject(IEventSink, sink)
    p.add_sink(sink)
    for i in range(5):
        p.publish(trade(i))
    assert sink.batches == []
    assert len(clock.getDelayedCalls()) == 1  # one flush scheduled, not one per event
    clock.advance(0)
    assert [len(b) for b in sink.batches] == [5] and sink.flushes == 1
    assert clock.getDelayedCalls() == []


def test_a_full_batch_is_flushed_at_once():
    clock = Clock()
    p = Publisher(clock, max_batch=3)
    sink = ListSink()
    p.add_sink(sink)
    for i in range(7):
        p.publish(trade(i))
    assert [len(b) for b in sink.batches] == [3, 3]
    p.close()
    assert [len(b) for b in sink.batches] == [3, 3, 1] and sink.closed
    assert clock.getDelayedCalls() == []


def test_event_json_keeps_precision_and_never_uses_exponents():
    line = json.loads(encode_event(trade(qty="0.00000001")))
    assert line == {"type": "trade", "venue": "kraken", "recv_ts": "2023-11-14T22:13:20.250000Z",
                    "symbol": "BTC/USD", "trade_id": 1, "side": "buy", "price": "30000.0",
                    "qty": "0.00000001", "ord_type": "limit", "ts": "2023-09-25T07:49:37.708706Z",
                    "snapshot": False}


def test_book_event_levels_are_string_pairs():
    book = Book(venue="kraken", recv_ts=0.0, symbol="ETH/USD", bids=((D("1999.90"), D("1.50000000")),),
                asks=((D("2000.10"), D("0.00100000")),), checksum=42, snapshot=False)
    line = json.loads(encode_event(book))
    assert line["bids"] == [["1999.90", "1.50000000"]] and line["asks"] == [["2000.10", "0.00100000"]]


def test_jsonl_file_sink_appends_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"earlier": true}\n')
    sink = JsonlSink(str(path))
    sink.write([trade(1), trade(2)])
    sink.flush()
    assert sink.drained(5.0)
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["trade_id"] == 2
    sink.close()


@implementer(IEventSink)
class DeferredSink(ListSink):
    """A sink whose flush and close return Deferreds the test fires by hand."""

    def __init__(self):
        super().__init__()
        self.flushing, self.closing = [], []

    def flush(self):
        super().flush()
        self.flushing.append(Deferred())
        return self.flushing[-1]

    def close(self):
        self.closed = True
        self.closing.append(Deferred())
        return self.closing[-1]


def captured(publisher):
    """Route ``publisher``'s log into a list of events."""
    logged = []
    publisher.log = Logger(observer=logged.append)
    return logged


def test_close_waits_for_a_sink_whose_close_returns_a_deferred():
    clock = Clock()
    p = Publisher(clock)
    slow, quick = DeferredSink(), ListSink()
    verifyObject(IEventSink, slow)
    p.add_sink(slow)
    p.add_sink(quick)
    p.publish(trade())
    done = []
    p.close().addCallback(done.append)
    assert slow.batches == quick.batches == [[trade()]]  # the pending batch went out first
    assert slow.closed and quick.closed
    assert done == []  # the slow sink has not finished closing
    slow.closing[0].callback(None)
    assert done == [None] and p.sink_errors == 0
    assert clock.getDelayedCalls() == []


def test_a_failed_close_is_counted_and_the_other_sinks_still_close():
    p = Publisher(Clock())
    logged = captured(p)
    refusing, failing_later, fine = ListSink(), DeferredSink(), ListSink()

    def refuse():
        raise OSError("disk gone")

    refusing.close = refuse
    for sink in (refusing, failing_later, fine):
        p.add_sink(sink)
    results = []
    p.close().addBoth(results.append)
    assert fine.closed and failing_later.closed
    assert results == [] and p.sink_errors == 1
    failing_later.closing[0].errback(ConnectionError("broker gone"))
    assert results == [None]  # fired, not failed
    assert p.sink_errors == 2
    failures = [e["log_failure"] for e in logged if "log_failure" in e]
    assert [f.type for f in failures] == [OSError, ConnectionError]
    assert all("failed to close" in formatEvent(e) for e in logged)


def test_a_flush_that_fails_later_is_counted_and_logged_not_raised():
    clock = Clock()
    p = Publisher(clock)
    logged = captured(p)
    broker, other = DeferredSink(), ListSink()
    p.add_sink(broker)
    p.add_sink(other)
    p.publish(trade(1))
    clock.advance(0)
    assert len(broker.flushing) == 1 and other.flushes == 1
    p.publish(trade(2))  # the first flush is still pending: batches are not held back for it
    clock.advance(0)
    assert [len(b) for b in broker.batches] == [1, 1] and len(broker.flushing) == 2
    broker.flushing[0].errback(ConnectionError("broker gone"))
    assert p.sink_errors == 1
    assert [e["log_failure"].type for e in logged] == [ConnectionError]
    assert "failed to flush" in formatEvent(logged[0])
    broker.flushing[1].callback(None)
    p.publish(trade(3))
    clock.advance(0)
    assert [len(b) for b in other.batches] == [1, 1, 1] and p.sink_errors == 1


def test_book_events_are_written_exactly_as_the_general_encoder_writes_them():
    """The book's own encoder (level texts cached by pair) gives the bytes of the general one, whatever the
    levels, and a pair written before is written the same when it comes back in a later book."""
    import random

    import msgspec
    import orjson

    from gfws.publish.jsonl import _decimal_text, _iso

    def general(event):
        data = msgspec.to_builtins(event, builtin_types=(D,))
        data["recv_ts"] = _iso(event.recv_ts)
        return orjson.dumps(data, default=_decimal_text)

    rng = random.Random(3)
    pairs = [(D(rng.randint(1, 10**9)).scaleb(-rng.randint(0, 8)), D(rng.randint(0, 10**9)).scaleb(-8))
             for _ in range(60)]
    for i in range(300):
        book = Book(venue="kraken", recv_ts=1_700_000_000 + i / 7, symbol="X/Y",
                    bids=tuple(rng.sample(pairs, rng.randint(0, 10))), asks=tuple(rng.sample(pairs, rng.randint(0, 10))),
                    checksum=rng.randint(0, 2**32 - 1), snapshot=rng.random() < 0.1,
                    ts=rng.choice([None, "2023-09-25T07:49:37.708706Z"]), valid=rng.random() < 0.9,
                    reason=rng.choice([None, "stale"]))
        assert encode_event(book) == general(book)
    assert b'"0.00000001"' in encode_event(Book(venue="k", recv_ts=0.0, symbol="X/Y", bids=((D("1E-8"), D("1E-8")),),
                                                 asks=(), checksum=0, snapshot=False))


def test_receive_times_are_written_as_datetime_writes_them():
    import random
    from datetime import UTC, datetime

    from gfws.publish.jsonl import _iso

    rng = random.Random(11)
    times = [rng.uniform(0, 4e9) for _ in range(20000)] + [1_700_000_000 + k / 8 for k in range(64)] + [
        1_700_000_000.9999995, 1_700_000_000.0000005, 1_700_000_000.9999994, 1_699_999_999.9999996, 0.0, 86399.9999999]
    for t in times:
        assert _iso(t) == datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"), t


def test_a_book_whose_levels_are_not_decimal_pairs_is_written_as_the_general_encoder_writes_it():
    import msgspec
    import orjson

    from gfws.publish.jsonl import _decimal_text, _iso

    def general(event):
        data = msgspec.to_builtins(event, builtin_types=(D,))
        data["recv_ts"] = _iso(event.recv_ts)
        return orjson.dumps(data, default=_decimal_text)

    floats = Book(venue="k", recv_ts=1.0, symbol="X/Y", bids=((1.5, 2),), asks=(), checksum=0, snapshot=False)
    assert encode_event(floats) == general(floats) and b"[[1.5,2]]" in encode_event(floats)
    assert encode_event(Book(venue="k", recv_ts=-0.5, symbol="X/Y", bids=(), asks=(), checksum=0,
                             snapshot=False)).count(b"1969-12-31T23:59:59.500000Z") == 1


def test_books_and_tickers_pass_from_the_leader_only_whenever_its_outlet_was_made():
    """Each outlet's market route is the bus while its endpoint leads and nowhere otherwise, kept by the
    selector as the leader changes (a session hands verified books straight to it)."""
    from gfws.events import Ticker
    from gfws.interfaces import IEventOutlet
    from gfws.publish.selector import Selector

    published: list = []
    selector = Selector(published.append, hot=False)
    a = selector.outlet("a")
    selector.lead("a")
    b = selector.outlet("b")  # made after the lead
    none = selector.outlet()
    assert verifyObject(IEventOutlet, a) and verifyObject(IEventOutlet, b)

    def book(name: str) -> Book:
        return Book(venue="kraken", recv_ts=1.0, symbol=name, bids=(), asks=(), checksum=0, snapshot=False)

    ticker = Ticker(venue="kraken", recv_ts=1.0, symbol="X/Y", **dict.fromkeys(
        ("bid", "bid_qty", "ask", "ask_qty", "last", "volume", "vwap", "low", "high", "change", "change_pct"),
        Decimal(1)))
    a.market(book("a1"))
    b.market(book("b1"))
    b.publish(ticker)
    a.publish(book("a2"))
    selector.lead("b")
    a.market(book("a3"))
    b.market(book("b2"))
    selector.leader = None  # the feed stopping
    b.market(book("b3"))
    a.publish(book("a4"))
    none.publish(Error(venue="kraken", recv_ts=1.0, message="always passes"))
    assert [getattr(e, "symbol", None) or e.message for e in published] == ["a1", "a2", "b2", "always passes"]


def test_publish_counts_calls_and_refuses_as_the_pure_bus_does(bus_kind):
    """Counts survive subscription changes; a subscriber added during a publish hears the next event,
    one removed still gets the current one; a publish from inside a subscriber is delivered in turn; a
    non-event is refused; KeyboardInterrupt from a subscriber is not swallowed."""
    p = Publisher(Clock())
    assert (p.publish == p._publish) == (bus_kind == "pure")
    got = []

    def first(event):
        got.append(("first", event.trade_id))
        if event.trade_id == 1:
            stop_second()
            p.subscribe(lambda e: got.append(("late", e.trade_id)), "trade")
            p.publish(trade(10))

    p.subscribe(first, "trade")
    stop_second = p.subscribe(lambda e: got.append(("second", e.trade_id)), "trade")
    p.publish(trade(1))
    p.publish(trade(2))
    assert got == [("first", 1), ("first", 10), ("late", 10), ("second", 1), ("first", 2), ("late", 2)]
    assert p.published == {"trade": 3}
    with pytest.raises(KeyError):
        p.publish("not an event")

    def interrupted(event):
        raise KeyboardInterrupt

    p.subscribe(interrupted, "error")
    with pytest.raises(KeyboardInterrupt):
        p.publish(Error(venue="kraken", recv_ts=1.0, message="x"))
    assert p.subscriber_errors == 0


def test_a_subscribers_error_is_logged_with_its_traceback_once_then_every_thousandth(bus_kind):
    from twisted.logger import globalLogPublisher

    p, logged = Publisher(Clock()), []

    def broken(event):
        raise RuntimeError("strategy bug")

    p.subscribe(broken, "trade")
    globalLogPublisher.addObserver(logged.append)
    try:
        for i in range(2000):
            p.publish(trade(i))
    finally:
        globalLogPublisher.removeObserver(logged.append)
    failures = [e["log_failure"] for e in logged if e.get("log_failure") is not None]
    assert p.subscriber_errors == 2000 and len(failures) == 3  # the 1st, 1000th and 2000th
    assert all(f.check(RuntimeError) for f in failures) and failures[0].tb is not None


def test_a_publisher_and_its_subscribers_are_collected(bus_kind):
    """The bus holds its subscribers and a subscriber may hold the bus: the collector must see the cycle."""
    import gc
    import weakref

    class Strategy:
        def __init__(self, publisher):
            self.publisher = publisher
            publisher.subscribe(self.on_event)

        def on_event(self, event):
            pass

    p = Publisher(Clock())
    strategy = Strategy(p)
    gone = weakref.ref(p), weakref.ref(strategy)
    del p, strategy
    gc.collect()
    assert gone[0]() is None and gone[1]() is None
