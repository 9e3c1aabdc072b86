"""A private session's authentication step, on a Clock, with frames written by hand."""

from __future__ import annotations

import json

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from zope.interface import implementer

from gfws.config import SubscriptionConfig
from gfws.events import Error, Fill
from gfws.integrity.report import IntegrityReporter
from gfws.interfaces import IConnectionLink, ITokenProvider
from gfws.session import FeedSession
from gfws.session.auth import TOKEN_VALIDITY, Authenticator
from gfws.venues.kraken import KrakenV2Dialect
from gfws.venues.kraken.token import TokenError

EXECUTIONS = SubscriptionConfig("executions", (), {"snap_trades": True, "snap_orders": True})


@implementer(ITokenProvider)
class Tokens:
    def __init__(self):
        self.answers: list = []
        self.asked = 0

    def token(self):
        self.asked += 1
        answer = self.answers.pop(0) if self.answers else f"token-{self.asked}"
        if isinstance(answer, Deferred):
            return answer
        return fail(answer) if isinstance(answer, Exception) else succeed(answer)


@implementer(IConnectionLink)
class Link:
    def __init__(self):
        self.sent, self.given_up, self.actives = [], [], []

    def send(self, payload):
        self.sent.append(json.loads(payload))

    def active(self, refused=None):
        self.actives.append(refused)

    def readiness_changed(self):
        pass

    def venue_status(self, system):
        pass

    def unusable(self, reason):
        self.given_up.append(reason)


def session(tokens, events, clock=None, authenticator=None):
    clock = clock or Clock()
    authenticator = authenticator or Authenticator(tokens, clock)
    s = FeedSession(KrakenV2Dialect(), [EXECUTIONS], events.append,
                    IntegrityReporter("kraken", events.append, clock), clock, "private", 5.0,
                    authenticator=authenticator)
    link = Link()
    s.connection_made(link)
    return s, link, clock


def ack(req_id, success=True, error=None):
    message = {"method": "subscribe", "result": {"channel": "executions"}, "success": success, "req_id": req_id}
    if error:
        message["error"] = error
    return json.dumps(message).encode()


def test_an_account_session_asks_a_token_then_subscribes_with_it_and_no_instruments():
    tokens, events = Tokens(), []
    s, link, clock = session(tokens, events)
    request = link.sent[0]
    assert request["params"] == {"channel": "executions", "snap_trades": True, "snap_orders": True,
                                 "token": "token-1"}
    assert [sub.state for sub in s.subscriptions.states()] == ["subscribing"]
    s.frame_received(ack(request["req_id"]), clock.seconds())
    assert link.actives == [None] and s.ready
    fill = {"order_id": "O1", "exec_id": "T1", "exec_type": "trade", "symbol": "BTC/USD", "side": "sell",
            "last_qty": 0.005, "last_price": 26599.9, "cost": 132.9995, "timestamp": "2023-09-22T10:33:05.709993Z",
            "order_status": "partially_filled", "cum_qty": 0.005, "fees": [{"asset": "USD", "qty": 0.3458}]}
    s.frame_received(json.dumps({"channel": "executions", "type": "snapshot", "data": [fill], "sequence": 1}).encode(),
                     clock.seconds())
    assert [e.exec_id for e in events if isinstance(e, Fill)] == ["T1"]


def test_the_subscription_waits_in_authenticating_until_the_token_comes():
    tokens, events = Tokens(), []
    pending: Deferred = Deferred()
    tokens.answers.append(pending)
    s, link, clock = session(tokens, events)
    assert link.sent == [] and [sub.state for sub in s.subscriptions.states()] == ["authenticating"]
    pending.callback("late-token")
    assert link.sent[0]["params"]["token"] == "late-token"


def test_a_refused_token_is_said_once_and_gives_the_connection_up():
    tokens, events, said = Tokens(), [], []
    tokens.answers += [TokenError("EGeneral:Permission denied")] * 3
    clock = Clock()
    authenticator = Authenticator(tokens, clock, said.append)
    for _ in range(3):  # three connections in a row, each refused
        s, link, _ = session(tokens, events, clock, authenticator)
        assert link.sent == [] and link.given_up == ["authentication failed: EGeneral:Permission denied"]
    assert said == ["EGeneral:Permission denied"] and authenticator.failures == 3
    s, link, _ = session(tokens, events, clock, authenticator)  # given again: a new refusal would be said again
    assert link.sent and authenticator.last_failure is None


def test_an_invalid_session_is_an_error_and_a_new_connection_not_a_refusal_for_good():
    tokens, events = Tokens(), []
    s, link, clock = session(tokens, events)
    s.frame_received(ack(link.sent[0]["req_id"], False, "ESession:Invalid session"), clock.seconds())
    assert link.given_up == ["token refused: ESession:Invalid session"]
    assert [e.message for e in events if isinstance(e, Error)] == ["ESession:Invalid session"]
    assert [sub.state for sub in s.subscriptions.states()] != ["refused"]


def test_a_renewal_after_a_gap_uses_a_fresh_token_once_the_first_is_too_old():
    tokens, events = Tokens(), []
    s, link, clock = session(tokens, events)
    s.frame_received(ack(link.sent[0]["req_id"]), clock.seconds())
    update = {"channel": "executions", "type": "update", "data": [], "sequence": 1}
    s.frame_received(json.dumps({**update, "type": "snapshot"}).encode(), clock.seconds())
    clock.advance(TOKEN_VALIDITY + 1)
    s.frame_received(json.dumps({**update, "sequence": 5}).encode(), clock.seconds())  # 2..4 missing
    unsubscribe = [r for r in link.sent if r["method"] == "unsubscribe"]
    assert [r["params"]["token"] for r in unsubscribe] == ["token-2"]
    assert any(e.kind == "gap" for e in events if e.__struct_config__.tag == "integrity")
