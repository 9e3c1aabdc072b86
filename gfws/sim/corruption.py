"""Seeded faults on the simulator's data messages (not on acks or status).

Each data message draws once: it may be dropped, duplicated, held back and
sent after the next one (reordered), given a wrong checksum, a stale
timestamp, cut short (malformed JSON), padded past the client's frame limit
(oversized), or given a byte that is not UTF-8.  The same seed gives the same
faults on the same stream.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import msgspec

from gfws.sim.wire import rfc3339

_encode = msgspec.json.encode
KINDS = ("drop", "duplicate", "reorder", "corrupt_checksum", "stale_timestamp", "malformed", "oversized",
         "invalid_utf8")
"""The faults, each a probability field of ``MessageFaults``, drawn in this order."""


def parse_message_faults(text: str) -> MessageFaults:
    """``drop=0.01,duplicate=0.02,seed=3`` (for ``twistd gfws-sim --message-faults``)."""
    known = {f.name for f in fields(MessageFaults)}
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name not in known:
            raise ValueError(f"message fault {part!r}: expected NAME=VALUE with NAME one of {', '.join(sorted(known))}")
        try:
            values[name] = int(value) if name in ("seed", "oversize_bytes") else float(value)
        except ValueError:
            raise ValueError(f"message fault {part!r}: {value!r} is not a number") from None
        if name in KINDS and not 0 <= values[name] <= 1:
            raise ValueError(f"message fault {part!r}: a probability is between 0 and 1")
    return MessageFaults(**values)


@dataclass
class MessageFaults:
    """Probabilities per data message (each 0..1; their sum at most 1)."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt_checksum: float = 0.0
    stale_timestamp: float = 0.0
    malformed: float = 0.0
    oversized: float = 0.0
    invalid_utf8: float = 0.0
    seed: int = 1
    oversize_bytes: int = 2 << 20
    stale_by: float = 3600.0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._held: bytes | None = None
        self.counts: dict[str, int] = {}
        if sum(getattr(self, kind) for kind in KINDS) > 1:
            raise ValueError("message fault probabilities add up to more than 1")

    def _pick(self) -> str | None:
        r = self._rng.random()
        for name in KINDS:
            p = getattr(self, name)
            if r < p:
                self.counts[name] = self.counts.get(name, 0) + 1
                return name
            r -= p
        return None

    def emit(self, message: dict[str, Any], now: float, send: Callable[[bytes], None]) -> None:
        """Send ``message`` through ``send``, perhaps with one fault."""
        fault = self._pick()
        data = message.get("data")
        item = data[0] if isinstance(data, list) and data else {}
        if fault == "drop":
            return
        if fault == "corrupt_checksum" and "checksum" in item:
            item["checksum"] ^= 1
        if fault == "stale_timestamp" and "timestamp" in item:
            item["timestamp"] = rfc3339(now - self.stale_by)
        payload = _encode(message)
        if fault == "malformed":
            payload = payload[: len(payload) // 2]
        elif fault == "oversized":
            payload = payload[:-1] + b',"padding":"' + b"x" * self.oversize_bytes + b'"}'
        elif fault == "invalid_utf8":
            payload = payload[:-1] + b',"bad":"\xff\xfe"}'
        held, self._held = self._held, None
        if fault == "reorder" and held is None:
            self._held = payload  # goes out after the next message
            return
        send(payload)
        if fault == "duplicate":
            send(payload)
        if held is not None:
            send(held)
