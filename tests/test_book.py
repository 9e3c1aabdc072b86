"""OrderBook: updates in order, deletions, truncation, against a reference model."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from gfws.market.orderbook import OrderBook
from gfws.venues.kraken.checksum import level_text

D = Decimal


def book(depth=10):
    return OrderBook("X/Y", depth, level_text)


def test_best_first_on_both_sides():
    b = book()
    b.apply([(D("1.0"), D("1")), (D("3.0"), D("1")), (D("2.0"), D("1"))], [(D("6.0"), D("1")), (D("4.0"), D("2"))])
    assert [p for p, _ in b.bids.top(10)] == [D("3.0"), D("2.0"), D("1.0")]
    assert [p for p, _ in b.asks.top(10)] == [D("4.0"), D("6.0")]


def test_zero_size_deletes_and_unknown_delete_is_harmless():
    b = book()
    b.apply([(D("1.0"), D("1")), (D("2.0"), D("1"))], [])
    b.apply([(D("2.0"), D("0")), (D("9.0"), D("0"))], [])
    assert b.bids.top(10) == ((D("1.0"), D("1")),)


def test_same_price_twice_in_one_message_applies_in_order():
    b = book()
    b.apply([(D("1.0"), D("5")), (D("1.0"), D("0")), (D("1.0"), D("7"))], [])
    assert b.bids.top(10) == ((D("1.0"), D("7")),)


def test_truncates_to_depth_after_each_message():
    b = book(depth=3)
    b.apply([(D(i), D("1")) for i in range(1, 8)], [(D(i), D("1")) for i in range(10, 17)])
    assert [p for p, _ in b.bids.top(10)] == [D(7), D(6), D(5)]
    assert [p for p, _ in b.asks.top(10)] == [D(10), D(11), D(12)]
    # A delete inside the depth does not bring back a truncated level.
    b.apply([(D(7), D(0))], [])
    assert [p for p, _ in b.bids.top(10)] == [D(6), D(5)]


def test_checksum_text_covers_at_most_ten_levels_whatever_the_depth():
    b = book(depth=25)
    b.apply([(D(i), D("1")) for i in range(1, 26)], [])
    assert len(b.bids) == 25
    assert b.bids.text(10) == "".join(level_text(D(i), D("1")) for i in range(25, 15, -1))


levels = st.lists(
    st.tuples(st.integers(1, 40), st.integers(0, 5)),  # price step, size (0 deletes)
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(depth=st.sampled_from([1, 3, 10]), messages=st.lists(st.tuples(levels, levels), min_size=1, max_size=20))
def test_matches_a_plain_dict_reference_model(depth, messages):
    b = book(depth)
    ref_bids: dict[int, int] = {}
    ref_asks: dict[int, int] = {}
    for bids, asks in messages:
        b.apply([(D(p), D(q)) for p, q in bids], [(D(p), D(q)) for p, q in asks])
        for ref, side, best_first in ((ref_bids, bids, True), (ref_asks, asks, False)):
            for p, q in side:
                if q:
                    ref[p] = q
                else:
                    ref.pop(p, None)
            keep = sorted(ref, reverse=best_first)[:depth]
            for p in list(ref):
                if p not in keep:
                    del ref[p]
        assert b.bids.top(depth) == tuple((D(p), D(ref_bids[p])) for p in sorted(ref_bids, reverse=True))
        assert b.asks.top(depth) == tuple((D(p), D(ref_asks[p])) for p in sorted(ref_asks))
