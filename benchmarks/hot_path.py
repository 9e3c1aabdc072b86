"""The processing of one message alone: no socket, no Autobahn, one process.

Run: python benchmarks/hot_path.py [N]   (default N = 50000)

The recording `pipeline.py` serves (book depth 10 and trades, four symbols) goes through a `FeedSession`
(parse, validate, dedup, books + checksum, events) twice, interleaved in rounds: with the compiled core and
with the pure-Python book and no compiled path (identical events: tests/test_book_core.py).  Printed for
each, by kind of message: p50, p90 and p99 of the time `frame_received` takes (every message timed), and the
mean.  The socket pipeline costs about twice this (Autobahn's ~110,000 instructions between two messages
leave the caches cold): this is the figure to compare changes of the hot path by.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


def frames(n: int) -> tuple[list[bytes], list[bytes]]:
    """The recording's opening (status, acks, snapshots) and then n data messages."""
    import pipeline

    from gfws.recording import read_recording

    payloads = [r["frame"] for r in read_recording(pipeline.record(n)) if r["kind"] == "frame"]
    first_update = next(i for i, p in enumerate(payloads) if b'"type":"update"' in p[:40] and b'"book"' in p[:20])
    return payloads[:first_update], payloads[first_update:first_update + n]


def session(pure: bool) -> Any:
    import pipeline
    from twisted.internet.task import Clock

    from gfws.config import parse_config
    from gfws.integrity.report import IntegrityReporter
    from gfws.session import FeedSession
    from gfws.venues.kraken import KrakenV2Dialect

    config = parse_config({
        "venue": {"name": "kraken"}, "endpoints": [{"url": "ws://127.0.0.1:1/v2"}],
        "subscriptions": pipeline.channels(10), "liveness": {"data_timeout": 60.0}}, "<benchmark>")
    clock = Clock()
    clock.advance(1_700_000_000)
    events: list[Any] = []

    def publish(event: Any) -> None:
        events.append(event)
        if len(events) > 1000:
            del events[:900]

    reporter = IntegrityReporter("kraken", publish, clock)
    feed = FeedSession(KrakenV2Dialect(compiled=not pure), config.subscriptions, publish, reporter, clock,
                       "bench", 5.0)
    return feed, reporter


def run(opening: list[bytes], data: list[bytes], pure: bool) -> dict[str, list[float]]:
    feed, reporter = session(pure)
    for frame in opening:
        feed.frame_received(frame, 1_700_000_000.0)
    receive, clock = feed.frame_received, time.perf_counter
    times: dict[str, list[float]] = {"book": [], "trade": []}
    book, trade = times["book"], times["trade"]
    for frame in data:
        start = clock()
        receive(frame, 1_700_000_000.0)
        elapsed = clock() - start
        (book if frame.startswith(b'{"channel":"book"') else trade).append(elapsed)
    assert not reporter.counts, f"integrity problems in a clean recording: {dict(reporter.counts)}"
    return times


def main(n: int, rounds: int = 3) -> None:
    opening, data = frames(n)
    results: dict[bool, dict[str, list[float]]] = {False: {"book": [], "trade": []}, True: {"book": [], "trade": []}}
    for _ in range(rounds):  # interleaved: the machine is shared and noisy
        for pure in (False, True):
            for kind, values in run(opening, data, pure).items():
                results[pure][kind].extend(values)
    print(f"{n} recorded messages through one FeedSession, {rounds} rounds, every message timed:")
    for pure, label in ((False, "compiled core"), (True, "pure Python  ")):
        for kind, values in results[pure].items():
            values.sort()
            count = len(values)
            p50, p90, p99 = (values[min(count - 1, int(count * q))] * 1e6 for q in (0.5, 0.9, 0.99))
            print(f"  {label} {kind:5s}: p50 {p50:5.1f} us, p90 {p90:5.1f} us, p99 {p99:5.1f} us, "
                  f"mean {sum(values) / count * 1e6:5.1f} us  ({count} messages)")


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    sys.path.insert(0, os.path.dirname(HERE))
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
