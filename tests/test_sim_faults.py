"""Scheduled faults (``twistd gfws-sim --fault``): parsing and timing on a Clock."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from gfws.sim.faults import Fault, FaultSchedule, parse_fault


@pytest.mark.parametrize("text, fault", [
    ("stall@10+5", Fault("stall", 10.0, 5.0)),
    ("close@30/60", Fault("close", 30.0, 0.0, 60.0)),
    ("refuse@5+20#1", Fault("refuse", 5.0, 20.0, None, 1)),
    ("maintenance@1.5+0.5/10", Fault("maintenance", 1.5, 0.5, 10.0)),
])
def test_parse(text, fault):
    assert parse_fault(text) == fault


@pytest.mark.parametrize("text, message", [
    ("stall", "expected KIND@START"),
    ("explode@1", "unknown kind 'explode'"),
    ("stall@1", "stall needs a duration"),
    ("refuse@1+10/5", "repeat (/EVERY) must be longer than the duration"),
])
def test_parse_errors_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_fault(text)


class Gate:
    """Records what the schedule does to it."""

    def __init__(self):
        self.calls = []
        self.venue = self
        self.url = "ws://test"
        self.log = self
        self.drop_acks = False

    def warn(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, args))


def test_schedule_begins_ends_and_repeats_on_time():
    clock = Clock()
    gates = [Gate(), Gate()]
    schedule = FaultSchedule(clock, gates, [parse_fault("stall@2+1/5"), parse_fault("close@3#1")])
    schedule.start()
    clock.advance(1.9)
    assert gates[0].calls == []
    clock.advance(0.1)
    assert gates[0].calls == [("stall", ("silent",))]
    clock.advance(1.0)
    assert gates[0].calls[-1] == ("unstall", ()) and gates[1].calls == [("close_all", ())]
    clock.advance(4.0)  # repeats 5 s after it began
    assert gates[0].calls[-1] == ("stall", ("silent",))
    schedule.cancel()
    assert clock.getDelayedCalls() == []


def test_schedule_refuses_a_gate_that_does_not_exist():
    with pytest.raises(ValueError, match="gate #2 does not exist"):
        FaultSchedule(Clock(), [Gate()], [parse_fault("close@1#2")])


def test_message_faults_from_the_command_line():
    from gfws.sim.corruption import parse_message_faults

    faults = parse_message_faults("drop=0.01,reorder=0.02,seed=7")
    assert (faults.drop, faults.reorder, faults.seed) == (0.01, 0.02, 7)
    for bad, message in [("drop", "expected NAME=VALUE"), ("explode=0.1", "expected NAME=VALUE"),
                         ("drop=lots", "is not a number"), ("drop=1.5", "between 0 and 1"),
                         ("drop=0.6,duplicate=0.6", "more than 1")]:
        with pytest.raises(ValueError, match=message):
            parse_message_faults(bad)


def test_answers_held_back_by_an_ack_delay_go_with_their_connection():
    from gfws.sim import SimVenue
    from gfws.sim.gate import GateFaults

    clock = Clock()
    venue = SimVenue(clock=clock, seed=1)
    gate = GateFaults()
    gate.ack_delay = 0.3
    sent: list[bytes] = []
    session = venue.connect(sent.append, gate)
    session.request_received(b'{"method":"ping","req_id":1}')
    session.request_received(b'{"method":"ping","req_id":2}')
    assert len(clock.getDelayedCalls()) == 2
    clock.advance(0.3)
    assert b'"req_id":1' in sent[-2] and b'"req_id":2' in sent[-1]
    session.request_received(b'{"method":"ping","req_id":3}')
    venue.disconnect(session)
    assert clock.getDelayedCalls() == []  # a closed connection leaves nothing on the clock
