"""The faults one gate (listening endpoint) of the simulated venue can have."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gfws.sim.corruption import MessageFaults


class GateFaults:
    """The faults a gate (listening endpoint) can have, all off.

    ``SimulatorService`` is one; sessions made without a server (tests
    driving ``SimSession`` directly) get a plain instance.
    """

    def __init__(self, message_faults: MessageFaults | None = None) -> None:
        self.stalled: str | None = None  # "silent": nothing at all; "pings": pongs only
        self.drop_acks = False
        self.ack_delay = 0.0
        self.msg_rate = 0.0  # requests per second per connection; more get "Exceeded msg rate"
        self.message_faults = message_faults  # seeded faults on data messages
