"""Every field checked: numbers in range and of the right sign, integers bounded at
the schema, duplicates by what the venue sent twice, times compared as instants."""

from __future__ import annotations

import json

import pytest

from gfws.messages import PairInfo
from tests.memory import MemoryLink, SessionLink, sub


def ticker(**fields):
    item = {"symbol": "BTC/USD", "bid": 30000.1, "bid_qty": 1.5, "ask": 30000.2, "ask_qty": 2.0, "last": 30000.1,
            "volume": 12.5, "vwap": 29950.3, "low": 29000.0, "high": 30500.0, "change": -120.5, "change_pct": -0.4,
            **fields}
    return json.dumps({"channel": "ticker", "type": "update", "data": [item]}).encode()


def trade(trade_id=7, ts="2023-09-25T07:49:37.708706Z", **fields):
    item = {"symbol": "BTC/USD", "side": "buy", "price": 30000.5, "qty": 0.1, "ord_type": "limit",
            "trade_id": trade_id, "timestamp": ts, **fields}
    return json.dumps({"channel": "trade", "type": "update", "data": [item]}).encode()


def linked(*subs):
    """A session that knows BTC/USD's precisions and hears only what the test sends."""
    link = MemoryLink(list(subs) or [sub("ticker", "BTC/USD"), sub("trade", "BTC/USD")])
    link.client.instruments.apply([PairInfo("BTC/USD", 1, 8)], snapshot=True)
    link.send = link.sent.append  # the venue stays quiet
    link.client.connection_made(SessionLink(link))
    return link


@pytest.mark.parametrize("field, value, kind", [
    # NaN and Infinity cannot be JSON numbers: they could only come as strings, refused as strings.
    ("vwap", "NaN", "schema"),
    ("vwap", "sNaN", "schema"),
    ("vwap", "Infinity", "schema"),
    ("change", "-Infinity", "schema"),
    ("change_pct", "NaN", "schema"),
    ("low", -1.0, "value"),
    ("high", -1.0, "value"),
    ("vwap", -5.0, "value"),
    ("volume", -1.0, "value"),
])
def test_every_ticker_number_is_checked(field, value, kind):
    link = linked()
    link.client.frame_received(ticker(**{field: value}), link.clock.seconds())
    assert [e.kind for e in link.of("integrity")] == [kind]
    assert link.of("ticker") == []


@pytest.mark.parametrize("field", ["vwap", "change", "change_pct"])
def test_an_absurd_exponent_is_refused_before_anything_writes_it_out(field):
    link = linked()
    payload = ticker(**{field: 1}).replace(f'"{field}": 1'.encode(), f'"{field}": 1e999999999'.encode())
    assert b"1e999999999" in payload
    link.client.frame_received(payload, link.clock.seconds())
    assert [e.kind for e in link.of("integrity")] == ["precision"]
    assert link.of("ticker") == []


def test_a_full_ticker_is_published_with_every_field():
    link = linked()
    link.client.frame_received(ticker(), link.clock.seconds())
    (event,) = link.of("ticker")
    assert (str(event.vwap), str(event.change), str(event.low), str(event.change_pct)) == (
        "29950.3", "-120.5", "29000.0", "-0.4")


def test_integers_are_bounded_at_the_schema():
    link = linked(sub("trade", "BTC/USD"))
    status = {"channel": "status", "type": "update",
              "data": [{"system": "online", "version": "2", "connection_id": 2**64, "api_version": "v2"}]}
    link.client.frame_received(json.dumps(status).encode(), link.clock.seconds())
    status["data"][0]["connection_id"] = 2**64 - 1  # Kraken's ids are unsigned 64-bit: the largest still passes
    link.client.frame_received(json.dumps(status).encode(), link.clock.seconds())
    assert [e.kind for e in link.of("integrity")] == ["schema"]
    assert [e.connection_id for e in link.of("status")][-1] == 2**64 - 1
    ack = {"method": "subscribe", "success": True, "req_id": 2**63, "result": {"channel": "trade"}}
    link.client.frame_received(json.dumps(ack).encode(), link.clock.seconds())
    assert [e.kind for e in link.of("integrity")] == ["schema", "schema"]


def test_the_same_ticker_again_later_is_data_not_a_duplicate():
    link = linked(sub("ticker", "BTC/USD"))
    for size in (1.5, 2.0, 1.5):
        link.client.frame_received(ticker(bid_qty=size), link.clock.seconds())
    assert [str(e.bid_qty) for e in link.of("ticker")] == ["1.50000000", "2.00000000", "1.50000000"]
    assert link.reporter.counts["duplicate"] == 0


def test_a_trade_sent_twice_is_a_duplicate():
    link = linked(sub("trade", "BTC/USD"))
    for _ in range(2):
        link.client.frame_received(trade(), link.clock.seconds())
    assert len(link.of("trade")) == 1 and link.reporter.counts["duplicate"] == 1


# -- times are instants ------------------------------------------------------------

def test_times_compare_as_instants_not_text():
    link = linked(sub("trade", "BTC/USD"))
    for trade_id, ts in enumerate(["2023-09-25T07:49:01Z", "2023-09-25T07:49:01.5Z", "2023-09-25T07:49:02.000001Z"]):
        link.client.frame_received(trade(trade_id=trade_id, ts=ts), link.clock.seconds())
    assert link.of("integrity") == [] and len(link.of("trade")) == 3
    link.client.frame_received(trade(trade_id=9, ts="2023-09-25T07:49:01.9Z"), link.clock.seconds())
    assert [e.kind for e in link.of("integrity")] == ["timestamp_regression"]


def test_one_future_dated_item_does_not_make_every_following_one_a_regression():
    link = linked(sub("trade", "BTC/USD"))
    now = "2023-11-14T22:13:20.000000Z"  # the link's clock
    times = [now, "2099-01-01T00:00:00.000000Z", now.replace("20.0", "21.0"), now.replace("20.0", "22.0"),
             now.replace("20.0", "23.0")]
    for trade_id, ts in enumerate(times):
        link.client.frame_received(trade(trade_id=trade_id, ts=ts), link.clock.seconds())
    assert [e.kind for e in link.of("integrity")] == ["future_timestamp"]
    assert len(link.of("trade")) == 5


# -- books say when they stop being true, and when the venue's book is crossed -----------

def book_snapshot(bids, asks, symbol="BTC/USD"):
    from decimal import Decimal

    from gfws.venues.kraken.book import PyBook
    
    exact = lambda levels: [(Decimal(p).quantize(Decimal("0.1")), Decimal(q).quantize(Decimal("0.00000001")))  # noqa: E731
                            for p, q in levels]
    book = PyBook(symbol, 10)
    book.apply(exact(bids), exact(asks))
    item = {"symbol": symbol, "bids": [{"price": p, "qty": q} for p, q in bids],
            "asks": [{"price": p, "qty": q} for p, q in asks], "checksum": book.checksum(),
            "timestamp": "2023-11-14T22:13:20.000000Z"}
    return json.dumps({"channel": "book", "type": "snapshot", "data": [item]}).encode()


def test_a_crossed_book_is_flagged_and_still_published():
    link = linked(sub("book", "BTC/USD"))
    link.client.frame_received(book_snapshot([(30000.5, 1.0)], [(30000.0, 2.0)]), link.clock.seconds())
    assert [(e.kind, e.symbol) for e in link.of("integrity")] == [("crossed_book", "BTC/USD")]
    (book,) = link.of("book")
    assert book.valid and str(book.bids[0][0]) == "30000.5"


def test_a_book_consumer_hears_when_the_connection_goes_and_when_the_book_is_back():
    link = linked(sub("book", "BTC/USD"))
    link.client.frame_received(book_snapshot([(29999.5, 1.0)], [(30000.0, 2.0)]), link.clock.seconds())
    link.client.connection_lost("venue went away")
    assert [(e.valid, e.reason) for e in link.of("book")] == [(True, None), (False, "connection_lost")]


# -- one bad entry never blocks the feed --------------------------------------------------

def instruments(pairs, snapshot=True):
    return json.dumps({"channel": "instrument", "type": "snapshot" if snapshot else "update",
                       "data": {"assets": [], "pairs": pairs}}).encode()


def pair(symbol, price=1, qty=8):
    return {"symbol": symbol, "base": symbol.split("/")[0], "quote": "USD", "status": "online",
            "price_precision": price, "qty_precision": qty}


def test_one_malformed_pair_costs_only_itself():
    link = MemoryLink([sub("trade", "BTC/USD")])
    link.send = link.sent.append
    link.client.connection_made(SessionLink(link))
    bad = {**pair("ETH/USD"), "price_precision": "two"}
    link.client.frame_received(instruments([bad, pair("BTC/USD")]), link.clock.seconds())
    problems = link.of("integrity")
    assert [(e.kind, e.channel) for e in problems] == [("schema", "instrument")] and "pairs[0]" in problems[0].detail
    assert link.client.instruments.precision("BTC/USD") is not None
    subscribed = [json.loads(p) for p in link.sent if b'"trade"' in p]
    assert subscribed and subscribed[0]["method"] == "subscribe"  # the feed went on to subscribe
    link.client.connection_lost("done")
    assert link.clock.getDelayedCalls() == []


def test_no_instrument_snapshot_in_time_makes_the_connection_unusable():
    link = MemoryLink([sub("trade", "BTC/USD")], ack_timeout=5.0)
    link.send = link.sent.append  # the venue acks nothing and sends nothing
    link.client.connection_made(SessionLink(link))
    link.clock.advance(4.9)
    assert link.unusable == []
    link.clock.advance(0.2)
    assert any("no instrument snapshot within 5s" in text for text in link.unusable), link.unusable
    assert any(e.message.startswith("no instrument snapshot within 5s") for e in link.of("error"))
    link.client.connection_lost("replaced")
    assert link.clock.getDelayedCalls() == []


def test_a_pair_left_out_of_a_later_snapshot_keeps_its_precision_and_is_not_renewed_forever():
    link = linked(sub("book", "BTC/USD"))
    link.client.frame_received(book_snapshot([(29999.5, 1.0)], [(30000.0, 2.0)]), link.clock.seconds())
    link.client.frame_received(instruments([pair("ETH/USD")]), link.clock.seconds())  # BTC/USD left out
    assert [e.kind for e in link.of("integrity")] == ["instrument_missing"]
    assert link.client.instruments.precision("BTC/USD") is not None
    link.client.frame_received(book_snapshot([(29999.6, 1.0)], [(30000.0, 2.0)]), link.clock.seconds())
    assert link.of("book")[-1].valid and str(link.of("book")[-1].bids[0][0]) == "29999.6"
    assert link.client.subscriptions.renewals == 0


def book_update(**level):
    item = {"symbol": "BTC/USD", "bids": [{"price": 30000.1, "qty": 1.5, **level}], "asks": [],
            "checksum": 1, "timestamp": "2023-09-25T07:49:37.708706Z"}
    return json.dumps({"channel": "book", "type": "update", "data": [item]}, separators=(",", ":")).encode()


@pytest.mark.parametrize("frame, field", [
    (trade(price=" 29_430.2 "), "price"),
    (trade(qty="0.1"), "qty"),
    (ticker(vwap="29950.3"), "vwap"),
    (ticker(bid_qty="1.5"), "bid_qty"),
    (book_update(price="30000.1"), "price"),  # the fast path
    (book_update(qty="1.5"), "qty"),
    (book_update().replace(b'"qty":1.5', b'"qty" :\n "1.5"'), "qty"),  # whitespace does not hide it
])
def test_a_string_where_the_venue_sends_a_number_is_refused(frame, field):
    from gfws.messages import MessageError
    from gfws.venues.kraken import KrakenV2Dialect

    with pytest.raises(MessageError) as error:
        KrakenV2Dialect().parse(frame)
    assert error.value.reason == "schema" and f"{field} is a string" in error.value.detail


def test_an_unknown_string_field_the_venue_may_add_is_no_quoted_number():
    from gfws.messages import ChannelData
    from gfws.venues.kraken import KrakenV2Dialect

    frame = book_update().replace(b'"checksum"', b'"note":"new field","checksum"')
    message = KrakenV2Dialect().parse(frame)
    assert type(message) is ChannelData and message.items[0].bids[0].qty == 1.5


def test_a_trade_before_its_pairs_precision_is_held_then_published_not_lost():
    link = linked(sub("trade", "BTC/USD", "ETH/USD"))
    link.client.frame_received(trade(symbol="ETH/USD", price=2000.25, trade_id=5), link.clock.seconds())
    link.client.frame_received(trade(symbol="ETH/USD", price=2000.5, trade_id=6), link.clock.seconds())
    assert link.of("trade") == [] and [e.kind for e in link.of("integrity")] == ["unknown_instrument"]  # said once
    pair = {"symbol": "ETH/USD", "base": "ETH", "quote": "USD", "status": "online", "qty_precision": 8,
            "price_precision": 2}
    update = {"channel": "instrument", "type": "update", "data": {"assets": [], "pairs": [pair]}}
    link.client.frame_received(json.dumps(update).encode(), link.clock.seconds())
    assert [(e.trade_id, str(e.price)) for e in link.of("trade")] == [(5, "2000.25"), (6, "2000.50")]


def test_the_inline_quote_count_of_book_updates_is_the_counting_rule(orderbook_messages, monkeypatch):
    """The dialect counts one-item book updates inline (the hot path); on the real capture that count and
    ``expected_quotes`` agree with the frames, so no real frame takes the slow search."""
    from gfws.messages import ChannelData
    from gfws.venues.kraken import KrakenV2Dialect, numbers
    from gfws.venues.kraken import dialect as dialect_module

    searched = []
    monkeypatch.setattr(dialect_module, "quoted_number",
                        lambda payload: searched.append(payload) or numbers.quoted_number(payload))
    dialect = KrakenV2Dialect()
    for payload in orderbook_messages:
        compact = json.dumps(json.loads(payload), separators=(",", ":")).encode()
        message = dialect.parse(compact)
        assert type(message) is ChannelData
        assert compact.count(b'"') == numbers.expected_quotes("book", message.items, False)
    assert searched == [] and len(orderbook_messages) == 510
