"""The subscription life cycle: its machine, and the requests that drive it."""

from __future__ import annotations

import pytest
from automat import NoTransition
from twisted.internet.task import Clock

from gfws.messages import Ack
from gfws.session.requests import PendingRequests
from gfws.session.subscription import STATES, Subscription
from gfws.session.subscriptions import Subscriptions
from gfws.session.throttle import RequestThrottle
from gfws.sim.gate import GateFaults
from gfws.venues.kraken import KrakenV2Dialect
from tests.memory import MemoryLink, sub


def test_the_life_of_a_subscription():
    seen = []
    s = Subscription("book", "BTC/USD", {"depth": 10}, seen.append)
    s.inputs.request()
    s.inputs.rate_limited()
    s.inputs.request()
    s.inputs.accepted()
    assert s.inputs.resync() is True
    assert s.inputs.resync() is False  # one renewal at a time
    s.inputs.request()
    s.inputs.refused("Currency pair not supported")
    assert s.inputs.resync() is False and s.reason == "Currency pair not supported"
    s.inputs.closed()
    assert seen == ["subscribing", "waiting", "subscribing", "live", "resyncing", "subscribing", "refused", "closed"]
    assert set(seen) <= set(STATES)


@pytest.mark.parametrize("steps, illegal", [
    ((), "accepted"),  # an answer to nothing
    (("request", "accepted"), "accepted"),  # answered twice
    (("request",), "request"),  # asked twice
    (("closed",), "request"),  # asked on a gone connection
])
def test_illegal_inputs_raise(steps, illegal):
    s = Subscription("trade", "BTC/USD", {})
    for step in steps:
        getattr(s.inputs, step)()
    with pytest.raises(NoTransition):
        getattr(s.inputs, illegal)()


def subscriptions():
    clock = Clock()
    sent, errors = [], []
    requests = PendingRequests(clock, 10.0)
    subs = Subscriptions(KrakenV2Dialect(), [sub("book", "BTC/USD", "ETH/USD")], clock, requests,
                         RequestThrottle(clock, sent.append), 1.0, lambda *a: errors.append(a), lambda r: None)
    return subs, requests, errors


def test_an_ack_said_twice_is_one_answer():
    subs, requests, errors = subscriptions()
    subs.subscribe_all()
    req_id = requests._next_id
    ack = Ack("subscribe", True, req_id, "book", "BTC/USD")
    requests.ack_received(ack)
    requests.ack_received(ack)  # a resend: not the second answer of this request
    assert len(requests) == 1
    requests.ack_received(Ack("subscribe", True, req_id, "book", "ETH/USD"))
    assert {s.symbol: s.state for s in subs.states()} == {"BTC/USD": "live", "ETH/USD": "live"}
    assert subs.renew("book", "ETH/USD") is True and errors == []
    subs.close()


def test_no_renewal_starts_while_leaving():
    subs, requests, _ = subscriptions()
    subs.subscribe_all()
    req_id = requests._next_id
    for symbol in ("BTC/USD", "ETH/USD"):
        requests.ack_received(Ack("subscribe", True, req_id, "book", symbol))
    subs.leave()
    assert subs.renew("book", "BTC/USD") is False
    subs.close()


def test_an_unanswered_subscribe_is_no_success():
    gate = GateFaults()

    class AcklessBooks(MemoryLink):
        def send(self, payload):
            if b'"book"' in payload and b'"subscribe"' in payload:
                gate.drop_acks = True  # the venue acks the instruments, never the books
            super().send(payload)

    link = AcklessBooks([sub("trade", "BTC/USD"), sub("book", "BTC/USD")], gate=gate).start()
    link.run(6)  # the ack timeout is 5 s
    assert link.unusable and link.active == 0 and not link.client.active
