"""Each public trade once, by the venue's per-book ``trade_id``, however long ago.

A time or size window forgets: a trade snapshot (the venue's last 50 trades,
replayed on every subscribe) arriving after the window has moved on would
be published twice.  A high-water mark per symbol does not forget: a trade
at or below it was published, unless it is one of the ids skipped when the
mark jumped (a "hole": a lagging second endpoint may still bring it, and
then it is published, once).  Holes are bounded per symbol; a jump wider
than that is a gap no endpoint is expected to fill.
"""

from __future__ import annotations


class TradeMarks:
    def __init__(self, max_holes: int = 10_000) -> None:
        self._max_holes = max_holes
        self.marks: dict[str, int] = {}
        self._holes: dict[str, set[int]] = {}
        self.repeats = 0
        self.gap: tuple[int, int] | None = None  # ids the last admitted trade jumped over

    def first_time(self, symbol: str, trade_id: int) -> bool:
        """True exactly once per (symbol, trade_id); ``gap`` tells what it jumped over."""
        self.gap = None
        mark = self.marks.get(symbol)
        if mark is None or trade_id == mark + 1:
            self.marks[symbol] = trade_id
            return True
        if trade_id > mark:
            self.gap = (mark + 1, trade_id - 1)
            self.marks[symbol] = trade_id
            if trade_id - mark - 1 <= self._max_holes:
                holes = self._holes.setdefault(symbol, set())
                holes.update(range(mark + 1, trade_id))
                if len(holes) > self._max_holes:  # the oldest holes are the least likely to be filled
                    for old in sorted(holes)[: len(holes) - self._max_holes]:
                        holes.discard(old)
            return True
        skipped = self._holes.get(symbol)
        if skipped and trade_id in skipped:
            skipped.discard(trade_id)
            return True
        self.repeats += 1
        return False
