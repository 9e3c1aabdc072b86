"""Faults on a schedule, for ``twistd gfws-sim --fault ...``.

A fault is written ``KIND@START[+DURATION][/EVERY][#GATE]``: seconds after
start-up, for how long (faults that last), repeating every N seconds, on
which gate (0-based, in ``--port`` order).  Examples: ``stall@10+5``,
``close@30/60``, ``refuse@5+20#1``, ``maintenance@60+30``, ``restart@20+3``.
Tests call the same methods directly on ``SimulatorService`` and ``SimVenue``.

Faults of the private side act on the venue's account (``--private``), on
every gate at once: ``invalidate-sessions``, ``expire-tokens``,
``refuse-tokens@START+DURATION`` (every token request refused meanwhile),
``drop-private`` (executions subscribers dropped), ``skip-sequence``,
``duplicate-execution``, ``resend-fill`` (the latest fill, again).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTime

from gfws.sim.account import SimAccount
from gfws.sim.server import SimulatorService

LASTING = ("refuse", "refuse-http", "stall", "stall-pings", "drop-acks", "maintenance", "restart", "refuse-tokens")
INSTANT = ("close", "invalidate-sessions", "expire-tokens", "drop-private", "skip-sequence", "duplicate-execution",
           "resend-fill")
KINDS = LASTING + INSTANT
PRIVATE = ("refuse-tokens", "invalidate-sessions", "expire-tokens", "drop-private", "skip-sequence",
           "duplicate-execution", "resend-fill")
"""Kinds that need the venue's account (``twistd gfws-sim --private``)."""
_ALWAYS = 10**9  # token requests refused while refuse-tokens lasts
_SYNTAX = re.compile(
    r"^(?P<kind>[a-z-]+)@(?P<at>[\d.]+)(\+(?P<duration>[\d.]+))?(/(?P<every>[\d.]+))?(#(?P<gate>\d+))?$"
)


@dataclass(frozen=True)
class Fault:
    kind: str
    at: float
    duration: float = 0.0
    every: float | None = None
    gate: int = 0


def parse_fault(text: str) -> Fault:
    match = _SYNTAX.match(text.strip())
    if not match:
        raise ValueError(f"fault {text!r}: expected KIND@START[+DURATION][/EVERY][#GATE], e.g. stall@10+5")
    kind = match["kind"]
    if kind not in KINDS:
        raise ValueError(f"fault {text!r}: unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    duration = float(match["duration"] or 0)
    if kind in LASTING and duration <= 0:
        raise ValueError(f"fault {text!r}: {kind} needs a duration (+SECONDS)")
    every = float(match["every"]) if match["every"] else None
    if every is not None and every <= duration:
        raise ValueError(f"fault {text!r}: the repeat (/EVERY) must be longer than the duration")
    return Fault(kind, float(match["at"]), duration, every, int(match["gate"] or 0))


def _begin_end(fault: Fault, gate: SimulatorService) -> tuple[Callable[[], Any], Callable[[], Any]]:
    venue = gate.venue
    kind = fault.kind
    if kind in PRIVATE:
        return _private(kind, venue.account)

    def set_drop(value: bool) -> None:
        gate.drop_acks = value

    return {
        "refuse": (lambda: gate.refuse_connections("tcp"), gate.accept_connections),
        "refuse-http": (lambda: gate.refuse_connections("http"), gate.accept_connections),
        "stall": (lambda: gate.stall("silent"), gate.unstall),
        "stall-pings": (lambda: gate.stall("pings"), gate.unstall),
        "drop-acks": (lambda: set_drop(True), lambda: set_drop(False)),
        "maintenance": (lambda: venue.set_system("maintenance"), lambda: venue.set_system("online")),
        "restart": (lambda: gate.restart(fault.duration), lambda: None),
        "close": (gate.close_all, lambda: None),
    }[kind]


def _private(kind: str, account: SimAccount | None) -> tuple[Callable[[], Any], Callable[[], Any]]:
    if account is None:
        raise ValueError(f"fault {kind}: the venue has no account (run with --private)")

    def resend_latest() -> None:
        if account.fills:
            account.resend_fill(account.fills[-1]["exec_id"])

    return {
        "refuse-tokens": (lambda: account.refuse_tokens(_ALWAYS), lambda: account.refuse_tokens(0)),
        "invalidate-sessions": (account.invalidate_sessions, lambda: None),
        "expire-tokens": (account.expire_tokens, lambda: None),
        "drop-private": (lambda: account.drop_after(0), lambda: None),
        "skip-sequence": (account.skip_sequence, lambda: None),
        "duplicate-execution": (lambda: account.duplicate_next(1), lambda: None),
        "resend-fill": (resend_latest, lambda: None),
    }[kind]


class FaultSchedule:
    """Runs faults against gates; ``cancel()`` stops what is pending."""

    def __init__(self, clock: IReactorTime, gates: Sequence[SimulatorService], faults: Sequence[Fault]) -> None:
        for fault in faults:
            if fault.gate >= len(gates):
                raise ValueError(f"fault {fault.kind}: gate #{fault.gate} does not exist ({len(gates)} port(s))")
            if fault.kind in PRIVATE and gates[fault.gate].venue.account is None:
                raise ValueError(f"fault {fault.kind}: the venue has no account (run with --private)")
        self._clock = clock
        self._gates = gates
        self._faults = faults
        self._calls: list[Any] = []

    def start(self) -> None:
        for fault in self._faults:
            self._at(fault.at, fault)

    def _at(self, delay: float, fault: Fault) -> None:
        self._calls.append(self._clock.callLater(delay, self._fire, fault))

    def _fire(self, fault: Fault) -> None:
        self._calls = [c for c in self._calls if c.active()]
        gate = self._gates[fault.gate]
        begin, end = _begin_end(fault, gate)
        gate.log.warn("fault {kind} on {url} for {duration}s", kind=fault.kind, url=gate.url, duration=fault.duration)
        begin()
        if fault.kind in LASTING and fault.kind != "restart":
            self._calls.append(self._clock.callLater(fault.duration, end))
        if fault.every is not None:
            self._at(fault.every, fault)

    def cancel(self) -> None:
        for call in self._calls:
            if call.active():
                call.cancel()
        self._calls = []
