"""Kraken v2 dialect: requests out, classified and typed messages in."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from zope.interface.verify import verifyObject

from gfws.interfaces import IVenueDialect
from gfws.messages import Ack, BookData, ChannelData, Heartbeat, MessageError, Pong
from gfws.venues.kraken import KrakenV2Dialect

K = KrakenV2Dialect()


def parse(obj):
    return K.parse(json.dumps(obj).encode() if not isinstance(obj, bytes) else obj)


def test_provides_the_interface():
    assert verifyObject(IVenueDialect, K)


def test_subscribe_request_has_top_level_req_id_and_symbol_list():
    request = json.loads(K.subscribe_request("book", ["BTC/USD", "ETH/USD"], {"depth": 25, "snapshot": True}, 7))
    assert request == {
        "method": "subscribe",
        "params": {"channel": "book", "symbol": ["BTC/USD", "ETH/USD"], "depth": 25, "snapshot": True},
        "req_id": 7,
    }
    assert K.expected_acks("book", ["BTC/USD", "ETH/USD"]) == 2


def test_instrument_request_has_no_symbol_and_one_ack():
    request = json.loads(K.subscribe_request("instrument", [], {}, 1))
    assert request == {"method": "subscribe", "params": {"channel": "instrument"}, "req_id": 1}
    assert K.expected_acks("instrument", []) == 1


def test_ping_and_pong():
    assert json.loads(K.ping_request(101)) == {"method": "ping", "req_id": 101}
    assert parse({"method": "pong", "req_id": 101, "time_in": "x", "time_out": "y"}) == Pong(req_id=101)


def test_status_with_u64_connection_id():
    msg = parse(b'{"channel":"status","data":[{"api_version":"v2","connection_id":13834774380200032777,'
                b'"system":"online","version":"2.0.0"}],"type":"update"}')
    assert isinstance(msg, ChannelData) and msg.channel == "status"
    assert msg.items[0].connection_id == 13834774380200032777
    assert msg.items[0].system == "online"


def test_heartbeat():
    assert isinstance(parse({"channel": "heartbeat"}), Heartbeat)


def test_book_numbers_are_exact_decimals():
    msg = parse(b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],'
                b'"asks":[{"price":29431.1,"qty":0.0},{"price":0.1234567890123456789,"qty":1e-08}],'
                b'"checksum":3547452596,"timestamp":"2023-07-30T15:29:58.343415Z"}]}')
    assert msg.snapshot is False
    book: BookData = msg.items[0]
    assert book.asks[1].price == Decimal("0.1234567890123456789")
    assert book.asks[1].qty == Decimal("1E-8")
    assert book.checksum == 3547452596


def test_snapshot_without_timestamp_is_accepted(orderbook_messages):
    msg = K.parse(orderbook_messages[0])
    assert msg.snapshot is True and msg.items[0].timestamp is None and len(msg.items[0].bids) == 10


def test_ticker_and_trade():
    ticker = parse({"channel": "ticker", "type": "snapshot", "data": [{
        "symbol": "ALGO/USD", "bid": 0.10025, "bid_qty": 740.0, "ask": 0.10036, "ask_qty": 1361.44813783,
        "last": 0.10035, "volume": 997038.98383185, "vwap": 0.10148, "low": 0.09979, "high": 0.10285,
        "change": -0.00017, "change_pct": -0.17, "timestamp": "2023-09-25T09:04:31.742648Z"}]})
    assert ticker.items[0].change == Decimal("-0.00017")
    trade = parse({"channel": "trade", "type": "update", "data": [{
        "symbol": "MATIC/USD", "side": "sell", "price": 0.5117, "qty": 40.0, "ord_type": "market",
        "trade_id": 4665906, "timestamp": "2023-09-25T07:49:37.708706Z"}]})
    assert trade.items[0].trade_id == 4665906 and trade.items[0].price == Decimal("0.5117")


def test_instrument_pairs_with_precisions():
    msg = parse({"channel": "instrument", "type": "snapshot", "data": {
        "assets": [{"id": "BTC", "status": "enabled", "precision": 10}],
        "pairs": [{"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "status": "online", "qty_precision": 8,
                   "qty_increment": 1e-08, "price_precision": 1, "cost_precision": 5, "marginable": True}]}})
    assert msg.channel == "instrument" and msg.snapshot
    assert (msg.items[0].symbol, msg.items[0].price_precision, msg.items[0].qty_precision) == ("BTC/USD", 1, 8)


def test_a_refused_ping_is_an_ack():
    assert parse({"method": "ping", "success": False, "error": "Exceeded msg rate", "req_id": 9}) == Ack(
        method="ping", success=False, req_id=9, error="Exceeded msg rate")


def test_acks_success_and_refusal():
    ok = parse({"method": "subscribe", "result": {"channel": "book", "depth": 10, "snapshot": True,
                "symbol": "ALGO/USD"}, "success": True, "time_in": "a", "time_out": "b", "req_id": 3})
    assert ok == Ack(method="subscribe", success=True, req_id=3, channel="book", symbol="ALGO/USD")
    refused = parse({"error": "Currency pair not supported FAKECOIN/USD", "method": "subscribe",
                     "success": False, "symbol": "FAKECOIN/USD", "req_id": 7})
    assert refused == Ack(method="subscribe", success=False, req_id=7, symbol="FAKECOIN/USD",
                          error="Currency pair not supported FAKECOIN/USD")


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"not json", "malformed_json"),
        (b'{"channel":"book"', "malformed_json"),
        (b"[1,2,3]", "schema"),
        (b'{"foo":1}', "schema"),
        (b'{"channel":"spread","type":"update","data":[]}', "unknown_channel"),
        (b'{"channel":"book","type":"delta","data":[]}', "schema"),
        (b'{"channel":"book","type":"update","data":[{"symbol":"X","bids":[{"price":NaN,"qty":1}],"asks":[],"checksum":1}]}', "malformed_json"),
        (b'{"channel":"book","type":"update","data":[{"symbol":"X","bids":[{"price":"abc","qty":1}],"asks":[],"checksum":1}]}', "schema"),
        (b'{"channel":"book","type":"update","data":[{"symbol":"X","bids":[],"asks":[]}]}', "schema"),
        (b'{"channel":"trade","type":"update","data":[{"symbol":"X","side":"up","price":1,"qty":1,"ord_type":"limit","trade_id":1}]}', "schema"),
        (b'{"channel":"ticker","type":"update","data":{"symbol":"X"}}', "schema"),
        (b'{"method":"subscribe","req_id":1}', "schema"),
        (b'{"method":"frobnicate"}', "unknown_method"),
        (b'{"channel":"trade","type":"update","data":[{"symbol":"\xc3\x28","side":"buy","price":1,"qty":1,"ord_type":"limit","trade_id":1}]}', "invalid_utf8"),
        (b'{"method":"ping","req_id":3}', "unknown_method"),
    ],
)
def test_unusable_messages_raise_message_error_with_a_reason(payload, reason):
    with pytest.raises(MessageError) as e:
        K.parse(payload)
    assert e.value.reason == reason
    assert e.value.detail
