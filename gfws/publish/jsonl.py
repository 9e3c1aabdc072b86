"""JSON Lines sink: one event per line, flushed per batch.

Decimals are written as fixed-point strings keeping the pair's precision
(``"0.00000100"``, never ``1E-6``); ``recv_ts`` as ISO 8601 UTC.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any

import msgspec
import orjson
from zope.interface import implementer

from gfws.events import Event
from gfws.interfaces import IEventSink


def _decimal_text(value: Any) -> str:
    if type(value) is Decimal:
        return format(value, "f")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def encode_event(event: Event) -> bytes:
    """One event as a JSON object (no newline)."""
    data = msgspec.to_builtins(event, builtin_types=(Decimal,))
    data["recv_ts"] = (
        datetime.fromtimestamp(event.recv_ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )
    return orjson.dumps(data, default=_decimal_text)


@implementer(IEventSink)
class JsonlSink:
    def __init__(self, path: str) -> None:
        """``path`` is a file appended to, or ``-`` for standard output."""
        self.path = path
        self._file: IO[bytes]
        if path == "-":
            # fd 1 itself: twistd replaces sys.stdout with a log adapter.
            self._file = os.fdopen(os.dup(1), "wb")
        else:
            self._file = open(path, "ab")

    def write(self, events: Sequence[Event]) -> None:
        self._file.write(b"".join(encode_event(e) + b"\n" for e in events))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()

    def __repr__(self) -> str:
        return f"JsonlSink({self.path!r})"
