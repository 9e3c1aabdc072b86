"""Sequence numbers per channel: gaps and regressions.

Kraken v2 private channels (executions, balances) number their messages.  A
gap means messages were missed (recover with a fresh snapshot); a number at
or below the last one is a duplicate or a replay (drop it).
"""

from __future__ import annotations


class SequenceTracker:
    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self.gaps = 0
        self.regressions = 0

    def reset(self, channel: str) -> None:
        self._last.pop(channel, None)

    def check(self, channel: str, sequence: int, snapshot: bool) -> tuple[str, int, int] | None:
        """None when in order; else ``("gap", first_missing, last_missing)``
        or ``("regression", last_seen, sequence)``.  A snapshot restarts the count."""
        last = self._last.get(channel)
        if snapshot or last is None:
            self._last[channel] = sequence
            return None
        if sequence == last + 1:
            self._last[channel] = sequence
            return None
        if sequence <= last:
            self.regressions += 1
            return ("regression", last, sequence)
        self.gaps += 1
        self._last[channel] = sequence
        return ("gap", last + 1, sequence - 1)
