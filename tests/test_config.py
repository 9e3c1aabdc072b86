"""Configuration: the examples load; every mistake names file, key, expectation."""

from __future__ import annotations

import os

import pytest

from gfws.config import ConfigError, load_config
from gfws.tap import demo_config_path

ROOT = os.path.dirname(os.path.dirname(__file__))

VALID = """
[venue]
name = "kraken"

[[endpoints]]
name = "primary"
url = "wss://ws.kraken.com/v2"
priority = 2

[[endpoints]]
name = "local"
url = "ws://127.0.0.1:9000/v2"
priority = 1

[[subscriptions]]
channel = "book"
symbols = ["BTC/USD", "ETH/USD"]
depth = 25

[[subscriptions]]
channel = "ticker"
symbols = ["BTC/USD"]
event_trigger = "bbo"

[[sinks]]
type = "jsonl"
path = "-"
"""


def write(tmp_path, text):
    path = tmp_path / "feed.toml"
    path.write_text(text)
    return str(path)


def error_for(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    message = str(e.value)
    assert message.startswith(path + ": "), message
    return message


def test_valid_config_is_typed_and_sorted_by_priority(tmp_path):
    config = load_config(write(tmp_path, VALID))
    assert [e.name for e in config.endpoints] == ["local", "primary"]
    book, ticker = config.subscriptions
    assert book.options == {"depth": 25, "snapshot": True}
    assert book.symbols == ("BTC/USD", "ETH/USD")
    assert ticker.options == {"event_trigger": "bbo"}
    assert config.connection.max_message_size == 1 << 20


@pytest.mark.parametrize("path", [os.path.join(ROOT, "examples", "kraken.toml"),
                                  os.path.join(ROOT, "examples", "demo.toml"), demo_config_path()])
def test_shipped_configs_load(path):
    config = load_config(path)
    assert config.venue == "kraken" and config.subscriptions


def test_book_depth_defaults_to_ten(tmp_path):
    text = VALID.replace("depth = 25\n", "")
    assert load_config(write(tmp_path, text)).subscriptions[0].options["depth"] == 10


@pytest.mark.parametrize(
    "change, expected",
    [
        (('channel = "book"', 'channel = "bookz"'), "subscriptions[0].channel: expected one of"),
        (('url = "wss://ws.kraken.com/v2"', ""), "endpoints[0].url: missing; expected a ws:// or wss:// URL"),
        (('url = "wss://ws.kraken.com/v2"', 'url = "https://ws.kraken.com/v2"'), "endpoints[0].url: expected a ws:// or wss:// URL, got 'https://ws.kraken.com/v2'"),
        (('url = "wss://ws.kraken.com/v2"', 'url = "ws://ws.kraken.com/v2"'), "endpoints[0].url: expected wss:// (plain ws:// only to a loopback host"),
        (("priority = 2", 'priority = "high"'), "endpoints[0].priority: expected an integer (lower is preferred), got 'high'"),
        (("priority = 2", "priority = true"), "endpoints[0].priority: expected an integer"),
        (("depth = 25", "depth = 20"), "subscriptions[0].depth: expected one of (10, 25, 100, 500, 1000), got 20"),
        (('symbols = ["BTC/USD", "ETH/USD"]', 'symbols = "BTC/USD"'), "subscriptions[0].symbols: expected a non-empty list"),
        (('symbols = ["BTC/USD", "ETH/USD"]', 'symbols = ["BTCUSD"]'), "subscriptions[0].symbols[0]: expected a \"BASE/QUOTE\" symbol"),
        (('symbols = ["BTC/USD", "ETH/USD"]', 'symbols = []'), "subscriptions[0].symbols: expected a non-empty list"),
        (('event_trigger = "bbo"', 'depth = 10'), "subscriptions[1].depth: not an option of the ticker channel"),
        (('name = "primary"', 'name = "primary"\nfoo = 1'), "endpoints[0].foo: unknown key"),
        (('type = "jsonl"', 'type = "kafka"'), "sinks[0].type: expected one of ['jsonl'], got 'kafka'"),
        (('name = "kraken"', 'name = "binance"'), "venue.name: expected one of ['kraken'], got 'binance'"),
        (('name = "local"', 'name = "primary"'), "endpoints[1].name: expected a name no other endpoint has"),
        (('path = "-"', 'path = "/no/such/folder/x.jsonl"'), "sinks[0].path: expected a file in an existing folder"),
    ],
)
def test_errors_name_the_key_and_the_expectation(tmp_path, change, expected):
    old, new = change
    assert old in VALID
    assert expected in error_for(tmp_path, VALID.replace(old, new, 1))


def test_duplicate_symbol_in_a_channel(tmp_path):
    text = VALID + '\n[[subscriptions]]\nchannel = "book"\nsymbols = ["ETH/USD"]\n'
    assert "subscriptions[2].symbols: expected each symbol once per channel (ETH/USD is also in subscriptions[0])" in error_for(tmp_path, text)


def test_connection_table_types(tmp_path):
    assert "connection.ack_timeout: expected a number > 0, got -1" in error_for(tmp_path, VALID + "[connection]\nack_timeout = -1\n")
    assert "connection.max_message_size: expected a whole number > 0, got 1.5" in error_for(tmp_path, VALID + "[connection]\nmax_message_size = 1.5\n")
    assert "connection.retries: unknown key" in error_for(tmp_path, VALID + "[connection]\nretries = 3\n")
    assert "connection.backoff_cap: expected a number >= backoff_initial" in error_for(
        tmp_path, VALID + "[connection]\nbackoff_initial = 10\nbackoff_cap = 5\n")


def test_insecure_ws_can_be_allowed_explicitly(tmp_path):
    text = VALID.replace('url = "wss://ws.kraken.com/v2"', 'url = "ws://feed.internal/v2"\nallow_insecure = true')
    assert load_config(write(tmp_path, text)).endpoints[1].allow_insecure


def test_missing_sections(tmp_path):
    assert "venue: missing" in error_for(tmp_path, "[[subscriptions]]\nchannel='book'\nsymbols=['A/B']\n")
    assert "endpoints: missing; expected at least one [[endpoints]]" in error_for(
        tmp_path, "[venue]\nname='kraken'\n[[subscriptions]]\nchannel='book'\nsymbols=['A/B']\n")
    assert "subscriptions: missing" in error_for(tmp_path, "[venue]\nname='kraken'\n[[endpoints]]\nurl='ws://127.0.0.1:1/v2'\n")


def test_unreadable_and_invalid_toml(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(str(tmp_path / "absent.toml"))
    assert "not valid TOML" in error_for(tmp_path, "[venue\nname=")


def test_ca_bundle_must_exist(tmp_path):
    text = VALID.replace('url = "wss://ws.kraken.com/v2"', 'url = "wss://ws.kraken.com/v2"\nca_bundle = "ca.pem"')
    assert "endpoints[0].ca_bundle: expected a path to an existing PEM file" in error_for(tmp_path, text)
    (tmp_path / "ca.pem").write_text("x")
    assert load_config(write(tmp_path, text)).endpoints[1].ca_bundle == str(tmp_path / "ca.pem")
