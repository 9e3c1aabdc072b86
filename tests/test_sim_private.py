"""The simulator's private side: tokens over REST, the executions channel, its faults."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections import defaultdict
from decimal import Decimal

import pytest
import pytest_twisted
from treq.client import HTTPClient
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool

from gfws.sim import DEMO_KEY, DEMO_SECRET, SimAccount, SimulatorService, SimVenue, TokenService
from gfws.sim.faults import FaultSchedule, parse_fault
from gfws.sim.tokens import TokenResource, api_sign

PATH = "/0/private/GetWebSocketsToken"
START = 1_700_000_000
KRAKEN_ID = re.compile(r"^[A-Z0-9]{6}-[A-Z0-9]{5}-[A-Z0-9]{6}$")


def kraken_sign(secret: str, nonce: int, body: bytes, path: str = PATH) -> str:
    """Kraken's formula, written here apart from the simulator's."""
    message = path.encode() + hashlib.sha256(str(nonce).encode() + body).digest()
    return base64.b64encode(hmac.new(base64.b64decode(secret), message, hashlib.sha512).digest()).decode()


def fired(d):
    """The result of a Deferred that has fired already (StubTreq answers at once)."""
    out = []
    d.addBoth(out.append)
    assert out, "the Deferred has not fired"
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


class Private:
    """A venue with an account, and one connection driven directly (no socket)."""

    def __init__(self, seed: int = 1) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.venue = SimVenue(clock=self.clock, seed=seed)
        self.account = SimAccount(self.clock, seed=seed)
        self.venue.account = self.account
        self.raw: list[bytes] = []
        self.session = self.venue.connect(self.raw.append)
        self.nonce = 0

    def ask(self, key: str = DEMO_KEY, secret: str = DEMO_SECRET, nonce: int | None = None) -> dict:
        self.nonce = nonce if nonce is not None else self.nonce + 1
        body = f"nonce={self.nonce}".encode()
        return self.account.tokens.answer(key, kraken_sign(secret, self.nonce, body), body)

    def token(self) -> str:
        return self.ask()["result"]["token"]

    def send(self, method: str, req_id: int = 1, **params) -> dict:
        request = {"method": method, "params": {"channel": "executions", **params}, "req_id": req_id}
        self.session.request_received(json.dumps(request).encode())
        return self.frames[-1] if self.frames[-1].get("method") else self.acks[-1]

    @property
    def frames(self) -> list[dict]:
        return [json.loads(p, parse_float=Decimal) for p in self.raw]

    @property
    def acks(self) -> list[dict]:
        return [f for f in self.frames if "method" in f]

    @property
    def executions(self) -> list[dict]:
        return [f for f in self.frames if f.get("channel") == "executions"]


# -- tokens -----------------------------------------------------------------


def test_the_simulators_signature_matches_krakens_published_example():
    secret = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
    body = b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
    assert api_sign(secret, "/0/private/AddOrder", "1616492376594", body) == (
        "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ==")


def test_a_rightly_signed_request_gets_a_token_for_900_seconds():
    p = Private()
    answer = p.ask()
    assert answer["error"] == [] and answer["result"]["expires"] == 900
    token = answer["result"]["token"]
    assert isinstance(token, str) and len(token) >= 30 and p.account.tokens_issued == 1
    assert p.account.accepts(token) and p.token() != token


def test_a_wrong_signature_is_refused_and_gives_no_token():
    p = Private()
    other = base64.b64encode(b"x" * 64).decode()
    assert p.ask(secret=other) == {"error": ["EAPI:Invalid signature"]}
    body = b"nonce=5"
    tampered = kraken_sign(DEMO_SECRET, 5, body, path="/0/private/Balance")
    assert p.account.tokens.answer(DEMO_KEY, tampered, body) == {"error": ["EAPI:Invalid signature"]}
    assert p.account.tokens.answer(DEMO_KEY, None, body) == {"error": ["EAPI:Invalid signature"]}
    assert p.account.tokens_issued == 0
    assert "result" in p.ask(nonce=5)  # a refused request did not use up its nonce


def test_a_nonce_must_grow_strictly_per_key():
    p = Private()
    assert "result" in p.ask(nonce=100)
    assert p.ask(nonce=100) == {"error": ["EAPI:Invalid nonce"]}  # replayed
    assert p.ask(nonce=99) == {"error": ["EAPI:Invalid nonce"]}
    assert "result" in p.ask(nonce=101)
    assert p.account.tokens.answer(DEMO_KEY, "x", b"nonce=abc") == {"error": ["EAPI:Invalid nonce"]}
    assert p.account.tokens.answer(DEMO_KEY, "x", b"") == {"error": ["EAPI:Invalid nonce"]}
    assert p.account.tokens_issued == 2


def test_an_unknown_key_is_refused():
    clock = Clock()
    account = SimAccount(clock, keys={"mine": DEMO_SECRET})
    body = b"nonce=1"
    sign = kraken_sign(DEMO_SECRET, 1, body)
    assert account.tokens.answer(DEMO_KEY, sign, body) == {"error": ["EAPI:Invalid key"]}
    assert account.tokens.answer(None, sign, body) == {"error": ["EAPI:Invalid key"]}
    assert "result" in account.tokens.answer("mine", sign, body)


def test_refuse_tokens_answers_the_next_n_requests_with_the_error():
    p = Private()
    p.account.refuse_tokens(2)
    assert p.ask() == {"error": ["EGeneral:Permission denied"]}
    assert p.ask() == {"error": ["EGeneral:Permission denied"]}
    assert "result" in p.ask()
    p.account.refuse_tokens(1, error="EAPI:Rate limit exceeded")
    assert p.ask() == {"error": ["EAPI:Rate limit exceeded"]}
    assert p.account.tokens_issued == 1


def test_tokens_expire_900_seconds_after_issue_on_the_clock():
    p = Private()
    token = p.token()
    p.clock.advance(899.9)
    assert p.account.accepts(token)
    p.clock.advance(0.1)
    assert not p.account.accepts(token)
    refused = p.send("subscribe", token=token)
    assert refused["success"] is False and refused["error"] == "ESession:Invalid session"
    fresh = p.token()
    p.account.expire_tokens()
    assert not p.account.accepts(fresh) and p.send("subscribe", token=fresh)["success"] is False


def test_the_token_resource_reads_kraken_headers_in_memory():
    account = SimAccount(Clock())
    http = StubTreq(TokenResource(account))
    body = b"nonce=7"
    headers = {"API-Key": [DEMO_KEY], "API-Sign": [kraken_sign(DEMO_SECRET, 7, body)],
               "Content-Type": ["application/x-www-form-urlencoded"]}
    response = fired(http.post("http://sim" + PATH, data=body, headers=headers))
    assert response.code == 200
    answer = json.loads(fired(response.content()))
    assert answer["error"] == [] and account.accepts(answer["result"]["token"])
    refused = fired(http.post("http://sim" + PATH, data=b"nonce=8", headers={"API-Key": ["?"]}))
    assert refused.code == 200 and json.loads(fired(refused.content())) == {
        "error": ["EAPI:Invalid key"]}
    elsewhere = fired(http.post("http://sim/0/private/Balance", data=body, headers=headers))
    assert elsewhere.code == 404


@pytest_twisted.inlineCallbacks
def test_a_token_from_the_token_service_over_real_http_on_loopback():
    from twisted.internet import reactor

    account = SimAccount(reactor)
    service = TokenService(account, port=0)
    service.startService()
    pool = HTTPConnectionPool(reactor, persistent=False)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", service.url)
        http = HTTPClient(Agent(reactor, pool=pool))
        body = b"nonce=42"
        headers = {"API-Key": [DEMO_KEY], "API-Sign": [kraken_sign(DEMO_SECRET, 42, body)],
                   "Content-Type": ["application/x-www-form-urlencoded"]}
        response = yield http.post(service.url + PATH, data=body, headers=headers)
        answer = yield response.json()
        assert response.code == 200 and answer["error"] == [] and answer["result"]["expires"] == 900
        assert account.accepts(answer["result"]["token"]) and account.tokens_issued == 1
    finally:
        yield pool.closeCachedConnections()
        yield service.stopService()


# -- the executions channel ---------------------------------------------------


def test_subscribe_with_a_valid_token_is_acked_as_kraken_does():
    p = Private()
    ack = p.send("subscribe", req_id=9, token=p.token())
    assert ack["success"] is True and ack["req_id"] == 9 and "time_in" in ack and "time_out" in ack
    assert ack["result"] == {"channel": "executions", "maxratecount": 125, "snap_orders": True, "snap_trades": False}
    assert p.session.executions and p.account.subscribers == (p.session,)


@pytest.mark.parametrize("params, error", [
    ({"token": "not-a-token"}, "ESession:Invalid session"),
    ({}, "EGeneral:Invalid arguments:token"),
    ({"token": ""}, "EGeneral:Invalid arguments:token"),
    ({"token": "TOKEN", "snap_trades": "yes"}, "EGeneral:Invalid arguments:snap_trades"),
])
def test_subscribe_without_a_good_token_is_refused(params, error):
    p = Private()
    if params.get("token") == "TOKEN":
        params["token"] = p.token()
    ack = p.send("subscribe", req_id=4, **params)
    assert ack["success"] is False and ack["error"] == error and ack["req_id"] == 4
    assert ack["method"] == "subscribe" and "time_in" in ack and "time_out" in ack
    p.account.burst(3)
    assert p.executions == [] and not p.session.executions


def test_a_venue_without_account_refuses_every_token():
    venue = SimVenue(clock=Clock())
    frames = []
    session = venue.connect(lambda payload: frames.append(json.loads(payload)))
    request = {"method": "subscribe", "params": {"channel": "executions", "token": "t"}, "req_id": 1}
    session.request_received(json.dumps(request).encode())
    assert frames[-1]["success"] is False and frames[-1]["error"] == "ESession:Invalid session"


def test_unsubscribe_needs_the_token_too_and_stops_the_stream():
    p = Private()
    token = p.token()
    p.send("subscribe", token=token, snap_orders=False)
    p.account.burst(2)
    sent = len(p.executions)
    assert p.send("unsubscribe", token="wrong")["error"] == "ESession:Invalid session"
    p.clock.advance(1000)  # the token expired, but it is this live subscription's own
    ack = p.send("unsubscribe", req_id=3, token=token)
    assert ack["success"] is True and ack["result"] == {"channel": "executions"} and ack["req_id"] == 3
    p.account.burst(2)
    assert len(p.executions) == sent and p.account.subscribers == ()
    again = p.send("unsubscribe", token=p.token())
    assert again["success"] is False and again["error"] == "Subscription Not Found"


def test_a_burst_makes_exactly_n_fills_with_consistent_orders():
    p = Private()
    p.send("subscribe", token=p.token(), snap_orders=False)
    p.account.burst(400)
    p.account.burst(1)
    account = p.account
    assert len(account.fills) == 401
    assert [e for e in account.executions if e["exec_type"] == "trade"] == account.fills
    by_order: dict[str, list[dict]] = defaultdict(list)
    for e in account.executions:
        by_order[e["order_id"]].append(e)
    for order_id, executions in by_order.items():
        order = account.orders[order_id]
        kinds = [e["exec_type"] for e in executions]
        assert kinds[:2] == ["pending_new", "new"] and set(kinds[2:-1]) <= {"trade"}, kinds
        fills = [e for e in executions if e["exec_type"] == "trade"]
        assert order["cum_qty"] == sum(f["last_qty"] for f in fills)
        assert order["cum_cost"] == sum(f["cost"] for f in fills)
        assert all(f["cost"] == f["last_qty"] * f["last_price"] for f in fills)
        assert [f["cum_qty"] for f in fills] == [sum(g["last_qty"] for g in fills[:i + 1]) for i in range(len(fills))]
        assert (order["order_status"] == "filled") == (order["cum_qty"] == order["order_qty"])
        if kinds[-1] == "canceled":
            assert order["order_status"] == "canceled" and 0 < order["cum_qty"] < order["order_qty"]
            assert executions[-1]["cum_qty"] == order["cum_qty"] and executions[-1]["reason"]
        for f in fills:
            assert f["order_status"] == ("filled" if f["cum_qty"] == order["order_qty"] else "partially_filled")
            assert f["fees"] == [{"asset": "USD", "qty": f["fee_usd_equiv"]}] and f["liquidity_ind"] in ("t", "m")
            assert KRAKEN_ID.match(f["exec_id"]) and f["exec_id"].startswith("T") and isinstance(f["trade_id"], int)
        assert KRAKEN_ID.match(order_id) and order_id.startswith("O")
    closed = [o for o in account.orders.values() if o["order_status"] in ("filled", "canceled")]
    canceled = sum(o["order_status"] == "canceled" for o in closed)
    assert 0.1 < canceled / len(closed) < 0.3  # about one in five
    # Each execution its own message, numbered +1 per message on this connection, as sent.
    updates = p.executions
    assert [m["data"] for m in updates] == [[e] for e in account.executions]
    assert [m["sequence"] for m in updates] == list(range(1, len(updates) + 1))
    assert len({f["exec_id"] for f in account.fills}) == 401


def test_numbers_go_out_as_exact_json_numbers_and_the_same_seed_trades_the_same():
    def run(seed):
        p = Private(seed)
        p.send("subscribe", token=p.token(), snap_orders=False)
        p.account.burst(30)
        return p

    a, b, c = run(3), run(3), run(4)
    assert a.raw == b.raw and a.account.executions != c.account.executions
    pending = next(e for e in a.account.executions if e["exec_type"] == "pending_new")
    assert {"symbol", "side", "order_type", "order_qty", "limit_price", "cl_ord_id", "time_in_force", "order_userref",
            "order_id", "timestamp"} <= set(pending)
    new = next(e for e in a.account.executions if e["exec_type"] == "new")
    assert set(new) == {"timestamp", "order_status", "exec_type", "order_userref", "order_id"}
    text = b"".join(a.raw)
    assert b'"last_qty":"' not in text and b"e-" not in text and b"E" not in re.sub(rb'"[^"]*"', b"", text)
    fill = a.account.fills[0]
    assert isinstance(fill["last_price"], Decimal) and fill["symbol"] in ("BTC/USD", "ETH/USD")
    market = a.venue.market.symbols[fill["symbol"]]
    scale = Decimal(10) ** -market.pair.price_precision
    assert abs(fill["last_price"] - market.last_ticks * scale) <= 10 * scale  # near the market's price
    stamps = [e["timestamp"] for e in a.account.executions]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_a_snapshot_holds_the_open_orders_and_the_last_50_fills_then_updates_continue():
    p = Private()
    p.account.burst(80)
    p.send("subscribe", token=p.token(), snap_trades=True)
    snapshot = p.executions[0]
    assert snapshot["type"] == "snapshot" and snapshot["sequence"] == 1
    open_orders = {o: s for o, s in p.account.orders.items() if s["order_status"] in ("new", "partially_filled")}
    assert open_orders  # the burst stops with orders still working
    trades = [i for i in snapshot["data"] if i["exec_type"] == "trade"]
    orders = [i for i in snapshot["data"] if i["exec_type"] != "trade"]
    assert trades == p.account.fills[-50:]
    assert {i["order_id"]: i for i in orders} == {o: {**s, "exec_type": "new"} for o, s in open_orders.items()}
    p.account.burst(1)
    assert [m["sequence"] for m in p.executions[1:]] == list(range(2, len(p.executions) + 1))
    assert all(m["type"] == "update" for m in p.executions[1:])


def test_snapshot_defaults_and_a_resubscribe_gets_the_next_number():
    p = Private()
    p.account.burst(5)
    token = p.token()
    p.send("subscribe", token=token)  # defaults: open orders, no fills
    first = p.executions[0]
    assert first["sequence"] == 1 and all(i["exec_type"] == "new" for i in first["data"])
    p.account.burst(1)
    last = p.executions[-1]["sequence"]
    ack = p.send("subscribe", token=token, snap_orders=False, snap_trades=True)
    assert ack["success"] is True and ack["result"]["snap_trades"] is True
    again = p.executions[-1]
    assert again["type"] == "snapshot" and again["sequence"] == last + 1
    assert again["data"] == p.account.fills[-50:]
    q = Private()
    q.send("subscribe", token=q.token(), snap_orders=False)  # nothing asked for: no snapshot
    q.account.burst(1)
    assert q.executions[0]["type"] == "update" and q.executions[0]["sequence"] == 1


# -- faults -------------------------------------------------------------------


def test_invalidated_tokens_are_refused_but_live_subscriptions_go_on():
    p = Private()
    token = p.token()
    p.send("subscribe", token=token, snap_orders=False)
    spare = p.token()
    p.account.invalidate_sessions()
    other = p.venue.connect(lambda payload: None)
    request = {"method": "subscribe", "params": {"channel": "executions", "token": spare}}
    other.request_received(json.dumps(request).encode())
    assert not other.executions
    p.account.burst(3)
    assert sum(i["exec_type"] == "trade" for m in p.executions for i in m["data"]) == 3
    assert p.send("subscribe", token=token)["error"] == "ESession:Invalid session"
    assert p.send("subscribe", token=p.token())["success"] is True  # a new token works


def test_drop_after_k_fills_drops_every_executions_subscriber_and_trading_goes_on():
    p = Private()
    p.send("subscribe", token=p.token(), snap_orders=False)
    dropped = []
    public = p.venue.connect(lambda payload: None, drop=lambda: dropped.append("public"))
    second = []
    other = p.venue.connect(second.append, drop=lambda: dropped.append("other"))
    request = {"method": "subscribe", "params": {"channel": "executions", "token": p.token(), "snap_orders": False}}
    other.request_received(json.dumps(request).encode())
    p.account.drop_after(3)
    p.account.burst(10)
    received = [i for m in p.executions for i in m["data"] if i["exec_type"] == "trade"]
    assert received == p.account.fills[:3] and len(p.account.fills) == 10
    assert p.session.closed and other.closed and not public.closed and dropped == ["other"]
    assert p.account.subscribers == () and p.session not in p.venue.sessions
    heard = len(second)
    p.account.burst(2)  # trading goes on, unheard
    assert len(p.account.fills) == 12 and len(second) == heard


def test_drop_after_zero_drops_now_and_a_resubscriber_hears_again():
    p = Private()
    p.send("subscribe", token=p.token(), snap_orders=False)
    p.account.drop_after(0)
    assert p.session.closed
    frames = []
    again = p.venue.connect(lambda payload: frames.append(json.loads(payload)))
    request = {"method": "subscribe", "params": {"channel": "executions", "token": p.token(), "snap_trades": True}}
    again.request_received(json.dumps(request).encode())
    p.account.burst(2)
    assert sum(i["exec_type"] == "trade" for f in frames if f.get("channel") == "executions" for i in f["data"]) == 2


def test_skip_sequence_leaves_a_gap_of_one():
    p = Private()
    p.send("subscribe", token=p.token(), snap_orders=False)
    p.account.burst(1)
    sent = len(p.account.executions)
    p.account.skip_sequence()
    p.account.burst(2)
    sequences = [m["sequence"] for m in p.executions]
    assert sequences[:sent] == list(range(1, sent + 1))
    assert sequences[sent] == sent + 2 and sequences[sent:] == list(range(sent + 2, len(p.account.executions) + 1))
    assert p.account.executions[sent] not in [i for m in p.executions for i in m["data"]]


def test_duplicate_next_sends_the_next_k_messages_twice_byte_for_byte():
    p = Private()
    p.send("subscribe", token=p.token(), snap_orders=False)
    p.account.burst(1)
    before, made = len(p.raw), len(p.account.executions)
    p.account.duplicate_next(2)
    p.account.burst(3)
    new = p.raw[before:]
    assert new[0] == new[1] and new[2] == new[3] and new[3] != new[4]
    sequences = [json.loads(m)["sequence"] for m in new]
    assert sequences[:5] == [sequences[0]] * 2 + [sequences[0] + 1] * 2 + [sequences[0] + 2]
    assert len(new) == len(p.account.executions) - made + 2


def test_resend_fill_sends_an_old_fill_again_with_a_new_sequence_number():
    p = Private()
    p.send("subscribe", token=p.token(), snap_orders=False)
    p.account.burst(3)
    first = p.account.fills[0]
    p.account.resend_fill(first["exec_id"])
    last = p.executions[-1]
    assert last["type"] == "update" and last["data"] == [first]
    assert last["sequence"] == p.executions[-2]["sequence"] + 1
    assert len(p.account.fills) == 3  # a resend is no new fill
    with pytest.raises(ValueError, match="no fill"):
        p.account.resend_fill("TNOPE0-00000-000000")


def test_scheduled_private_faults_act_on_the_venues_account():
    p = Private()
    gate = SimulatorService(p.venue, reactor=p.clock)
    p.send("subscribe", token=p.token(), snap_orders=False)
    schedule = FaultSchedule(p.clock, [gate], [parse_fault("refuse-tokens@1+2"), parse_fault("skip-sequence@4"),
                                               parse_fault("drop-private@6")])
    schedule.start()
    p.clock.advance(1)
    assert p.ask() == {"error": ["EGeneral:Permission denied"]}
    p.clock.advance(2)
    assert "result" in p.ask()
    p.clock.advance(1)
    p.account.burst(1)
    sequences = [m["sequence"] for m in p.executions]
    assert sequences[0] == 2  # the first update was skipped
    p.clock.advance(2)
    assert p.session.closed
    schedule.cancel()
    with pytest.raises(ValueError, match="no account"):
        FaultSchedule(p.clock, [SimulatorService(SimVenue(clock=p.clock), reactor=p.clock)],
                      [parse_fault("expire-tokens@1")])


def test_twistd_private_option():
    from twisted.python import usage

    from gfws.sim.tap import Options, makeService

    options = Options()
    with pytest.raises(usage.UsageError, match="needs --private"):
        options.parseOptions(["--fault", "skip-sequence@5"])
    options = Options()
    options.parseOptions(["--private", "--token-port", "0", "--port", "0", "--fault", "invalidate-sessions@5"])
    root = makeService(options)
    tokens = [s for s in root if isinstance(s, TokenService)]
    gates = [s for s in root if isinstance(s, SimulatorService)]
    assert len(tokens) == 1 and tokens[0].requested_port == 0 and gates[0].venue.account is not None


# -- over a real socket -------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_a_drop_over_a_real_socket_delivers_the_fills_before_it_then_no_close_frame():
    from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred
    from twisted.internet.endpoints import TCP4ClientEndpoint

    venue = SimVenue(clock=reactor)
    account = venue.account = SimAccount(reactor)
    gate = SimulatorService(venue, port=0)
    gate.startService()
    token = account.tokens.issue()
    acked: Deferred[None] = Deferred()
    closed: Deferred[tuple] = Deferred()
    received: list[dict] = []

    class Client(WebSocketClientProtocol):
        def onOpen(self):
            request = {"method": "subscribe", "params": {"channel": "executions", "token": token}, "req_id": 1}
            self.sendMessage(json.dumps(request).encode())

        def onMessage(self, payload, isBinary):
            message = json.loads(payload, parse_float=Decimal)
            received.append(message)
            if message.get("method") == "subscribe":
                acked.callback(None)

        def onClose(self, wasClean, code, reason):
            closed.callback((wasClean, code))

    factory = WebSocketClientFactory(gate.url)
    factory.protocol = Client
    try:
        yield TCP4ClientEndpoint(reactor, "127.0.0.1", gate.port).connect(factory)
        yield acked.addTimeout(5, reactor)
        account.drop_after(2)
        account.burst(6)
        how = yield closed.addTimeout(5, reactor)
        items = [i for m in received if m.get("channel") == "executions" for i in m["data"]]
        fills = [i for i in items if i["exec_type"] == "trade"]
        assert how == (False, 1006) and fills == account.fills[:2] and len(account.fills) == 6
    finally:
        yield gate.stopService()
