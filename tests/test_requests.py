"""Acks matched to requests by req_id, one per symbol, with a Clock timeout."""

from __future__ import annotations

from twisted.internet.task import Clock

from gfws.messages import Ack
from gfws.session.requests import PendingRequests, RequestFailed, RequestsClosed, RequestTimedOut


def result_of(d):
    out = []
    d.addBoth(out.append)
    return out


def ack(req_id, symbol=None, success=True, error=None, method="subscribe"):
    return Ack(method=method, success=success, req_id=req_id, channel="book", symbol=symbol, error=error)


def test_fires_when_every_symbol_is_acked():
    clock = Clock()
    requests = PendingRequests(clock, timeout=5)
    rid = requests.next_id()
    out = result_of(requests.expect(rid, "subscribe", "book", ["A/B", "C/D"], 2))
    assert requests.ack_received(ack(rid, "A/B"))
    assert out == []
    assert requests.ack_received(ack(rid, "C/D"))
    assert out == [["A/B", "C/D"]]
    assert clock.getDelayedCalls() == [] and len(requests) == 0


def test_a_refused_symbol_errbacks_with_the_venue_text():
    requests = PendingRequests(Clock(), timeout=5)
    rid = requests.next_id()
    out = result_of(requests.expect(rid, "subscribe", "book", ["A/B", "FAKE/USD"], 2))
    requests.ack_received(ack(rid, "FAKE/USD", False, "Currency pair not supported FAKE/USD"))
    requests.ack_received(ack(rid, "A/B"))
    error = out[0].value
    assert isinstance(error, RequestFailed)
    assert error.rejected == {"FAKE/USD": "Currency pair not supported FAKE/USD"} and error.accepted == ["A/B"]
    assert "FAKE/USD: Currency pair not supported FAKE/USD" in str(error)


def test_a_request_refused_as_a_whole_fails_at_once():
    requests = PendingRequests(Clock(), timeout=5)
    rid = requests.next_id()
    out = result_of(requests.expect(rid, "subscribe", "book", ["A/B", "C/D"], 2))
    requests.ack_received(ack(rid, None, False, "EGeneral:Invalid arguments:depth"))
    assert out[0].value.rejected == {"A/B": "EGeneral:Invalid arguments:depth", "C/D": "EGeneral:Invalid arguments:depth"}
    assert len(requests) == 0


def test_times_out_naming_what_is_missing():
    clock = Clock()
    requests = PendingRequests(clock, timeout=5)
    rid = requests.next_id()
    out = result_of(requests.expect(rid, "subscribe", "book", ["A/B", "C/D"], 2))
    requests.ack_received(ack(rid, "A/B"))
    clock.advance(4.9)
    assert out == []
    clock.advance(0.2)
    assert isinstance(out[0].value, RequestTimedOut) and out[0].value.missing == 1
    assert not requests.ack_received(ack(rid, "C/D"))  # too late: not ours any more


def test_foreign_acks_are_not_ours():
    requests = PendingRequests(Clock(), timeout=5)
    rid = requests.next_id()
    requests.expect(rid, "subscribe", "book", ["A/B"], 1)
    assert not requests.ack_received(ack(None, "A/B"))
    assert not requests.ack_received(ack(rid + 1, "A/B"))
    assert not requests.ack_received(ack(rid, "A/B", method="unsubscribe"))


def test_close_fails_everything_and_cancels_timers():
    clock = Clock()
    requests = PendingRequests(clock, timeout=5)
    outs = [result_of(requests.expect(requests.next_id(), "subscribe", "ticker", ["A/B"], 1)) for _ in range(3)]
    requests.close()
    assert all(isinstance(o[0].value, RequestsClosed) for o in outs)
    assert clock.getDelayedCalls() == []
