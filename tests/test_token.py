"""Kraken WebSocket tokens: signing, nonces, one request for many callers, errors, secrecy."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs

import pytest
import pytest_twisted
from treq.client import HTTPClient
from treq.testing import StubTreq
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface.verify import verifyObject

from gfws.interfaces import ITokenProvider
from gfws.venues.kraken.token import TOKEN_PATH, Credentials, KrakenTokens, Nonces, TokenError, sign

# Kraken's published example (docs.kraken.com, spot REST authentication).
EXAMPLE_SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="


def test_signature_matches_krakens_published_example():
    body = b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
    assert sign(EXAMPLE_SECRET, "/0/private/AddOrder", 1616492376594, body) == (
        "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ==")


def test_nonces_strictly_increase_even_within_one_microsecond_and_across_a_restart():
    frozen = Nonces(now_us=lambda: 1_000)
    assert [frozen.next() for _ in range(3)] == [1_000, 1_001, 1_002]
    restarted = Nonces()
    first = restarted.next()
    assert Nonces().next() >= first  # a new process: the wall clock has not gone back


class TokenService(Resource):
    """Kraken's token endpoint, checking the signature with its own computation."""

    isLeaf = True

    def __init__(self, key: str, secret: str, answer: dict) -> None:
        super().__init__()
        self.key, self.secret, self.answer, self.seen = key, secret, answer, []
        self.held: list | None = None  # a list: answers wait until release()

    def release(self) -> None:
        held, self.held = self.held or [], None
        for request in held:
            request.write(json.dumps(self.answer).encode())
            request.finish()

    def render_POST(self, request):
        body = request.content.read()
        nonce = int(parse_qs(body.decode())["nonce"][0])
        assert request.path == TOKEN_PATH.encode()
        assert request.getHeader(b"api-key") == self.key.encode()
        assert request.getHeader(b"api-sign") == sign(self.secret, TOKEN_PATH, nonce, body).encode()
        self.seen.append(nonce)
        if self.held is not None:
            self.held.append(request)
            return NOT_DONE_YET
        return json.dumps(self.answer).encode()


def provider(answer):
    service = TokenService("my-key", EXAMPLE_SECRET, answer)
    tokens = KrakenTokens(Credentials("my-key", EXAMPLE_SECRET), StubTreq(service), rest_url="https://api.test")
    return tokens, service


def test_a_fresh_token_for_each_connect_and_one_request_for_callers_at_the_same_time():
    tokens, service = provider({"error": [], "result": {"token": "tok-1", "expires": 900}})
    assert verifyObject(ITokenProvider, tokens)
    service.held = []  # the venue takes its time to answer...
    a, b = tokens.token(), tokens.token()  # ...while two connections ask at once
    results = []
    a.addCallback(results.append), b.addCallback(results.append)
    tokens._http.flush()
    assert results == [] and len(service.seen) == 1
    service.release()
    tokens._http.flush()
    assert results == ["tok-1", "tok-1"] and tokens.requests == 1
    c = tokens.token()  # a later (re)connect asks anew
    tokens._http.flush()
    assert c.result == "tok-1" and tokens.requests == 2
    assert service.seen[0] < service.seen[1]  # increasing nonces


@pytest.mark.parametrize("error", ["EAPI:Invalid key", "EGeneral:Permission denied", "EAPI:Invalid nonce"])
def test_a_refusal_is_the_venues_own_words_and_never_the_secret(error):
    tokens, _ = provider({"error": [error], "result": {}})
    failures = []
    tokens.token().addErrback(failures.append)
    tokens._http.flush()
    (failure,) = failures
    assert failure.check(TokenError) and str(failure.value) == error
    decoded = base64.b64decode(EXAMPLE_SECRET)
    for text in (str(failure.value), repr(failure.value), repr(tokens._credentials), str(tokens._credentials),
                 repr(tokens)):
        assert EXAMPLE_SECRET not in text and decoded.hex() not in text


def test_a_secret_that_is_not_base64_is_refused_without_showing_it():
    with pytest.raises(ValueError, match="not base64") as caught:
        Credentials("key", "not a secret!!")
    assert "not a secret" not in str(caught.value)


@pytest_twisted.inlineCallbacks
def test_a_token_from_a_real_http_server_on_loopback():
    from twisted.internet import reactor
    from twisted.web.server import Site

    service = TokenService("my-key", EXAMPLE_SECRET, {"error": [], "result": {"token": "tok-live", "expires": 900}})
    root = Resource()
    zero = Resource()
    root.putChild(b"0", zero)
    private = Resource()
    zero.putChild(b"private", private)
    private.putChild(b"GetWebSocketsToken", service)
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    pool = HTTPConnectionPool(reactor, persistent=False)
    try:
        http = HTTPClient(Agent(reactor, pool=pool))
        tokens = KrakenTokens(Credentials("my-key", EXAMPLE_SECRET), http,
                              rest_url=f"http://127.0.0.1:{port.getHost().port}")
        token = yield tokens.token()
        assert token == "tok-live" and len(service.seen) == 1
    finally:
        yield pool.closeCachedConnections()
        yield port.stopListening()
