"""The JSON Lines sink never blocks the reactor and never loses silently."""

from __future__ import annotations

import errno
import json
import os
import time
from decimal import Decimal as D

import pytest_twisted

from gfws.events import Status, Trade
from gfws.publish import jsonl
from gfws.publish.jsonl import JsonlSink


def trade(n: int) -> Trade:
    return Trade(venue="kraken", recv_ts=1_700_000_000.25, symbol="BTC/USD", trade_id=n, side="buy",
                 price=D("30000.0"), qty=D("0.10000000"), ord_type="limit")


def read_until_drained(sink: JsonlSink, reader: int) -> bytes:
    """Read a slow pipe until the sink has written everything it holds."""
    received = b""
    deadline = time.monotonic() + 10
    while not sink.drained(0.01) and time.monotonic() < deadline:
        try:
            received += os.read(reader, 1 << 20)
        except BlockingIOError:
            pass
    return received + os.read(reader, 1 << 20)


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_an_event_that_cannot_be_encoded_costs_only_itself(tmp_path):
    reports = []
    path = tmp_path / "events.jsonl"
    sink = JsonlSink(str(path), report=lambda kind, detail: reports.append((kind, detail)))
    huge = Status(venue="kraken", recv_ts=0.0, system="online", connection_id=2**70)
    sink.write([trade(1), huge, trade(2)])
    assert sink.drained(5.0)
    assert [line["trade_id"] for line in lines(path)] == [1, 2]
    assert sink.unencodable == 1 and reports[0][0] == "unencodable_event" and "Status" in reports[0][1]
    sink.close()


def test_a_reader_that_does_not_read_never_blocks_the_writer_of_events(tmp_path):
    fifo = tmp_path / "slow"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # open, never read (yet)
    reports = []
    sink = JsonlSink(str(fifo), max_queue=5_000, report=lambda kind, detail: reports.append(kind))
    started = time.monotonic()
    for batch in range(100):  # ~2 MB: far more than the pipe holds
        sink.write([trade(batch * 100 + i) for i in range(100)])
    assert time.monotonic() - started < 1.0  # the reactor's side only queued
    assert sink.dropped > 0 and "sink_overflow" in reports  # the oldest went, counted and reported
    received = read_until_drained(sink, reader)
    ids = [json.loads(line)["trade_id"] for line in received.splitlines()]
    assert ids == sorted(ids) and ids[-1] == 9999  # whole lines, in order, the newest kept
    assert len(ids) + sink.dropped == 10_000
    os.close(reader)
    sink.close()


def test_a_failed_write_is_retried_from_where_it_stopped_never_a_partial_line(tmp_path, monkeypatch):
    path = tmp_path / "events.jsonl"
    real_write = jsonl._write
    steps = iter(["short", "full", "full"])  # the disk fills mid-batch: a short write, then ENOSPC, twice

    def full_disk(fd, data):
        step = next(steps, "ok")
        if step == "short":
            return real_write(fd, bytes(data[: len(data) // 3]))  # a third of the batch, cut mid-line
        if step == "full":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(jsonl, "_RETRY_FIRST", 0.001)
    sink = JsonlSink(str(path))
    monkeypatch.setattr(jsonl, "_write", full_disk)
    sink.write([trade(i) for i in range(200)])
    assert sink.drained(5.0)
    sink.write([trade(i) for i in range(200, 300)])
    assert sink.drained(5.0)
    assert [line["trade_id"] for line in lines(path)] == list(range(300))  # no line lost, none glued
    assert sink.write_errors >= 1
    sink.close()


def test_a_moved_file_is_reopened_at_its_path(tmp_path):
    path = tmp_path / "events.jsonl"
    sink = JsonlSink(str(path))
    sink.write([trade(1)])
    assert sink.drained(5.0)
    os.rename(path, tmp_path / "events.jsonl.1")  # what logrotate does
    sink.write([trade(2)])
    assert sink.drained(5.0)
    sink.write([trade(3)])
    assert sink.drained(5.0)
    assert [line["trade_id"] for line in lines(tmp_path / "events.jsonl.1")] == [1, 2]
    assert [line["trade_id"] for line in lines(path)] == [3] and sink.reopened == 1
    sink.close()


@pytest_twisted.inlineCallbacks
def test_a_reader_that_went_away_is_said_once_and_closes_the_sink(tmp_path):
    from twisted.internet import defer

    read, write = os.pipe()
    os.close(read)  # `| head -3` after its three lines
    closed = defer.Deferred()
    sink = JsonlSink(f"/dev/fd/{write}", on_closed=closed.callback)
    os.close(write)
    sink.write([trade(1)])
    reason = yield closed
    assert "closed by its reader (EPIPE)" in reason
    sink.write([trade(2)])  # nothing more is queued, nothing raised
    yield sink.close()


class TurnedClock:
    """A clock whose callFromThread calls wait for the test's turn (as the reactor's would)."""

    def __init__(self) -> None:
        import queue

        self.now = 0.0
        self.calls: queue.SimpleQueue = queue.SimpleQueue()

    def seconds(self) -> float:
        return self.now

    def callFromThread(self, f, *args, **kwargs) -> None:
        self.calls.put((f, args, kwargs))

    def turn(self) -> None:
        while not self.calls.empty():
            f, args, kwargs = self.calls.get()
            f(*args, **kwargs)


def test_an_overflow_report_does_not_feed_on_itself(tmp_path):
    fifo = tmp_path / "stuck"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # never read
    clock = TurnedClock()
    reports = []

    def report(kind, detail):  # as the service does: the report is an event, which comes to this sink too
        reports.append(kind)
        sink.write([trade(-1)])

    sink = JsonlSink(str(fifo), reactor=clock, max_queue=1_000, report=report)
    for n in range(3_000):
        sink.write([trade(n)])
    for _ in range(1_000):  # a second of reactor turns, with no market data at all
        clock.turn()
    assert reports == ["sink_overflow"]  # once, not once per turn
    clock.now = 5.0
    sink.write([trade(5_000)])
    assert reports == ["sink_overflow", "sink_overflow"]  # and again, with the count since, after REPORT_EVERY
    assert sink.abandon() == 1_000 and sink.dropped > 2_000
    os.close(reader)


def test_a_failed_reopen_keeps_the_writer_alive_and_writing(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    sink = JsonlSink(str(folder / "events.jsonl"))
    sink.write([trade(1)])
    assert sink.drained(5.0)
    os.rename(folder, tmp_path / "logs.1")  # the folder goes: the path cannot be reopened
    sink.write([trade(2)])
    assert sink.drained(5.0)
    sink.write([trade(3)])
    assert sink.drained(5.0) and sink._thread.is_alive() and sink.reopen_errors >= 1
    folder.mkdir()  # it comes back: the sink follows the path again
    sink.write([trade(4)])
    assert sink.drained(5.0)
    sink.write([trade(5)])
    assert sink.drained(5.0)
    assert [line["trade_id"] for line in lines(tmp_path / "logs.1" / "events.jsonl")] == [1, 2, 3, 4]
    assert [line["trade_id"] for line in lines(folder / "events.jsonl")] == [5]
    sink.close()


def test_lines_a_close_cannot_write_are_counted_as_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl, "_RETRY_FIRST", 0.0001)
    monkeypatch.setattr(jsonl, "_RETRY_CAP", 0.0001)
    clock = TurnedClock()
    sink = JsonlSink(str(tmp_path / "events.jsonl"), reactor=clock)

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(jsonl, "_write", full)
    sink.write([trade(n) for n in range(500)])
    closed = sink.close()
    sink._thread.join(10.0)
    clock.turn()
    assert closed.called and sink.dropped == 500 and sink.written == 0


@pytest_twisted.inlineCallbacks
def test_a_reader_that_never_reads_does_not_hang_the_shutdown(tmp_path):
    from twisted.internet import reactor

    from gfws.config import parse_config
    from gfws.service import FeedService

    fifo = tmp_path / "stuck"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # never read
    feed = FeedService(parse_config({
        "venue": {"name": "kraken"}, "endpoints": [{"url": "ws://127.0.0.1:9/v2"}],
        "subscriptions": [{"channel": "trade", "symbols": ["BTC/USD"]}],
        "sinks": [{"path": str(fifo)}], "connection": {"shutdown_timeout": 0.5},
    }, "<test>"))
    feed.startService()
    (sink,) = feed.publisher.sinks
    for n in range(20_000):  # far more than the pipe holds
        feed.publisher.publish(trade(n))
    feed.publisher.flush()
    started = reactor.seconds()
    yield feed.stopService()
    assert reactor.seconds() - started < 3.0  # bounded by shutdown_timeout, not by the reader
    assert sink.dropped > 0  # what could not be written is counted
    os.close(reader)  # the writer sees EPIPE and ends
    sink._thread.join(5.0)
    assert not sink._thread.is_alive()


def test_a_full_queue_drops_market_data_never_fills_and_says_it_holds_them(tmp_path):
    from gfws.events import Fill

    fifo = tmp_path / "slow"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    sink = JsonlSink(str(fifo), max_queue=1_000)

    def fill(n):
        return Fill(venue="kraken", recv_ts=0.0, exec_id=f"T{n}", order_id="O1", trade_id=None, symbol="BTC/USD",
                    side="buy", last_qty=D("1"), last_price=D("1"), cost=D("1"), fees=(), liquidity=None, ts="t")

    for batch in range(60):  # the pipe fills, the queue overflows again and again
        sink.write([trade(batch * 100 + i) for i in range(99)] + [fill(batch)])
    assert sink.dropped > 0
    received = read_until_drained(sink, reader)
    events = [json.loads(line) for line in received.splitlines()]
    assert [e["exec_id"] for e in events if e["type"] == "fill"] == [f"T{n}" for n in range(60)]  # all, in order
    assert sum(e["type"] == "trade" for e in events) + sink.dropped == 60 * 99
    os.close(reader)
    sink.close()


def test_reopen_after_a_rotation_writes_the_next_lines_to_the_new_file(tmp_path):
    path = tmp_path / "events.jsonl"
    sink = JsonlSink(str(path))
    sink.write([trade(1)])
    assert sink.drained(5.0)
    os.rename(path, tmp_path / "events.jsonl.1")  # logrotate's "create" mode, then its postrotate SIGHUP
    path.write_bytes(b"")
    sink.reopen()
    sink.write([trade(2)])
    assert sink.drained(5.0)
    assert [line["trade_id"] for line in lines(path)] == [2]
    assert [line["trade_id"] for line in lines(tmp_path / "events.jsonl.1")] == [1]
    sink.close()
