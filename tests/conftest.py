"""Shared test helpers.

pytest-twisted runs one real reactor for the whole session; it is imported
lazily (never at module top level) so that unit tests stay reactor-free.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import Any

import pytest

HERE = os.path.dirname(__file__)


def _compiled_book() -> Any:
    try:
        from _gfws_book import Book
    except ImportError:
        return None
    return Book


COMPILED_BOOK = _compiled_book()


@pytest.fixture(params=["compiled", "pure"])
def book_type(request) -> Any:
    """Each implementation of the Kraken book (they must give identical results)."""
    from gfws.venues.kraken.book import PyBook

    if request.param == "pure":
        return PyBook
    if COMPILED_BOOK is None:
        pytest.skip("the compiled book is not built here")
    return COMPILED_BOOK


@pytest.fixture(scope="session")
def orderbook_fixture() -> dict[str, Any]:
    """The real Kraken v2 capture (see tests/fixtures/SOURCE.md)."""
    with open(os.path.join(HERE, "fixtures", "orderbook-v2.json")) as f:
        return json.load(f, parse_float=Decimal)


@pytest.fixture(scope="session")
def orderbook_messages() -> list[bytes]:
    """The capture as wire messages: snapshot first, then the updates."""
    with open(os.path.join(HERE, "fixtures", "orderbook-v2.json")) as f:
        data = json.load(f)
    return [json.dumps(m).encode() for m in [data["init"], *data["updates"]]]


@pytest.fixture(autouse=True)
def no_leftover_delayed_calls(request):
    """Fail a test that leaves timers running in the shared reactor.

    pytest-twisted keeps one reactor for the whole run and does not check this
    itself; a leftover ClientService retry or liveness loop would otherwise
    leak into later tests.  Runs after every other fixture's teardown.
    """
    yield
    import sys

    if "twisted.internet.reactor" not in sys.modules:
        return
    import pytest_twisted
    from twisted.internet import reactor

    # Let calls scheduled for "now" (callLater(0) clean-ups) run, and let
    # txaio's timer buckets (Autobahn's handshake timers share one call per
    # 200 ms bucket, left to fire even when emptied) run out: bounded, ~4 s.
    pytest_twisted.blockon(_settle(reactor))
    leftover = [c for c in reactor.getDelayedCalls() if c.active()]
    assert leftover == [], f"{request.node.name} left timers running: {leftover}"


def _settle(reactor, turns=3, bucket_wait=5.0):
    from twisted.internet.defer import Deferred

    d = Deferred()
    deadline = reactor.seconds() + bucket_wait

    def only_buckets_left():
        calls = [c for c in reactor.getDelayedCalls() if c.active()]
        return calls and all("_BatchedTimer" in repr(c.func) for c in calls)

    def step(left):
        if left > 0:
            reactor.callLater(0, step, left - 1)
        elif only_buckets_left() and reactor.seconds() < deadline:
            reactor.callLater(0.1, step, 0)
        else:
            d.callback(None)

    reactor.callLater(0, step, turns)
    return d
