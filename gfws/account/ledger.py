"""The exactly-once ledger: every fill published, by ``exec_id``.

A fill can come back at any time: in the venue's snapshot of recent fills
after every (re)subscribe, from a second private endpoint, as a resent
execution.  So the ledger forgets by count, never by age: it keeps the
newest ``keep`` exec_ids (a million by default, far more than the venue's
50-fill snapshot can bring back).  With a ``path`` it is an SQLite file, so
a restarted process does not publish again what it published before.

A fill is published, then recorded, in one reactor turn: a crash between
the two (microseconds) would publish it once more after a restart, never
lose it; consumers may also drop repeats by ``exec_id``.
"""

from __future__ import annotations

import sqlite3
from collections import deque

from gfws.events import Fill

_SCHEMA = """CREATE TABLE IF NOT EXISTS fills (
    exec_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, symbol TEXT NOT NULL, ts TEXT NOT NULL)"""


class LedgerError(Exception):
    """The ledger file cannot be used (the message names the file and why)."""


class FillLedger:
    def __init__(self, path: str | None = None, keep: int = 1_000_000) -> None:
        self.path = path
        self.keep = keep
        self._known: set[str] = set()
        self._order: deque[str] = deque()
        self._db: sqlite3.Connection | None = None
        self.recorded = 0  # fills recorded by this process
        self.repeats = 0  # fills offered again (snapshots, a second endpoint, resends): not published
        if path is not None:
            self._open(path)

    def _open(self, path: str) -> None:
        try:
            db = sqlite3.connect(path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # a process crash loses nothing committed
            db.execute(_SCHEMA)
            rows = db.execute("SELECT exec_id FROM fills ORDER BY rowid DESC LIMIT ?", (self.keep,)).fetchall()
        except sqlite3.Error as e:
            raise LedgerError(f"{path}: not a usable fill ledger: {e}") from None
        for (exec_id,) in reversed(rows):
            self._remember(exec_id)
        self._db = db

    def __len__(self) -> int:
        return len(self._known)

    def __contains__(self, exec_id: object) -> bool:
        return exec_id in self._known

    def record(self, fill: Fill) -> None:
        """``fill`` was published: it is never published again."""
        if fill.exec_id in self._known:
            return
        self._remember(fill.exec_id)
        self.recorded += 1
        if self._db is not None:
            self._db.execute(
                "INSERT OR IGNORE INTO fills (exec_id, order_id, symbol, ts) VALUES (?, ?, ?, ?)",
                (fill.exec_id, fill.order_id, fill.symbol, fill.ts),
            )
            if self.recorded % 10_000 == 0:
                self._db.execute(
                    "DELETE FROM fills WHERE rowid <= (SELECT MAX(rowid) FROM fills) - ?", (self.keep,)
                )

    def forget(self, exec_ids: list[str]) -> None:
        """These fills never reached a consumer (a sink gave them up at shutdown): let them come again."""
        for exec_id in exec_ids:
            self._known.discard(exec_id)
        if self._db is not None and exec_ids:
            self._db.executemany("DELETE FROM fills WHERE exec_id = ?", [(e,) for e in exec_ids])

    def _remember(self, exec_id: str) -> None:
        self._known.add(exec_id)
        self._order.append(exec_id)
        if len(self._order) > self.keep:
            self._known.discard(self._order.popleft())

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
