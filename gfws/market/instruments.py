"""Pair precisions announced by the venue (Kraken: the instrument channel)."""

from __future__ import annotations

from collections.abc import Iterable

from gfws.market.precision import PairPrecision
from gfws.messages import PairInfo


class Instruments:
    """symbol -> PairPrecision, replaced by a snapshot, merged by updates."""

    def __init__(self) -> None:
        # One dict for the feed's life, changed in place: a compiled path holds it.
        self.precisions: dict[str, PairPrecision] = {}
        self._status: dict[str, str] = {}
        self.loaded = False
        self.missing: list[str] = []  # known pairs a new snapshot left out (kept, to report)
        self.added: list[str] = []  # pairs the last snapshot or update made known for the first time

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.precisions

    def __len__(self) -> int:
        return len(self.precisions)

    def precision(self, symbol: str) -> PairPrecision | None:
        return self.precisions.get(symbol)

    def status(self, symbol: str) -> str | None:
        return self._status.get(symbol)

    def apply(self, pairs: Iterable[PairInfo], snapshot: bool) -> list[str]:
        """Take a snapshot or an update; return symbols whose precision changed."""
        old = dict(self.precisions)
        if snapshot:
            self.precisions.clear()
            self._status = {}
        changed = []
        self.added = []
        for pair in pairs:
            precision = PairPrecision(pair.price_precision, pair.qty_precision)
            previous = old.get(pair.symbol)
            if previous is None:
                self.added.append(pair.symbol)
            elif previous != precision:
                changed.append(pair.symbol)
            self.precisions[pair.symbol] = precision
            self._status[pair.symbol] = pair.status
        if snapshot:
            self.loaded = True
            # A pair left out of a later snapshot keeps its last known precision: forgetting it would
            # refuse its data, and renewing the subscription would bring the same answer, forever.
            for symbol, precision in old.items():
                if symbol not in self.precisions:
                    self.precisions[symbol] = precision
                    self._status[symbol] = "missing"
                    self.missing.append(symbol)
        return changed
