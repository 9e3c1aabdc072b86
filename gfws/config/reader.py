"""Reading a feed configuration: TOML, then one msgspec decode, then the checks
no schema can express.

Every problem becomes one line, ``{file}: {key.path}: expected ..., got ...``,
before anything connects.  What a channel may set and how a symbol is spelled
are the venue's business: the dialect is asked, so this module names no venue.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Protocol, cast
from urllib.parse import urlsplit

import msgspec
from autobahn.websocket.util import parse_url

from gfws.config.credentials import check_inline, is_loopback, read_credentials
from gfws.config.errors import ConfigError, explain, problem
from gfws.config.sections import (
    AccountConfig,
    AuthConfig,
    ConnectionConfig,
    EndpointConfig,
    FeedConfig,
    RecorderConfig,
    Section,
    Settings,
    ShardConfig,
    SinkConfig,
    SubscriptionConfig,
    expect,
)
from gfws.venues import VENUES, dialect_for


class Vocabulary(Protocol):
    """What the reader asks of a venue (a part of ``gfws.interfaces.IVenueDialect``)."""

    @property
    def channel_options(self) -> Mapping[str, Mapping[str, Callable[[Any], str | None]]]: ...

    def default_options(self, channel: str) -> dict[str, Any]: ...

    def normalize_symbol(self, symbol: str) -> str: ...

    @property
    def private_channels(self) -> frozenset[str]: ...

    def credentials(self, key: str, secret: str) -> Any: ...

    @property
    def auth_defaults(self) -> Mapping[str, str]: ...


Symbol = Annotated[str, expect('a "BASE/QUOTE" symbol such as "BTC/USD"', pattern=r"^[^/]+/[^/]+$")]


class _Venue(Section, frozen=True, kw_only=True):
    name: Annotated[str, expect(f"one of {list(VENUES)}")]


class _Subscription(msgspec.Struct, frozen=True):
    """The fixed keys of a ``[[subscriptions]]`` table; every other key is a
    channel option, checked by the venue (so unknown fields are let through)."""

    channel: str
    symbols: Annotated[
        tuple[Symbol, ...], expect('a non-empty list of "BASE/QUOTE" symbols (none for the account channel)')
    ] = ()


class _Document(Settings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The TOML file as written, before the checks that span keys."""

    venue: Annotated[_Venue, expect(f"a [venue] table with name = one of {list(VENUES)}")]
    endpoints: tuple[EndpointConfig, ...] = ()
    subscriptions: tuple[_Subscription, ...] = ()
    sinks: tuple[SinkConfig, ...] = ()
    auth: AuthConfig | None = None


def load_config(path: str) -> FeedConfig:
    """Read and check ``path``; raise ConfigError naming what is wrong."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return parse_config(data, path)


def parse_config(data: dict[str, Any], source: str = "<config>") -> FeedConfig:
    """Check parsed TOML (or any dict of the same shape) into a FeedConfig."""
    try:
        document = msgspec.convert(data, _Document)
    except msgspec.ValidationError as e:
        raise explain(e, data, _Document, source) from None
    if document.venue.name not in VENUES:
        raise problem(source, "venue.name", f"one of {list(VENUES)}", document.venue.name)
    dialect = cast(Vocabulary, dialect_for(document.venue.name))
    if not document.endpoints and document.simulator is None:
        raise ConfigError(f"{source}: endpoints: missing; expected at least one [[endpoints]] table with a url")
    endpoints = _endpoints(document.endpoints, source)
    if not document.subscriptions:
        raise ConfigError(f"{source}: subscriptions: missing; expected at least one [[subscriptions]] table")
    subscriptions = _subscriptions(document.subscriptions, data["subscriptions"], dialect, source)
    if document.shard is not None:
        subscriptions = _shard(subscriptions, document.shard, dialect, source)
        if document.shard.index > 0:  # the account is shard 0's: the others leave its endpoints alone
            endpoints = tuple(e for e in endpoints if not e.private)
    _check_private(endpoints, subscriptions, dialect, document.simulator is not None, source)
    base_dir = os.path.dirname(source)
    credentials = None
    if any(e.private for e in endpoints):
        credentials = read_credentials(document.auth or AuthConfig(), dialect, base_dir, source)
    elif document.auth is not None:
        check_inline(document.auth, source)  # no private endpoint here (a shard, a public feed): still no leaks
    account = _account(document.account, base_dir, source)
    recorder = _recorder(document.recorder, base_dir, source)
    tables = data.get("sinks") or []
    sinks = tuple(_sink(sink, f"sinks[{i}]", base_dir, source, tables[i] if i < len(tables) else None)
                  for i, sink in enumerate(document.sinks))
    _check_connection(document.connection, source)
    settings = {name: getattr(document, name) for name in Settings.__struct_fields__}
    settings["account"] = account
    settings["recorder"] = recorder
    return FeedConfig(
        source=source,
        venue=document.venue.name,
        endpoints=endpoints,
        subscriptions=subscriptions,
        sinks=sinks,
        credentials=credentials,
        **settings,
    )


def shard_of(symbol: str, count: int) -> int:
    """The shard a symbol belongs to with ``by = "hash"``: the same on every machine and every run (not Python's salted
    hash), and spread evenly (CRC-32 is linear: symbols sharing "/USD" crowd into few shards)."""
    return int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:8], "big") % count


def _shard(subscriptions: tuple[SubscriptionConfig, ...], shard: ShardConfig, dialect: Vocabulary,
           source: str) -> tuple[SubscriptionConfig, ...]:
    """This shard's part of every subscription (the account's channels: shard 0's)."""
    if shard.index >= shard.count:
        raise problem(source, "shard.index", f"an integer below shard.count ({shard.count})", shard.index)
    if shard.by == "order":
        dealt = sorted({s for sub in subscriptions for s in sub.symbols})
        owner = {symbol: i % shard.count for i, symbol in enumerate(dealt)}
    else:
        owner = {s: shard_of(s, shard.count) for sub in subscriptions for s in sub.symbols}
    mine = []
    for sub in subscriptions:
        if sub.channel in dialect.private_channels:
            if shard.index == 0:
                mine.append(sub)
            continue
        symbols = tuple(s for s in sub.symbols if owner[s] == shard.index)
        if symbols:
            mine.append(msgspec.structs.replace(sub, symbols=symbols))
    if not mine:
        raise problem(source, "shard", f"a shard with at least one symbol (shard {shard.index} of {shard.count} "
                      "gets none: fewer shards, or more symbols)")
    return tuple(mine)


def _check_private(endpoints: Sequence[EndpointConfig], subscriptions: Sequence[SubscriptionConfig],
                   dialect: Vocabulary, simulator: bool, source: str) -> None:
    """Account channels go to private endpoints, market data to the others: each side needs its endpoint."""
    private = dialect.private_channels
    for i, sub in enumerate(subscriptions):
        if sub.channel in private and simulator and not endpoints:
            continue  # the demo: [simulator] private = true is checked by whoever runs it
        if sub.channel in private and not any(e.private for e in endpoints):
            raise problem(source, f"subscriptions[{i}].channel",
                          f"an [[endpoints]] table with private = true to carry {sub.channel}", sub.channel)
        if sub.channel not in private and endpoints and all(e.private for e in endpoints) and not simulator:
            raise problem(source, f"subscriptions[{i}].channel",
                          "an [[endpoints]] table without private = true to carry market data "
                          f"(private endpoints carry only {sorted(private)})", sub.channel)
    for i, endpoint in enumerate(endpoints):
        if endpoint.private and not any(sub.channel in private for sub in subscriptions):
            raise problem(source, f"endpoints[{i}].private",
                          f"a [[subscriptions]] table with channel one of {sorted(private)} for it to carry", True)


def _recorder(recorder: RecorderConfig | None, base_dir: str, source: str) -> RecorderConfig | None:
    """The recording folder relative to the config file; it, or its parent, must be writable."""
    if recorder is None:
        return None
    path = os.path.join(base_dir, recorder.path)
    existing = path if os.path.exists(path) else os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(existing):
        raise problem(source, "recorder.path", "a folder (or a new one in an existing folder)", recorder.path)
    if not os.access(existing, os.W_OK):
        raise problem(source, "recorder.path", "a folder gfws may write (permission denied)", recorder.path)
    return msgspec.structs.replace(recorder, path=path)


def _account(account: AccountConfig, base_dir: str, source: str) -> AccountConfig:
    """The ledger's path relative to the config file, in a folder that exists and may be written."""
    if account.ledger is None:
        return account
    path = os.path.join(base_dir, account.ledger)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or os.path.isdir(path):
        raise problem(source, "account.ledger", "a file in an existing folder", account.ledger)
    if not os.access(path if os.path.exists(path) else folder, os.W_OK):
        raise problem(source, "account.ledger", "a file gfws may write (permission denied)", account.ledger)
    return msgspec.structs.replace(account, ledger=path)


def _endpoints(endpoints: Sequence[EndpointConfig], source: str) -> tuple[EndpointConfig, ...]:
    """Each endpoint checked and named; no two with one name; best priority first."""
    base_dir = os.path.dirname(source)
    checked = [_endpoint(e, f"endpoints[{i}]", base_dir, source) for i, e in enumerate(endpoints)]
    names = [e.name for e in checked]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise problem(source, f"endpoints[{i}].name", "a name no other endpoint has", name)
    return tuple(sorted(checked, key=lambda e: e.priority))


def _endpoint(endpoint: EndpointConfig, where: str, base_dir: str, source: str) -> EndpointConfig:
    """A usable URL, sent in the clear only where nobody can listen; CA file found."""
    url = endpoint.url
    try:
        secure, host, port, _resource, _path, _params = parse_url(url)
    except Exception:  # autobahn raises plain Exception for a bad URL
        raise problem(source, f"{where}.url", "a ws:// or wss:// URL", url) from None
    if not secure and not is_loopback(host) and not endpoint.allow_insecure:
        expected = "wss:// (plain ws:// only to a loopback host, or with allow_insecure = true)"
        raise problem(source, f"{where}.url", expected, url)
    ca_bundle = endpoint.ca_bundle
    if ca_bundle is not None:
        # Relative to the config file, so a config and its CA file move together.
        ca_bundle = os.path.join(base_dir, ca_bundle)
        if not os.path.isfile(ca_bundle):
            raise problem(source, f"{where}.ca_bundle", "a path to an existing PEM file", ca_bundle)
        if not _holds_pem_certificate(ca_bundle):
            raise problem(source, f"{where}.ca_bundle", "a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)",
                          ca_bundle)
    return msgspec.structs.replace(endpoint, name=endpoint.name or f"{host}:{port}", ca_bundle=ca_bundle)


def _subscriptions(
    subscriptions: Sequence[_Subscription], tables: list[dict[str, Any]], dialect: Vocabulary, source: str
) -> tuple[SubscriptionConfig, ...]:
    """Each subscription in the venue's terms; a symbol once per channel."""
    checked = tuple(
        _subscription(s, table, f"subscriptions[{i}]", dialect, source)
        for i, (s, table) in enumerate(zip(subscriptions, tables, strict=True))
    )
    seen: dict[tuple[str, str], int] = {}
    for i, sub in enumerate(checked):
        for symbol in sub.symbols:
            first = seen.setdefault((sub.channel, symbol), i)
            if first != i:
                expected = f"each symbol once per channel ({symbol} is also in subscriptions[{first}])"
                raise problem(source, f"subscriptions[{i}].symbols", expected, list(sub.symbols))
    return checked


def _subscription(
    sub: _Subscription, table: dict[str, Any], where: str, dialect: Vocabulary, source: str
) -> SubscriptionConfig:
    """The venue's channel, its checked options over its defaults, its symbol names."""
    channel_options = dialect.channel_options
    if sub.channel not in channel_options:
        raise problem(source, f"{where}.channel", f"one of {sorted(channel_options)}", sub.channel)
    allowed = channel_options[sub.channel]
    if sub.channel in dialect.private_channels:
        if sub.symbols:
            raise problem(source, f"{where}.symbols", f"no symbols (the {sub.channel} channel is the whole account)",
                          list(sub.symbols))
    elif not sub.symbols:
        raise problem(source, f"{where}.symbols", 'a non-empty list of "BASE/QUOTE" symbols', table.get("symbols", []))
    options: dict[str, Any] = dialect.default_options(sub.channel)
    for key in sorted(set(table) - set(_Subscription.__struct_fields__)):
        if key not in allowed:
            raise ConfigError(
                f"{source}: {where}.{key}: not an option of the {sub.channel} channel; "
                f"expected one of {sorted(allowed)}"
            )
        expected = allowed[key](table[key])
        if expected is not None:
            raise problem(source, f"{where}.{key}", expected, table[key])
        options[key] = table[key]
    return SubscriptionConfig(sub.channel, _symbols(sub.symbols, where, dialect, source), options)


def _symbols(written: Sequence[str], where: str, dialect: Vocabulary, source: str) -> tuple[str, ...]:
    """The venue's one name for each symbol, each once."""
    symbols = [dialect.normalize_symbol(s) for s in written]
    for i, symbol in enumerate(symbols):
        first = symbols.index(symbol)
        if first != i:
            renamed = _renames(written[first], dialect) + _renames(written[i], dialect)
            because = f"after {', '.join(dict.fromkeys(renamed))}: " if renamed else ""
            expected = f"each symbol once ({because}symbols[{first}] is {symbol} too)"
            raise problem(source, f"{where}.symbols[{i}]", expected, written[i])
    return tuple(symbols)


def _renames(symbol: str, dialect: Vocabulary) -> list[str]:
    """What the venue renamed in ``symbol``, asset by asset (``OLD->NEW``)."""
    parts = zip(symbol.split("/"), dialect.normalize_symbol(symbol).split("/"), strict=False)
    return [f"{old}->{new}" for old, new in parts if old != new]


def _holds_pem_certificate(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return b"-----BEGIN CERTIFICATE-----" in f.read(1 << 20)
    except OSError:
        return False


_REDIS_KEYS = ("url", "stream", "maxlen", "buffer")


def _redis_sink(sink: SinkConfig, table: dict[str, Any], where: str, source: str) -> SinkConfig:
    """A Redis URL that can be used (the password, if any, never repeated), a pattern that names streams."""
    if "path" in table:
        raise ConfigError(f"{source}: {where}.path: not a key of a redis sink; expected one of {list(_REDIS_KEYS)}")
    parsed = urlsplit(sink.url)
    shown = sink.url if parsed.password is None else sink.url.replace(parsed.password, "***")
    path = parsed.path.strip("/")
    try:
        port = parsed.port
    except ValueError:
        port = -1
    if (parsed.scheme != "redis" or not parsed.hostname or port == -1 or parsed.query or parsed.fragment
            or (path and not path.isdigit())):
        raise problem(source, f"{where}.url", "a redis://[:password@]host[:port][/db] URL (no ?query; "
                      "rediss:// is not supported)", shown)
    try:
        sink.stream.format_map({"venue": "v", "type": "t", "symbol": "s"})
    except (KeyError, ValueError, IndexError):
        raise problem(source, f"{where}.stream", "a pattern using only {venue}, {type} and {symbol} "
                      "({{ and }} for literal braces)", sink.stream) from None
    return sink


def _sink(sink: SinkConfig, where: str, base_dir: str, source: str, table: dict[str, Any] | None = None) -> SinkConfig:
    """The sink checked for its type; a file's path relative to the config file, and failing now,
    not at the first event, when the file cannot be created or written."""
    if sink.type == "redis":
        return _redis_sink(sink, table or {}, where, source)
    for key in _REDIS_KEYS:
        if table is not None and key in table:
            raise ConfigError(f"{source}: {where}.{key}: not a key of a jsonl sink; expected path "
                              '(or type = "redis")')
    if sink.path == "-":
        return sink
    sink = msgspec.structs.replace(sink, path=os.path.join(base_dir, sink.path))
    _check_sink(sink, where, source)
    return sink


def _check_sink(sink: SinkConfig, where: str, source: str) -> None:
    path = os.path.abspath(sink.path)
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise problem(source, f"{where}.path", "a file in an existing folder", sink.path)
    if os.path.isdir(path):
        raise problem(source, f"{where}.path", "a file, not a folder", sink.path)
    if not os.access(path if os.path.exists(path) else folder, os.W_OK):
        raise problem(source, f"{where}.path", "a file gfws may write (permission denied)", sink.path)


def _check_connection(connection: ConnectionConfig, source: str) -> None:
    """A cap below the first delay would make the backoff shrink."""
    if connection.backoff_cap < connection.backoff_initial:
        raise problem(source, "connection.backoff_cap", "a number >= backoff_initial", connection.backoff_cap)
