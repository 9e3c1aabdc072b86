"""The guard in front of every connection attempt.

ClientService asks its endpoint to connect; this endpoint first asks the
``FeedEndpoint`` whether the attempt may go (breaker, budget, in use at all),
and tells it why an admitted attempt failed to connect (DNS, refused,
timeout), which ClientService itself does not pass on.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.python.failure import Failure
from zope.interface import implementer


class Gatekeeper(Protocol):
    """What the guard asks (the ``FeedEndpoint``)."""

    def admit(self) -> Exception | None:
        """None admits the attempt; an exception refuses it (it costs nothing)."""

    def connect_failed(self, failure: Failure) -> None:
        """An attempt (admitted or refused) did not connect, and why."""


@implementer(IStreamClientEndpoint)
class GuardedEndpoint:
    """Admits an attempt only when the endpoint's guard allows it, and tells
    the endpoint why an admitted attempt failed to connect."""

    def __init__(self, inner: IStreamClientEndpoint, gatekeeper: Gatekeeper) -> None:
        self._inner = inner
        self._gatekeeper = gatekeeper

    def connect(self, factory: Any) -> Deferred[Any]:
        refusal = self._gatekeeper.admit()
        if refusal is not None:
            self._gatekeeper.connect_failed(Failure(refusal))
            return fail(refusal)
        d = self._inner.connect(factory)

        def failed(failure: Failure) -> Failure:
            self._gatekeeper.connect_failed(failure)
            return failure

        return d.addErrback(failed)
