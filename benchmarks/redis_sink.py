"""Events per second into a local redis-server through RedisStreamSink, and what they cost the reactor.

Run: python benchmarks/redis_sink.py [N]   (default N = 100000; needs redis-server installed)
     python benchmarks/redis_sink.py --feed [N]   (the sink under a feed's load, below)

Starts its own redis-server on 127.0.0.1 at a free port (no persistence), in a
temporary folder.  Each run writes N events as the bus hands them over, a batch
of 1,000 per reactor turn, and is timed from the first write to the sink's
flush firing (every entry confirmed by Redis); the streams are checked to
hold N entries, then emptied.  Two kinds of event, measured in the same run:
trades (~250 bytes of JSON) and books of depth 10 (~800 bytes).

Printed per kind, as the median of 5 runs and their spread (min-max):
- events per second;
- the REACTOR thread's CPU per event (``time.thread_time`` read on the reactor
  thread at the start and the end of the run: ``write``, the flush, and the
  writer's calls back through ``callFromThread``) — what the sink takes from
  the feed's thread;
- the whole process's CPU per event (the reactor, the writer thread: encoding,
  packing, hiredis parsing, the socket).  CPython's GIL lets only one thread run
  Python at a time, so the writer's Python work still competes with the reactor
  for it: this is the upper bound of what the sink costs the feed.

``--feed``: what the feed feels.  The reactor does ~18 µs of other Python work
per event (decoding a Kraken message with msgspec and walking it: what gfws's
pipeline spends per message, docs/performance.md) before writing it; printed
is the rate at which it gets through N events until the sink's flush fires,
with a sink that does nothing and with the Redis sink (runs alternating), and
the difference per event: what the sink, the writer thread's share of the GIL
included, costs the feed.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import msgspec  # noqa: E402
import redis  # noqa: E402
from twisted.internet import defer, task  # noqa: E402

from gfws.events import Book, Trade  # noqa: E402
from gfws.publish.redis import RedisStreamSink  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

RUNS = 5
PER_TURN = 1000
SYMBOLS = ["BTC/USD", "ETH/USD", "ADA/USD", "DOGE/USD"]


def trades(n: int) -> list[Any]:
    return [Trade(venue="kraken", recv_ts=1_700_000_000.0 + i / 1000, symbol=SYMBOLS[i % 4], trade_id=i,
                  side="buy", price=Decimal("30000.1"), qty=Decimal("0.01000000"), ord_type="limit",
                  ts="2023-11-14T22:13:20.123456Z") for i in range(n)]


def books(n: int) -> list[Any]:
    bids = tuple((Decimal(30000 - k) + Decimal("0.1"), Decimal("1.25000000")) for k in range(10))
    asks = tuple((Decimal(30001 + k) + Decimal("0.1"), Decimal("0.75000000")) for k in range(10))
    return [Book(venue="kraken", recv_ts=1_700_000_000.0 + i / 1000, symbol=SYMBOLS[i % 4], bids=bids, asks=asks,
                 checksum=i, snapshot=False, ts="2023-11-14T22:13:20.123456Z") for i in range(n)]


@defer.inlineCallbacks
def one_run(reactor: Any, url: str, events: list[Any]) -> Any:
    """(events/s, reactor thread CPU µs per event, process CPU µs per event, pipelines)."""
    sink = RedisStreamSink(url, reactor, buffer=len(events) + 1)
    while not sink.connected:
        yield task.deferLater(reactor, 0.01, lambda: None)
    started, thread_cpu, process_cpu = time.perf_counter(), time.thread_time(), time.process_time()
    for i in range(0, len(events), PER_TURN):
        sink.write(events[i:i + PER_TURN])
        yield task.deferLater(reactor, 0, lambda: None)  # one reactor turn, as the bus's batches come
    yield sink.flush()
    took = time.perf_counter() - started
    thread_cpu, process_cpu = time.thread_time() - thread_cpu, time.process_time() - process_cpu
    counters = {k: getattr(sink, k) for k in ("written", "dropped", "write_errors", "rejected", "unencodable")}
    assert counters == {"written": len(events), "dropped": 0, "write_errors": 0, "rejected": 0,
                        "unencodable": 0}, counters
    batches = sink.batches
    yield sink.close()
    n = len(events)
    return n / took, thread_cpu / n * 1e6, process_cpu / n * 1e6, batches


MESSAGE = msgspec.json.encode({"channel": "trade", "type": "update", "data": [
    {"symbol": "BTC/USD", "side": "buy", "price": 30000.1, "qty": 0.01, "ord_type": "limit", "trade_id": 1,
     "timestamp": "2023-11-14T22:13:20.123456Z"}]})
FEED_US = 18.0  # reactor CPU per message of gfws's pipeline (docs/performance.md: ~55,000 messages/s)


def feed_work(walks: int) -> None:
    """One message's worth of the feed's work on the reactor: decode, then ``walks`` lookups."""
    data = msgspec.json.decode(MESSAGE)["data"][0]
    for _ in range(walks):
        data.get("price")


def calibrate() -> int:
    """The walks that make ``feed_work`` cost about FEED_US on this machine."""
    walks, started = 100, time.thread_time()
    for _ in range(2000):
        feed_work(walks)
    per_walk = (time.thread_time() - started) / 2000 / walks * 1e6
    return max(1, round(FEED_US / per_walk))


class NullSink:
    connected = True

    def write(self, events: list[Any]) -> None:
        pass

    def flush(self) -> Any:
        return defer.succeed(None)

    def close(self) -> Any:
        return defer.succeed(None)


@defer.inlineCallbacks
def feed_run(reactor: Any, sink: Any, events: list[Any], walks: int) -> Any:
    """Events per second the reactor gets through, its work and the sink's, until the flush fires."""
    while not sink.connected:
        yield task.deferLater(reactor, 0.01, lambda: None)
    started = time.perf_counter()
    for i in range(0, len(events), PER_TURN):
        for _ in range(PER_TURN):
            feed_work(walks)
        sink.write(events[i:i + PER_TURN])
        yield task.deferLater(reactor, 0, lambda: None)
    yield sink.flush()
    took = time.perf_counter() - started
    yield sink.close()
    return len(events) / took


@defer.inlineCallbacks
def feed(reactor: Any, url: str, admin: redis.Redis, n: int) -> Any:
    walks = calibrate()
    started = time.thread_time()
    for _ in range(1000):
        feed_work(walks)
    print(f"the feed's work: {(time.thread_time() - started) * 1000:.1f} µs per event on the reactor")
    for name, events in (("trade", trades(n)), ("book depth 10", books(n))):
        alone, with_sink = [], []
        for _ in range(RUNS):  # alternating, so that the machine's drift touches both alike
            alone.append((yield feed_run(reactor, NullSink(), events, walks)))
            with_sink.append((yield feed_run(reactor, RedisStreamSink(url, reactor, buffer=n + 1), events, walks)))
            admin.flushall()
        cost = [(1 / b - 1 / a) * 1e6 for a, b in zip(alone, with_sink, strict=True)]
        print(f"{name:>14}: no sink {spread(alone, 0)} events/s\n"
              f"{'':>16}Redis sink {spread(with_sink, 0)} events/s\n"
              f"{'':>16}the sink's cost to the feed: {spread(cost)} µs of the reactor's time per event")


def spread(values: list[float], digits: int = 1) -> str:
    return (f"median {statistics.median(values):,.{digits}f} "
            f"(min {min(values):,.{digits}f}, max {max(values):,.{digits}f})")


@defer.inlineCallbacks
def main(reactor: Any) -> Any:
    args = [a for a in sys.argv[1:] if a != "--feed"]
    n = int(args[0]) if args else 100_000
    print(f"redis-py {redis.__version__}, hiredis parser: {redis.utils.HIREDIS_AVAILABLE}; {RUNS} runs of {n}")
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(folder).start()
        admin = redis.Redis(host="127.0.0.1", port=server.port)
        try:
            if "--feed" in sys.argv:
                yield feed(reactor, server.url, admin, n)
                return
            for name, tag, events in (("trade", "trade", trades(n)), ("book depth 10", "book", books(n))):
                rates, reactor_cpu, process_cpu, pipelines = [], [], [], 0
                for _ in range(RUNS):
                    rate, on_reactor, in_process, pipelines = yield one_run(reactor, server.url, events)
                    total = sum(admin.xlen(f"gfws:kraken:{tag}:{symbol}") for symbol in SYMBOLS)
                    assert total == n, (total, n)
                    admin.flushall()
                    rates.append(rate)
                    reactor_cpu.append(on_reactor)
                    process_cpu.append(in_process)
                print(f"{name:>14}: {spread(rates, 0)} events/s; ~{pipelines} pipelines a run\n"
                      f"{'':>16}reactor thread CPU per event: {spread(reactor_cpu)} µs\n"
                      f"{'':>16}process CPU per event:        {spread(process_cpu)} µs")
        finally:
            admin.close()
            server.stop()


if __name__ == "__main__":
    task.react(main)
