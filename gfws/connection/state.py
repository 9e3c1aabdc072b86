"""The life cycle of one endpoint connection, as an Automat state machine.

Every legal move is listed in TRANSITIONS; any other input in a state raises
``automat.NoTransition``, so an illegal transition cannot happen silently.
Each transition reports ``(new_state, reason)`` to the owner, which publishes
it as a ``connection`` event.
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol

from automat import TypeMachineBuilder


class ConnectionInputs(Protocol):
    def start(self, reason: Optional[str] = None) -> None:
        "The endpoint is put to use: connect."

    def retry(self, reason: Optional[str] = None) -> None:
        "A new connection attempt begins (after backoff, or as a breaker's trial)."

    def opened(self, reason: Optional[str] = None) -> None:
        "The WebSocket handshake completed."

    def authenticated(self, reason: Optional[str] = None) -> None:
        "Private-channel credentials were accepted."

    def subscribing(self, reason: Optional[str] = None) -> None:
        "Subscription requests are on their way."

    def subscribed(self, reason: Optional[str] = None) -> None:
        "Every subscription has been answered."

    def lost(self, reason: Optional[str] = None) -> None:
        "The connection failed or closed; a retry will follow."

    def tripped(self, reason: Optional[str] = None) -> None:
        "The circuit breaker opened: no attempt until its recovery time."

    def park(self, reason: Optional[str] = None) -> None:
        "The pool no longer needs this endpoint: disconnect, no retry."

    def stop(self, reason: Optional[str] = None) -> None:
        "Shut down for good."


class _Core:
    def __init__(self, changed: Callable[[str, Optional[str]], None]) -> None:
        self.changed = changed
        self.state = "disconnected"


LIVE = ("connecting", "connected", "authenticated", "subscribing", "active")
TRANSITIONS: list[tuple[str, str, str]] = [
    ("disconnected", "start", "connecting"),
    ("connecting", "opened", "connected"),
    ("connected", "authenticated", "authenticated"),
    ("connected", "subscribing", "subscribing"),
    ("authenticated", "subscribing", "subscribing"),
    ("subscribing", "subscribed", "active"),
    *[(state, "lost", "reconnecting") for state in LIVE],
    ("reconnecting", "retry", "connecting"),
    ("reconnecting", "tripped", "failed"),
    ("failed", "retry", "connecting"),  # the half-open trial
    *[(state, "park", "disconnected") for state in (*LIVE, "reconnecting", "failed")],
    *[(state, "stop", "shutdown") for state in (*LIVE, "disconnected", "reconnecting", "failed", "shutdown")],
]
STATES = sorted({s for s, _, _ in TRANSITIONS} | {d for _, _, d in TRANSITIONS})


def _build() -> Callable[[_Core], ConnectionInputs]:
    builder = TypeMachineBuilder(ConnectionInputs, _Core)
    states = {"disconnected": builder.state("disconnected")}  # the initial state
    for name in STATES:
        states.setdefault(name, builder.state(name))
    for source, method, target in TRANSITIONS:
        def enter(inputs: ConnectionInputs, core: _Core, reason: Optional[str] = None, _target: str = target) -> None:
            core.state = _target
            core.changed(_target, reason)

        states[source].upon(getattr(ConnectionInputs, method)).to(states[target])(enter)
    return builder.build()


_Machine = _build()


class ConnectionState:
    """One endpoint's state; ``inputs`` drives it, ``state`` reads it."""

    def __init__(self, changed: Callable[[str, Optional[str]], None]) -> None:
        self._core = _Core(changed)
        self.inputs: ConnectionInputs = _Machine(self._core)

    @property
    def state(self) -> str:
        return self._core.state
