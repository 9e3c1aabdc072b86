"""The API secret never appears anywhere: a whole private session with failures
(refused tokens, an invalid session, a wrong secret), and every output of it
searched for the secret and for its decoded bytes."""

from __future__ import annotations

import base64
import json

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.logger import formatEvent, globalLogPublisher

from gfws.config import ConfigError, load_config, parse_config
from gfws.events import Fill
from gfws.monitor.metrics import registry_for
from gfws.publish.jsonl import encode_event
from gfws.service import FeedService
from gfws.sim import DEMO_KEY, DEMO_SECRET
from tests.test_exactly_once import until, venue  # noqa: F401  (venue is a fixture)


@pytest.fixture
def logged():
    lines = []

    def observe(event):
        lines.append(formatEvent(event))
        lines.append(repr(event))  # every field, formatted or not
        failure = event.get("log_failure")
        if failure is not None:
            lines.append(failure.getTraceback())

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


def assert_secret_absent(outputs, secret):
    raw = base64.b64decode(secret)
    for output in outputs:
        data = output if isinstance(output, bytes) else output.encode("utf-8", "surrogateescape")
        assert secret.encode() not in data
        assert raw not in data
        assert base64.b64encode(raw).decode() not in output if isinstance(output, str) else True


@pytest_twisted.inlineCallbacks
def test_a_session_with_failures_never_shows_the_secret(venue, logged, tmp_path, monkeypatch):  # noqa: F811
    account, tokens, gates = venue
    monkeypatch.setenv("KRAKEN_API_KEY", DEMO_KEY)
    monkeypatch.setenv("KRAKEN_API_SECRET", DEMO_SECRET)
    sink = tmp_path / "events.jsonl"
    config = parse_config({
        "venue": {"name": "kraken"},
        "endpoints": [{"name": "private", "url": gates[0].url, "private": True}],
        "subscriptions": [{"channel": "executions"}],
        "auth": {"rest_url": tokens.url},
        "sinks": [{"path": str(sink)}],
        "connection": {"backoff_initial": 0.01, "backoff_cap": 0.05, "shutdown_timeout": 2.0},
    }, "<secrets>")
    feed = FeedService(config, reactor)
    events = []
    feed.subscribe(events.append)
    account.refuse_tokens(2, "EAPI:Invalid nonce")
    feed.startService()
    try:
        yield until(lambda: account.subscribers, what="subscribed after two refusals")
        account.burst(20)
        account.invalidate_sessions()  # the renewal after the gap below uses the connection's token: refused
        account.skip_sequence()
        account.burst(5)
        yield until(lambda: len([e for e in events if isinstance(e, Fill)]) == 25, what="every fill")
        outputs = [repr(config), str(config), json.dumps(feed.diagnostics()), json.dumps(feed.health())]
        outputs += [encode_event(e) for e in events]
        from prometheus_client import generate_latest
        outputs.append(generate_latest(registry_for(feed)))
    finally:
        yield feed.stopService()
    outputs.append(sink.read_bytes())
    outputs += logged
    assert feed.authenticator.failures >= 2 and any("Invalid session" in line for line in logged)
    assert_secret_absent(outputs, DEMO_SECRET)


@pytest_twisted.inlineCallbacks
def test_a_wrong_secret_is_said_in_the_venues_words_and_never_shown(venue, logged, monkeypatch):  # noqa: F811
    account, tokens, gates = venue
    wrong = base64.b64encode(b"w" * 64).decode()
    monkeypatch.setenv("KRAKEN_API_KEY", DEMO_KEY)
    monkeypatch.setenv("KRAKEN_API_SECRET", wrong)
    config = parse_config({
        "venue": {"name": "kraken"},
        "endpoints": [{"name": "private", "url": gates[0].url, "private": True}],
        "subscriptions": [{"channel": "executions"}],
        "auth": {"rest_url": tokens.url},
        "connection": {"backoff_initial": 0.01, "backoff_cap": 0.05},
    }, "<secrets>")
    feed = FeedService(config, reactor)
    errors = []
    feed.subscribe(errors.append, "error")
    feed.startService()
    try:
        yield until(lambda: feed.authenticator.failures >= 3, what="three refusals")
        yield deferLater(reactor, 0.05, lambda: None)
    finally:
        yield feed.stopService()
    assert [e.message for e in errors] == ["authentication refused: EAPI:Invalid signature"]  # once, not per retry
    assert not feed.health()["healthy"]
    assert_secret_absent([json.dumps(feed.diagnostics()), *logged, *(encode_event(e) for e in errors)], wrong)


@pytest.mark.parametrize("auth, env, expected", [
    ({}, {}, "auth.api_key_env: environment variable KRAKEN_API_KEY is not set"),
    ({}, {"KRAKEN_API_KEY": "k"}, "auth.api_secret_env: environment variable KRAKEN_API_SECRET is not set"),
    ({"api_key": "k", "api_secret": DEMO_SECRET}, {}, "auth.api_key: inline credentials need allow_inline_secrets"),
    ({"api_key_file": "missing.key"}, {}, "auth.api_key_file: cannot read"),
    ({"api_secret": "not base64!", "api_key": "k", "allow_inline_secrets": True}, {},
     "auth: the API secret is not base64"),
    ({"rest_url": "http://api.example.com"}, {"KRAKEN_API_KEY": "k", "KRAKEN_API_SECRET": DEMO_SECRET},
     "auth.rest_url: expected an https:// URL (plain http:// only to a loopback host)"),
    ({"api_secret": 12345, "allow_inline_secrets": True}, {}, "auth.api_secret: expected"),
])
def test_a_missing_or_bad_credential_is_one_line_naming_where_never_what(tmp_path, monkeypatch, auth, env, expected):
    for name in ("KRAKEN_API_KEY", "KRAKEN_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    lines = ['[venue]\nname = "kraken"\n', '[[endpoints]]\nurl = "wss://ws-auth.kraken.com/v2"\nprivate = true\n',
             '[[subscriptions]]\nchannel = "executions"\n', "[auth]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in auth.items()]
    path = tmp_path / "feed.toml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as error:
        load_config(str(path))
    text = str(error.value)
    assert expected in text and "\n" not in text
    assert DEMO_SECRET not in text and "12345" not in text and "not base64!" not in text
