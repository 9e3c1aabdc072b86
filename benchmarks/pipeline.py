"""Throughput of the full gfws pipeline against a receive-only client.

Run: python benchmarks/pipeline.py [N]   (default N = 200000)

A recording of N Kraken v2 messages from the simulated market (book depth 10
with valid checksums, and trades, for four symbols with different
precisions; written once by gfws's recorder and kept in the temporary
folder) is served by the simulator's replay venue (its own process) at full
speed to each client that subscribes.  Two clients,
each in its own process, measured in the same run:

  receive-only   an Autobahn client that decodes each message (msgspec) and counts;
  gfws pipeline  FeedService: parse, validate, dedup, books + checksum,
                 normalized events, in-process subscriber that counts.

Printed (medians and the range over the rounds): messages/s of both, their
ratio per round (target >= 80 %), p50/p99 per-message processing time in the
pipeline (one message in 17 timed), peak RSS; the cost of the monitor's
statistics and of recording every frame; and a second case, four books at
depth 1000.  Run: python benchmarks/pipeline.py [N] [ROUNDS].
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

SYMBOLS = ["BTC/USD", "ETH/USD", "ADA/USD", "DOGE/USD"]
HERE = os.path.dirname(os.path.abspath(__file__))


# -- the replay server ------------------------------------------------------------

def record(n: int, depth: int = 10) -> str:
    """A recording (gfws's own format, written by its recorder) of what one subscriber at ``depth`` (and to trades
    at depth 10) receives from the simulated market: status, acks, snapshots, then n data messages."""
    from twisted.internet.task import Clock

    from gfws.recording import Recorder
    from gfws.sim import SimVenue

    folder = os.path.join(tempfile.gettempdir(), f"gfws-bench-recording-{n}-{depth}")
    if os.path.isdir(folder) and os.listdir(folder):
        return folder  # recorded before: the same seed gives the same frames
    clock = Clock()
    clock.advance(1_700_000_000)
    venue = SimVenue(clock=clock, seed=42)
    recorder = Recorder(folder)
    count = [0]

    def received(frame: bytes) -> None:
        recorder.put((clock.seconds(), "replay", 1, "frame", frame))
        count[0] += 1

    recorder.put((clock.seconds(), "replay", 1, "open", ""))
    session = venue.connect(received)
    session.request_received(json.dumps({"method": "subscribe", "params": {"channel": "instrument"}}).encode())
    session.request_received(json.dumps({"method": "subscribe", "params": {"channel": "book", "symbol": SYMBOLS,
                                                                          "depth": depth}}).encode())
    if depth == 10:
        session.request_received(
            json.dumps({"method": "subscribe", "params": {"channel": "trade", "symbol": SYMBOLS}}).encode())
    head = count[0]
    while count[0] < head + n:
        clock.advance(0.001)
        venue.step()
    recorder.close()
    return folder


def serve(n: int, depth: int = 10) -> None:
    """The recording, served by the simulator's replay venue as fast as it goes."""
    from twisted.internet import reactor

    from gfws.sim.replay import ReplayService, load

    replay = ReplayService(load(record(n, depth)), port=0, speed=None, reactor=reactor, cycle=True)
    replay.startService()
    print(replay.port, flush=True)
    reactor.run()


# -- the two clients ----------------------------------------------------------------

def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def channels(depth: int) -> list[dict[str, Any]]:
    """What both clients subscribe: books at ``depth`` (and trades at depth 10)."""
    wanted: list[dict[str, Any]] = [{"channel": "book", "symbols": SYMBOLS, "depth": depth}]
    return wanted + ([{"channel": "trade", "symbols": SYMBOLS}] if depth == 10 else [])


def receive_only(url: str, n: int, depth: int = 10) -> dict[str, Any]:
    import msgspec
    from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol, connectWS
    from twisted.internet import reactor

    decode = msgspec.json.decode
    state = {"count": 0, "first": 0.0, "last": 0.0}

    from gfws.connection.protocol import FeedClientProtocol

    class Counter(WebSocketClientProtocol):
        # gfws's own receive path: Autobahn's default also fires its 'message' observers, making a Deferred per
        # message, which gfws skips; a baseline that paid for it would flatter the ratio (it did until
        # 2026-11-29: 140,800 instructions a message instead of 118,700).
        onMessageEnd = FeedClientProtocol.onMessageEnd
        dataReceived = FeedClientProtocol.dataReceived  # reads handed to Autobahn in slices, as gfws does

        def onOpen(self) -> None:
            self.transport.setTcpNoDelay(True)
            subscriptions = [{"channel": "instrument"}] + [
                {"channel": c["channel"], "symbol": c["symbols"], **({"depth": c["depth"]} if "depth" in c else {})}
                for c in channels(depth)]
            for i, params in enumerate(subscriptions):
                self.sendMessage(json.dumps({"method": "subscribe", "params": params, "req_id": i + 1}).encode())

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            message = decode(payload)
            if message.get("type") == "update":
                if state["count"] == 0:
                    state["first"] = time.perf_counter()
                state["count"] += 1
                if state["count"] == n:
                    state["last"] = time.perf_counter()
                    reactor.stop()

    factory = WebSocketClientFactory(url)
    factory.protocol = Counter
    factory.setProtocolOptions(maxMessagePayloadSize=1 << 20, maxFramePayloadSize=1 << 20)
    connectWS(factory)  # plain ws:// on loopback only: no TLS involved
    reactor.run()
    return {"rate": n / (state["last"] - state["first"]), "rss": peak_rss_mib()}


def pipeline(url: str, n: int, monitored: bool = True, recorded: bool = False, depth: int = 10,
             redis: bool = False) -> dict[str, Any]:
    from twisted.internet import reactor

    from gfws.config import parse_config
    from gfws.service import FeedService
    from gfws.session import FeedSession

    config = parse_config({
        "venue": {"name": "kraken"},
        "endpoints": [{"name": "replay", "url": url}],
        "subscriptions": channels(depth),
        "liveness": {"data_timeout": 60.0},
        **({"recorder": {"path": tempfile.mkdtemp(prefix="gfws-bench-")}} if recorded else {}),
        **({"sinks": [{"type": "redis", "url": os.environ["GFWS_BENCH_REDIS"]}]} if redis else {}),
    }, "<benchmark>")
    feed = FeedService(config)
    timings: list[float] = []
    book_timings: list[float] = []  # the same, by kind of message
    other_timings: list[float] = []
    state = {"count": 0, "first": 0.0, "last": 0.0, "events": 0}
    if not monitored:  # the statistics the monitor reads off (sampled timings, venue delays; frames still counted)
        from gfws.session.stats import Histogram

        FeedSession._venue_time = lambda self, ts, recv_ts: None  # type: ignore[method-assign]
        Histogram.record = lambda self, seconds: None  # type: ignore[method-assign]
    clock = time.perf_counter
    made = FeedSession.__init__

    def timing(self: FeedSession, *args: Any, **kwargs: Any) -> None:
        # Each session's way in (compiled or not) wrapped as it is made: count every message; time one in 17
        # (timing every one would add its own cost, ~0.4 us, to the throughput being measured; 17, not 16, so
        # that the timed messages do not line up with the session's own one-in-16 samples, which cost more:
        # the figures hold those as often as the feed pays for them).
        made(self, *args, **kwargs)
        receive = self.frame_received

        def timed(payload: bytes, recv_ts: float) -> None:
            n_seen = state["count"]
            if n_seen % 17:
                receive(payload, recv_ts)
            else:
                start = clock()
                receive(payload, recv_ts)
                elapsed = clock() - start
                timings.append(elapsed)
                (book_timings if payload.startswith(b'{"channel":"book"') else other_timings).append(elapsed)
            if self.active:
                if n_seen == 0:
                    state["first"] = clock()
                state["count"] = n_seen + 1
                if n_seen + 1 == n:
                    state["last"] = clock()
                    reactor.stop()

        self.frame_received = timed

    FeedSession.__init__ = timing  # type: ignore[method-assign]

    def count(event: Any) -> None:
        state["events"] += 1

    feed.subscribe(count)
    feed.startService()
    reactor.run()
    problems = feed.reporter.counts
    for kind in (timings, book_timings, other_timings):
        kind.sort()
    into_redis = sum(getattr(sink, "written", 0) for sink in feed.publisher.sinks) if redis else 0
    return {"rate": n / (state["last"] - state["first"]), "rss": peak_rss_mib(), "into_redis": into_redis,
            "elapsed": state["last"] - state["first"],
            "p50_us": timings[len(timings) // 2] * 1e6, "p99_us": timings[int(len(timings) * 0.99)] * 1e6,
            "book_p50_us": book_timings[len(book_timings) // 2] * 1e6,
            "book_p99_us": book_timings[int(len(book_timings) * 0.99)] * 1e6,
            "other_p50_us": other_timings[len(other_timings) // 2] * 1e6 if other_timings else 0.0,
            "other_p99_us": other_timings[int(len(other_timings) * 0.99)] * 1e6 if other_timings else 0.0,
            "events": state["events"], "integrity": dict(problems)}


# -- the run ----------------------------------------------------------------------------

def client(mode: str, url: str, n: int, depth: int = 10) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, mode, url, str(n), str(depth)], capture_output=True, text=True,
                         timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"{mode} client failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_case(n: int, depth: int, modes: list[str], rounds: int) -> dict[str, list[dict[str, Any]]]:
    server = subprocess.Popen([sys.executable, __file__, "serve", str(n), str(depth)], stdout=subprocess.PIPE,
                              text=True)
    try:
        port = int(server.stdout.readline())  # after recording: the blast is pre-encoded
        url = f"ws://127.0.0.1:{port}/v2"
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
        for _ in range(rounds):  # interleaved: the machine is shared and noisy
            for mode in modes:
                runs[mode].append(client(mode, url, n, depth))
    finally:
        server.terminate()
    return runs


def spread(results: list[dict[str, Any]]) -> str:
    rates = sorted(r["rate"] for r in results)
    return f"median {rates[len(rates) // 2]:8.0f} msg/s (runs {rates[0]:.0f}-{rates[-1]:.0f})"


def redis_server() -> subprocess.Popen[bytes] | None:
    """A redis-server of the benchmark's own on a free loopback port (None if not installed)."""
    import shutil
    import socket

    if shutil.which("redis-server") is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    os.environ["GFWS_BENCH_REDIS"] = f"redis://127.0.0.1:{port}/0"
    return server


def main(n: int, rounds: int = 3) -> None:
    redis = redis_server()
    modes = ["receive-only", "pipeline", "pipeline-unmonitored", "pipeline-recorded"] + (
        ["pipeline-redis"] if redis is not None else [])
    try:
        runs = run_case(n, 10, modes, rounds)
    finally:
        if redis is not None:
            redis.terminate()
    ratios = sorted(f["rate"] / b["rate"] for f, b in zip(runs["pipeline"], runs["receive-only"], strict=True))
    full = sorted(runs["pipeline"], key=lambda r: r["rate"])[len(runs["pipeline"]) // 2]
    base = sorted(runs["receive-only"], key=lambda r: r["rate"])[len(runs["receive-only"]) // 2]
    print(f"{n} Kraken v2 messages (book depth 10 + trades, {len(SYMBOLS)} symbols) over loopback, {rounds} rounds:")
    print(f"  receive-only Autobahn client + msgspec decode: {spread(runs['receive-only'])}, peak RSS {base['rss']:.0f} MiB")
    print(f"  gfws full pipeline:                            {spread(runs['pipeline'])}, peak RSS {full['rss']:.0f} MiB")
    print(f"  ratio per round: {', '.join(f'{r:.0%}' for r in ratios)} (median {ratios[len(ratios) // 2]:.0%}; "
          "target >= 80%)")
    p50 = sorted(r["p50_us"] for r in runs["pipeline"])
    p99 = sorted(r["p99_us"] for r in runs["pipeline"])
    print(f"  pipeline per-message processing: p50 {p50[len(p50) // 2]:.1f} us ({p50[0]:.1f}-{p50[-1]:.1f}), "
          f"p99 {p99[len(p99) // 2]:.1f} us ({p99[0]:.1f}-{p99[-1]:.1f})")
    for kind, what in (("book", "book updates"), ("other", "trades and the rest")):
        k50 = sorted(r[f"{kind}_p50_us"] for r in runs["pipeline"])
        k99 = sorted(r[f"{kind}_p99_us"] for r in runs["pipeline"])
        print(f"    {what}: p50 {k50[len(k50) // 2]:.1f} us ({k50[0]:.1f}-{k50[-1]:.1f}), "
              f"p99 {k99[len(k99) // 2]:.1f} us ({k99[0]:.1f}-{k99[-1]:.1f})")
    print(f"  events published: {full['events']}; integrity problems: {full['integrity'] or 'none'}")
    for mode, what, target in (("pipeline-unmonitored", "monitoring's statistics off", "their cost <= 5%"),
                               ("pipeline-recorded", "recording every frame on", "its cost <= 10%")):
        costs = sorted(1 - o["rate"] / f["rate"] if mode == "pipeline-recorded" else 1 - f["rate"] / o["rate"]
                       for o, f in zip(runs[mode], runs["pipeline"], strict=True))
        print(f"  {what}: {spread(runs[mode])}; cost per round {', '.join(f'{c:.1%}' for c in costs)} ({target})")
    if "pipeline-redis" in runs:
        costs = sorted(1 - o["rate"] / f["rate"] for o, f in zip(runs["pipeline-redis"], runs["pipeline"], strict=True))
        into = sorted(r["into_redis"] / r["elapsed"] for r in runs["pipeline-redis"])
        print(f"  Redis sink on: {spread(runs['pipeline-redis'])}; cost per round "
              f"{', '.join(f'{c:.1%}' for c in costs)}; events into Redis during the run: median "
              f"{into[len(into) // 2]:.0f}/s ({into[0]:.0f}-{into[-1]:.0f})")
    deep = run_case(n // 4, 1000, ["receive-only", "pipeline"], rounds)
    ratios = sorted(f["rate"] / b["rate"] for f, b in zip(deep["pipeline"], deep["receive-only"], strict=True))
    print(f"{n // 4} messages, four books at depth 1000:")
    print(f"  receive-only: {spread(deep['receive-only'])}")
    print(f"  gfws full pipeline: {spread(deep['pipeline'])}; ratio per round "
          f"{', '.join(f'{r:.0%}' for r in ratios)}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(HERE))
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] in ("receive-only", "pipeline", "pipeline-unmonitored", "pipeline-recorded",
                                               "pipeline-redis"):
        mode, url, count, depth = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        if mode == "receive-only":
            result = receive_only(url, count, depth)
        else:
            result = pipeline(url, count, mode != "pipeline-unmonitored", mode == "pipeline-recorded", depth,
                              mode == "pipeline-redis")
        print(json.dumps(result))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000, int(sys.argv[2]) if len(sys.argv) > 2 else 3)
