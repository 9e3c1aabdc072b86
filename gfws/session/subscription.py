"""The life cycle of one subscription (a channel and a symbol), on Automat.

```
idle --request--> subscribing --accepted--> live --resync--> resyncing --request--> subscribing
idle, waiting, resyncing --authenticate--> authenticating --request--> subscribing
                                                                (an account channel: a token first)
                  subscribing --rate_limited--> waiting --request--> subscribing
                  subscribing --refused--> refused              (the venue said no for good)
any --closed--> closed                                          (the connection is gone)
```
A resync asked while one is already under way, or before the subscription
is live, changes nothing (``resync`` returns False): only one renewal runs
at a time.  Any other input in a state raises ``automat.NoTransition``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from automat import TypeMachineBuilder

STATES = ("idle", "authenticating", "subscribing", "waiting", "live", "resyncing", "refused", "closed")


class SubscriptionInputs(Protocol):
    def authenticate(self) -> None:
        "A token is asked for (an account channel's requests carry one)."

    def request(self) -> None:
        "A subscribe request for it leaves."

    def accepted(self) -> None:
        "The venue acked the subscribe."

    def refused(self, reason: str) -> None:
        "The venue refused it for good."

    def rate_limited(self) -> None:
        "The venue refused it for now (``Exceeded msg rate``): ask again later."

    def resync(self) -> bool:
        "The data can no longer be trusted: True when a renewal starts now."

    def closed(self) -> None:
        "The connection is gone."


class _Core:
    def __init__(self, changed: Callable[[str], None]) -> None:
        self.state = "idle"
        self.reason = ""
        self.changed = changed


_TRANSITIONS: list[tuple[str, str, str]] = [
    ("idle", "request", "subscribing"),
    ("waiting", "request", "subscribing"),
    ("resyncing", "request", "subscribing"),
    ("idle", "authenticate", "authenticating"),
    ("waiting", "authenticate", "authenticating"),
    ("resyncing", "authenticate", "authenticating"),
    ("authenticating", "request", "subscribing"),
    ("subscribing", "accepted", "live"),
    ("subscribing", "rate_limited", "waiting"),
    ("subscribing", "refused", "refused"),
    ("live", "resync", "resyncing"),
    *[(state, "closed", "closed") for state in STATES],
]
# A renewal asked where none can start (not live yet, or one already runs).
_IGNORED_RESYNC = ("idle", "authenticating", "subscribing", "waiting", "resyncing", "refused", "closed")


def _build() -> Callable[[_Core], SubscriptionInputs]:
    builder = TypeMachineBuilder(SubscriptionInputs, _Core)
    states = {name: builder.state(name) for name in STATES}
    for source, method, target in _TRANSITIONS:

        def enter(inputs: SubscriptionInputs, core: _Core, reason: str = "", _target: str = target) -> bool:
            core.state = _target
            core.reason = reason
            core.changed(_target)
            return True

        states[source].upon(getattr(SubscriptionInputs, method)).to(states[target])(enter)
    for source in _IGNORED_RESYNC:
        states[source].upon(SubscriptionInputs.resync).loop()(lambda inputs, core: False)
    return builder.build()


_Machine = _build()


class Subscription:
    """One (channel, symbol) of one connection: its options and its state."""

    __slots__ = ("_core", "channel", "inputs", "options", "symbol")

    def __init__(
        self, channel: str, symbol: str, options: dict, changed: Callable[[str], None] = lambda state: None
    ) -> None:
        self.channel = channel
        self.symbol = symbol
        self.options = options
        self._core = _Core(changed)
        self.inputs: SubscriptionInputs = _Machine(self._core)

    @property
    def state(self) -> str:
        return self._core.state

    @property
    def reason(self) -> str:
        """Why it was refused (the venue's text), when it was."""
        return self._core.reason

    def __repr__(self) -> str:
        return f"<Subscription {self.channel} {self.symbol} {self.state}>"
