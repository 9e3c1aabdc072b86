"""Recording and replay: a simulator session with faults is recorded, served
again by the replay venue, and the feed's events from the replay equal the
live ones field for field (but for ``recv_ts``)."""

from __future__ import annotations

import msgspec
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from gfws.config import parse_config
from gfws.events import Book
from gfws.recording import read_recording
from gfws.service import FeedService
from gfws.sim import SimulatorService, SimVenue
from gfws.sim.replay import ReplayService, load
from tests.test_exactly_once import until

COMPARED = ("book", "trade", "ticker", "status", "integrity", "error")
SYMBOLS = ["BTC/USD", "ETH/USD"]


def feed_for(url, recorder=None):
    data = {
        "venue": {"name": "kraken"},
        "endpoints": [{"name": "venue", "url": url}],
        "subscriptions": [{"channel": "book", "symbols": SYMBOLS}, {"channel": "trade", "symbols": SYMBOLS},
                          {"channel": "ticker", "symbols": SYMBOLS}],
        "connection": {"backoff_initial": 0.01, "backoff_cap": 0.05, "shutdown_timeout": 2.0},
    }
    if recorder is not None:
        data["recorder"] = {"path": recorder}
    feed = FeedService(parse_config(data, "<replay>"), reactor)
    events = []
    feed.subscribe(events.append)
    return feed, events


def ready(feed):
    return lambda: feed.pool.leader is not None and feed.pool.leader.ready


def comparable(events):
    return [msgspec.structs.replace(e, recv_ts=0.0) for e in events if e.__struct_config__.tag in COMPARED]


@pytest_twisted.inlineCallbacks
def test_a_replayed_session_with_faults_gives_the_same_events(tmp_path):
    folder = str(tmp_path / "recordings")
    venue = SimVenue(clock=reactor, interval=0.01, seed=3)
    gate = SimulatorService(venue, port=0)
    gate.startService()
    live, live_events = feed_for(gate.url, folder)
    live.startService()
    try:
        yield until(ready(live))
        venue.corrupt_next_checksum("BTC/USD")  # a checksum mismatch, a resubscribe, a fresh snapshot
        yield until(lambda: any(isinstance(e, Book) and not e.valid for e in live_events))
        yield until(ready(live))
        yield deferLater(reactor, 0.2, lambda: None)
        yield gate.close_all()  # a dropped connection and a reconnect
        yield until(lambda: live.pool.leader is not None and live.pool.leader.losses == 1 and live.pool.leader.ready)
        yield deferLater(reactor, 0.3, lambda: None)
    finally:
        yield live.stopService()
        yield gate.stopService()
    records = list(read_recording(folder))
    assert [r["kind"] for r in records].count("open") == 2 and [r["kind"] for r in records].count("close") == 2
    assert sum(r["kind"] == "frame" for r in records) == live.stats["venue"].received

    replay = ReplayService(load(folder), port=0, speed=None, ack_wait=2.0)
    replay.startService()
    again, replay_events = feed_for(replay.url)
    again.startService()
    try:
        # Everything is served but the answers to the leave's unsubscribes, which come at the stop.
        yield until(lambda: replay.data_remaining == 0, what="the recording served")
        yield deferLater(reactor, 0.3, lambda: None)
    finally:
        yield again.stopService()
        yield replay.stopService()
    expected, got = comparable(live_events), comparable(replay_events)
    assert len(expected) > 100 and any(e.__struct_config__.tag == "integrity" for e in expected)
    assert got == expected


def test_the_recorder_rotates_by_size_and_reads_back_in_order(tmp_path):
    from gfws.recording import Recorder

    recorder = Recorder(str(tmp_path), rotate_bytes=2000)
    for i in range(300):
        recorder.put((float(i), "venue", 1, "frame", b'{"channel":"heartbeat","n":%d}' % i))
        if i % 50 == 49:
            recorder.put((float(i), "venue", 1, "binary", b"\x00\xff"))
    recorder.close()
    assert len(recorder.files) > 1 and recorder.failed is None
    records = list(read_recording(str(tmp_path)))
    frames = [r for r in records if r["kind"] == "frame"]
    assert [r["t"] for r in frames] == [float(i) for i in range(300)]
    assert sum(r["kind"] == "binary" for r in records) == 6


def test_gfws_sim_replay_options_are_checked_in_one_line(tmp_path):
    from tests.test_twistd import run

    missing = run(["-n", "--pidfile=", "gfws-sim", "--replay", str(tmp_path / "none")], tmp_path)
    said = missing.stdout + missing.stderr  # twistd says usage errors on standard output
    assert missing.returncode != 0 and "--replay:" in said and "cannot read the recording" in said
    speed = run(["-n", "--pidfile=", "gfws-sim", "--speed", "fast"], tmp_path)
    said = speed.stdout + speed.stderr
    assert speed.returncode != 0 and "--speed: expected a number > 0 or 'max', got 'fast'" in said


def test_two_runs_recorded_into_one_folder_replay_as_two_connections(tmp_path):
    from gfws.recording import Recorder

    for run in range(2):  # two processes, each numbering its connections from 1
        recorder = Recorder(str(tmp_path))
        recorder.put((1.0 + run, "venue", 1, "open", ""))
        recorder.put((1.0 + run, "venue", 1, "frame", b'{"channel":"heartbeat","run":%d}' % run))
        recorder.put((1.5 + run, "venue", 1, "close", "gone"))
        recorder.close()
    connections = load(str(tmp_path))
    assert [[frame for _, frame in c.frames] for c in connections] == [
        [b'{"channel":"heartbeat","run":0}'], [b'{"channel":"heartbeat","run":1}']]


def test_a_file_cut_short_costs_only_its_own_end(tmp_path):
    from gfws.recording import Recorder

    for _ in range(2):
        recorder = Recorder(str(tmp_path))
        for i in range(100):
            recorder.put((float(i), "venue", 1, "frame", b'{"channel":"heartbeat","n":%d}' % i))
        recorder.close()
    first = sorted(tmp_path.iterdir())[0]
    first.write_bytes(first.read_bytes()[:-20])  # a writer killed mid-file
    records = list(read_recording(str(tmp_path)))
    assert 100 < len(records) < 200  # the first file up to its cut, then all of the second
    assert len(load(str(tmp_path))[0].frames) == len(records)


def test_a_recording_that_fails_drops_what_comes_after_and_memory_stays_flat(tmp_path):
    from gfws.recording import Recorder

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    recorder = Recorder(str(blocked / "recordings"))  # cannot be created: the first write fails
    for i in range(20_000):
        recorder.put((float(i), "venue", 1, "frame", b"{}"))
    recorder.close()
    assert recorder.failed is not None and recorder.records == 0
    assert recorder.lost > 0 and recorder._queue.qsize() == 0


def test_a_recorded_connection_hands_on_every_frame_and_records_it_exactly(tmp_path):
    """The hot path (one closure a connection): frames with and without a newline inside (written base64),
    each handed on in order and read back byte for byte with its receipt to the microsecond."""
    from twisted.internet.task import Clock

    from gfws.recording import RecordedConnection, Recorder

    class Handler:
        def __init__(self) -> None:
            self.got: list = []

        def frame_received(self, payload, recv_ts):
            self.got.append((payload, recv_ts))

    recorder, handler = Recorder(str(tmp_path)), Handler()
    wrapped = RecordedConnection(handler, recorder, "venue\tA", Clock())  # a tab in the name: replaced
    frames = [(b'{"channel":"heartbeat","n":%d}' % i if i % 7 else b'{"text":"two\nlines %d"}' % i,
               1_700_000_000.0 + i * 0.000137) for i in range(2000)]
    for payload, recv_ts in frames:
        wrapped.frame_received(payload, recv_ts)
    recorder.close()
    assert handler.got == frames
    records = list(read_recording(str(tmp_path)))
    assert [r["frame"] for r in records] == [p for p, _ in frames]
    assert [r["t"] for r in records] == [int(t * 1_000_000) / 1_000_000 for _, t in frames]
    assert {r["endpoint"] for r in records} == {"venue A"} and {r["connection"] for r in records} == {1}
