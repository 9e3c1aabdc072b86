"""Kraken v2 book checksum: the guide's worked example and a real capture."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from zlib import crc32

from gfws.market.precision import PairPrecision
from gfws.venues.kraken.checksum import level_text

# PROTOCOL.md section 4, values exactly as published in Kraken's guide.
GUIDE_BIDS = [
    ("45283.5", "0.10000000"), ("45283.4", "1.54582015"), ("45282.1", "0.10000000"),
    ("45281.0", "0.10000000"), ("45280.3", "1.54592586"), ("45279.0", "0.07990000"),
    ("45277.6", "0.03310103"), ("45277.5", "0.30000000"), ("45277.3", "1.54602737"),
    ("45276.6", "0.15445238"),
]
GUIDE_ASKS = [
    ("45285.2", "0.00100000"), ("45286.4", "1.54571953"), ("45286.6", "1.54571109"),
    ("45289.6", "1.54560911"), ("45290.2", "0.15890660"), ("45291.8", "1.54553491"),
    ("45294.7", "0.04454749"), ("45296.1", "0.35380000"), ("45297.5", "0.09945542"),
    ("45299.5", "0.18772827"),
]
GUIDE_ASKS_TEXT = (
    "45285210000045286415457195345286615457110945289615456091145290215890660"
    "452918154553491452947445474945296135380000452975994554245299518772827"
)
GUIDE_BIDS_TEXT = (
    "452835100000004528341545820154528211000000045281010000000452803154592586"
    "452790799000045277633101034527753000000045277315460273745276615445238"
)


def _levels(pairs, precision):
    return [(precision.price(Decimal(p)), precision.qty(Decimal(q))) for p, q in pairs]


def test_level_text_follows_the_guide_steps():
    assert level_text(Decimal("45285.2"), Decimal("0.00100000")) == "452852" + "100000"


@pytest.mark.parametrize("price, qty, text", [
    ("0.0000001", "0.00000001", "1" + "1"),  # both would print as 1E-7 / 1E-8
    ("0.0800000", "0.00000100", "800000" + "100"),
    ("30000.0", "1.00000000", "300000" + "100000000"),
    ("120", "5", "120" + "5"),
])
def test_level_text_never_depends_on_exponent_notation(price, qty, text):
    assert level_text(Decimal(price), Decimal(qty)) == text


def test_worked_example_from_the_guide(book_type):
    precision = PairPrecision(1, 8)
    book = book_type("BTC/USD", 10)
    # Shuffle the input order: the book must sort, not trust the order.
    book.apply(_levels(reversed(GUIDE_BIDS), precision), _levels(reversed(GUIDE_ASKS), precision))
    assert book.checksum_text() == GUIDE_ASKS_TEXT + GUIDE_BIDS_TEXT
    assert book.checksum() == 3310070434


def test_trailing_zeros_trimmed_on_the_wire_are_restored_by_precision():
    # The wire says 0.1 and 45281 (as a float would); precision restores them.
    precision = PairPrecision(1, 8)
    wire = json.loads('[[45281.0, 0.1], [45283.5, 0.1]]', parse_float=Decimal)
    levels = [(precision.price(p), precision.qty(q)) for p, q in wire]
    assert [level_text(p, q) for p, q in levels] == ["45281010000000", "452835" + "10000000"]


def test_every_checksum_of_the_real_capture_verifies(orderbook_fixture, book_type):
    precision = PairPrecision(1, 8)
    book = book_type("BTC/USD", 10)
    messages = [orderbook_fixture["init"], *orderbook_fixture["updates"]]
    verified = 0
    for message in messages:
        data = message["data"][0]
        book.apply(
            [(precision.price(l["price"]), precision.qty(l["qty"])) for l in data["bids"]],
            [(precision.price(l["price"]), precision.qty(l["qty"])) for l in data["asks"]],
        )
        assert book.checksum() == data["checksum"], f"message {verified}"
        assert len(book.top_bids()) <= 10 and len(book.top_asks()) <= 10 and len(book) <= 20
        verified += 1
    assert verified == 510  # snapshot + 509 updates


def test_a_checksum_from_the_numbers_own_text_would_be_wrong(orderbook_fixture):
    # Guard against the classic bug: formatting with str() of the wire value.
    data = orderbook_fixture["init"]["data"][0]
    def naive(levels, best_first):
        ordered = sorted(levels, key=lambda l: l["price"], reverse=best_first)[:10]
        return "".join((str(l["price"]) + str(l["qty"])).replace(".", "").lstrip("0") for l in ordered)

    assert crc32((naive(data["asks"], False) + naive(data["bids"], True)).encode()) != data["checksum"]
