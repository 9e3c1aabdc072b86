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
    received = b""
    deadline = time.monotonic() + 10
    while not sink.drained(0.01) and time.monotonic() < deadline:
        try:
            received += os.read(reader, 1 << 20)
        except BlockingIOError:
            pass
    received += os.read(reader, 1 << 20)
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
