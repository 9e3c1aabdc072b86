"""A deterministic simulated market: L2 books and trades per pair.

Prices are integer ticks and sizes integer lots (``10**-precision``), so the
simulator needs no Decimal arithmetic and its checksum text is simply the
integers' digits: a fixed-point number with its point removed and leading
zeros stripped *is* its integer count of steps.  This makes the simulator an
independent implementation of Kraken's checksum, not a copy of the client's.
"""

from __future__ import annotations

import random
from bisect import bisect_left, insort
from dataclasses import dataclass


@dataclass(frozen=True)
class SimPair:
    symbol: str
    price_precision: int
    qty_precision: int
    mid: str  # starting mid price, as text

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1]

    @property
    def mid_ticks(self) -> int:
        whole, _, frac = self.mid.partition(".")
        frac = (frac + "0" * self.price_precision)[: self.price_precision]
        return int(whole + frac)


DEFAULT_PAIRS = (
    SimPair("BTC/USD", 1, 8, "30000.0"),
    SimPair("ETH/USD", 2, 8, "2000.00"),
    SimPair("SOL/EUR", 2, 8, "150.00"),
    SimPair("ADA/USD", 6, 8, "0.350000"),
    SimPair("DOGE/USD", 7, 8, "0.0800000"),
)

BOOK_LEVELS = 1100  # deeper than the largest subscribable depth (1000)


class SideBook:
    """One side: ticks -> lots, with ticks kept sorted best first."""

    def __init__(self, bids: bool) -> None:
        self.bids = bids
        self.lots: dict[int, int] = {}
        self._keys: list[int] = []  # -ticks for bids, so ascending is best first

    def __len__(self) -> int:
        return len(self._keys)

    def _key(self, ticks: int) -> int:
        return -ticks if self.bids else ticks

    def set(self, ticks: int, lots: int) -> None:
        key = self._key(ticks)
        if lots <= 0:
            if self.lots.pop(ticks, None) is not None:
                del self._keys[bisect_left(self._keys, key)]
            return
        if ticks not in self.lots:
            insort(self._keys, key)
        self.lots[ticks] = lots

    def best(self) -> int | None:
        return self._ticks(self._keys[0]) if self._keys else None

    def worst(self) -> int | None:
        return self._ticks(self._keys[-1]) if self._keys else None

    def at(self, rank: int) -> int:
        return self._ticks(self._keys[rank])

    def top(self, n: int) -> list[tuple[int, int]]:
        return [(t, self.lots[t]) for t in map(self._ticks, self._keys[:n])]

    def _ticks(self, key: int) -> int:
        return -key if self.bids else key


@dataclass
class SimTrade:
    trade_id: int
    side: str  # taker side
    ticks: int
    lots: int
    ord_type: str


class SymbolMarket:
    """The book and trade tape of one pair, driven by a seeded generator."""

    def __init__(self, pair: SimPair, seed: int) -> None:
        self.pair = pair
        self.rng = random.Random(f"{seed}:{pair.symbol}")
        self.bids = SideBook(bids=True)
        self.asks = SideBook(bids=False)
        self.next_trade_id = 1
        self.trades: list[SimTrade] = []  # the last 50, for trade snapshots
        self.volume_lots = 0
        self.notional = 0  # sum(ticks * lots)
        self.open_ticks = pair.mid_ticks
        self.last_ticks = pair.mid_ticks
        self.low_ticks = pair.mid_ticks
        self.high_ticks = pair.mid_ticks
        self._lot_scale = 10**pair.qty_precision
        mid = pair.mid_ticks
        spread = max(1, mid // 20000)
        bid, ask = mid - spread, mid + spread
        for _ in range(BOOK_LEVELS):
            self.bids.set(bid, self._size())
            self.asks.set(ask, self._size())
            bid -= self._gap()
            ask += self._gap()

    def _gap(self) -> int:
        return 1 + self.rng.randrange(3)

    def _size(self) -> int:
        # 0.0001 to ~5 units, at lot precision, with some round numbers.
        if self.rng.random() < 0.2:
            return self._lot_scale * self.rng.choice((1, 2, 5)) // 10
        return max(1, int(self._lot_scale * self.rng.uniform(0.0001, 5)))

    def step(self) -> SimTrade | None:
        """One random change to the book; sometimes a trade."""
        r = self.rng.random()
        side = self.bids if self.rng.random() < 0.5 else self.asks
        if r < 0.45:  # resize a level near the top
            ticks = side.at(min(len(side) - 1, int(self.rng.expovariate(0.3))))
            side.set(ticks, self._size())
        elif r < 0.65:  # new level inside the top of the book
            best, other = side.best(), (self.asks if side is self.bids else self.bids).best()
            assert best is not None and other is not None
            offset = self.rng.randrange(0, 12)
            ticks = best - offset if side.bids else best + offset
            if (side.bids and ticks < other) or (not side.bids and ticks > other):
                side.set(ticks, self._size())
        elif r < 0.85:  # cancel a level near the top
            side.set(side.at(min(len(side) - 1, self.rng.randrange(0, 15))), 0)
        else:
            return self._trade()
        self._refill(side)
        return None

    def _trade(self) -> SimTrade:
        taker = "buy" if self.rng.random() < 0.5 else "sell"
        book = self.asks if taker == "buy" else self.bids
        ticks = book.at(0)
        available = book.lots[ticks]
        lots = available if self.rng.random() < 0.3 else max(1, available // self.rng.randrange(2, 10))
        book.set(ticks, available - lots)
        self._refill(book)
        trade = SimTrade(self.next_trade_id, taker, ticks, lots, "market" if self.rng.random() < 0.6 else "limit")
        self.next_trade_id += 1
        self.trades = [*self.trades[-49:], trade]
        self.volume_lots += lots
        self.notional += ticks * lots
        self.last_ticks = ticks
        self.low_ticks = min(self.low_ticks, ticks)
        self.high_ticks = max(self.high_ticks, ticks)
        return trade

    def _refill(self, side: SideBook) -> None:
        while len(side) < BOOK_LEVELS:
            worst = side.worst()
            assert worst is not None
            ticks = worst - self._gap() if side.bids else worst + self._gap()
            if ticks < 1:
                return
            side.set(ticks, self._size())


class SimMarket:
    """Every simulated pair, stepped together."""

    def __init__(self, pairs: tuple[SimPair, ...] = DEFAULT_PAIRS, seed: int = 1) -> None:
        self.pairs = {p.symbol: p for p in pairs}
        self.symbols = {p.symbol: SymbolMarket(p, seed) for p in pairs}

    def step(self) -> dict[str, SimTrade | None]:
        """Advance each pair once; returns each pair's trade, if any."""
        return {symbol: market.step() for symbol, market in self.symbols.items()}
