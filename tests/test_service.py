"""FeedService on a Clock: its wiring, and its stop and start, with no socket."""

from __future__ import annotations

import queue
from typing import Any

import pytest
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

import gfws.service as service_module
from gfws.config import parse_config
from gfws.connection.endpoint import FeedEndpoint
from gfws.connection.states import Link
from gfws.interfaces import IConnectionHandler, IConnectionLink, IConnector, IEventSink, IVenueDialect
from gfws.publish import JsonlSink
from gfws.service import FeedService
from gfws.session import FeedSession
from gfws.venues import dialect_for
from tests.clockwork import HandFiredEndpoint, RecordingHandler, TestFactory


@pytest.fixture
def wired(monkeypatch: Any) -> tuple[Clock, list[HandFiredEndpoint]]:
    """FeedService with hand-fired endpoints and recording sessions."""
    clock = ThreadedClock()
    hands: list[HandFiredEndpoint] = []

    def endpoint(reactor: Any, url: str, ca: Any, timeout: float) -> HandFiredEndpoint:
        hands.append(HandFiredEndpoint(clock))
        return hands[-1]

    monkeypatch.setattr(service_module, "client_endpoint", endpoint)
    monkeypatch.setattr(service_module, "FeedClientFactory", lambda url, c: TestFactory())
    monkeypatch.setattr(FeedService, "_sessions", lambda self, publish, private: RecordingHandler)
    return clock, hands


def config(tmp_path: Any) -> Any:
    return parse_config({
        "venue": {"name": "kraken"},
        "endpoints": [{"name": "a", "url": "ws://127.0.0.1:9/v2"}],
        "subscriptions": [{"channel": "trade", "symbols": ["BTC/USD"]}],
        "sinks": [{"path": str(tmp_path / "out.jsonl")}],
    }, "<test>")


class ThreadedClock(Clock):
    """A Clock that also takes calls from other threads (the sinks' writers),
    run when the test turns it."""

    def __init__(self) -> None:
        super().__init__()
        self._from_threads: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
        self._from_threads.put((f, args, kwargs))

    def advance(self, amount: float) -> None:
        while not self._from_threads.empty():
            f, args, kwargs = self._from_threads.get()
            f(*args, **kwargs)
        super().advance(amount)


def stop_and_settle(feed: FeedService, clock: ThreadedClock) -> Any:
    sinks = list(feed.publisher._sinks)
    stopping = feed.stopService()
    clock.advance(0)  # the endpoint stops one turn later; then the sinks close
    for sink in sinks:
        sink._thread.join(5.0)
    clock.advance(0)
    return stopping


def test_started_again_before_its_stop_finished_it_keeps_one_open_sink(wired, tmp_path):
    clock, hands = wired
    feed = FeedService(config(tmp_path), reactor=clock)
    feed.startService()
    clock.advance(0)
    hands[0].fail_next(ConnectionRefusedError())  # waiting to retry
    clock.advance(0)
    first = list(feed.publisher._sinks)
    stopping = feed.stopService()  # the endpoint stops one turn later
    feed.startService()  # started again in the same turn
    clock.advance(0)
    first[0]._thread.join(5.0)
    clock.advance(0)
    assert stopping.called and feed.running
    (sink,) = feed.publisher._sinks
    assert sink is not first[0] and sink._thread.is_alive()  # the new sink is open, the old one closed
    assert not first[0]._thread.is_alive()
    assert feed.pool.endpoints[0].running
    stop_and_settle(feed, clock)
    assert not sink._thread.is_alive() and not clock.getDelayedCalls()


def test_every_seam_provides_its_interface(wired, tmp_path):
    clock, _ = wired
    feed = FeedService(config(tmp_path), reactor=clock)
    endpoint: FeedEndpoint = feed.pool.endpoints[0]
    assert verifyObject(IConnector, endpoint)
    assert verifyObject(IConnectionLink, Link(endpoint, protocol=None))
    assert verifyObject(IVenueDialect, dialect_for("kraken"))
    sink = JsonlSink(str(tmp_path / "x.jsonl"))
    assert verifyObject(IEventSink, sink)
    sink.close()
    session = FeedSession(dialect_for("kraken"), feed.config.subscriptions, lambda e: None, feed.reporter, clock,
                          "a", 5.0)
    assert verifyObject(IConnectionHandler, session)
    assert verifyObject(IConnectionHandler, RecordingHandler("a"))  # the tests' stand-in keeps the contract too
