"""Message integrity: validation, duplicates, ordering, books under every fault."""

from __future__ import annotations

import json

import pytest
from twisted.internet.task import Clock

from gfws.config import IntegrityConfig, parse_config
from gfws.integrity.dedup import RecentKeys
from gfws.integrity.sequence import SequenceTracker
from gfws.venues.kraken.book import PyBook
from gfws.sim import session as sim_session
from gfws.sim.corruption import MessageFaults
from gfws.sim.venue import GateFaults
from gfws.venues.kraken.dialect import normalize_symbol
from tests.conftest import COMPILED_BOOK
from tests.memory import MemoryLink, sub


def gate(**faults):
    return GateFaults(MessageFaults(**faults) if faults else None)


# -- books under faults -------------------------------------------------------

PAIRS = {"BTC/USD": (1, 8), "ADA/USD": (6, 8), "DOGE/USD": (7, 8)}


@pytest.mark.parametrize("seed, depths", [(1, (10, 25, 100)), (2, (10, 25, 100)), (3, (500, 1000, 10))])
def test_no_book_is_published_for_a_state_the_venue_did_not_have(monkeypatch, seed, depths):
    sent_views: dict[int, tuple] = {}
    real = sim_session.view_checksum

    def recording(asks, bids):
        checksum = real(asks, bids)
        sent_views[checksum] = (tuple(asks), tuple(bids))
        return checksum

    monkeypatch.setattr(sim_session, "view_checksum", recording)
    faults = dict(drop=0.02, duplicate=0.02, reorder=0.02, corrupt_checksum=0.01, stale_timestamp=0.01,
                  malformed=0.01, seed=seed)
    link = MemoryLink([sub("book", symbol, depth=depth) for symbol, depth in zip(PAIRS, depths)],
                      seed=seed, gate=gate(**faults)).start()
    link.run(60)
    books = link.of("book", valid=True)
    assert len(books) > 500
    invalid = link.of("book", valid=False)
    assert invalid and all(e.bids == e.asks == () for e in invalid)  # each loss was said in the stream
    for event in books:
        asks, bids = sent_views[event.checksum]  # the venue really sent this state...
        pp, qp = PAIRS[event.symbol]
        as_ticks = lambda levels: tuple((int(p.scaleb(pp)), int(q.scaleb(qp))) for p, q in levels[:10])  # noqa: E731
        assert as_ticks(event.asks) == asks[:10] and as_ticks(event.bids) == bids[:10]  # ...and this is it
        book = PyBook(event.symbol, len(event.bids))
        book.apply(event.bids, event.asks)
        assert book.checksum() == event.checksum
    counts = link.reporter.counts
    assert counts["checksum_mismatch"] > 0 and counts["malformed_json"] > 0 and counts["duplicate"] > 0
    assert link.client.subscriptions.renewals > 0
    for symbol in PAIRS:  # every book recovered and kept going to the end
        assert link.of("book", symbol=symbol)[-1].recv_ts > link.clock.seconds() - 2
        assert link.of("book", symbol=symbol)[-1].valid
    injected = link.server.gate.message_faults.counts
    assert injected["drop"] and injected["reorder"] and injected["duplicate"]


def test_duplicate_frames_are_counted_not_published():
    link = MemoryLink([sub("trade", "BTC/USD", "ETH/USD")], gate=gate(duplicate=0.2, seed=4)).start()
    link.run(30)
    ids = [(e.symbol, e.trade_id) for e in link.of("trade")]
    assert ids and len(ids) == len(set(ids))
    assert link.reporter.counts["duplicate"] == link.server.gate.message_faults.counts["duplicate"]
    assert not link.of("integrity")


def test_stale_and_reordered_times_are_flagged():
    integrity = IntegrityConfig(max_message_age=60.0)
    link = MemoryLink([sub("ticker", "BTC/USD", "ETH/USD"), sub("trade", "BTC/USD", "ETH/USD")],
                      gate=gate(stale_timestamp=0.05, seed=5), integrity=integrity).start()
    link.run(30)
    kinds = {e.kind for e in link.of("integrity")}
    assert {"stale_message", "timestamp_regression"} <= kinds
    stale = [e for e in link.of("integrity") if e.kind == "stale_message"]
    assert all("3600.0s old" in e.detail for e in stale)


# -- validation ------------------------------------------------------------------

def trade(**fields):
    item = {"symbol": "BTC/USD", "side": "buy", "price": 30000.5, "qty": 0.1, "ord_type": "limit",
            "trade_id": 7, "timestamp": "2023-09-25T07:49:37.708706Z", **fields}
    return json.dumps({"channel": "trade", "type": "update", "data": [item]}).encode()


@pytest.mark.parametrize("payload, kind", [
    (trade(price=0), "value"),
    (trade(price=-1.5), "value"),
    (trade(qty=0), "value"),
    (trade(price="NaN"), "schema"),  # only a string can say NaN: refused as a string
    (trade(price="Infinity"), "schema"),
    (trade(price=1).replace(b'"price": 1,', b'"price": 1e400,'), "precision"),
    (trade(price=30000.55), "precision"),  # BTC/USD prices have 1 decimal
    (trade(side="long"), "schema"),
    (trade(ord_type="iceberg"), "schema"),
    (trade(trade_id=-1), "schema"),
    (trade(trade_id=2**64), "schema"),
    (trade(symbol="ETH/USD"), "unexpected_symbol"),
    (b'{"channel":"trade","type":"update","data":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "too_deep"),
    (b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[],"checksum":4294967296}]}', "schema"),
    (b'{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","price":NaN}]}', "malformed_json"),
])
def test_bad_input_is_counted_published_and_dropped_never_raised(payload, kind):
    link = MemoryLink([sub("trade", "BTC/USD"), sub("book", "BTC/USD")]).start()
    before = len(link.of("trade"))
    link.client.frame_received(payload, link.clock.seconds())
    assert [e.kind for e in link.of("integrity")] == [kind]
    assert link.reporter.counts[kind] == 1
    assert len(link.of("trade")) == before
    link.client.frame_received(trade(trade_id=8), link.clock.seconds())  # the stream goes on
    assert link.of("trade")[-1].trade_id == 8


def test_a_handler_bug_is_reported_not_raised(monkeypatch):
    from gfws.market import handlers

    link = MemoryLink([sub("trade", "BTC/USD")]).start()
    monkeypatch.setattr(handlers.TradeHandler, "handle", lambda self, m, t: 1 / 0)
    link.client.frame_received(trade(), 0.0)
    assert [e.kind for e in link.of("integrity")] == ["internal_error"]


def test_symbols_use_one_name_per_asset():
    assert normalize_symbol("XBT/USD") == "BTC/USD" and normalize_symbol("XDG/XBT") == "DOGE/BTC"
    assert normalize_symbol("ETH/USD") == "ETH/USD"
    config = parse_config({"venue": {"name": "kraken"}, "endpoints": [{"url": "ws://127.0.0.1:1/v2"}],
                           "subscriptions": [{"channel": "book", "symbols": ["XBT/USD", "XDG/EUR"]}]})
    assert config.subscriptions[0].symbols == ("BTC/USD", "DOGE/EUR")
    with pytest.raises(ValueError, match=r"each symbol once \(after XBT->BTC"):
        parse_config({"venue": {"name": "kraken"}, "endpoints": [{"url": "ws://127.0.0.1:1/v2"}],
                      "subscriptions": [{"channel": "book", "symbols": ["XBT/USD", "BTC/USD"]}]})


# -- duplicates window ---------------------------------------------------------------

def test_duplicate_window_memory_is_bounded_for_a_million_distinct_keys():
    window = RecentKeys(capacity=10_000)
    for i in range(1_000_000):
        assert window.first_time(i)
    assert len(window) == 10_000 and len(window._ring) == 10_000
    assert not window.first_time(999_999) and window.first_time(0)  # recent kept, old forgotten


def test_duplicate_window_forgets_by_age():
    clock = Clock()
    window = RecentKeys(capacity=1000, max_age=60, clock=clock)
    window.first_time("a")
    clock.advance(59)
    assert not window.first_time("a")
    window.first_time("b")
    clock.advance(2)
    assert window.first_time("a") and not window.first_time("b")
    assert window.duplicates == 2


@pytest.mark.parametrize("window_type", ["python", "compiled"])
def test_frame_digest_windows_forget_by_count_and_by_age(window_type):
    """The gate's window (RecentKeys) and the compiled twin its compiled path checks in: the same rules."""
    window = frame_window(window_type, capacity=3, max_age=60)
    assert window.first_frame(b"a", 0.0) and window.first_frame(b"b", 1.0) and window.first_frame(b"c", 2.0)
    assert not window.first_frame(b"a", 3.0) and len(window) == 3
    assert window.first_frame(b"d", 4.0)  # the fourth pushes out the oldest, a
    assert window.first_frame(b"a", 5.0) and not window.first_frame(b"d", 6.0)
    assert window.first_frame(b"c", 62.5)  # c was forgotten by age (held since 2.0: over 60 s)
    assert not window.first_frame(b"d", 63.9) and window.first_frame(b"d", 64.1)  # d held since 4.0
    assert window.duplicates == 3 and len(window) == 3


def frame_window(kind: str, capacity: int, max_age: float):
    if kind == "python":
        return RecentKeys(capacity, max_age, Clock())
    if COMPILED_BOOK is None:
        pytest.skip("the compiled book is not built here")
    from gfws.venues.kraken.dialect import KrakenV2Dialect

    return KrakenV2Dialect().digest_window(capacity, max_age)


@pytest.mark.parametrize("seed", range(6))
def test_the_compiled_digest_window_gives_what_recent_keys_gives(seed):
    """Random frames (many repeats), times that advance unevenly, small and large windows, with and without
    an age limit: every verdict, the duplicate count and the size the same (evictions stress the table)."""
    import random

    rng = random.Random(seed)
    capacity = rng.choice([1, 2, 7, 64, 1000])
    max_age = rng.choice([0.0, 0.5, 30.0])
    python, compiled = frame_window("python", capacity, max_age), frame_window("compiled", capacity, max_age)
    now = 1_700_000_000.0
    for _ in range(20_000):
        now += rng.choice([0.0, 0.001, 0.01, 0.2, 3.0])
        frame = b'{"channel":"book","n":%d}' % rng.randrange(rng.choice([3, 50, 5000]))
        assert python.first_frame(frame, now) == compiled.first_frame(frame, now)
    assert (python.duplicates, len(python)) == (compiled.duplicates, len(compiled))
    assert python.duplicates > 0 and len(python) <= capacity


def test_the_compiled_digest_tells_apart_frames_that_differ_in_one_bit_or_one_digit():
    """A false duplicate would drop a true frame: 300,000 distinct frames (each bit of one frame flipped,
    counters, lengths around the eight-byte steps), none taken for another."""
    base = (b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":29430.2,'
            b'"qty":0.5}],"asks":[],"checksum":1234567890,"timestamp":"2023-09-25T07:49:37.708706Z"}]}')
    frames = {base[:i // 8] + bytes([base[i // 8] ^ (1 << i % 8)]) + base[i // 8 + 1:] for i in range(len(base) * 8)}
    frames |= {base.replace(b"1234567890", b"%010d" % n) for n in range(250_000)}
    frames |= {base[:n] for n in range(len(base))} | {b"x" * n for n in range(64)}
    window = frame_window("compiled", len(frames), 0.0)
    assert all(window.first_frame(frame, 1.0) for frame in frames) and len(frames) > 250_000
    assert window.duplicates == 0 and not window.first_frame(max(frames), 2.0)  # one of them again


def test_the_compiled_digest_window_refuses_what_is_not_a_frame():
    window = frame_window("compiled", 10, 0.0)
    with pytest.raises(TypeError):
        window.first_frame("text", 1.0)
    with pytest.raises(ValueError):
        frame_window("compiled", 0, 0.0)


# -- sequences ----------------------------------------------------------------------

def test_sequence_gaps_and_regressions():
    t = SequenceTracker()
    assert t.check("executions", 5, snapshot=True) is None
    assert t.check("executions", 6, snapshot=False) is None
    assert t.check("executions", 9, snapshot=False) == ("gap", 7, 8)
    assert t.check("executions", 9, snapshot=False) == ("regression", 9, 9)
    assert t.check("executions", 3, snapshot=True) is None  # a snapshot restarts the count
    assert (t.gaps, t.regressions) == (1, 1)


def test_a_gap_is_published_and_recovered_with_a_snapshot():
    link = MemoryLink([sub("trade", "BTC/USD")]).start()

    def numbered(seq, trade_id):
        message = json.loads(trade(trade_id=trade_id))
        message["sequence"] = seq
        return json.dumps(message).encode()

    link.client.frame_received(numbered(1, 100), 0.0)
    link.client.frame_received(numbered(2, 101), 0.0)
    sent = len(link.sent)
    link.client.frame_received(numbered(5, 102), 0.0)
    gap = link.of("integrity")[-1]
    assert (gap.kind, gap.detail) == ("gap", "missing trade sequence 3..4")
    requests = [json.loads(p) for p in link.sent[sent:]]
    assert [(r["method"], r["params"]["symbol"]) for r in requests[:2]] == [("unsubscribe", ["BTC/USD"]),
                                                                            ("subscribe", ["BTC/USD"])]
    link.client.frame_received(numbered(4, 103), 0.0)  # late: dropped
    assert link.of("integrity")[-1].kind == "sequence_regression"
    assert [e.trade_id for e in link.of("trade")][-3:] == [100, 101, 102]
