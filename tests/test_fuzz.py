"""Seeded mutations of real Kraken frames through dialect, gate and handlers.

Whatever the bytes: no exception escapes, no bug of ours hides behind the
safety net (no ``internal_error``), and nothing invalid is published: every
valid book re-verifies against its own checksum, every number is finite.
``GFWS_FUZZ_FRAMES`` sets the count (100,000 here; more on demand).
"""

from __future__ import annotations

import json
import os
import random
from decimal import Decimal

from gfws.venues.kraken.book import PyBook
from gfws.messages import PairInfo
from tests.memory import MemoryLink, SessionLink, sub

FRAMES = int(os.environ.get("GFWS_FUZZ_FRAMES", "100000"))


def ticker_and_trade_frames() -> list[bytes]:
    ticker = {"channel": "ticker", "type": "update", "data": [{
        "symbol": "BTC/USD", "bid": 29430.1, "bid_qty": 1.5, "ask": 29430.2, "ask_qty": 2.0, "last": 29430.1,
        "volume": 12.5, "vwap": 29411.3, "low": 29000.0, "high": 29500.0, "change": -12.5, "change_pct": -0.04}]}
    trade = {"channel": "trade", "type": "update", "data": [{
        "symbol": "BTC/USD", "side": "buy", "price": 29430.2, "qty": 0.1, "ord_type": "limit", "trade_id": 7,
        "timestamp": "2023-07-30T15:30:01.606342Z"}]}
    status = {"channel": "status", "type": "update", "data": [{"system": "online", "version": "2.0.0",
                                                               "connection_id": 123, "api_version": "v2"}]}
    return [json.dumps(m, separators=(",", ":")).encode() for m in (ticker, trade, status)]


MUTATIONS = ("flip", "delete", "insert", "duplicate", "truncate", "stringify", "swap_digit", "huge", "nest")


def mutate(frame: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(MUTATIONS)
    data = bytearray(frame)
    i = rng.randrange(len(data))
    if kind == "flip":
        data[i] ^= 1 << rng.randrange(8)
    elif kind == "delete":
        del data[i:i + rng.randint(1, 8)]
    elif kind == "insert":
        data[i:i] = bytes(rng.choice(b'0123456789.-eE,:"{}[] \xff') for _ in range(rng.randint(1, 4)))
    elif kind == "duplicate":
        j = rng.randrange(i, len(data))
        data[j:j] = data[i:j][:64]
    elif kind == "truncate":
        del data[i:]
    elif kind == "stringify":  # a number sent as a string
        text = bytes(data).replace(b":2", b':"2', 1)
        data = bytearray(text.replace(b",", b'",', 1) if text != bytes(data) else text)
    elif kind == "swap_digit":
        digits = [k for k, c in enumerate(data) if 48 <= c <= 57]
        if digits:
            data[rng.choice(digits)] = rng.choice(b"0123456789")
    elif kind == "huge":
        data = bytearray(bytes(data).replace(b".", b"e99999", 1))
    elif kind == "nest":
        data = bytearray(bytes(data).replace(b"[", b"[" * rng.randint(2, 200), 1))
    return bytes(data)


def check_published(events: list) -> None:
    for event in events:
        tag = event.__struct_config__.tag
        assert not (tag == "integrity" and event.kind == "internal_error"), event.detail
        if tag == "book" and event.valid:
            book = PyBook(event.symbol, max(len(event.bids), len(event.asks), 10))
            book.apply(event.bids, event.asks)
            assert book.checksum() == event.checksum, "an unverified book was published"
        for value in event.__struct_fields__:
            field = getattr(event, value)
            if isinstance(field, Decimal):
                assert field.is_finite() and abs(field.adjusted()) <= 30, (tag, value, field)


def test_mutated_real_frames_never_escape_and_never_publish_anything_invalid(orderbook_messages):
    rng = random.Random(20261129)
    link = MemoryLink([sub("book", "BTC/USD"), sub("ticker", "BTC/USD"), sub("trade", "BTC/USD")])
    link.send = link.sent.append
    link.client.connection_made(SessionLink(link))
    link.client.instruments.apply([PairInfo("BTC/USD", 1, 8)], snapshot=True)
    others = ticker_and_trade_frames()
    receive = link.client.frame_received
    published = 0
    n = 0
    while n < FRAMES:
        for frame in orderbook_messages:  # the capture in order, so books live between the faults
            if rng.random() < 0.5:
                other = rng.choice(others)
                receive(mutate(other, rng) if rng.random() < 0.5 else other, link.clock.seconds())
                n += 1
            receive(mutate(frame, rng) if rng.random() < 0.02 else frame, link.clock.seconds())
            n += 1
        check_published(link.events)
        published += len(link.events)
        link.events.clear()
    counts = link.reporter.counts
    assert published > FRAMES // 4 and counts["internal_error"] == 0
    assert counts["malformed_json"] and counts["schema"] and counts["checksum_mismatch"]
    link.client.connection_lost("done")
