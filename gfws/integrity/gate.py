"""The frame gate: what the venue sent twice, and what came out of order.

Every data frame of one connection passes here before any handler sees it.
A byte-identical data frame seen recently is a resend (by the venue or a
proxy): counted, not published.  Sequence numbers, where the venue sends
them, must grow by one: a regression is dropped, a gap is reported and the
channel's subscriptions are renewed through ``on_gap``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReactorTime

from gfws.integrity.dedup import RecentKeys
from gfws.integrity.report import IntegrityReporter
from gfws.integrity.sequence import SequenceTracker
from gfws.messages import ChannelData

# Channels whose frames carry a venue time or id: the same bytes twice are a resend.  A ticker
# frame has neither: the same ticker again later (bid 1.5, 2.0, 1.5) is data, not a duplicate.
DIGESTED = frozenset({"book", "trade"})


class FrameGate:
    def __init__(
        self,
        reporter: IntegrityReporter,
        endpoint: str,
        clock: IReactorTime,
        on_gap: Callable[[str], None],
        window: int = 100_000,
        max_age: float = 300.0,
        digests: Any = None,
    ) -> None:
        self._reporter = reporter
        self._endpoint = endpoint
        self._on_gap = on_gap
        # The frames' digests: a RecentKeys, or the dialect's compiled twin (the same rules), which
        # its compiled path checks in too: one window for both ways a frame can come.
        self.digests = RecentKeys(window, max_age, clock) if digests is None else digests
        self.sequences = SequenceTracker()

    def duplicate(self) -> None:
        """A frame seen recently: counted, not published."""
        self._reporter.counts["duplicate"] += 1

    def admit(self, message: ChannelData, recv_ts: float) -> bool:
        """False drops the message (already counted and reported)."""
        if not message.snapshot and message.channel in DIGESTED and not self.digests.first_frame(
                message.payload, recv_ts):
            self.duplicate()
            return False
        sequence = message.sequence
        if sequence is None:
            return True
        channel = message.channel
        verdict = self.sequences.check(channel, sequence, message.snapshot)
        if verdict is None:
            return True
        kind, a, b = verdict
        if kind == "regression":
            self._reporter.report("sequence_regression", f"sequence {b} after {a}", recv_ts,
                                  channel=channel, endpoint=self._endpoint)
            return False
        self._reporter.report("gap", f"missing {channel} sequence {a}..{b}", recv_ts,
                              channel=channel, endpoint=self._endpoint)
        self._on_gap(channel)
        return True
