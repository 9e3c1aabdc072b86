"""FeedSession against the simulator, in memory, on a Clock."""

from __future__ import annotations

import json

from tests.memory import MemoryLink, SessionLink, sub


def requests(link):
    return [json.loads(p) for p in link.sent]


def test_instrument_first_then_every_subscription_with_req_ids():
    link = MemoryLink([sub("book", "BTC/USD", "ETH/USD"), sub("trade", "BTC/USD")]).start()
    sent = requests(link)
    assert sent[0] == {"method": "subscribe", "params": {"channel": "instrument"}, "req_id": 1}
    assert sent[1]["params"] == {"channel": "book", "symbol": ["BTC/USD", "ETH/USD"], "depth": 10, "snapshot": True}
    assert sent[2]["params"] == {"channel": "trade", "symbol": ["BTC/USD"]}
    assert [r["req_id"] for r in sent] == [1, 2, 3]
    assert link.active == 1
    assert link.client.instruments.precision("ETH/USD").price_decimals == 2


def test_verified_books_for_several_symbols_and_precisions():
    link = MemoryLink([sub("book", "BTC/USD", "DOGE/USD", "ETH/USD", depth=25)]).start()
    link.run(10)
    books = link.of("book")
    assert {b.symbol for b in books} == {"BTC/USD", "DOGE/USD", "ETH/USD"}
    assert not link.of("integrity")
    doge = link.of("book", symbol="DOGE/USD")[-1]
    assert len(doge.bids) == 25 and len(doge.asks) == 25
    # Seven decimals, kept even where the wire trimmed trailing zeros.
    assert all(-p.as_tuple().exponent == 7 for p, _ in doge.bids + doge.asks)
    assert all(-q.as_tuple().exponent == 8 for _, q in doge.bids + doge.asks)
    assert doge.bids[0][0] < doge.asks[0][0]
    updates = [b for b in books if not b.snapshot]
    assert len(updates) > 100


def test_rejected_subscription_is_an_error_event_naming_channel_symbol_and_text():
    link = MemoryLink([sub("ticker", "BTC/USD", "FAKE/USD")]).start()
    errors = link.of("error")
    assert len(errors) == 1
    assert (errors[0].channel, errors[0].symbol) == ("ticker", "FAKE/USD")
    assert errors[0].message == "Currency pair not supported FAKE/USD"
    link.run(5)
    assert link.of("ticker", symbol="BTC/USD")  # the good symbol flows
    assert link.active == 1


def test_checksum_mismatch_resyncs_and_publishes_nothing_unverified():
    link = MemoryLink([sub("book", "BTC/USD", "ETH/USD")]).start()
    link.run(2)
    before = len(link.events)
    link.venue.corrupt_next_checksum("BTC/USD")
    link.run(3)
    after = link.events[before:]
    mismatch = [i for i, e in enumerate(after) if e.__struct_config__.tag == "integrity"]
    assert len(mismatch) == 1
    event = after[mismatch[0]]
    assert (event.kind, event.symbol, event.channel) == ("checksum_mismatch", "BTC/USD", "book")
    btc_books = [e for e in after[mismatch[0]:] if e.__struct_config__.tag == "book" and e.symbol == "BTC/USD"]
    assert btc_books, "book events resume"
    assert (btc_books[0].valid, btc_books[0].reason) == (False, "checksum_mismatch"), "the stream says it"
    assert btc_books[1].snapshot and btc_books[1].valid, "the next book after a mismatch comes from a new snapshot"
    # The recovery was unsubscribe then subscribe of that one symbol.
    tail = [r for r in requests(link) if r["params"].get("symbol") == ["BTC/USD"]]
    assert [r["method"] for r in tail[-2:]] == ["unsubscribe", "subscribe"]
    # ETH/USD was never interrupted.
    assert not [e for e in after if e.__struct_config__.tag == "book" and e.symbol == "ETH/USD" and e.snapshot]
    assert link.client.subscriptions.renewals == 1


def test_not_ready_while_any_configured_book_resyncs():
    from gfws.sim.gate import GateFaults

    gate = GateFaults()
    link = MemoryLink([sub("book", "BTC/USD", "ETH/USD")], gate=gate).start()
    link.run(2)
    assert link.client.ready and link.active == 1
    told = len(link.readiness)
    gate.ack_delay = 0.5  # the venue takes its time to answer the renewal
    link.venue.corrupt_next_checksum("BTC/USD")
    during = []
    for _ in range(60):
        link.run(0.05)
        during.append(link.client.ready)
    assert False in during
    first = during.index(False)
    assert during[first:first + 8] == [False] * 8, "ready while BTC/USD was resyncing"
    seen = link.readiness[told:]
    assert seen[0] is False and seen[-1] is True and link.client.ready  # told, and live again


def test_a_symbol_refused_for_good_does_not_hold_readiness_back():
    link = MemoryLink([sub("book", "BTC/USD", "FAKE/USD")]).start()
    link.run(2)
    assert [e.symbol for e in link.of("error")] == ["FAKE/USD"]
    assert link.client.subscriptions.by_key["book", "FAKE/USD"].state == "refused"
    assert link.client.ready  # the books that can be live are
    assert link.refused and "book FAKE/USD refused for good" in link.refused  # and the connection says what is not


def test_a_corrupted_last_update_of_the_real_capture_is_caught(orderbook_messages):
    from gfws.messages import PairInfo

    link = MemoryLink([sub("book", "BTC/USD")])
    link.client.instruments.apply([PairInfo("BTC/USD", 1, 8)], snapshot=True)
    sent = []
    link.send = sent.append  # no venue: just watch what the client asks for
    link.client.connection_made(SessionLink(link))
    book = link.client.subscriptions.by_key["book", "BTC/USD"].inputs
    book.request(), book.accepted()  # as if the venue had acked the subscribe
    messages = list(orderbook_messages)
    last = json.loads(messages[-1])
    last["data"][0]["checksum"] ^= 1
    messages[-1] = json.dumps(last).encode()
    for payload in messages:
        link.client.frame_received(payload, 0.0)
    books = link.of("book", valid=True)
    assert len(books) == 509  # the snapshot and 508 good updates; not the bad one
    assert [(e.valid, e.reason) for e in link.of("book")[509:]] == [(False, "checksum_mismatch")]
    assert [e.kind for e in link.of("integrity")] == ["checksum_mismatch"]
    assert json.loads(sent[-1])["method"] == "unsubscribe"


def test_invalid_messages_are_counted_and_published_never_raised():
    link = MemoryLink([sub("trade", "BTC/USD")]).start()
    for payload in (b"garbage", b'{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD"}]}',
                    b'{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":1.05,'
                    b'"qty":1,"ord_type":"limit","trade_id":9}]}'):
        link.client.frame_received(payload, 0.0)
    kinds = [e.kind for e in link.of("integrity")]
    assert kinds == ["malformed_json", "schema", "precision"]  # 1.05 has 2 decimals, BTC/USD prices 1
    assert link.reporter.counts == {"malformed_json": 1, "schema": 1, "precision": 1}


def test_precision_change_announced_by_instrument_update_resyncs_the_book():
    link = MemoryLink([sub("book", "BTC/USD")]).start()
    link.run(1)
    update = {"channel": "instrument", "type": "update", "data": {"assets": [], "pairs": [
        {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "status": "online",
         "price_precision": 2, "qty_precision": 8}]}}
    link.client.frame_received(json.dumps(update).encode(), link.clock.seconds())
    assert requests(link)[-2]["method"] == "unsubscribe" and requests(link)[-1]["method"] == "subscribe"
    assert link.client.instruments.precision("BTC/USD").price_decimals == 2


def test_close_fails_pending_requests_quietly_and_forgets_books():
    link = MemoryLink([sub("book", "BTC/USD")])
    link.send = lambda payload: None  # venue never answers
    link.client.connection_made(SessionLink(link))
    link.client.connection_lost("gone")
    assert link.clock.getDelayedCalls() == []
    assert not link.of("error")
    assert not link.client.books.is_live("BTC/USD")
