"""What an event becomes in Redis: its stream (key), its ``id`` field, its ``event`` field.

Kept apart from the sink so that the writer thread, not the reactor, can do
the costly part (encoding) while the sink does the cheap part (numbering).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from gfws.events import Event
from gfws.publish.jsonl import encode_event

CRITICAL = frozenset({"fill", "order"})  # event types never dropped
_PLACEHOLDER = re.compile(r"\{(venue|type|symbol)\}")


class Entry(NamedTuple):
    """An event as the sink took it: numbered, not yet encoded."""

    seq: int  # the sink's count of events taken, at this one
    event: Event
    critical: bool  # a fill or an order: never dropped


class EntryFormat:
    """Names an event's stream and makes its ``id`` and ``event`` fields (cached per type and stream)."""

    def __init__(self, pattern: str, run_id: str) -> None:
        """``pattern``: ``{venue}``, ``{type}`` and ``{symbol}`` are replaced, every other character is
        kept (``{{symbol}}`` is a Cluster hash tag)."""
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("stream: a non-empty pattern such as 'gfws:{venue}:{type}:{symbol}'")
        self.pattern = pattern
        self.run_id = run_id
        self._keys: dict[tuple[str, str, str], bytes] = {}
        self._tags: dict[type, str] = {}

    def tag(self, event: Event) -> str:
        """The event's ``type``."""
        cls = type(event)
        tag = self._tags.get(cls)
        if tag is None:
            tag = self._tags[cls] = str(getattr(getattr(cls, "__struct_config__", None), "tag", cls.__name__))
        return tag

    def fields(self, entry: Entry) -> tuple[bytes, bytes, bytes]:
        """(stream, ``id``, ``event``); the encoder's TypeError, ValueError or OverflowError for an
        event JSON cannot hold."""
        event = entry.event
        tag = self.tag(event)
        symbol = getattr(event, "symbol", None) or "-"
        where = (event.venue, tag, symbol)
        key = self._keys.get(where)
        if key is None:
            key = self._keys[where] = self.stream(*where)
        return key, self.ident(event, tag, symbol, entry.seq), encode_event(event)

    def stream(self, venue: str, tag: str, symbol: str) -> bytes:
        values = {"venue": venue, "type": tag, "symbol": symbol}
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.pattern).encode()

    def ident(self, event: Event, tag: str, symbol: str, seq: int) -> bytes:
        """The entry's ``id``: the same for the same event sent twice (a resend, a venue's replay)."""
        if tag == "trade":
            trade_id = getattr(event, "trade_id", None)
            if trade_id is not None:
                return f"{symbol}:{trade_id}".encode()
        elif tag == "fill":
            exec_id = getattr(event, "exec_id", None)
            if exec_id:
                return str(exec_id).encode()
        elif tag == "order":
            order_id = getattr(event, "order_id", None)
            if order_id:  # each update of an order is its own event: unique, never the previous one's id
                return f"{order_id}:{self.run_id}:{seq}".encode()
        return f"{self.run_id}:{seq}".encode()
