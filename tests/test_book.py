"""The Kraken book, compiled and pure Python: updates in order, deletions, truncation, against a reference model."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gfws.venues.kraken.book import PyBook
from gfws.venues.kraken.checksum import level_text
from tests.conftest import COMPILED_BOOK

D = Decimal


@pytest.fixture
def book(book_type):
    def make(depth=10):
        return book_type("X/Y", depth)
    return make


def test_best_first_on_both_sides(book):
    b = book()
    b.apply([(D("1.0"), D("1")), (D("3.0"), D("1")), (D("2.0"), D("1"))], [(D("6.0"), D("1")), (D("4.0"), D("2"))])
    assert [p for p, _ in b.top_bids()] == [D("3.0"), D("2.0"), D("1.0")]
    assert [p for p, _ in b.top_asks()] == [D("4.0"), D("6.0")]


def test_zero_size_deletes_and_unknown_delete_is_harmless(book):
    b = book()
    b.apply([(D("1.0"), D("1")), (D("2.0"), D("1"))], [])
    b.apply([(D("2.0"), D("0")), (D("9.0"), D("0"))], [])
    assert b.top_bids() == ((D("1.0"), D("1")),)


def test_same_price_twice_in_one_message_applies_in_order(book):
    b = book()
    b.apply([(D("1.0"), D("5")), (D("1.0"), D("0")), (D("1.0"), D("7"))], [])
    assert b.top_bids() == ((D("1.0"), D("7")),)


def test_truncates_to_depth_after_each_message(book):
    b = book(depth=3)
    b.apply([(D(i), D("1")) for i in range(1, 8)], [(D(i), D("1")) for i in range(10, 17)])
    assert [p for p, _ in b.top_bids()] == [D(7), D(6), D(5)]
    assert [p for p, _ in b.top_asks()] == [D(10), D(11), D(12)]
    # A delete inside the depth does not bring back a truncated level.
    b.apply([(D(7), D(0))], [])
    assert [p for p, _ in b.top_bids()] == [D(6), D(5)]


def test_checksum_text_covers_at_most_ten_levels_whatever_the_depth(book):
    b = book(depth=25)
    b.apply([(D(i), D("1")) for i in range(1, 26)], [])
    assert len(b) == 25
    assert b.checksum_text() == "".join(level_text(D(i), D("1")) for i in range(25, 15, -1))


levels = st.lists(
    st.tuples(st.integers(1, 40), st.integers(0, 5)),  # price step, size (0 deletes)
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(depth=st.sampled_from([1, 3, 10]), messages=st.lists(st.tuples(levels, levels), min_size=1, max_size=20))
def test_both_books_match_a_plain_dict_reference_model(depth, messages):
    for book_type in [PyBook] + ([COMPILED_BOOK] if COMPILED_BOOK is not None else []):
        check_against_reference(book_type("X/Y", depth), depth, messages)


def check_against_reference(b, depth, messages):
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
        assert b.top_bids() == tuple((D(p), D(ref_bids[p])) for p in sorted(ref_bids, reverse=True))
        assert b.top_asks() == tuple((D(p), D(ref_asks[p])) for p in sorted(ref_asks))


def test_the_compiled_core_is_built_wherever_a_c_compiler_is():
    """pip builds it with no step of the user's; a silent fallback would only be slower, so say it here."""
    import os
    import shutil
    import sysconfig

    from gfws.venues.kraken import book as kraken_book

    headers = os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))
    if not (headers and (shutil.which("cc") or shutil.which("gcc"))):
        pytest.skip("no C compiler or Python headers here: the pure-Python book is used")
    assert COMPILED_BOOK is not None, "pip did not build _gfws_book although a C compiler is here"
    assert kraken_book.COMPILED == (not os.environ.get("GFWS_PURE_PYTHON"))
    from gfws.publish import bus

    assert (bus.FANOUT is not None) == (not os.environ.get("GFWS_PURE_PYTHON")), "_gfws_bus was not built"


def test_the_feed_says_whether_its_compiled_core_is_in_use():
    from gfws.config import parse_config
    from gfws.monitor.readings import diagnostics
    from gfws.service import FeedService
    from gfws.venues.kraken import KrakenV2Dialect

    config = parse_config({"venue": {"name": "kraken"}, "endpoints": [{"url": "ws://127.0.0.1:1/v2"}],
                           "subscriptions": [{"channel": "book", "symbols": ["BTC/USD"]}]}, "<test>")
    for dialect, expected in ((KrakenV2Dialect(), COMPILED_BOOK is not None), (KrakenV2Dialect(compiled=False), False)):
        feed = FeedService(config, dialect=dialect)  # made, never started
        assert diagnostics(feed)["venue"]["compiled_core"] is expected
        from gfws.publish import bus

        assert diagnostics(feed)["compiled_publish"] is (bus.FANOUT is not None)


def test_decimals_made_in_place_are_the_constructors_decimals_on_the_python_that_allows_it():
    """The compiled core writes a level's Decimal in place (no text to parse) where the C decimal's layout
    is known and its import self-test passed: on this project's CPython (3.11, 64-bit) that must be so."""
    import struct
    import sys

    if COMPILED_BOOK is None:
        pytest.skip("the compiled book is not built here")
    import _gfws_book

    known = sys.implementation.name == "cpython" and sys.version_info[:2] <= (3, 11) and struct.calcsize("P") == 8
    assert _gfws_book.DIRECT_DECIMALS is known


@settings(max_examples=400, deadline=None)
@given(
    price=st.decimals(min_value=Decimal("0.0000000001"), max_value=Decimal("1e20"), places=10, allow_nan=False),
    qty=st.decimals(min_value=Decimal("0.000000000000000001"), max_value=Decimal("1e25"), places=18,
                    allow_nan=False),
    price_decimals=st.integers(0, 10),
    qty_decimals=st.integers(0, 18),
)
def test_the_compiled_paths_decimals_behave_as_decimals_in_every_way(price, qty, price_decimals, qty_decimals):
    """Value, exponent, text, hash, pickling, arithmetic and comparison as Decimal(text) gives them: the
    decimals of a level the compiled path parsed from a frame (made in place where DIRECT_DECIMALS)."""
    import json
    import pickle

    if COMPILED_BOOK is None:
        pytest.skip("the compiled book is not built here")
    from gfws.venues.kraken.dialect import KrakenV2Dialect

    with localcontext(prec=60):  # up to 25 integer digits and 18 decimals: more than the default 28
        price = price.quantize(Decimal(1).scaleb(-price_decimals))
        qty = qty.quantize(Decimal(1).scaleb(-qty_decimals))
    if price <= 0 or qty <= 0:
        return
    book = COMPILED_BOOK("X/Y", 10)
    book.set_precision(price_decimals, qty_decimals)
    book.live = True
    updates = KrakenV2Dialect().fast_updates("kraken", {"X/Y": book}, {}, {}, False, {}, None, {}, {})
    expected_book = PyBook("X/Y", 10)
    expected_book.apply([(price, qty)], [])
    frame = ('{"channel":"book","type":"update","data":[{"symbol":"X/Y","bids":[{"price":%s,"qty":%s}],'
             '"asks":[],"checksum":%d}]}' % (f"{price:f}", f"{qty:f}", expected_book.checksum())).encode()
    event = updates.take(frame, 1.0)
    ((p, q),) = event.bids
    for made, expected in ((p, Decimal(f"{price:f}")), (q, Decimal(f"{qty:f}"))):
        assert type(made) is Decimal and made is not expected
        assert (str(made), repr(made), made.as_tuple(), hash(made)) == (
            str(expected), repr(expected), expected.as_tuple(), hash(expected))
        assert made == expected and not made < expected and made.is_finite() and made.is_canonical()
        assert pickle.loads(pickle.dumps(made)) == expected and json.dumps(str(made)) == json.dumps(str(expected))
        with localcontext(prec=200):
            assert (made + made, made * 3, made - expected, made / 7, made.sqrt(), made % 3) == (
                expected + expected, expected * 3, Decimal(0) * expected, expected / 7, expected.sqrt(), expected % 3)
        assert made.quantize(Decimal(1)) == expected.quantize(Decimal(1)) and f"{made:f}" == f"{expected:f}"
        assert made.normalize() == expected.normalize() and float(made) == float(expected)
