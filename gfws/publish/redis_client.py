"""The Redis sink's wire: where to connect (the URL), one redis-py connection, one pipeline.

redis-py (hiredis parsing the replies) is used at the connection level, from the
writer thread only, and imported there on the first connect (importing it takes
~0.2 s, which a gfws without a Redis sink need not pay).  A whole batch goes on
the wire in one write (``send_packed_command``), then the replies are read one
by one (``read_response``): redis-py's ``Pipeline.execute`` makes the same
write, but a connection lost halfway through raises and forgets the replies
already read, so the sink could not resend from the first entry Redis did not
confirm.  The commands are packed by redis-py's own packer (gfws speaks no
Redis protocol of its own).  The connection never retries by itself: the
reconnecting, backoff and bound are the writer's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from redis.connection import Connection

CONNECT_TIMEOUT = 5.0  # seconds for one TCP connect
REPLY_TIMEOUT = 10.0  # seconds for any one reply (AUTH, SELECT, a pipeline's next one) before the connection is dead
# Error replies that say "not now" (retry the entry later), rather than "never" (WRONGTYPE, ERR, MOVED...).
TRANSIENT = frozenset({"LOADING", "BUSY", "OOM", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
                       "NOREPLICAS", "MISCONF", "NOAUTH", "NOPERM", "WRONGPASS"})


class RedisConnection(Protocol):
    """What the writer needs of a connection: redis-py's ``Connection`` has it (tests wrap one)."""

    def send_packed_command(self, command: list[bytes], check_health: bool = True) -> None: ...

    def read_response(self) -> Any: ...

    def disconnect(self) -> None: ...


class RedisAddress(NamedTuple):
    host: str
    port: int
    db: int
    username: str | None
    password: str | None


def parse_url(url: str) -> RedisAddress:
    """``redis://[[user]:password@]host[:port][/db]``; raises ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"{mask_url(url)}: a Redis URL is redis://[[user]:password@]host[:port][/db]"
                         + (" (TLS, rediss://, is not supported)" if parts.scheme == "rediss" else ""))
    if parts.query or parts.fragment:
        raise ValueError(f"{mask_url(url)}: a Redis URL takes no ?query or #fragment")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"{mask_url(url)}: the database after / is a number, not {path!r}")
    port = parts.port  # raises ValueError for a bad one
    return RedisAddress(
        host=parts.hostname or "127.0.0.1",
        port=port if port is not None else 6379,
        db=int(path) if path else 0,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def mask_url(url: str) -> str:
    """``url`` with its password, if any, as ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def connector(address: RedisAddress) -> Callable[[], RedisConnection]:
    """The default ``connect``: a new redis-py connection, connected (TCP, AUTH, SELECT), that never
    retries by itself.  Blocks: the writer thread calls it."""

    def connect() -> Connection:
        from redis.backoff import NoBackoff
        from redis.connection import Connection
        from redis.retry import Retry

        connection = Connection(
            host=address.host, port=address.port, db=address.db, username=address.username,
            password=address.password, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=REPLY_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        connection.connect()
        return connection

    return connect


class XaddPacker:
    """``XADD key [MAXLEN ~ n] * id <id> event <event>``, packed by redis-py (a connection that
    never connects lends its packer)."""

    def __init__(self, trim: tuple[bytes, ...]) -> None:
        from redis.connection import Connection

        self._trim = trim
        self._pack = Connection().pack_command

    def __call__(self, key: bytes, ident: bytes, payload: bytes) -> bytes:
        return b"".join(self._pack(b"XADD", key, *self._trim, b"*", b"id", ident, b"event", payload))


def send_pipeline(connection: RedisConnection, packed: bytes, count: int) -> tuple[list[Any], Exception | None]:
    """Send ``count`` packed commands in one write, then read their replies in order.

    Returns the replies read (an error reply as its ``ResponseError``) and, when the connection
    failed before the last reply, the error: the commands from ``len(replies)`` on are unconfirmed."""
    from redis.exceptions import RedisError, ResponseError

    replies: list[Any] = []
    try:
        connection.send_packed_command([packed], check_health=False)
        for _ in range(count):
            try:
                replies.append(connection.read_response())
            except ResponseError as e:
                replies.append(e)
    except (RedisError, OSError) as e:  # lost, timed out, LOADING (a ConnectionError in redis-py)...
        return replies, e
    return replies, None


def error_text(error: BaseException) -> str:
    """The error as Redis said it (redis-py takes the code off some: it is put back)."""
    code = getattr(error, "status_code", None)
    text = str(error) or type(error).__name__
    return f"{code} {text}" if code and not text.startswith(code) else text


def is_refusal(error: BaseException) -> bool:
    """An error reply that sending the entry again will not mend (WRONGTYPE, ERR, MOVED...)."""
    from redis.exceptions import (
        ClusterDownError,
        NoPermissionError,
        OutOfMemoryError,
        ReadOnlyError,
        ResponseError,
        TryAgainError,
    )

    transient = (OutOfMemoryError, ReadOnlyError, NoPermissionError, TryAgainError, ClusterDownError)
    if not isinstance(error, ResponseError) or isinstance(error, transient):
        return False
    return error_text(error).split(" ", 1)[0] not in TRANSIENT
