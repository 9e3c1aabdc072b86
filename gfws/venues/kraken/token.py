"""Kraken WebSocket tokens over REST (PROTOCOL.md section 5), with treq.

``POST {rest_url}/0/private/GetWebSocketsToken`` with form ``nonce``, signed:
``API-Sign = base64(HMAC-SHA512(b64decode(secret), path + SHA256(nonce + body)))``.
Callers that ask at the same time share one request; every (re)connect asks
anew (a token is good for one connection's subscriptions).  The secret is
kept out of every ``repr``, message and exception.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

from twisted.internet.defer import Deferred, inlineCallbacks
from zope.interface import implementer

from gfws.interfaces import ITokenProvider
from gfws.messages import AuthenticationError

TOKEN_PATH = "/0/private/GetWebSocketsToken"


def sign(secret: str, path: str, nonce: int, body: bytes) -> str:
    """Kraken's ``API-Sign`` of one private REST request."""
    digest = hashlib.sha256(str(nonce).encode() + body).digest()
    mac = hmac.new(base64.b64decode(secret), path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


class Nonces:
    """Strictly increasing nonces: microseconds of the wall clock, never repeating, so a
    restart within the same millisecond still sends a larger one."""

    def __init__(self, now_us: Any = lambda: time.time_ns() // 1000) -> None:
        self._now_us = now_us
        self._last = 0

    def next(self) -> int:
        self._last = max(self._last + 1, self._now_us())
        return self._last


class TokenError(AuthenticationError):
    """The venue refused to give a token; the message is the venue's own text (never a secret)."""


class Credentials:
    """An API key and its secret; the secret never appears in ``repr`` or ``str``."""

    __slots__ = ("_secret", "key")

    def __init__(self, key: str, secret: str) -> None:
        try:
            base64.b64decode(secret, validate=True)
        except ValueError:
            raise ValueError("the API secret is not base64 (as Kraken gives it)") from None
        self.key = key
        self._secret = secret

    def sign(self, path: str, nonce: int, body: bytes) -> str:
        return sign(self._secret, path, nonce, body)

    def __repr__(self) -> str:
        return f"<Credentials key={self.key[:4]}... secret=hidden>"

    __str__ = __repr__


@implementer(ITokenProvider)
class KrakenTokens:
    """Fresh tokens from Kraken's REST API; ``http`` is treq (or ``treq.testing.StubTreq``)."""

    def __init__(self, credentials: Credentials, http: Any, rest_url: str = "https://api.kraken.com",
                 nonces: Nonces | None = None, timeout: float = 10.0) -> None:
        self._credentials = credentials
        self._http = http
        self._url = rest_url.rstrip("/") + TOKEN_PATH
        self._nonces = nonces or Nonces()
        self._timeout = timeout
        self._in_flight: list[Deferred[str]] | None = None
        self.requests = 0

    def token(self) -> Deferred[str]:
        """A fresh token; callers asking while a request is in flight share its answer."""
        d: Deferred[str] = Deferred()
        if self._in_flight is not None:
            self._in_flight.append(d)
            return d
        waiting = self._in_flight = [d]

        def answer(result: Any) -> None:
            self._in_flight = None
            for each in waiting:
                each.callback(result) if isinstance(result, str) else each.errback(result)

        self._request().addBoth(answer)
        return d

    @inlineCallbacks
    def _request(self) -> Any:
        self.requests += 1
        nonce = self._nonces.next()
        body = urlencode({"nonce": nonce}).encode()
        headers = {
            "API-Key": [self._credentials.key],
            "API-Sign": [self._credentials.sign(TOKEN_PATH, nonce, body)],
            "Content-Type": ["application/x-www-form-urlencoded"],
        }
        response = yield self._http.post(self._url, data=body, headers=headers, timeout=self._timeout)
        text = yield response.content()
        try:
            answer = json.loads(text)
        except ValueError:
            raise TokenError(f"HTTP {response.code}: not JSON") from None
        errors = answer.get("error") or []
        if errors:
            raise TokenError("; ".join(str(e) for e in errors))
        token = (answer.get("result") or {}).get("token")
        if not isinstance(token, str) or not token:
            raise TokenError(f"HTTP {response.code}: no token in the answer")
        return token
