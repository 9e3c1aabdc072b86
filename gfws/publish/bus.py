"""The publisher adapter every handler publishes through.

In-process subscribers are called synchronously, in publish order, so a
strategy sees an event with no added latency.  Sinks (files, brokers) get
events in batches: the first event of a batch schedules one flush for the
end of the current reactor turn, so a burst of WebSocket frames read
together becomes one write; a full batch is flushed at once.  Nothing here
creates a Deferred, task or thread per event.  ``publish`` is compiled
(``_bus.c``, built as ``_gfws_bus``) where it was built at install, and
Python otherwise (or with ``GFWS_PURE_PYTHON=1``): the same calls, counts
and errors.

A sink's ``flush`` and ``close`` may return a Deferred (a broker's write is
not done when the call returns).  A flush is not waited for: the next batch
goes out on the next turn regardless, and a failure is logged and counted.
``close`` waits for every sink's close and returns a Deferred for that.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from gfws.events import EVENT_TYPES, Event
from gfws.interfaces import IEventSink

Subscriber = Callable[[Event], object]


def _compiled() -> Any:
    """The compiled publish, unless not built here (no C compiler at install) or GFWS_PURE_PYTHON=1."""
    if os.environ.get("GFWS_PURE_PYTHON"):
        return None
    try:
        from _gfws_bus import Fanout  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Fanout


FANOUT: Any = _compiled()


class Publisher:
    """The feed's bus.  ``publish`` is chosen when a publisher is made (the compiled one, or ``_publish``)
    and is an attribute of the instance: to wrap it, wrap that attribute, not the class's method."""

    log = Logger()

    def __init__(self, clock: IReactorTime, max_batch: int = 1000) -> None:
        self._clock = clock
        self._max_batch = max_batch
        self._by_type: dict[type, list[Subscriber]] = {cls: [] for cls in EVENT_TYPES.values()}
        self._dispatch: dict[type, tuple[Subscriber, ...]] = {cls: () for cls in EVENT_TYPES.values()}
        self._sinks: list[IEventSink] = []
        self._pending: list[Event] = []
        self._flush_call: IDelayedCall | None = None
        # A plain dict with every type in it (a Counter's lookups are not the interpreter's fast dict path).
        self._published: dict[type, int] = dict.fromkeys(EVENT_TYPES.values(), 0)
        self.subscriber_errors = 0
        self.sink_errors = 0
        self._fanout = FANOUT(self._subscriber_failed) if FANOUT is not None else None
        # Every event's one call: compiled where built.
        self.publish: Callable[[Event], None] = self._fanout if self._fanout is not None else self._publish
        self._rebuild()

    def subscribe(self, callback: Subscriber, *types: str) -> Callable[[], None]:
        """Call ``callback(event)`` for events of ``types`` (all when none given).

        Returns a function that cancels the subscription.
        """
        unknown = set(types) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event type(s) {sorted(unknown)}; known: {sorted(EVENT_TYPES)}")
        classes = [EVENT_TYPES[t] for t in types] or list(EVENT_TYPES.values())
        for cls in classes:
            self._by_type[cls].append(callback)
        self._rebuild()

        def unsubscribe() -> None:
            for cls in classes:
                if callback in self._by_type[cls]:
                    self._by_type[cls].remove(callback)
            self._rebuild()

        return unsubscribe

    def _rebuild(self) -> None:
        self._dispatch = {cls: tuple(subs) for cls, subs in self._by_type.items()}
        if self._fanout is not None:
            self._fanout.route(self._dispatch)

    def add_sink(self, sink: IEventSink) -> None:
        self._sinks.append(sink)
        if self._fanout is not None:
            self._fanout.queue = self._queue

    @property
    def sinks(self) -> tuple[IEventSink, ...]:
        return tuple(self._sinks)

    @property
    def compiled(self) -> bool:
        """Whether ``publish`` is the compiled one."""
        return self._fanout is not None

    @property
    def published(self) -> Counter[str]:
        """Events published so far, by type name."""
        counts: dict[Any, int] = self._fanout.counts() if self._fanout is not None else self._published
        return Counter({cls.__struct_config__.tag: n for cls, n in counts.items() if n})

    def _publish(self, event: Event) -> None:
        """``publish`` where it is not compiled (the compiled one does the same)."""
        kind = type(event)
        self._published[kind] += 1
        for subscriber in self._dispatch[kind]:
            try:
                subscriber(event)
            except Exception as e:
                self._subscriber_failed(subscriber, e)
        if self._sinks:
            self._queue(event)

    def _subscriber_failed(self, subscriber: Subscriber, error: BaseException) -> None:
        self.subscriber_errors += 1
        if self.subscriber_errors == 1 or self.subscriber_errors % 1000 == 0:
            self.log.failure(
                "subscriber {subscriber!r} raised ({count} so far); the feed goes on",
                Failure(error),
                subscriber=subscriber,
                count=self.subscriber_errors,
            )

    def _queue(self, event: Event) -> None:
        """Batch ``event`` for the sinks: flushed at the end of this reactor turn, or now if full."""
        pending = self._pending
        pending.append(event)
        if len(pending) >= self._max_batch:
            self.flush()
        elif self._flush_call is None:
            self._flush_call = self._clock.callLater(0, self.flush)

    def flush(self) -> None:
        """Hand the pending batch to every sink and flush them.

        A sink's flush that returns a Deferred is not waited for; its failure
        is logged and counted in ``sink_errors``.  One sink failing never
        keeps the batch from the others.
        """
        if self._flush_call is not None:
            if self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
        batch, self._pending = self._pending, []
        for sink in self._sinks:
            try:
                if batch:
                    sink.write(batch)
                flushed = sink.flush()
            except Exception:
                self.sink_errors += 1
                self.log.failure("sink {sink!r} failed to take {n} events", sink=sink, n=len(batch))
                continue
            if isinstance(flushed, Deferred):
                flushed.addErrback(self._sink_failed, sink, "flush")

    def close(self) -> Deferred[None]:
        """Flush what is pending, then close every sink.

        The Deferred returned fires (with None, never with a failure) once
        every sink's close has finished, at once for sinks that close
        synchronously, when its Deferred fires for those that return one.  A
        failed close is logged and counted in ``sink_errors``; the other sinks
        are closed all the same.
        """
        self.flush()
        closing: list[Deferred[None]] = []
        sinks, self._sinks = self._sinks, []  # closed sinks are forgotten (a restart adds new ones)
        if self._fanout is not None:
            self._fanout.queue = None
        for sink in sinks:
            try:
                closed = sink.close()
            except Exception:
                self._sink_failed(Failure(), sink, "close")
                continue
            if isinstance(closed, Deferred):
                closing.append(closed.addErrback(self._sink_failed, sink, "close"))
        done: Deferred[None] = DeferredList(closing, consumeErrors=True).addCallback(lambda _: None)
        return done

    def _sink_failed(self, failure: Failure, sink: IEventSink, what: str) -> None:
        """Count and log a sink's failure to ``what`` (flush, close); it goes no further."""
        self.sink_errors += 1
        self.log.failure("sink {sink!r} failed to {what}", failure, sink=sink, what=what)
