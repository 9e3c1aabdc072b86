"""The simulator's Kraken REST token endpoint (PROTOCOL.md section 5).

``POST /0/private/GetWebSocketsToken`` checks the API key, the ``API-Sign``
(``base64(HMAC-SHA512(b64decode(secret), path + SHA256(nonce + body)))``) and
a strictly increasing nonce per key, and answers as Kraken does: HTTP 200 and
``{"error": [...], "result": {...}}``.  Its own signing code, not the
client's: the simulator is the oracle the client is checked against.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import parse_qs

import msgspec
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

TOKEN_PATH = "/0/private/GetWebSocketsToken"
TOKEN_LIFETIME = 900
"""Seconds a token may be used to subscribe, from its issue (Kraken: 15 minutes)."""


def api_sign(secret: str, path: str, nonce: str, body: bytes) -> str:
    """Kraken's ``API-Sign`` of one private REST request."""
    digest = hashlib.sha256(nonce.encode() + body).digest()
    mac = hmac.new(base64.b64decode(secret), path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


class TokenLedger:
    """Who may have a WebSocket token, and which tokens are good now.

    A token is good for subscribing for ``TOKEN_LIFETIME`` seconds of the
    clock after its issue, unless expired or invalidated early (the faults).
    """

    def __init__(self, clock: IReactorTime, keys: Mapping[str, str], seed: int = 1) -> None:
        self._clock = clock
        self._keys = dict(keys)
        self._rng = random.Random(f"{seed}:tokens")
        self._last_nonce: dict[str, int] = {}
        self._expiry: dict[str, float] = {}  # token -> when it stops being good
        self._refusals = 0  # the next requests refused with _refusal
        self._refusal = ""
        self.issued = 0

    def answer(self, key: str | None, signature: str | None, body: bytes) -> dict[str, Any]:
        """Kraken's JSON answer to one token request."""
        if self._refusals > 0:
            self._refusals -= 1
            return {"error": [self._refusal]}
        if key is None or key not in self._keys:
            return {"error": ["EAPI:Invalid key"]}
        try:
            nonces = parse_qs(body.decode("ascii"), strict_parsing=True).get("nonce", [])
        except (UnicodeDecodeError, ValueError):
            nonces = []
        if len(nonces) != 1 or not nonces[0].isdigit():
            return {"error": ["EAPI:Invalid nonce"]}
        expected = api_sign(self._keys[key], TOKEN_PATH, nonces[0], body)
        if signature is None or not hmac.compare_digest(expected.encode(), signature.encode()):
            return {"error": ["EAPI:Invalid signature"]}
        nonce = int(nonces[0])
        if nonce <= self._last_nonce.get(key, 0):
            return {"error": ["EAPI:Invalid nonce"]}
        self._last_nonce[key] = nonce
        return {"error": [], "result": {"token": self.issue(), "expires": TOKEN_LIFETIME}}

    def issue(self) -> str:
        """A new token (random-looking, the same for the same seed)."""
        token = base64.b64encode(self._rng.randbytes(30)).decode()
        self._expiry[token] = self._clock.seconds() + TOKEN_LIFETIME
        self.issued += 1
        return token

    def valid(self, token: str) -> bool:
        return self._clock.seconds() < self._expiry.get(token, float("-inf"))

    def expire_all(self) -> None:
        now = self._clock.seconds()
        self._expiry = {token: min(at, now) for token, at in self._expiry.items()}

    def invalidate_all(self) -> None:
        """Forget every token (as after a venue upgrade: ``ESession:Invalid session``)."""
        self._expiry.clear()

    def refuse(self, n: int, error: str) -> None:
        """Answer the next ``n`` requests with ``error`` (0: stop refusing)."""
        self._refusals, self._refusal = n, error


class TokenIssuer(Protocol):
    """What the token endpoint needs of an account (``SimAccount`` is one)."""

    @property
    def tokens(self) -> TokenLedger: ...


class TokenResource(Resource):
    """``POST /0/private/GetWebSocketsToken`` for one account; put it at the site's root."""

    isLeaf = True

    def __init__(self, account: TokenIssuer) -> None:
        super().__init__()
        self._account = account

    def render_POST(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        if request.path != TOKEN_PATH.encode():
            request.setResponseCode(404)
            return msgspec.json.encode({"error": ["EGeneral:Unknown method"]})
        body = request.content.read() if request.content is not None else b""
        answer = self._account.tokens.answer(_header(request, b"API-Key"), _header(request, b"API-Sign"), body)
        return msgspec.json.encode(answer)


def _header(request: Request, name: bytes) -> str | None:
    value = request.getHeader(name)
    return value.decode("latin-1") if value is not None else None


class TokenService(Service):
    """The token endpoint listening on TCP; ``url`` is its base (``http://127.0.0.1:PORT``)."""

    log = Logger()

    def __init__(self, account: TokenIssuer, port: int = 0, interface: str = "127.0.0.1", reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self.requested_port = port
        self.interface = interface
        self.site = Site(TokenResource(account))
        self.site.noisy = False
        self._listening: Any = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://{self.interface}:{self.port}"

    def startService(self) -> None:
        super().startService()
        self._listening = self._reactor.listenTCP(self.requested_port, self.site, interface=self.interface)
        self.port = self._listening.getHost().port
        self.log.info("Kraken token endpoint on {url}{path}", url=self.url, path=TOKEN_PATH)

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        listening, self._listening = self._listening, None
        if listening is None:
            return succeed(None)
        stopped: Deferred[Any] = listening.stopListening()
        return stopped
