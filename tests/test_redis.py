"""The Redis Streams sink: against a real redis-server on loopback where a server decides
(streams, pipelines, trimming, a restart, a frozen server, refusals), with the writer driven step
by step on the test's thread where the logic is timing (backoff, summaries, a cut pipeline), and
on a task.Clock where the reactor's side is (reports, close's bound)."""

from __future__ import annotations

import threading
import time
from collections import deque
from decimal import Decimal as D
from typing import Any

import pytest
import pytest_twisted
import redis as redis_py
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MovedError, ReadOnlyError, ResponseError
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import Clock, deferLater
from twisted.logger import globalLogPublisher

from gfws.events import Book, Fee, Fill, Order, Status, Trade
from gfws.publish import redis as redis_sink
from gfws.publish import redis_client, redis_writer
from gfws.publish.jsonl import encode_event
from gfws.publish.redis import RedisStreamSink, mask_url, parse_url
from gfws.publish.redis_client import XaddPacker, connector, error_text, is_refusal
from gfws.publish.redis_entry import CRITICAL, Entry, EntryFormat
from gfws.publish.redis_queue import EntryQueue
from gfws.publish.redis_writer import Backoff, RedisWriter
from tests.redis_server import RedisServer, free_port, redis_or_skip


def trade(n: int, symbol: str = "BTC/USD") -> Trade:
    return Trade(venue="kraken", recv_ts=1_700_000_000.25 + n, symbol=symbol, trade_id=n, side="buy",
                 price=D("30000.0"), qty=D("0.10000000"), ord_type="limit")


def fill(n: int, symbol: str = "BTC/USD") -> Fill:
    return Fill(venue="kraken", recv_ts=1_700_000_000.5, exec_id=f"EX{n}-AAAA", order_id=f"O{n}", trade_id=n,
                symbol=symbol, side="sell", last_qty=D("0.5"), last_price=D("30000.1"), cost=D("15000.05"),
                fees=(Fee("USD", D("0.01")),), liquidity="maker", ts="2023-11-14T22:13:20.500000Z")


def order(n: int, status: str = "new") -> Order:
    return Order(venue="kraken", recv_ts=1_700_000_000.75, order_id="OABC-123", exec_type=status, status=status,
                 symbol="BTC/USD", order_qty=D(n))


def book(n: int) -> Book:
    return Book(venue="kraken", recv_ts=1_700_000_001.0, symbol="ETH/USD", bids=((D("2000.1"), D(n)),),
                asks=((D("2000.2"), D("1")),), checksum=n, snapshot=n == 0)


def status() -> Status:
    return Status(venue="kraken", recv_ts=1_700_000_000.0, system="online", version="2.0.0")


def kind(event: Any) -> str:
    return str(type(event).__struct_config__.tag)


def stream_of(event: Any) -> bytes:
    return f"gfws:kraken:{kind(event)}:{getattr(event, 'symbol', None) or '-'}".encode()


def after(seconds: float) -> Deferred[None]:
    from twisted.internet import reactor

    return deferLater(reactor, seconds, lambda: None)


@inlineCallbacks
def within(d: Deferred[Any], seconds: float):
    """``d``'s result, failing the test (not hanging it) past ``seconds``."""
    from twisted.internet import reactor

    return (yield d.addTimeout(seconds, reactor))


@inlineCallbacks
def until(condition, seconds: float = 5.0, what: str = "condition"):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} not met within {seconds}s"
        yield after(0.01)


def admin(server: RedisServer) -> redis_py.Redis:
    return redis_py.Redis(host="127.0.0.1", port=server.port)


def xrange(client: redis_py.Redis, key: bytes) -> list[dict[bytes, bytes]]:
    return [entry_fields for _, entry_fields in client.xrange(key)]


def first_occurrences(ids: list[bytes]) -> list[bytes]:
    known: set[bytes] = set()
    return [i for i in ids if not (i in known or known.add(i))]  # type: ignore[func-returns-value]


def resp_commands(data: bytes) -> list[list[bytes]]:
    """The commands in a RESP write (arrays of bulk strings): what a connection was sent."""
    commands, i = [], 0
    while i < len(data):
        assert data[i:i + 1] == b"*"
        end = data.index(b"\r\n", i)
        count, i = int(data[i + 1:end]), end + 2
        args = []
        for _ in range(count):
            end = data.index(b"\r\n", i)
            size, i = int(data[i + 1:end]), end + 2
            args.append(data[i:i + size])
            assert data[i + size:i + size + 2] == b"\r\n"
            i += size + 2
        commands.append(args)
    return commands


def ids(data: bytes) -> list[bytes]:
    return [c[c.index(b"id") + 1] for c in resp_commands(data)]


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(str(tmp_path)).start()
    yield server
    server.stop()


@pytest.fixture
def open_sink():
    """Makes sinks on the real reactor, and abandons and closes every one at the end, passed or not
    (a sink left open would go on reconnecting into the next tests); its writer thread must end."""
    made: list[RedisStreamSink] = []

    def make(*args: Any, **kwargs: Any) -> RedisStreamSink:
        made.append(RedisStreamSink(*args, **kwargs))
        return made[-1]

    yield make
    from twisted.internet import reactor

    for sink in made:
        sink.abandon()
        pytest_twisted.blockon(sink.close().addTimeout(5, reactor))
        sink._writer.thread.join(5)
        assert not sink._writer.thread.is_alive()


@pytest.fixture
def fast_retry(monkeypatch):
    """Reconnects within a tenth of a second (the cap is what a real outage waits at most)."""
    monkeypatch.setattr(redis_writer, "RETRY_FIRST", 0.02)
    monkeypatch.setattr(redis_writer, "RETRY_CAP", 0.1)


class Wrapped:
    """A real redis-py connection, seen by the test: each pipeline's bytes are kept."""

    def __init__(self, connection: Any, sent: list[bytes]) -> None:
        self.connection, self.sent = connection, sent

    def send_packed_command(self, command: list[bytes], check_health: bool = True) -> None:
        self.sent.append(b"".join(command))
        self.connection.send_packed_command(command, check_health=check_health)

    def read_response(self) -> Any:
        return self.connection.read_response()

    def disconnect(self) -> None:
        self.connection.disconnect()


# -- against a real redis-server ---------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_events_land_in_their_streams_with_a_stable_id_and_the_jsonl_object_in_order(open_sink, redis):
    sink = open_sink(redis.url)
    events = [status(), trade(1), trade(2), trade(7, "ETH/USD"), book(0), book(1), fill(1), order(1), order(2),
              trade(3)]
    sink.write(events[:5])
    sink.write(events[5:])
    yield within(sink.flush(), 5)
    client = admin(redis)
    keys = sorted(client.keys(b"gfws:*"))
    assert keys == sorted({stream_of(e) for e in events})
    got = {key: xrange(client, key) for key in keys}
    yield within(sink.close(), 5)
    # Every event once, in its stream, in write order, its field exactly the JSON Lines object.
    for key, entries in got.items():
        mine = [e for e in events if stream_of(e) == key]
        assert [f[b"event"] for f in entries] == [encode_event(e) for e in mine]
    by_stream = {key.decode(): [f[b"id"].decode() for f in entries] for key, entries in got.items()}
    assert by_stream["gfws:kraken:trade:BTC/USD"] == ["BTC/USD:1", "BTC/USD:2", "BTC/USD:3"]
    assert by_stream["gfws:kraken:trade:ETH/USD"] == ["ETH/USD:7"]
    assert by_stream["gfws:kraken:fill:BTC/USD"] == ["EX1-AAAA"]
    # The others: this run's id and the event's number in it, unique; orders carry their order id.
    run = sink.run_id
    assert [i.rsplit(":", 1)[0] for i in by_stream["gfws:kraken:order:BTC/USD"]] == [f"OABC-123:{run}"] * 2
    others = by_stream["gfws:kraken:status:-"] + by_stream["gfws:kraken:book:ETH/USD"]
    assert all(i.startswith(f"{run}:") for i in others)
    every = [i for values in by_stream.values() for i in values]
    assert len(set(every)) == len(every) == len(events)
    assert sink.written == len(events) and sink.queued == 0 and sink.dropped == 0 and sink.write_errors == 0
    sink._writer.thread.join(1)  # close() fired as the writer ended (it had disconnected)
    assert not sink._writer.thread.is_alive()


@pytest_twisted.inlineCallbacks
def test_a_burst_goes_out_as_a_few_pipelines_not_a_round_trip_per_event(open_sink, redis):
    sent: list[bytes] = []
    real = connector(parse_url(redis.url))
    sink = open_sink(redis.url, connect=lambda: Wrapped(real(), sent))
    yield until(lambda: sink.connected, what="connected")
    for n in range(50):  # as the bus hands them over: a batch per reactor turn, here all in one turn
        sink.write([trade(n * 100 + i) for i in range(100)])
    yield within(sink.flush(), 10)
    length = admin(redis).xlen(b"gfws:kraken:trade:BTC/USD")
    yield within(sink.close(), 5)
    sizes = [len(resp_commands(data)) for data in sent]
    assert length == 5000 == sum(sizes) == sink.written
    assert len(sent) == sink.batches <= 5000 // redis_writer.MAX_BATCH + 1  # the first may go alone
    assert max(sizes) == redis_writer.MAX_BATCH


@pytest_twisted.inlineCallbacks
def test_maxlen_trims_each_stream_approximately(open_sink, redis):
    sink = open_sink(redis.url, maxlen=200)
    for n in range(20):
        sink.write([trade(n * 100 + i) for i in range(100)] + [trade(n, "ETH/USD")])
    yield within(sink.flush(), 10)
    client = admin(redis)
    btc = client.xlen(b"gfws:kraken:trade:BTC/USD")
    eth = client.xlen(b"gfws:kraken:trade:ETH/USD")
    newest = client.xrevrange(b"gfws:kraken:trade:BTC/USD", count=1)
    # "~": never below maxlen, trimmed by whole nodes (100 entries by default) so a little above; the newest kept.
    assert 200 <= btc < 200 + 100 + 1 < 2000
    assert eth == 20  # a stream under the bound is left alone
    assert newest[0][1][b"id"] == b"BTC/USD:1999"


def read_group(client: redis_py.Redis, keys: list[bytes], seen: dict[bytes, list[bytes]],
               count: int | None = None) -> int:
    """XREADGROUP and XACK until nothing is new (or ``count`` read); appends (stream -> ids); returns entries read."""
    read = 0
    while count is None or read < count:
        reply = client.xreadgroup("g", "c", {key: ">" for key in keys}, count=50)
        if not reply:
            return read
        for key, entries in reply:
            for entry_id, entry_fields in entries:
                seen.setdefault(key, []).append(entry_fields[b"id"])
                client.xack(key, "g", entry_id)
                read += 1
    return read


@pytest_twisted.inlineCallbacks
def test_a_consumer_group_reads_everything_once_in_order_across_a_redis_restart(open_sink, tmp_path, fast_retry):
    server = RedisServer(str(tmp_path), persist=True).start()  # streams and the group survive the restart
    try:
        keys = [b"gfws:kraken:trade:BTC/USD", b"gfws:kraken:trade:ETH/USD", b"gfws:kraken:fill:BTC/USD"]
        client = admin(server)
        for key in keys:
            client.xgroup_create(key, "g", id="$", mkstream=True)
        sink = open_sink(server.url)
        expected: dict[bytes, list[bytes]] = {}

        def write(n: int) -> None:
            events = [trade(n), trade(n, "ETH/USD")] + ([fill(n)] if n % 5 == 0 else [])
            for e in events:
                expected.setdefault(stream_of(e), []).append(
                    f"{e.symbol}:{n}".encode() if kind(e) == "trade" else e.exec_id.encode())  # type: ignore[union-attr]
            sink.write(events)

        for n in range(200):  # before the restart: sent, and the consumer reads part of it
            write(n)
        yield within(sink.flush(), 5)
        seen: dict[bytes, list[bytes]] = {}
        assert read_group(client, keys, seen, count=150) >= 150
        client.close()

        server.stop()
        started = time.monotonic()
        for n in range(200, 400):  # Redis is away: the writes return at once and wait in the sink
            write(n)
            if n % 50 == 0:
                yield after(0.02)
        assert time.monotonic() - started < 1.0
        yield until(lambda: not sink.connected, what="the sink saw Redis go")
        assert sink.queued > 0 and sink.write_errors > 0

        server.start()
        yield within(sink.flush(), 10)  # everything written is in Redis again
        client = admin(server)
        read_group(client, keys, seen)
        pending = [client.xpending(key, "g")["pending"] for key in keys]
        client.close()
        yield within(sink.close(), 5)
    finally:
        server.stop()
    # Exactly once by id, in write order, per stream; nothing left unacknowledged.
    assert {key: first_occurrences(got) for key, got in seen.items()} == expected
    assert pending == [0, 0, 0]
    assert sink.dropped == 0 and sink.reconnects >= 1 and sink.written >= sum(map(len, expected.values()))


class CutOff(Wrapped):
    """The real connection; its first pipeline of more than ``cut`` entries loses its connection
    after Redis took them all: the replies from the ``cut``-th on never arrive."""

    def __init__(self, connection: Any, cut: int, state: dict) -> None:
        super().__init__(connection, [])
        self.cut, self.state, self.count, self.read = cut, state, 0, 0

    def send_packed_command(self, command: list[bytes], check_health: bool = True) -> None:
        super().send_packed_command(command, check_health)
        self.count, self.read = len(resp_commands(self.sent[-1])), 0

    def read_response(self) -> Any:
        if not self.state.get("cut") and self.count > self.cut and self.read == self.cut:
            self.state["cut"] = True
            for _ in range(self.count - self.cut):  # Redis has done them all: only their replies go missing
                self.connection.read_response()
            raise RedisConnectionError("Connection closed by server.")
        self.read += 1
        return self.connection.read_response()


@pytest_twisted.inlineCallbacks
def test_a_batch_cut_off_midway_is_sent_again_and_a_consumer_drops_the_twice_written(open_sink, redis, fast_retry):
    state: dict = {}
    real = connector(parse_url(redis.url))
    sink = open_sink(redis.url, connect=lambda: CutOff(real(), 30, state))
    yield until(lambda: sink.connected, what="connected")
    sink.write([trade(n) for n in range(100)])
    yield within(sink.flush(), 5)
    entries = xrange(admin(redis), b"gfws:kraken:trade:BTC/USD")
    yield within(sink.close(), 5)
    got = [f[b"id"] for f in entries]
    assert state.get("cut") and sink.resent == 70 and sink.written == 100 and sink.reconnects == 1
    assert len(got) == 170  # Redis took the 70 twice: the stream says so ...
    assert first_occurrences(got) == [f"BTC/USD:{n}".encode() for n in range(100)]  # ... and `id` mends it


@pytest_twisted.inlineCallbacks
def test_a_server_that_stops_answering_is_a_dead_connection_and_nothing_is_lost(open_sink, redis, fast_retry,
                                                                                monkeypatch):
    monkeypatch.setattr(redis_client, "REPLY_TIMEOUT", 0.3)
    sink = open_sink(redis.url)
    yield until(lambda: sink.connected, what="connected")
    redis.freeze()  # holds the connection, answers nothing
    sink.write([trade(n) for n in range(50)])
    yield until(lambda: sink.write_errors >= 1, what="the pipeline given up on")
    assert sink.written == 0 and sink.queued == 50
    redis.thaw()
    yield within(sink.flush(), 5)
    got = [f[b"id"] for f in xrange(admin(redis), b"gfws:kraken:trade:BTC/USD")]
    assert first_occurrences(got) == [f"BTC/USD:{n}".encode() for n in range(50)] and sink.written == 50


@pytest_twisted.inlineCallbacks
def test_overflow_while_redis_is_away_drops_the_oldest_market_data_and_never_a_fill(open_sink, tmp_path, fast_retry):
    port = free_port()
    redis_or_skip()
    reports: list[tuple[str, str]] = []
    sink = open_sink(f"redis://127.0.0.1:{port}/0", buffer=100,
                     report=lambda kind, detail: reports.append((kind, detail)))
    trades, fills = [], []
    for n in range(30):  # 300 trades and 15 fills; Redis is not there yet
        batch = [trade(n * 10 + i) for i in range(10)] + ([fill(n)] if n % 2 == 0 else [])
        trades += [e for e in batch if kind(e) == "trade"]
        fills += [e for e in batch if kind(e) == "fill"]
        sink.write(batch)
        yield after(0)
    yield until(lambda: sink.write_errors >= 1, what="a refused connect")
    kept_trades = 100 - len(fills)
    assert sink.queued == 100 and sink.dropped == len(trades) - kept_trades
    overflow = [detail for kind, detail in reports if kind == "sink_overflow"]
    assert len(overflow) == 1 and "dropped" in overflow[0]  # said once (then every REPORT_EVERY with the count)
    server = RedisServer(str(tmp_path), port=port).start()
    try:
        yield within(sink.flush(), 5)
        client = admin(server)
        got_trades = xrange(client, b"gfws:kraken:trade:BTC/USD")
        got_fills = xrange(client, b"gfws:kraken:fill:BTC/USD")
        yield within(sink.close(), 5)
    finally:
        server.stop()
    assert [f[b"event"] for f in got_trades] == [encode_event(e) for e in trades[-kept_trades:]]  # the newest
    assert [f[b"event"] for f in got_fills] == [encode_event(e) for e in fills]  # every one
    assert ("sink_unavailable" in [kind for kind, _ in reports]) and sink.written == 100


@pytest_twisted.inlineCallbacks
def test_writing_never_waits_for_redis(open_sink, tmp_path):
    redis_or_skip()
    sink = open_sink(f"redis://127.0.0.1:{free_port()}/0")  # nobody listens: connects fail, again and again
    started = time.monotonic()
    for n in range(200):
        sink.write([trade(n * 100 + i) for i in range(100)] + [fill(n)])
    took = time.monotonic() - started
    yield until(lambda: sink.write_errors >= 2, what="refused connects")  # the reactor turned meanwhile
    assert took < 1.0 and sink.queued == 20_200 and not sink.connected
    assert sink.abandon() == 20_200 and sink.dropped == 20_200
    yield within(sink.close(), 5)


@pytest_twisted.inlineCallbacks
def test_an_entry_redis_refuses_is_skipped_counted_and_reported_and_the_rest_goes_on(open_sink, redis):
    client = admin(redis)
    client.set(b"gfws:kraken:trade:ETH/USD", b"not a stream")
    reports: list[tuple[str, str]] = []
    sink = open_sink(redis.url, report=lambda kind, detail: reports.append((kind, detail)))
    sink.write([trade(1), trade(2, "ETH/USD"), trade(3), fill(4)])
    yield within(sink.flush(), 5)
    entries = xrange(client, b"gfws:kraken:trade:BTC/USD")
    fills = xrange(client, b"gfws:kraken:fill:BTC/USD")
    yield within(sink.close(), 5)
    assert [f[b"id"] for f in entries] == [b"BTC/USD:1", b"BTC/USD:3"] and len(fills) == 1
    assert sink.rejected == 1 and sink.written == 3 and sink.write_errors == 0
    assert [kind for kind, _ in reports] == ["sink_rejected"] and "WRONGTYPE" in reports[0][1]


@pytest_twisted.inlineCallbacks
def test_close_is_bounded_while_redis_is_away_and_abandon_wakes_the_writer_from_its_backoff(
        open_sink, monkeypatch):
    redis_or_skip()
    monkeypatch.setattr(redis_sink, "CLOSE_BOUND", 0.2)
    monkeypatch.setattr(redis_writer, "RETRY_FIRST", 60.0)  # after the first failure the writer waits a minute
    monkeypatch.setattr(redis_writer, "RETRY_CAP", 60.0)
    sink = open_sink(f"redis://127.0.0.1:{free_port()}/0")
    sink.write([trade(1), fill(2)])
    yield until(lambda: sink.write_errors >= 1, what="a refused connect")
    flushed = sink.flush()
    started = time.monotonic()
    yield within(sink.close(), 2)
    assert 0.15 < time.monotonic() - started < 1.0 and flushed.called
    assert sink.dropped == 2 and sink.queued == 0
    sink._writer.thread.join(1)
    assert not sink._writer.thread.is_alive()  # woken from its minute of backoff by abandon


@pytest_twisted.inlineCallbacks
def test_a_connect_that_hangs_does_not_hold_close_and_what_it_brings_late_is_closed(open_sink, monkeypatch):
    monkeypatch.setattr(redis_sink, "CLOSE_BOUND", 0.2)
    release, brought = threading.Event(), []

    def connect() -> Any:  # a paused server not answering AUTH, for longer than close waits
        release.wait(5)
        brought.append(Fake())
        return brought[-1]

    sink = open_sink(connect=connect)
    sink.write([trade(1)])
    yield within(sink.close(), 2)
    assert sink.dropped == 1 and not brought
    release.set()
    sink._writer.thread.join(2)
    assert not sink._writer.thread.is_alive() and brought[0].disconnected and brought[0].sent == []


# -- the writer, driven step by step on the test's thread: no real time ---------------------------


class Fake:
    """A connection that answers as told: ``plan(n)`` gives the replies to a pipeline of ``n``
    (an exception instance is raised when read; past the plan, the connection is lost)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.plan = lambda n: [b"1-0"] * n
        self.replies: deque[Any] = deque()
        self.disconnected = False

    def send_packed_command(self, command: list[bytes], check_health: bool = True) -> None:
        self.sent.append(b"".join(command))
        self.replies = deque(self.plan(len(resp_commands(self.sent[-1]))))

    def read_response(self) -> Any:
        if not self.replies:
            raise RedisConnectionError("Connection closed by server.")
        reply = self.replies.popleft()
        if isinstance(reply, Exception):
            raise reply
        return reply

    def disconnect(self) -> None:
        self.disconnected = True


class ThreadReactor(Clock):
    """A task.Clock that keeps what threads ask it to call, until ``run``; any other use of it off
    the test's thread is noted in ``foreign`` (a writer may touch the reactor by callFromThread only)."""

    def __init__(self) -> None:
        super().__init__()
        self.from_threads: deque[tuple[Any, tuple, dict]] = deque()
        self.foreign: list[str] = []

    def seconds(self) -> float:
        self._here("seconds")
        return super().seconds()

    def callLater(self, *args: Any, **kwargs: Any) -> Any:
        self._here("callLater")
        return super().callLater(*args, **kwargs)

    def _here(self, what: str) -> None:
        if threading.current_thread() is not threading.main_thread():
            self.foreign.append(f"{what} from {threading.current_thread().name}")

    def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
        self.from_threads.append((f, args, kwargs))

    def run(self) -> None:
        while self.from_threads:
            f, args, kwargs = self.from_threads.popleft()
            f(*args, **kwargs)


class Side:
    """What the sink is told, recorded."""

    def __init__(self) -> None:
        self.told: list[tuple[str, tuple]] = []
        self.marks: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("on_"):
            raise AttributeError(name)
        return lambda *args: self.marks.extend(args[0]) if name == "on_settled" else self.told.append((name, args))


class Rig:
    """A writer with its queue, a connect that fails while ``down``, and a clock only its pauses move."""

    def __init__(self, buffer: int = 100_000, maxlen: int = 1_000_000, pattern: str = "gfws:{venue}:{type}:{symbol}"):
        self.reactor, self.side = ThreadReactor(), Side()
        self.queue = EntryQueue(buffer)
        self.format = EntryFormat(pattern, "run")
        self.down = False
        self.connections: list[Fake] = []
        self.now = 0.0
        self.delays: list[float] = []
        self.seq = 0
        trim = (b"MAXLEN", b"~", str(maxlen).encode()) if maxlen else ()
        self.writer = RedisWriter(self.queue, self.format, self.connect, self.reactor, self.side, "test", trim,
                                  clock=lambda: self.now, pause=self.pause)

    def connect(self) -> Fake:
        if self.down:
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        self.connections.append(Fake())
        return self.connections[-1]

    def pause(self, seconds: float) -> bool:
        self.delays.append(seconds)
        self.now += seconds
        return self.queue.finished

    def put(self, events: list[Any]) -> None:
        entries = []
        for event in events:
            self.seq += 1
            entries.append(Entry(self.seq, event, self.format.tag(event) in CRITICAL))
        self.queue.put(entries)

    def steps(self, n: int) -> None:
        for _ in range(n):
            assert self.writer.step()
        self.reactor.run()


def test_backoff_doubles_to_its_cap_and_starts_over():
    backoff = Backoff()
    first, cap = redis_writer.RETRY_FIRST, redis_writer.RETRY_CAP
    assert [backoff.next() for _ in range(9)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])
    assert (first, cap) == (0.1, 5.0)
    backoff.reset()
    assert backoff.next() == pytest.approx(first)


def test_reconnects_back_off_doubling_to_a_cap_and_start_over_once_a_batch_goes_through():
    rig = Rig()
    rig.down = True
    rig.put([trade(1)])
    rig.steps(10)  # ten connects, each after the wait the last failure set (the first at once)
    assert rig.delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])
    assert rig.writer.write_errors == 10 and rig.queue.queued == 1 and not rig.writer.connected
    rig.down = False
    rig.steps(2)  # connect, send
    assert rig.writer.written == 1 and rig.queue.queued == 0 and rig.writer.connected
    rig.put([trade(2)])
    rig.connections[0].plan = lambda n: []  # the connection is lost before any reply: the backoff starts over
    rig.steps(2)
    assert rig.connections[0].disconnected and rig.queue.queued == 1 and rig.writer.resent == 1
    assert rig.delays[-1] == pytest.approx(0.1) and rig.writer.reconnects == 1
    rig.steps(1)
    assert rig.writer.written == 2 and rig.queue.queued == 0


def test_a_cut_off_batch_is_sent_again_before_anything_newer_from_the_first_unconfirmed_entry():
    rig = Rig()
    rig.steps(1)  # connected
    rig.put([trade(1)])
    rig.steps(1)
    assert ids(rig.connections[0].sent[0]) == [b"BTC/USD:1"]
    rig.put([trade(2), fill(3), trade(4)])
    rig.connections[0].plan = lambda n: [b"1-0"]  # Redis confirms trade 2; the connection goes before the rest
    rig.steps(1)
    rig.put([trade(5)])
    assert ids(rig.connections[0].sent[1]) == [b"BTC/USD:2", b"EX3-AAAA", b"BTC/USD:4"]
    assert rig.queue.queued == 3 and rig.writer.resent == 2 and rig.writer.written == 2
    rig.steps(2)  # reconnect (after 0.1 s), send
    (third,) = rig.connections[1].sent
    assert ids(third) == [b"EX3-AAAA", b"BTC/USD:4", b"BTC/USD:5"]  # resent first, in order, then the new
    assert resp_commands(third)[0][:5] == [b"XADD", b"gfws:kraken:fill:BTC/USD", b"MAXLEN", b"~", b"1000000"]
    assert rig.writer.written == 5 and rig.queue.queued == 0 and rig.delays == pytest.approx([0.1])


def read_only() -> ReadOnlyError:
    """As redis-py 8 parses ``-READONLY ...``: the code taken off the message, kept as ``status_code``."""
    error = ReadOnlyError("You can't write against a read only replica.")
    error.status_code = "READONLY"
    return error


def test_a_not_now_error_is_retried_after_a_reconnect_and_a_refusal_is_skipped_and_told():
    rig = Rig()
    rig.steps(1)
    rig.put([trade(1), trade(2), trade(3)])
    wrongtype = ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
    rig.connections[0].plan = lambda n: [wrongtype, read_only(), b"1-0"]
    rig.steps(1)
    assert rig.writer.rejected == 1 and rig.writer.written == 1 and rig.writer.write_errors == 1
    assert rig.side.told[0] == ("on_rejected", (1, b"gfws:kraken:trade:BTC/USD", str(wrongtype)))
    assert rig.side.told[1][0] == "on_unavailable" and "READONLY" in rig.side.told[1][1][1]
    rig.steps(2)
    assert ids(rig.connections[1].sent[0]) == [b"BTC/USD:2"] and rig.writer.written == 2


def test_what_is_refused_for_good_and_what_is_not_now():
    assert is_refusal(ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"))
    assert is_refusal(ResponseError("ERR unknown command 'XADD'"))
    assert is_refusal(MovedError("3999 127.0.0.1:6381"))
    assert not is_refusal(ResponseError("BUSY Redis is busy running a script."))
    assert not is_refusal(ResponseError("MISCONF Redis is configured to save RDB snapshots"))
    assert not is_refusal(read_only())
    assert not is_refusal(RedisConnectionError("Connection closed by server."))
    assert error_text(read_only()) == "READONLY You can't write against a read only replica."


def test_failures_are_logged_once_then_as_counted_summaries_and_the_recovery_once():
    rig = Rig()
    rig.down = True
    said: list[dict] = []
    globalLogPublisher.addObserver(said.append)
    try:
        rig.put([trade(1)])
        while rig.now < 2.5 * redis_writer.SUMMARY_EVERY:
            rig.steps(1)
        rig.down = False
        rig.steps(2)
    finally:
        globalLogPublisher.removeObserver(said.append)
    mine = [e for e in said if e.get("log_namespace", "").startswith("gfws.publish.redis")]
    errors = [e["log_format"] for e in mine if e["log_level"].name == "error"]
    assert rig.writer.write_errors > 30 and rig.writer.written == 1
    assert [name for name, _ in rig.side.told] == ["on_unavailable"]  # once (the sink logs it and reports it)
    assert len(errors) == 2 and all("still unavailable" in text for text in errors)  # then a summary a minute
    assert [e["n"] for e in mine if "available again" in e["log_format"]] == [rig.writer.write_errors]


def test_an_event_that_cannot_be_encoded_costs_only_itself():
    rig = Rig()
    rig.steps(1)
    rig.put([trade(1), Status(venue="kraken", recv_ts=0.0, system="online", connection_id=2**70), trade(2)])
    rig.steps(1)
    assert ids(rig.connections[0].sent[0]) == [b"BTC/USD:1", b"BTC/USD:2"]
    assert rig.writer.unencodable == 1 and rig.writer.written == 2 and rig.queue.queued == 0
    assert [name for name, _ in rig.side.told] == ["on_unencodable"] and "Status" in rig.side.told[0][1][0]


def test_big_events_go_as_several_pipelines_of_a_bounded_size(monkeypatch):
    monkeypatch.setattr(redis_writer, "MAX_BATCH_BYTES", 1000)
    rig = Rig()
    rig.steps(1)
    rig.put([trade(n) for n in range(10)])  # ~230 bytes each
    rig.steps(1)
    assert [len(ids(data)) for data in rig.connections[0].sent] == [5, 5] and rig.writer.written == 10
    assert rig.writer.batches == 1  # one batch taken, two round trips


def test_the_stream_pattern_keeps_hash_tags_and_the_url_keeps_its_password_to_itself():
    rig = Rig(pattern="md:{{symbol}}:{type}", maxlen=0)
    rig.steps(1)
    rig.put([trade(1), status()])
    rig.steps(1)
    trade_command, status_command = resp_commands(rig.connections[0].sent[0])
    assert trade_command[:3] == [b"XADD", b"md:{BTC/USD}:trade", b"*"]  # no MAXLEN without maxlen
    assert status_command[:3] == [b"XADD", b"md:{-}:status", b"*"]
    sink = RedisStreamSink("redis://app:s3cret@redis.internal:6380/2", reactor=ThreadReactor(), connect=Fake)
    sink.abandon()
    assert "s3cret" not in repr(sink) and "s3cret" not in mask_url("redis://:s3cret@h/0")
    assert parse_url("redis://app:s3cret@redis.internal:6380/2") == ("redis.internal", 6380, 2, "app", "s3cret")
    for bad in ("http://h/0", "rediss://h/0", "redis://h/zero", "redis://h/0?timeout=1"):
        with pytest.raises(ValueError):
            parse_url(bad)


def test_the_packed_commands_are_what_redis_py_itself_would_send():
    from redis.connection import Connection

    pack, theirs = XaddPacker((b"MAXLEN", b"~", b"1000000")), Connection()
    untrimmed = XaddPacker(())
    payload = encode_event(fill(1)) + "é €\r\n".encode()  # bytes are bytes: any, of any length
    for key, ident in ((b"gfws:kraken:trade:BTC/USD", b"BTC/USD:1"), (b"md:{BTC/USD}:trade", b""),
                       (b"gfws:kraken:trade:BTC/USD", b"x" * 70_000)):
        assert pack(key, ident, payload) == b"".join(theirs.pack_commands(
            [(b"XADD", key, b"MAXLEN", b"~", b"1000000", b"*", b"id", ident, b"event", payload)]))
        assert untrimmed(key, ident, payload) == b"".join(theirs.pack_commands(
            [(b"XADD", key, b"*", b"id", ident, b"event", payload)]))


# -- the queue and the sink's side, on a task.Clock ------------------------------------------------


def test_the_queue_drops_the_oldest_market_data_keeps_fills_and_settles_flushes_in_order():
    queue, fmt = EntryQueue(4), EntryFormat("gfws:{venue}:{type}:{symbol}", "run")
    events = [trade(1), fill(2), trade(3), order(4), trade(5), trade(6)]
    entries = [Entry(n + 1, e, fmt.tag(e) in CRITICAL) for n, e in enumerate(events)]
    assert queue.put(entries[:2]) == (0, 0, [])
    assert queue.mark(2, "first")
    assert queue.put(entries[2:]) == (2, 0, [])  # trades 1 and 3 went: the oldest market data
    assert [e.seq for e in queue.take(10)] == [2, 4, 5, 6]  # in the order written, fills and orders merged
    assert queue.done([entries[3], entries[4]]) == ["first"]  # fill 2 confirmed: "first" waited for it alone
    assert queue.mark(6, "second") and queue.put([entries[1]] * 3) == (1, 0, [])
    assert queue.put([entries[3]] * 3) == (0, 3, [])  # no market data left to drop: fills and orders held
    assert queue.queued == 7 and queue.dropped == 3
    assert queue.abandon() == (7, 7, ["second"]) and queue.dropped == 10 and queue.finished


def clock_sink(**kwargs: Any) -> tuple[RedisStreamSink, ThreadReactor]:
    """A sink on a task.Clock whose writer (a real thread) never connects: the reactor's side alone."""
    reactor = ThreadReactor()

    def never() -> Any:
        raise RedisConnectionError("Connection refused")

    return RedisStreamSink(reactor=reactor, connect=never, **kwargs), reactor


def test_fills_and_orders_stay_beyond_the_bound_and_a_report_says_so():
    reports: list[tuple[str, str]] = []
    sink, clock = clock_sink(buffer=10, report=lambda kind, detail: reports.append((kind, detail)))
    try:
        sink.write([trade(n) for n in range(5)])
        sink.write([fill(n) for n in range(12)] + [order(1)])
        sink.write([trade(5), fill(12)])
        assert sink.queued == 14 and sink.held == 4 and sink.dropped == 6  # every trade, the newest too
        overflow = [detail for kind, detail in reports if kind == "sink_overflow"]
        # Said at once (the first drop: 5), then not again within REPORT_EVERY (the 6th is counted for later).
        assert len(overflow) == 2 and "5 market-data events dropped" in overflow[0] and "never dropped" in overflow[1]
        clock.advance(redis_sink.REPORT_EVERY)
        sink.write([fill(13)])
        assert "beyond the bound" in reports[-1][1] and sink.held == 5  # said again, once the quiet time is over
    finally:
        sink.abandon()
    sink._writer.thread.join(2)
    assert clock.foreign == []


def test_flush_waits_for_redis_and_close_abandons_what_it_cannot_send_in_time():
    sink, clock = clock_sink()
    sink.write([trade(1), fill(2)])
    flushed = sink.flush()
    closed = sink.close()
    sink.write([trade(3)])  # after close: counted, not sent
    assert not flushed.called and not closed.called
    deadline = time.monotonic() + 2
    while sink.write_errors < 1 and time.monotonic() < deadline:  # the writer has tried, and failed
        time.sleep(0.005)
    assert sink.write_errors >= 1 and not closed.called
    clock.advance(redis_sink.CLOSE_BOUND)
    assert closed.called and flushed.called and sink.dropped == 3 and sink.queued == 0
    sink._writer.thread.join(2)
    assert not sink._writer.thread.is_alive() and clock.getDelayedCalls() == [] and clock.foreign == []
    assert sink.close().called and sink.flush().called
