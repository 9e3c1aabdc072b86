"""The compiled core gives exactly what the pure-Python path gives.

The compiled path takes only the venue's usual book and trade updates and leaves every
other frame, untouched, to the general path (msgspec, then the handler).
Each test feeds the same frames to a session with the compiled core and to
one with the pure-Python book and no compiled path, and compares every event
byte for byte (a Decimal's exponent included) and every count.
"""

from __future__ import annotations

import random
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gfws.integrity.report import IntegrityReporter
from gfws.messages import PairInfo
from gfws.session import FeedSession
from gfws.venues.kraken import KrakenV2Dialect
from gfws.venues.kraken.book import PyBook
from gfws.venues.kraken.checksum import level_text
from tests.conftest import COMPILED_BOOK
from tests.memory import MemoryLink, SessionLink, sub
from tests.test_fuzz import mutate
from tests.test_integrity import gate

pytestmark = pytest.mark.skipif(COMPILED_BOOK is None, reason="the compiled book is not built here")


_WIRE = msgspec.json.Encoder(decimal_format="number")


def compact(message) -> bytes:
    """As the venue writes it: no spaces, numbers as numbers (trailing zeros kept, as the capture has them)."""
    return _WIRE.encode(message)


def encoded(events) -> list[bytes]:
    return [msgspec.json.encode(e) for e in events]


class Twins:
    """Two sessions fed the same frames at the same times: compiled core, and pure Python."""

    def __init__(self, subscriptions, pairs=(("BTC/USD", 1, 8),)) -> None:
        self.compiled = MemoryLink(subscriptions)
        self.pure = MemoryLink(subscriptions, dialect=KrakenV2Dialect(compiled=False))
        self.taken = 0  # frames the compiled path took
        assert self.compiled.client.updates is not None, "the compiled session has no compiled path"
        assert self.pure.client.updates is None
        for link in (self.compiled, self.pure):
            link.send = link.sent.append
            link.client.connection_made(SessionLink(link))
            link.client.instruments.apply([PairInfo(*p) for p in pairs], snapshot=True)

    def receive(self, frame: bytes) -> None:
        for link in (self.compiled, self.pure):
            link.client.frame_received(frame, link.clock.seconds())
        self.taken += self.compiled.client.updates.taken is not None

    def advance(self, seconds: float) -> None:
        for link in (self.compiled, self.pure):
            link.clock.advance(seconds)

    def assert_same(self) -> None:
        assert encoded(self.compiled.events) == encoded(self.pure.events)
        assert self.compiled.reporter.counts == self.pure.reporter.counts
        assert self.compiled.sent == self.pure.sent  # the same resyncs asked for


def test_the_real_capture_takes_the_compiled_path_with_identical_events(orderbook_fixture):
    twins = Twins([sub("book", "BTC/USD")])
    messages = [orderbook_fixture["init"], *orderbook_fixture["updates"]]
    for message in messages:
        twins.receive(compact(message))
        twins.advance(0.01)
    twins.assert_same()
    assert twins.taken == len(messages) - 1  # every update; the snapshot takes the general path
    books = twins.compiled.of("book")
    assert len(books) == 510 and all(b.valid for b in books)


def test_a_simulated_session_with_faults_gives_identical_events():
    # The compiled twin drives the simulated venue; the pure one hears the same frames at the same times.

    faults = dict(drop=0.02, duplicate=0.02, reorder=0.02, corrupt_checksum=0.01, stale_timestamp=0.01,
                  malformed=0.01, seed=11)
    subscriptions = [sub("book", "BTC/USD", "ETH/USD", depth=10), sub("book", "ADA/USD", depth=25),
                     sub("trade", "BTC/USD")]
    compiled = MemoryLink(subscriptions, seed=11, gate=gate(**faults))
    pure_events: list = []
    reporter = IntegrityReporter("kraken", pure_events.append, compiled.clock)
    pure = FeedSession(KrakenV2Dialect(compiled=False), subscriptions, pure_events.append, reporter, compiled.clock, "memory", 5.0)
    pure_sent: list[bytes] = []

    class Quiet(SessionLink):
        def send(self, payload: bytes) -> None:
            pure_sent.append(payload)

    pure.connection_made(Quiet(compiled))
    for frame in compiled.received:  # the venue's greeting, sent as it connected
        pure.frame_received(frame, compiled.clock.seconds())
    compiled.also.append(pure.frame_received)
    compiled.start()
    compiled.run(40)
    assert encoded(compiled.events) == encoded(pure_events)
    assert compiled.reporter.counts == reporter.counts
    assert compiled.sent == pure_sent
    counts = reporter.counts
    assert counts["checksum_mismatch"] and counts["duplicate"] and counts["malformed_json"]
    assert len(compiled.of("book", valid=True)) > 500


def test_mutated_frames_give_identical_events(orderbook_fixture):
    rng = random.Random(20261129)
    twins = Twins([sub("book", "BTC/USD")])
    messages = [compact(m) for m in [orderbook_fixture["init"], *orderbook_fixture["updates"]]]
    for _ in range(6):
        for frame in messages:
            if not twins.compiled.client.books.is_live("BTC/USD"):  # the venue's answer to a resync
                twins.receive(messages[0])
            twins.receive(mutate(frame, rng) if rng.random() < 0.05 else frame)
            twins.advance(0.001)
    twins.assert_same()
    assert twins.taken > 1000
    counts = twins.pure.reporter.counts
    assert counts["checksum_mismatch"] and counts["malformed_json"]


UPDATE = {"channel": "book", "type": "update", "data": [{
    "symbol": "BTC/USD", "bids": [{"price": 29430.1, "qty": 1.5}], "asks": [], "checksum": 0,
    "timestamp": "2023-07-30T15:30:01.606342Z"}]}

PRICE, SIZE, LEVEL = b'"price":29430.1', b'"qty":1.5', b'"price":29430.1,"qty":1.5'

# Each makes a frame the compiled path must leave to the general path (which refuses or takes it):
# what it replaces in the usual frame, and with what ("checksum" is the right checksum's text).
UNUSUAL = {
    "too many decimals": (PRICE, b'"price":29430.15'),
    "a number as a string": (PRICE, b'"price":"29430.1"'),
    "an exponent": (PRICE, b'"price":2.94301e4'),
    "a negative size": (SIZE, b'"qty":-1.5'),
    "a negative zero size": (SIZE, b'"qty":-0.0'),
    "a zero price": (PRICE, b'"price":0.0'),
    "a leading zero": (PRICE, b'"price":029430.1'),
    "spaces": (PRICE, b'"price": 29430.1'),
    "keys in another order": (LEVEL, b'"qty":1.5,"price":29430.1'),
    "an extra key": (LEVEL, b'"price":29430.1,"qty":1.5,"x":1'),
    "an escape in the symbol": (b'"symbol":"BTC/USD"', b'"symbol":"BTC\\/USD"'),
    "an unsubscribed symbol": (b'"symbol":"BTC/USD"', b'"symbol":"ETH/USD"'),
    "a checksum over 32 bits": (b"checksum", b'"checksum":4294967296'),
    "a checksum as a float": (b"checksum", b'"checksum":1.0'),
    "a duplicate key": (LEVEL, b'"price":29430.1,"price":29430.2,"qty":1.5'),
    "trailing bytes": (b'}]}', b'}]} '),
    "31 integer digits": (PRICE, b'"price":1000000000000000000000000000000.0'),
    "non-ASCII in the time": (b'"timestamp":"2023-07-30T15:30:01.606342Z"',
                              '"timestamp":"2023-07-30T15:30:01.606342Z\u00e9"'.encode()),
    "two items": (b'}]}', b"second item"),
}


def unusual_frame(name: str, checksum: int) -> bytes:
    text = compact({**UPDATE, "data": [{**UPDATE["data"][0], "checksum": checksum}]})
    old, new = UNUSUAL[name]
    if old == b"checksum":
        old = f'"checksum":{checksum}'.encode()
    if new == b"second item":
        new = b'},' + text[text.index(b'[{') + 1:-2] + b']}'
    changed = text.replace(old, new, 1)
    assert changed != text, name
    return changed


def live_twins(orderbook_fixture) -> Twins:
    twins = Twins([sub("book", "BTC/USD")], pairs=(("BTC/USD", 1, 8), ("ETH/USD", 2, 8)))
    twins.receive(compact(orderbook_fixture["init"]))
    return twins


@pytest.mark.parametrize("name", sorted(UNUSUAL))
def test_an_unusual_update_is_left_to_the_general_path_with_identical_results(orderbook_fixture, name):
    twins = live_twins(orderbook_fixture)
    book = snapshot_book(orderbook_fixture)  # what the update would make of the snapshot: its checksum is right
    book.apply([(Decimal("29430.1"), Decimal("1.50000000"))], [])
    frame = unusual_frame(name, book.checksum())
    assert twins.compiled.client.updates.parse(frame) is None, name
    twins.receive(frame)
    twins.assert_same()
    assert twins.taken == 0


def test_the_usual_update_is_taken_and_verified(orderbook_fixture):
    twins = live_twins(orderbook_fixture)
    twins.receive(compact(orderbook_fixture["updates"][0]))
    twins.receive(compact(orderbook_fixture["updates"][1]))
    twins.assert_same()
    assert twins.taken == 2 and len(twins.compiled.of("book", valid=True)) == 3


def test_a_wrong_checksum_on_the_compiled_path_fails_the_book_as_the_general_path_does(orderbook_fixture):
    twins = live_twins(orderbook_fixture)
    update = dict(orderbook_fixture["updates"][0])
    update["data"] = [{**update["data"][0], "checksum": (update["data"][0]["checksum"] + 1) % 2**32}]
    twins.receive(compact(update))
    twins.assert_same()
    assert twins.taken == 1
    assert twins.compiled.reporter.counts["checksum_mismatch"] == 1
    assert not twins.compiled.client.books.is_live("BTC/USD")
    assert twins.compiled.of("book")[-1].valid is False
    twins.receive(compact(orderbook_fixture["updates"][1]))  # ignored until the next snapshot, in both
    twins.assert_same()
    assert twins.taken == 1


def snapshot_book(orderbook_fixture) -> PyBook:
    snapshot = orderbook_fixture["init"]["data"][0]
    book = PyBook("BTC/USD", 10)
    as_levels = lambda side: [(Decimal(str(l["price"])).quantize(Decimal("0.1")),  # noqa: E731
                               Decimal(str(l["qty"])).quantize(Decimal("1E-8"))) for l in snapshot[side]]
    book.apply(as_levels("bids"), as_levels("asks"))
    return book


def update(book: PyBook, bids, ts: str | None) -> bytes:
    """A usual update frame setting ``bids`` on ``book``, with its right checksum."""
    book.apply([(Decimal(p), Decimal(q)) for p, q in bids], [])
    item = {"symbol": "BTC/USD", "bids": [{"price": Decimal(p), "qty": Decimal(q)} for p, q in bids], "asks": [],
            "checksum": book.checksum(), **({"timestamp": ts} if ts is not None else {})}
    return compact({"channel": "book", "type": "update", "data": [item]})


@pytest.mark.parametrize("times", [
    ["2023-07-30T15:30:01.000000Z", "2023-07-30T15:30:00.000000Z"],  # backwards
    ["2023-07-30T15:30:01Z", "2023-07-30T15:30:01.5Z"],  # other widths, in order as instants
    ["2023-07-30T15:30:01.5Z", "2023-07-30T15:30:01Z"],  # other widths, backwards
    ["2099-01-01T00:00:00.000000Z", "2023-07-30T15:30:02.000000Z"],  # one from the future
    [None, "2023-07-30T15:30:02.000000Z"],
], ids=["backwards", "widths", "widths-backwards", "future", "none-then-one"])
def test_venue_times_on_the_compiled_path_are_judged_as_on_the_general_path(orderbook_fixture, times):
    twins = live_twins(orderbook_fixture)
    book = snapshot_book(orderbook_fixture)
    for i, ts in enumerate(times * 20):  # past the one-in-16 sample, too
        twins.receive(update(book, [("29400.1", f"{i + 1}.00000000")], ts))
    twins.assert_same()
    assert twins.taken == 40


def test_a_crossed_book_on_the_compiled_path_is_flagged_and_published(orderbook_fixture):
    twins = live_twins(orderbook_fixture)
    book = snapshot_book(orderbook_fixture)
    best_ask = book.top_asks()[0][0]
    twins.receive(update(book, [(str(best_ask + Decimal("0.5")), "1.00000000")], "2023-07-30T15:30:02.000000Z"))
    twins.assert_same()
    assert twins.taken == 1 and twins.compiled.reporter.counts["crossed_book"] == 1
    assert twins.compiled.of("book")[-1].bids[0][0] > best_ask


def test_a_resent_update_is_a_duplicate_on_both_paths(orderbook_fixture):
    twins = live_twins(orderbook_fixture)
    frame = compact(orderbook_fixture["updates"][0])
    twins.receive(frame)
    twins.receive(frame)
    twins.assert_same()
    assert twins.compiled.reporter.counts["duplicate"] == 1


decimals = st.integers(0, 10)
magnitudes = st.integers(1, 10**14)


@settings(max_examples=300, deadline=None)
@given(price_decimals=decimals, qty_decimals=decimals,
       bids=st.lists(st.tuples(magnitudes, st.integers(0, 10**12)), max_size=15),
       asks=st.lists(st.tuples(magnitudes, st.integers(0, 10**12)), max_size=15))
def test_integer_ticks_and_lots_spell_the_checksum_text_of_the_precision_rule(
        price_decimals, qty_decimals, bids, asks):
    """A level's checksum text is the plain digits of its ticks and lots: the same as padding to the
    pair's precision and removing the point and leading zeros, tiny values (1E-8) included."""
    def at_precision(levels):
        return [(Decimal(t).scaleb(-price_decimals), Decimal(q).scaleb(-qty_decimals)) for t, q in levels]

    compiled, pure = COMPILED_BOOK("X/Y", 10), PyBook("X/Y", 10)
    for book in (compiled, pure):
        book.set_precision(price_decimals, qty_decimals)
        book.apply(at_precision(bids), at_precision(asks))
    expected_asks = sorted({t: q for t, q in asks}.items())  # the last size given for a price wins
    expected_bids = sorted({t: q for t, q in bids}.items(), reverse=True)
    expected = "".join(str(t) + str(q) for t, q in [l for l in expected_asks if l[1]][:10]) + "".join(
        str(t) + str(q) for t, q in [l for l in expected_bids if l[1]][:10])
    assert compiled.checksum_text() == pure.checksum_text() == expected
    assert expected == "".join(level_text(p, q) for p, q in pure.top_asks()[:10] + pure.top_bids()[:10])
    assert compiled.checksum() == pure.checksum()
    assert [(str(p), str(q)) for p, q in compiled.top_bids()] == [(str(p), str(q)) for p, q in pure.top_bids()]


def test_the_compiled_book_refuses_levels_not_at_the_pairs_precision():
    # Units of different sizes would not compare: 1.0 is "10" tenths, 2 is "2" units.
    book = COMPILED_BOOK("X/Y", 10)
    book.set_precision(1, 8)
    with pytest.raises(ValueError, match="not at the pair's 1 decimals"):
        book.apply([(Decimal("2"), Decimal("1.00000000"))], [])
    book.apply([(Decimal("2.0"), Decimal("1.00000000"))], [])
    assert book.top_bids() == ((Decimal("2.0"), Decimal("1.00000000")),)


# -- trades -------------------------------------------------------------------------------------------

TRADE = {"symbol": "BTC/USD", "side": "buy", "price": Decimal("29430.2"), "qty": Decimal("0.10000000"),
         "ord_type": "limit", "trade_id": 7, "timestamp": "2023-07-30T15:30:01.606342Z"}


def trades_frame(*items) -> bytes:
    return compact({"channel": "trade", "type": "update", "data": list(items)})


def trade_twins() -> Twins:
    return Twins([sub("trade", "BTC/USD", "NEW/USD")], pairs=(("BTC/USD", 1, 8), ("ETH/USD", 2, 8)))


def test_usual_trade_updates_take_the_compiled_path_with_identical_events():
    twins = trade_twins()
    for i in range(40):  # past the one-in-16 sample
        items = [{**TRADE, "trade_id": 100 + 3 * i + k, "side": ("buy", "sell")[k % 2],
                  "ord_type": ("limit", "market")[i % 2], "price": Decimal(f"29430.{k}"),
                  "timestamp": f"2023-07-30T15:30:{i:02d}.{k}00000Z"} for k in range(1 + i % 3)]
        twins.receive(trades_frame(*items))
    twins.assert_same()
    assert twins.taken == 40 and len(twins.compiled.of("trade")) == sum(1 + i % 3 for i in range(40))


UNUSUAL_TRADES = {
    "too many decimals": {"price": Decimal("29430.25")},
    "a zero size": {"qty": Decimal("0")},
    "a negative price": {"price": Decimal("-1.0")},
    "another side": {"side": "short"},
    "another order type": {"ord_type": "stop"},
    "a trade id over 63 bits": {"trade_id": 2**63},
    "a negative trade id": {"trade_id": -1},
    "a pair with no precision yet": {"symbol": "NEW/USD"},
    "an unsubscribed pair": {"symbol": "ETH/USD"},
    "no timestamp": {"timestamp": None},
}


@pytest.mark.parametrize("name", sorted(UNUSUAL_TRADES))
def test_an_unusual_trade_is_handled_as_on_the_general_path(name):
    twins = trade_twins()
    twins.receive(trades_frame(TRADE))
    changed = {**TRADE, "trade_id": 8, **UNUSUAL_TRADES[name]}
    if changed["timestamp"] is None:
        del changed["timestamp"]
    frame = trades_frame(changed, {**TRADE, "trade_id": 9})
    taken = twins.compiled.client.updates.parse(frame) is not None
    twins.receive(frame)
    twins.assert_same()
    assert taken == (name == "no timestamp")  # a missing time is usual; everything else is the general path's


@pytest.mark.parametrize("text", [
    b'"price":"29430.2"', b'"price": 29430.2', b'"trade_id":7.0', b'"trade_id":07', b'"price":2.94302e4',
    b'"ord_type":"limit","side":"buy"', b'"symbol":"BTC\\/USD"',
])
def test_an_unusual_trade_frame_is_left_to_the_general_path(text):
    twins = trade_twins()
    frame = trades_frame(TRADE)
    replaced = {b'"price":"29430.2"': b'"price":29430.2', b'"price": 29430.2': b'"price":29430.2',
                b'"trade_id":7.0': b'"trade_id":7', b'"trade_id":07': b'"trade_id":7',
                b'"price":2.94302e4': b'"price":29430.2',
                b'"ord_type":"limit","side":"buy"': b'"side":"buy"', b'"symbol":"BTC\\/USD"': b'"symbol":"BTC/USD"'}
    frame = frame.replace(replaced[text], text, 1)
    if text == b'"ord_type":"limit","side":"buy"':
        frame = frame.replace(b',"ord_type":"limit","trade_id"', b',"trade_id"', 1)
    assert text in frame
    assert twins.compiled.client.updates.parse(frame) is None
    twins.receive(frame)
    twins.assert_same()


@pytest.mark.parametrize("times", [
    ["2023-07-30T15:30:02.000000Z", "2023-07-30T15:30:01.000000Z", "2023-07-30T15:30:03.000000Z"],
    ["2023-07-30T15:30:02Z", "2023-07-30T15:30:02.5Z", "2023-07-30T15:30:01.000000Z"],
    ["2099-01-01T00:00:00.000000Z", "2023-07-30T15:30:02.000000Z", "2023-07-30T15:30:03.000000Z"],
], ids=["backwards-mid-frame", "widths", "future"])
def test_venue_times_within_one_trade_frame_are_judged_in_order(times):
    twins = trade_twins()
    for round_ in range(10):
        twins.receive(trades_frame(*[{**TRADE, "trade_id": 10 * round_ + k, "timestamp": ts}
                                     for k, ts in enumerate(times)]))
    twins.assert_same()
    counts = twins.compiled.reporter.counts
    assert twins.taken == 10 and counts["timestamp_regression"] + counts["future_timestamp"] > 0


def test_a_bad_level_leaves_the_compiled_book_as_it_was():
    book = COMPILED_BOOK("X/Y", 10)
    book.set_precision(1, 8)
    book.apply([(Decimal("2.0"), Decimal("1.00000000"))], [])
    before = (book.top_bids(), book.checksum())
    with pytest.raises(ValueError):
        book.apply([(Decimal("3.0"), Decimal("1.00000000")), (Decimal("4"), Decimal("1.00000000"))], [])
    assert (book.top_bids(), book.checksum()) == before
    book.apply([(Decimal("2.0"), Decimal("-0E-8"))], [])  # minus zero deletes, as in the pure book
    assert book.top_bids() == ()


def test_the_compiled_path_keeps_its_own_map_of_books():
    book = COMPILED_BOOK("BTC/USD", 10)
    book.set_precision(1, 8)
    book.live = True
    books = {"BTC/USD": book}
    updates = KrakenV2Dialect().fast_updates("kraken", books, {}, {}, False, {}, None, {}, {})
    books.clear()  # the caller's map changes and lets the book go; the path's map still holds it
    del book
    expected = PyBook("BTC/USD", 10)
    expected.apply([(Decimal("29430.1"), Decimal("1.50000000"))], [])
    item = {k: v for k, v in UPDATE["data"][0].items() if k != "timestamp"}  # no time: nothing for Python to check
    assert updates.parse(compact({**UPDATE, "data": [{**item, "checksum": expected.checksum()}]})) == "book"
    event = updates.commit(1.0)
    assert event.symbol == "BTC/USD" and event.bids == ((Decimal("29430.1"), Decimal("1.50000000")),)


def test_a_compiled_book_made_without_init_is_usable():
    book = COMPILED_BOOK.__new__(COMPILED_BOOK)
    assert book.symbol == "" and len(book) == 0 and book.top_asks() == ()


def test_the_compiled_venue_time_is_the_general_paths_to_the_bit():
    """The sampled item's venue delay is recorded from the compiled path's own reading of the usual time:
    the same float as venue_seconds for every usual time it reads, and no reading of anything else."""
    import random

    import _gfws_book

    from gfws.market.context import venue_seconds

    rng = random.Random(8)
    times = [f"{rng.randint(1970, 2200):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 31):02d}T"
             f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999_999):06d}Z"
             for _ in range(50_000)]
    times += ["1970-01-01T00:00:00.000000Z", "2000-02-29T23:59:59.999999Z", "2200-12-31T23:59:59.999999Z",
              "2024-02-29T12:00:00.000001Z", "2023-09-25T07:49:37.708706Z"]
    read = 0
    for ts in times:
        fast = _gfws_book.venue_seconds(ts)
        assert fast == venue_seconds(ts), ts  # None where the date does not exist (Feb 30th, 2100-02-29)
        read += fast is not None
    assert read > 40_000
    for other in ["2100-02-29T00:00:00.000000Z", "2023-13-01T00:00:00.000000Z", "2023-01-01T24:00:00.000000Z",
                  "2023-01-01T00:60:00.000000Z", "2023-01-01T00:00:60.000000Z", "1969-12-31T23:59:59.999999Z",
                  "2201-01-01T00:00:00.000000Z", "2023-07-30T15:30:01Z", "2023-07-30T15:30:01.5Z",
                  "2023-07-30T15:30:01.123456789Z", "2023-07-30 15:30:01.000000Z", "2023-07-30T15:30:01.000000+",
                  "2023-07-30T15:30:01.00000aZ", "２023-07-30T15:30:01.000000Z", b"2023-07-30T15:30:01.000000Z", 5]:
        assert _gfws_book.venue_seconds(other) is None, other


def test_the_sampled_venue_delay_is_recorded_on_the_compiled_path_as_on_the_general_path(orderbook_fixture,
                                                                                         monkeypatch):
    from gfws.market.books import BookHandler

    handed_back, committed = [], BookHandler.committed

    def watching(self, result, recv_ts):  # what the compiled path hands back for the general checks
        handed_back.append(result)
        committed(self, result, recv_ts)

    monkeypatch.setattr(BookHandler, "committed", watching)
    twins = live_twins(orderbook_fixture)
    book = snapshot_book(orderbook_fixture)
    twins.advance(1_690_731_000 - twins.compiled.clock.seconds())
    for i in range(64):
        twins.receive(update(book, [("29400.1", f"{i + 1}.00000000")], f"2023-07-30T15:29:{i % 60:02d}.250000Z"
                             if i < 60 else "2023-07-30T15:29:59.750000Z"))
    twins.assert_same()
    compiled, pure = (t.client.stats.venue_delay for t in (twins.compiled, twins.pure))
    assert compiled.sampled == pure.sampled == 4 and (compiled.counts, compiled.sum) == (pure.counts, pure.sum)
    # Only the first time of the symbol goes to the general check (no last time yet to compare with); the
    # sampled items' delays are recorded in the compiled path.
    assert twins.taken == 64 and [(r[2], r[-1]) for r in handed_back] == [("2023-07-30T15:29:00.250000Z", False)]


def test_the_compiled_crc32_is_zlibs_for_every_length_whichever_way_the_cpu_computes_it():
    """Books checksum by carry-less multiplication where the CPU has it (16 bytes a step, then the tables
    for the rest), else by tables: zlib's CRC32 either way, at every length around the 16-byte steps."""
    import platform
    import random
    import zlib

    import _gfws_book

    rng = random.Random(32)
    for n in [*range(0, 130), 255, 256, 257, 300, 511, 4096]:
        for data in (bytes(rng.getrandbits(8) for _ in range(n)), bytes(rng.choice(b"0123456789") for _ in range(n)),
                     b"\xff" * n, b"\x00" * n):
            assert _gfws_book.crc32(data) == zlib.crc32(data), (n, data)
    try:
        flags = open("/proc/cpuinfo").read().split()
    except OSError:
        flags = []
    if platform.machine() == "x86_64" and "pclmulqdq" in flags and "sse4_1" in flags:
        assert _gfws_book.CRC_FOLDING is True  # the fast way is the one in use where it can be


def test_the_compiled_path_refuses_a_window_that_was_never_set_up():
    """Found by review: a Digests made without __init__ (or whose __init__ failed) crashed take()."""
    import _gfws_book

    from gfws.events import Book

    window = _gfws_book.Digests.__new__(_gfws_book.Digests)
    book = COMPILED_BOOK("X/Y", 10)
    book.set_precision(0, 0)
    book.live = True
    with pytest.raises(ValueError, match="initialised"):
        _gfws_book.Updates("kraken", Book, {"X/Y": book}, {}, {}, False, digests=window)
    with pytest.raises(RuntimeError):
        window.first_frame(b"{}", 1.0)


@pytest.mark.parametrize("level", [("1E-19", "1"), ("1", "1E-200"), ("1E-60", "1")])
def test_a_first_level_cannot_give_the_compiled_book_units_past_its_limits(level):
    """Found by review: before its precision is set, a book takes its units from the first level; past 18
    decimals the digits overran a level's storage. Refused, the book unchanged."""
    book = COMPILED_BOOK("X/Y", 10)
    with pytest.raises(ValueError, match="decimals"):
        book.apply([(Decimal(level[0]), Decimal(level[1]))], [])
    assert book.top_bids() == () and book.checksum_text() == ""
    book.apply([(Decimal("1.5"), Decimal("2"))], [])  # still usable
    assert book.top_bids() == ((Decimal("1.5"), Decimal("2")),)


def test_a_new_precision_for_a_pair_is_honoured_by_the_compiled_trade_path():
    """The compiled path remembers each trade symbol and the decimals of the precision it last found for
    it: a new announcement (a new precision object) is read again, whatever the symbol's history."""
    twins = trade_twins()
    twins.receive(trades_frame({**TRADE, "trade_id": 1}))
    for link in (twins.compiled, twins.pure):
        link.client.instruments.apply([PairInfo("BTC/USD", 2, 6)], snapshot=False)
    twins.receive(trades_frame({**TRADE, "trade_id": 2, "price": Decimal("29430.25"), "qty": Decimal("0.100000")}))
    twins.receive(trades_frame({**TRADE, "trade_id": 3, "qty": Decimal("0.12345678")}))  # 8: not the pair's now
    twins.assert_same()
    trades = twins.compiled.of("trade")
    assert [str(t.price) for t in trades] == ["29430.2", "29430.25"] and str(trades[1].qty) == "0.100000"
    assert twins.taken == 2 and twins.compiled.reporter.counts


class Doubles:
    """What a compiled receiver calls, recorded (the session's methods and routes stand-ins)."""

    def __init__(self, market_fails: BaseException | None = None) -> None:
        self.calls: list = []
        self.received = 0
        self.last_data = None
        self.market_fails = market_fails
        self.recorded: list[float] = []

    def record(self, seconds: float) -> None:
        self.recorded.append(seconds)

    def market(self, event) -> None:
        self.calls.append(("market", event))
        if self.market_fails is not None:
            raise self.market_fails

    def trades(self, events) -> None:  # the outlet's route for one frame's usual trades
        self.calls.append(("trade route", list(events)))

    def receiver(self, updates):
        return updates.receiver(self, self, self, self.trades, lambda *a: self.calls.append(("general", *a)),
                                lambda: self.calls.append(("duplicate",)),
                                lambda *a: self.calls.append(("trades", *a)), lambda *a: self.calls.append(("books", *a)),
                                lambda *a: self.calls.append(("failed", *a)), 16)


def test_the_compiled_receiver_routes_every_frame_as_the_session_does(orderbook_fixture):
    """Taken and usual: counted, the liveness told, the Book to the market route; a resend to duplicate();
    not taken, or failing before it was taken (not bytes): the general path; one frame in 16 timed."""
    from gfws.events import Book

    twins = live_twins(orderbook_fixture)
    twins.receive(compact(orderbook_fixture["updates"][0]))  # the symbol's first time: the general check
    doubles = Doubles()
    receive = doubles.receiver(twins.compiled.client.updates).receive
    frame = compact(orderbook_fixture["updates"][1])
    receive(frame, 5.0)
    assert [c[0] for c in doubles.calls] == ["market"] and type(doubles.calls[0][1]) is Book
    assert doubles.received == 1 and doubles.last_data == 5.0
    receive(frame, 6.0)  # the same frame again: a resend
    receive(b'{"channel":"heartbeat"}', 7.0)
    receive(bytearray(b'{"channel":"heartbeat"}'), 8.0)
    assert doubles.calls[1:] == [("duplicate",), ("general", b'{"channel":"heartbeat"}', 7.0),
                                 ("general", bytearray(b'{"channel":"heartbeat"}'), 8.0)]
    assert doubles.received == 4 and doubles.last_data == 6.0  # neither the heartbeat nor the general path's
    for _ in range(28):
        receive(b"{}", 9.0)
    assert doubles.received == 32 and len(doubles.recorded) == 2 and all(0 < s < 1 for s in doubles.recorded)


def test_the_compiled_receiver_hands_a_frames_usual_trades_to_the_outlet_at_once():
    """Every item usual: the list to the outlet's trade route; an item for the general time check: the
    session's trade handler has the whole list (which publishes each in order)."""
    from gfws.events import Trade

    twins = trade_twins()
    twins.receive(trades_frame({**TRADE, "trade_id": 1}))  # the symbol's first time: the general check
    doubles = Doubles()
    receive = doubles.receiver(twins.compiled.client.updates).receive
    receive(trades_frame({**TRADE, "trade_id": 2}, {**TRADE, "trade_id": 3}), 5.0)
    (route,) = doubles.calls
    assert route[0] == "trade route" and [t.trade_id for t in route[1]] == [2, 3]
    assert all(type(t) is Trade for t in route[1])
    receive(trades_frame({**TRADE, "trade_id": 4, "timestamp": "2023-07-30T15:30:00.000000Z"}), 6.0)  # earlier
    kind, handed, recv_ts = doubles.calls[1]
    assert kind == "trades" and recv_ts == 6.0 and type(handed[0]) is tuple


def test_an_error_after_the_compiled_receiver_took_a_frame_is_reported_not_raised(orderbook_fixture):
    """As the session's ``except Exception``: the channel, the error (with its traceback) and the receipt to
    ``failed``, the liveness told; KeyboardInterrupt and the like go on up."""
    twins = live_twins(orderbook_fixture)
    twins.receive(compact(orderbook_fixture["updates"][0]))  # the symbol's first time: the general check
    doubles = Doubles(market_fails=ValueError("a subscriber's bug"))
    receive = doubles.receiver(twins.compiled.client.updates).receive
    receive(compact(orderbook_fixture["updates"][1]), 5.0)
    (failed,) = [c for c in doubles.calls if c[0] == "failed"]
    assert failed[1] == "book" and isinstance(failed[2], ValueError) and failed[3] == 5.0
    assert failed[2].__traceback__ is not None and doubles.last_data == 5.0
    doubles.market_fails = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        receive(compact(orderbook_fixture["updates"][2]), 6.0)


def test_a_session_with_a_compiled_receiver_is_collected():
    """The receiver holds the session's methods and the session holds the receiver: the garbage collector
    must see the cycle, or every connection's session would be kept for ever."""
    import gc
    import weakref

    link = MemoryLink([sub("book", "BTC/USD")])
    assert link.client.updates is not None
    session = weakref.ref(link.client)
    del link
    gc.collect()
    assert session() is None


def test_a_frame_failing_in_a_session_is_reported_as_an_internal_error(orderbook_fixture, monkeypatch):
    """The whole way: a publishing route that raises on the compiled path is an internal error naming the
    channel, logged with its traceback; the next frame is handled."""
    from twisted.logger import globalLogPublisher

    twins = live_twins(orderbook_fixture)
    twins.receive(compact(orderbook_fixture["updates"][0]))  # the symbol's first time: the general check
    client, logged = twins.compiled.client, []
    calls = [0]

    def market(event):
        calls[0] += 1
        if calls[0] == 1:
            raise ValueError("route broke")
        twins.compiled.events.append(event)

    monkeypatch.setattr(client._outlet, "market", market)
    globalLogPublisher.addObserver(logged.append)
    try:
        client.frame_received(compact(orderbook_fixture["updates"][1]), 1.0)
        client.frame_received(compact(orderbook_fixture["updates"][2]), 2.0)
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert twins.compiled.reporter.counts["internal_error"] == 1
    failures = [e for e in logged if e.get("log_failure") is not None]
    assert failures and failures[0]["log_failure"].check(ValueError) and failures[0]["channel"] == "book"
    assert calls[0] == 2


@pytest.mark.skipif(not hasattr(__import__("resource"), "getrusage"), reason="no getrusage here")
def test_the_duplicate_window_takes_its_memory_at_connect_not_while_trading():
    """Measured: left to the kernel to map on first touch, the window's table and ring page-faulted
    during the first 100,000 frames (~2-5 us each: most of the slowest 1 % of messages)."""
    import resource

    import _gfws_book

    frames = [b'{"channel":"book","n":%d}' % i for i in range(100_000)]  # made before: no allocation counted
    window = _gfws_book.Digests(100_000)
    first = window.first_frame
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for frame in frames:
        first(frame, 0.0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert len(window) == 100_000
    assert faults < 60, f"{faults} page faults while filling the window (its ~2.8 MB span ~700 pages)"


def test_an_outlet_without_a_trade_route_still_gets_every_trade():
    """Found by review: a session's outlet from before ``IEventOutlet.trades`` made the compiled session
    fail at construction; it gets each trade through its ``publish`` instead."""
    from zope.interface import implementer

    from gfws.interfaces import IEventOutlet

    @implementer(IEventOutlet)
    class OldOutlet:
        def __init__(self) -> None:
            self.events: list = []
            self.market = self.publish = self.events.append

    outlet = OldOutlet()
    link = MemoryLink([sub("trade", "BTC/USD")])
    session = FeedSession(KrakenV2Dialect(), [sub("trade", "BTC/USD")], outlet, link.reporter, link.clock,
                          "memory", 5.0)
    session.connection_made(SessionLink(link))
    session.instruments.apply([PairInfo("BTC/USD", 1, 8)], snapshot=True)
    for i in range(1, 4):
        session.frame_received(trades_frame({**TRADE, "trade_id": i}), link.clock.seconds())
    assert [e.trade_id for e in outlet.events if type(e).__name__ == "Trade"] == [1, 2, 3]
    assert session.updates.taken == "trade"  # the last one by the compiled path


def test_an_error_is_reported_on_the_channel_taken_even_after_a_route_fed_the_session_again(orderbook_fixture):
    """Found by review: the channel reported was read after the route ran, which a frame fed back in
    between had changed."""
    twins = live_twins(orderbook_fixture)
    twins.receive(compact(orderbook_fixture["updates"][0]))  # the symbol's first time: the general check
    doubles = Doubles()
    receive = doubles.receiver(twins.compiled.client.updates).receive

    def market(event):
        receive(b'{"channel":"heartbeat"}', 6.0)  # not taken: taken is None now
        raise ValueError("after feeding a heartbeat")

    doubles.market = market
    receive(compact(orderbook_fixture["updates"][1]), 5.0)
    (failed,) = [c for c in doubles.calls if c[0] == "failed"]
    assert failed[1] == "book" and isinstance(failed[2], ValueError)


def test_a_slot_written_in_place_gives_way_to_a_class_changed_later(orderbook_fixture):
    """Found by review: the receiver writes a __slots__ member in place; a property put on the class
    afterwards (or another class) must be honoured, as attribute access does."""
    twins = live_twins(orderbook_fixture)

    class Stats:
        __slots__ = ("received", "recorded")

        def __init__(self) -> None:
            self.received, self.recorded = 0, []

        def record(self, seconds):
            self.recorded.append(seconds)

    stats, doubles = Stats(), Doubles()
    receive = twins.compiled.client.updates.receiver(
        stats, doubles, doubles, doubles.trades, lambda *a: None, lambda: None, lambda *a: None,
        lambda *a: None, lambda *a: None, 16).receive
    receive(b"{}", 1.0)
    assert stats.received == 1  # in place
    writes = []
    slot = Stats.received
    Stats.received = property(lambda self: slot.__get__(self), lambda self, v: (writes.append(v), slot.__set__(self, v)))
    receive(b"{}", 2.0)
    assert writes == [2] and stats.received == 2


def test_the_venues_other_symbols_are_neither_interned_nor_remembered():
    """Found by review: interning every symbol the venue sends would keep each bogus one for good (CPython's
    table of interned strings never shrinks); only subscribed symbols are interned and seen."""
    import sys

    twins = trade_twins()  # subscribed: BTC/USD, NEW/USD
    twins.receive(trades_frame({**TRADE, "trade_id": 1}))
    for i in range(20):
        twins.receive(trades_frame({**TRADE, "symbol": f"ZQX{i}/USD", "trade_id": 2 + i}))
    twins.assert_same()
    for link in (twins.compiled, twins.pure):
        assert set(link.client.books._context.seen["trade"]) == {"BTC/USD"}
    fresh = "".join(["ZQX7", "/USD"])
    assert sys.intern(fresh) is fresh  # no one had interned it
