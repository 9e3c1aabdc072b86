"""Tokens for account channels, for every connection of a feed.

A session asks for a token when its first account subscription is about to
leave, and again for any later request once the token is older than the
venue's validity: a token older than that is never used.  A refusal (a key
without WebSocket permission, a wrong secret, a bad nonce, the REST API
unreachable) is said once, at error level and as an ``error`` event in the
venue's words, until a token is given again; the connection that needed
it is then given up, so the endpoint's backoff and breaker count it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from gfws.interfaces import ITokenProvider
from gfws.messages import AuthenticationError

TOKEN_VALIDITY = 900.0  # seconds a Kraken token may wait before its first use (PROTOCOL.md section 5)

Refused = Callable[[str], None]
"""Told once per run of refusals, with the venue's text."""


class Authenticator:
    log = Logger()

    def __init__(self, provider: ITokenProvider, clock: IReactorTime, on_refused: Refused = lambda text: None,
                 validity: float = TOKEN_VALIDITY) -> None:
        self._provider = provider
        self._clock = clock
        self._on_refused = on_refused
        self.validity = validity
        self.requests = 0
        self.failures = 0
        self.last_failure: str | None = None
        self.last_token_at: float | None = None

    def token(self) -> Deferred[tuple[str, float]]:
        """A fresh token and when it was given."""
        self.requests += 1
        d: Deferred[Any] = self._provider.token()
        return d.addCallbacks(self._given, self._refused)

    def _given(self, token: str) -> tuple[str, float]:
        now = self._clock.seconds()
        if self.last_failure is not None:
            self.log.info("token given again after {failures} refusal(s)", failures=self.failures)
        self.last_failure = None
        self.last_token_at = now
        return token, now

    def _refused(self, failure: Failure) -> Failure:
        self.failures += 1
        text = failure.getErrorMessage() or failure.type.__name__  # type: ignore[union-attr]
        if not failure.check(AuthenticationError):  # the REST API unreachable, a timeout...
            text = f"no token: {text}"
        if text != self.last_failure:
            self.last_failure = text
            self.log.error("authentication refused: {text}", text=text)
            self._on_refused(text)
        return Failure(AuthenticationError(text))


class ConnectionToken:
    """One connection's token: asked for when first needed, renewed once too old to be used."""

    def __init__(self, authenticator: Authenticator, clock: IReactorTime) -> None:
        self._authenticator = authenticator
        self._clock = clock
        self._token: str | None = None
        self._given_at = 0.0

    def get(self) -> Deferred[str]:
        token = self._token
        if token is not None and self._clock.seconds() - self._given_at < self._authenticator.validity:
            return succeed(token)

        def given(answer: tuple[str, float]) -> str:
            self._token, self._given_at = answer
            return answer[0]

        return self._authenticator.token().addCallback(given)
