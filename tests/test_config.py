"""Configuration: the examples load; every mistake names file, key, expectation."""

from __future__ import annotations

import ast
import hashlib
import json
import os
from pathlib import Path

import msgspec
import pytest

import gfws.config
from gfws.config import ConfigError, EndpointConfig, SubscriptionConfig, load_config
from gfws.tap import demo_config_path
from gfws.venues import VENUES, dialect_for

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
    assert "\n" not in message, message  # one line, whatever went wrong
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
        (('url = "wss://ws.kraken.com/v2"', 'url = "https://ws.kraken.com/v2"'),
         "endpoints[0].url: expected a ws:// or wss:// URL, got 'https://ws.kraken.com/v2'"),
        (('url = "wss://ws.kraken.com/v2"', 'url = "ws://ws.kraken.com/v2"'),
         "endpoints[0].url: expected wss:// (plain ws:// only to a loopback host"),
        (("priority = 2", 'priority = "high"'),
         "endpoints[0].priority: expected an integer (lower is preferred), got 'high'"),
        (("priority = 2", "priority = true"), "endpoints[0].priority: expected an integer"),
        (("depth = 25", "depth = 20"), "subscriptions[0].depth: expected one of (10, 25, 100, 500, 1000), got 20"),
        (('symbols = ["BTC/USD", "ETH/USD"]', 'symbols = "BTC/USD"'),
         "subscriptions[0].symbols: expected a non-empty list"),
        (('symbols = ["BTC/USD", "ETH/USD"]', 'symbols = ["BTCUSD"]'),
         "subscriptions[0].symbols[0]: expected a \"BASE/QUOTE\" symbol"),
        (('symbols = ["BTC/USD", "ETH/USD"]', 'symbols = []'), "subscriptions[0].symbols: expected a non-empty list"),
        (('event_trigger = "bbo"', 'depth = 10'), "subscriptions[1].depth: not an option of the ticker channel"),
        (('name = "primary"', 'name = "primary"\nfoo = 1'), "endpoints[0].foo: unknown key"),
        (('type = "jsonl"', 'type = "kafka"'), "sinks[0].type: expected one of ['jsonl', 'redis'], got 'kafka'"),
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
    expected = "subscriptions[2].symbols: expected each symbol once per channel (ETH/USD is also in subscriptions[0])"
    assert expected in error_for(tmp_path, text)


def test_connection_table_types(tmp_path):
    assert "connection.ack_timeout: expected a number > 0, got -1" in error_for(
        tmp_path, VALID + "[connection]\nack_timeout = -1\n")
    assert "connection.max_message_size: expected a whole number > 0, got 1.5" in error_for(
        tmp_path, VALID + "[connection]\nmax_message_size = 1.5\n")
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
    assert "endpoints[0].ca_bundle: expected a PEM file of CA certificates" in error_for(tmp_path, text)
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    assert load_config(write(tmp_path, text)).endpoints[1].ca_bundle == str(tmp_path / "ca.pem")


def test_a_relative_sink_path_is_relative_to_the_config_file(tmp_path):
    (tmp_path / "out").mkdir()
    text = VALID.replace('path = "-"', 'path = "out/events.jsonl"')
    assert load_config(write(tmp_path, text)).sinks[0].path == str(tmp_path / "out" / "events.jsonl")


def test_a_sink_path_must_be_a_writable_file(tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    text = VALID.replace('path = "-"', f'path = "{folder}"')
    assert "sinks[0].path: expected a file, not a folder" in error_for(tmp_path, text)


@pytest.mark.parametrize(
    "extra, expected",
    [
        ("[liveness]\nping_timeout = \"soon\"\n", "liveness.ping_timeout: expected a number > 0, got 'soon'"),
        ("[liveness]\nbook = -1\n", "liveness.book: expected a number of seconds >= 0 (0: off), got -1"),
        ("[integrity]\nduplicate_window = 0\n",
         "integrity.duplicate_window: expected a whole number of keys, 1 to 10,000,000, got 0"),
        ("[integrity]\nduplicate_window = 100000000\n",
         "integrity.duplicate_window: expected a whole number of keys, 1 to 10,000,000, got 100000000"),
        ("[pool]\nmode = \"both\"\n", "pool.mode: expected one of ['failover', 'hot_standby'], got 'both'"),
        ("[pool]\nfailback = 1\n", "pool.failback: expected true or false, got 1"),
        ("[breaker]\nrecovery_time = true\n", "breaker.recovery_time: expected a number > 0, got True"),
        ("[rate_limit]\nburst = 2.5\n", "rate_limit.burst: expected a whole number > 0, got 2.5"),
        ("[connection]\nbackoff_factor = 0.5\n", "connection.backoff_factor: expected a number >= 1, got 0.5"),
        ("[simulator]\nport = 70000\n", "simulator.port: expected a port number 0-65535 (0: any free port), got 70000"),
        ("[simulator]\nseed = \"x\"\n", "simulator.seed: expected an integer, got 'x'"),
    ],
)
def test_a_wrong_value_deep_in_a_section_names_the_full_key_path(tmp_path, extra, expected):
    assert expected in error_for(tmp_path, VALID + extra)


@pytest.mark.parametrize(
    "change, expected",
    [
        (("priority = 1", 'priority = "low"'),
         "endpoints[1].priority: expected an integer (lower is preferred), got 'low'"),
        (("depth = 25", 'depth = "25"'), "subscriptions[0].depth: expected one of (10, 25, 100, 500, 1000), got '25'"),
        (('symbols = ["BTC/USD"]', "symbols = [1]"), "subscriptions[1].symbols[0]: expected a \"BASE/QUOTE\" symbol"),
        (('path = "-"', "path = 5"), "sinks[0].path: expected a file path, or \"-\" for standard output, got 5"),
        (('name = "local"', "name = [1]"), "endpoints[1].name: expected a string, got [1]"),
        (('name = "kraken"', "name = 1"), f"venue.name: expected one of {list(VENUES)}, got 1"),
        (("[[sinks]]", "[sinks]"),
         "sinks: expected an array of tables ([[sinks]]), got {'type': 'jsonl', 'path': '-'}"),
    ],
)
def test_a_wrong_type_in_an_array_of_tables_names_the_index(tmp_path, change, expected):
    old, new = change
    assert old in VALID
    assert expected in error_for(tmp_path, VALID.replace(old, new, 1))


SECTIONS = ["connection", "pool", "breaker", "rate_limit", "liveness", "integrity", "simulator"]


@pytest.mark.parametrize("section", SECTIONS)
def test_unknown_keys_are_refused_in_every_table(tmp_path, section):
    message = error_for(tmp_path, VALID + f"[{section}]\nbogus = 1\n")
    assert f"{section}.bogus: unknown key; expected one of [" in message


@pytest.mark.parametrize(
    "change, expected",
    [
        (('name = "kraken"', 'name = "kraken"\nbogus = 1'), "venue.bogus: unknown key; expected one of ['name']"),
        (('name = "local"', 'name = "local"\nbogus = 1'), "endpoints[1].bogus: unknown key; expected one of ["),
        (('path = "-"', 'path = "-"\nbogus = 1'), "sinks[0].bogus: unknown key; expected one of ['buffer', 'maxlen', 'path', 'stream', 'type', 'url']"),
        (('name = "local"', 'name = "local"\n"max-priority" = 1'), "endpoints[1].max-priority: unknown key"),
        (("[venue]", "bogus = 1\n[venue]"), ": bogus: unknown key; expected one of ['account', 'alerts', 'auth', 'breaker', 'connection', "),
        (('event_trigger = "bbo"', 'event_trigger = "bbo"\nbogus = 1'),
         "subscriptions[1].bogus: not an option of the ticker channel"),
    ],
)
def test_unknown_keys_are_refused_in_arrays_and_at_the_top(tmp_path, change, expected):
    old, new = change
    assert old in VALID
    assert expected in error_for(tmp_path, VALID.replace(old, new, 1))


def test_unknown_key_lists_what_the_table_takes(tmp_path):
    message = error_for(tmp_path, VALID + "[connection]\nack_timout = 3\n")
    assert "connection.ack_timout: unknown key; expected one of ['ack_timeout', 'auto_ping_interval'," in message


CONFIG_SOURCES = sorted(Path(gfws.config.__file__).parent.glob("*.py"))


def test_config_holds_no_venue_names_or_options():
    assert len(CONFIG_SOURCES) >= 3
    for path in CONFIG_SOURCES:
        text = path.read_text()
        for word in ("XBT", "XDG", "depth", "event_trigger", "kraken", "Kraken"):
            assert word not in text, f"{path.name} names {word!r}: ask the venue's dialect"


def test_config_imports_of_gfws_only_the_venue_registry_and_itself():
    allowed = {"gfws.venues", "gfws.events", "gfws.messages", "gfws.interfaces"}
    for path in CONFIG_SOURCES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                if name.startswith("gfws") and not name.startswith("gfws.config"):
                    assert name in allowed, f"{path.name} imports {name}"


def test_options_and_aliases_come_from_the_venue():
    dialect = dialect_for("kraken")
    assert dialect.default_options("book") == {"depth": 10, "snapshot": True}
    assert dialect.default_options("ticker") == {}
    assert dialect.normalize_symbol("XBT/USD") == "BTC/USD"
    assert dialect.channel_options["book"]["depth"](20) == "one of (10, 25, 100, 500, 1000)"
    assert dialect.channel_options["book"]["depth"](25) is None
    with pytest.raises(ValueError, match=r"known venues: \['kraken'\]"):
        dialect_for("binance")


def test_decoded_sections_are_frozen(tmp_path):
    config = load_config(write(tmp_path, VALID))
    sections = [config, config.endpoints[0], config.subscriptions[0], config.sinks[0], config.connection,
                config.pool, config.breaker, config.rate_limit, config.liveness, config.integrity]
    for section in sections:
        name = section.__struct_fields__[0]
        with pytest.raises(AttributeError):
            setattr(section, name, getattr(section, name))
    with pytest.raises(TypeError):
        config.subscriptions[0].options["depth"] = 1000  # type: ignore[index]
    # Built by hand (as tests and tools do), the options are read-only too.
    sub = SubscriptionConfig("trade", ("BTC/USD",), {"snapshot": True})
    with pytest.raises(TypeError):
        sub.options["snapshot"] = False  # type: ignore[index]


def test_a_config_can_be_copied_with_changes(tmp_path):
    config = load_config(write(tmp_path, VALID.replace("[[sinks]]", "[simulator]\n[[sinks]]")))
    endpoint = EndpointConfig(name="simulator", url="ws://127.0.0.1:1/v2")
    copy = msgspec.structs.replace(config, endpoints=(endpoint,), simulator=None)
    assert copy.endpoints == (endpoint,) and copy.simulator is None and config.simulator is not None
    assert copy.subscriptions == config.subscriptions


def test_liveness_channel_timeouts(tmp_path):
    config = load_config(write(tmp_path, VALID + "[liveness]\nbook = 60\n"))
    assert config.liveness.channel_timeouts == {"book": 60.0, "ticker": 0.0, "trade": 0.0}


@pytest.mark.parametrize("text, expected", [
    ('[[endpoints]]\nurl = "wss://ws.kraken.com/v2"\n[[subscriptions]]\nchannel = "executions"\n',
     "subscriptions[0].channel: expected an [[endpoints]] table with private = true to carry executions"),
    ('[[endpoints]]\nurl = "wss://ws-auth.kraken.com/v2"\nprivate = true\n'
     '[[subscriptions]]\nchannel = "trade"\nsymbols = ["BTC/USD"]\n',
     "subscriptions[0].channel: expected an [[endpoints]] table without private = true to carry market data"),
    ('[[endpoints]]\nurl = "wss://ws-auth.kraken.com/v2"\nprivate = true\n[[endpoints]]\nurl = "wss://ws.kraken.com/v2"\n'
     '[[subscriptions]]\nchannel = "trade"\nsymbols = ["BTC/USD"]\n',
     "endpoints[0].private: expected a [[subscriptions]] table with channel one of ['executions']"),
    ('[[endpoints]]\nurl = "wss://ws-auth.kraken.com/v2"\nprivate = true\n'
     '[[subscriptions]]\nchannel = "executions"\nsymbols = ["BTC/USD"]\n',
     "subscriptions[0].symbols: expected no symbols (the executions channel is the whole account)"),
    ('[[endpoints]]\nurl = "wss://ws-auth.kraken.com/v2"\nprivate = true\n'
     '[[subscriptions]]\nchannel = "executions"\nsnap_trades = 1\n',
     "subscriptions[0].snap_trades: expected true or false"),
])
def test_account_channels_and_private_endpoints_go_together(tmp_path, monkeypatch, text, expected):
    monkeypatch.setenv("KRAKEN_API_KEY", "key")
    monkeypatch.setenv("KRAKEN_API_SECRET", "c2VjcmV0")
    assert expected in error_for(tmp_path, '[venue]\nname = "kraken"\n' + text)


def test_an_account_feed_has_its_credentials_and_ledger_path_relative_to_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KRAKEN_API_KEY", "key")
    (tmp_path / "secret.txt").write_text("c2VjcmV0\n")
    path = tmp_path / "feed.toml"
    path.write_text('[venue]\nname = "kraken"\n[[endpoints]]\nurl = "wss://ws-auth.kraken.com/v2"\nprivate = true\n'
                    '[[subscriptions]]\nchannel = "executions"\n[auth]\napi_secret_file = "secret.txt"\n'
                    '[account]\nledger = "fills.sqlite"\n')
    config = load_config(str(path))
    assert config.credentials.rest_url == "https://api.kraken.com"
    assert config.credentials.source == f"key environment variable KRAKEN_API_KEY, secret file {tmp_path}/secret.txt"
    assert config.account.ledger == str(tmp_path / "fills.sqlite")
    assert dict(config.subscriptions[0].options) == {"snap_trades": True, "snap_orders": True}
    assert "c2VjcmV0" not in repr(config)


def test_shards_by_order_deal_the_sorted_symbols_out_evenly(tmp_path):
    symbols = ["BTC/USD", "ETH/USD", "SOL/EUR", "ADA/USD", "DOGE/USD"]
    text = ('[venue]\nname = "kraken"\n[[endpoints]]\nurl = "wss://ws.kraken.com/v2"\n'
            f'[[subscriptions]]\nchannel = "book"\nsymbols = {json.dumps(symbols)}\n')
    got = []
    for index in range(2):
        path = tmp_path / f"shard{index}.toml"
        path.write_text(text + f"[shard]\nindex = {index}\ncount = 2\n")
        got.append(load_config(str(path)).subscriptions[0].symbols)
    # Sorted ADA, BTC, DOGE, ETH, SOL dealt in turn; each shard keeps the config's order.
    assert got == [("SOL/EUR", "ADA/USD", "DOGE/USD"), ("BTC/USD", "ETH/USD")]


def test_shards_split_the_symbols_stably_and_completely(tmp_path, monkeypatch):
    from gfws.config import shard_of

    symbols = ["BTC/USD", "ETH/USD", "SOL/EUR", "ADA/USD", "DOGE/USD", "XRP/USD", "DOT/USD", "LTC/USD"]
    text = ('[venue]\nname = "kraken"\n[[endpoints]]\nurl = "wss://ws.kraken.com/v2"\n'
            f'[[subscriptions]]\nchannel = "book"\nsymbols = {json.dumps(symbols)}\n'
            f'[[subscriptions]]\nchannel = "trade"\nsymbols = {json.dumps(symbols[:3])}\n')
    parts = []
    for index in range(3):
        path = tmp_path / f"shard{index}.toml"
        path.write_text(text + f'[shard]\nindex = {index}\ncount = 3\nby = "hash"\n')
        config = load_config(str(path))
        parts.append({(s.channel, symbol) for s in config.subscriptions for symbol in s.symbols})
        assert all(shard_of(symbol, 3) == index for _, symbol in parts[-1])
    assert set().union(*parts) == {("book", s) for s in symbols} | {("trade", s) for s in symbols[:3]}
    assert sum(len(p) for p in parts) == len(symbols) + 3  # each (channel, symbol) in exactly one shard
    # The same on every machine and every run (a fixed hash, not Python's salted one).
    assert shard_of("BTC/USD", 3) == int.from_bytes(hashlib.sha256(b"BTC/USD").digest()[:8], "big") % 3


@pytest.mark.parametrize("shard, expected", [
    ("index = 2\ncount = 2", "shard.index: expected an integer below shard.count (2), got 2"),
    ("index = 0\ncount = 0", "shard.count: expected an integer >= 1, got 0"),
    ("index = 0\ncount = 64", "shard: expected a shard with at least one symbol"),
])
def test_a_shard_that_cannot_work_is_one_line(tmp_path, shard, expected):
    text = ('[venue]\nname = "kraken"\n[[endpoints]]\nurl = "wss://ws.kraken.com/v2"\n'
            '[[subscriptions]]\nchannel = "book"\nsymbols = ["ETH/USD"]\n[shard]\n' + shard + '\nby = "hash"\n')
    if "64" in shard:
        from gfws.config import shard_of
        assert shard_of("ETH/USD", 64) != 0
    assert expected in error_for(tmp_path, text)


@pytest.mark.parametrize("sink, expected", [
    ('type = "redis"\nurl = "http://127.0.0.1:6379"', "sinks[0].url: expected a redis://[:password@]host[:port][/db] URL"),
    ('type = "redis"\nurl = "redis://:hunter2@127.0.0.1:x/0"', "got 'redis://:***@127.0.0.1:x/0'"),
    ('type = "redis"\npath = "events.jsonl"', "sinks[0].path: not a key of a redis sink"),
    ('type = "redis"\nstream = "gfws:{exchange}:{symbol}"', "sinks[0].stream: expected a pattern using only"),
    ('type = "redis"\nmaxlen = -1', "sinks[0].maxlen: expected entries kept per stream, >= 0"),
    ('type = "redis"\nurl = "redis://127.0.0.1:6399/0?ssl=true"', "sinks[0].url: expected a redis://"),
    ('url = "redis://127.0.0.1:6379/0"', "sinks[0].url: not a key of a jsonl sink"),
])
def test_a_redis_sink_is_checked_and_its_password_never_repeated(tmp_path, sink, expected):
    text = ('[venue]\nname = "kraken"\n[[endpoints]]\nurl = "wss://ws.kraken.com/v2"\n'
            '[[subscriptions]]\nchannel = "book"\nsymbols = ["ETH/USD"]\n[[sinks]]\n' + sink + "\n")
    message = error_for(tmp_path, text)
    assert expected in message and "hunter2" not in message


def test_shards_other_than_0_leave_the_account_and_its_endpoint_to_shard_0(tmp_path, monkeypatch):
    monkeypatch.setenv("KRAKEN_API_KEY", "key")
    monkeypatch.setenv("KRAKEN_API_SECRET", "c2VjcmV0")
    text = ('[venue]\nname = "kraken"\n[[endpoints]]\nurl = "wss://ws.kraken.com/v2"\n'
            '[[endpoints]]\nname = "auth"\nurl = "wss://ws-auth.kraken.com/v2"\nprivate = true\n'
            '[[subscriptions]]\nchannel = "executions"\n'
            '[[subscriptions]]\nchannel = "book"\nsymbols = ["BTC/USD", "ETH/USD"]\n')
    for index in (0, 1):
        path = tmp_path / f"shard{index}.toml"
        path.write_text(text + f"[shard]\nindex = {index}\ncount = 2\n")
        config = load_config(str(path))
        assert [e.private for e in config.endpoints] == ([False, True] if index == 0 else [False])
        assert [s.channel for s in config.subscriptions] == (["executions", "book"] if index == 0 else ["book"])


def test_inline_secrets_are_refused_even_where_nothing_is_private(tmp_path):
    text = ('[venue]\nname = "kraken"\n[[endpoints]]\nurl = "wss://ws.kraken.com/v2"\n'
            '[[subscriptions]]\nchannel = "book"\nsymbols = ["BTC/USD"]\n[auth]\napi_secret = "c2VjcmV0"\n')
    message = error_for(tmp_path, text)
    assert "auth.api_secret: inline credentials need allow_inline_secrets = true" in message
    assert "c2VjcmV0" not in message
