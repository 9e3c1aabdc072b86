"""Every seam of gfws, in one place.

* ``IVenueDialect``: one venue's wire protocol and vocabulary (requests out,
  messages in, channel options, symbol names, book checksum).
* ``IConnector``: what a WebSocket protocol reports to (the endpoint).
* ``IConnectionHandler``: one open connection's conversation (the session);
  the endpoint's only view of it, so a recorder can wrap a session and a test
  can drive an endpoint with no session at all.
* ``IConnectionLink``: what an open connection offers its handler.
* ``IEventSink``: where normalized events go (JSONL file, recorder, broker...).
* ``IEventHandler``: turns one channel's checked venue messages into events.
* ``ITokenProvider``: fresh tokens for a venue's private channels.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface

# zope.interface methods are declared without ``self``.
# ruff: noqa: N805


class IVenueDialect(Interface):
    """Speaks one venue's WebSocket protocol; holds no connection state."""

    name = Attribute("Venue name carried by every event, e.g. 'kraken'.")
    channels = Attribute("Public channels this dialect can subscribe (frozenset).")
    private_channels = Attribute(
        "Channels of the account (frozenset): a token in every request, a private endpoint, no symbols."
    )
    instrument_channel = Attribute(
        "Channel announcing pair precisions, subscribed before any other, or None."
    )
    channel_options = Attribute(
        "channel -> option name -> check(value) returning what was expected, or None when the value is fine: "
        "what a configuration may set per subscription."
    )

    def default_options(channel):
        """Options every subscription of ``channel`` gets unless configured (a dict)."""

    def normalize_symbol(symbol):
        """The venue's one name for ``symbol`` (Kraken: XBT/USD is BTC/USD)."""

    auth_defaults = Attribute(
        "Defaults of the [auth] table: rest_url, api_key_env, api_secret_env (a mapping)."
    )

    def credentials(key, secret):
        """The venue's credentials object for an API key and secret (its ``repr`` hides the secret);
        ValueError names what is wrong, never the value."""

    def token_provider(credentials, rest_url, timeout):
        """An ``ITokenProvider`` for the account channels."""

    def subscribe_request(channel, symbols, options, req_id):
        """Bytes of a subscribe request for ``symbols`` (empty for symbol-less channels)."""

    def unsubscribe_request(channel, symbols, options, req_id):
        """Bytes of the matching unsubscribe request."""

    def ping_request(req_id):
        """Bytes of an application-level ping."""

    def expected_acks(channel, symbols):
        """How many acks a (un)subscribe request for ``symbols`` brings back."""

    def parse(payload):
        """One wire message (bytes) as a ``gfws.messages.VenueMessage``.

        Raises ``gfws.messages.MessageError`` for anything unusable.
        """

    def new_book(symbol, depth):
        """An empty local book (``IOrderBook``) of ``symbol`` kept at ``depth`` levels a side."""

    def digest_window(capacity, max_age):
        """A window of recent frame digests with ``RecentKeys``'s rules (``first_frame``),
        which ``fast_updates`` can check in; None: the frame gate keeps a ``RecentKeys``."""

    def fast_updates(venue, books, book_seen, book_last_ts, strict_times, precisions, trade_expected, trade_seen,
                     trade_last_ts, digests=None, counts=None, venue_delay=None):
        """The venue's usual book and trade updates parsed and applied in one pass, or None where the
        venue has no such path.  ``books``: symbol -> book from ``new_book``; ``precisions``: the
        instruments' dict (kept in place); the ``seen`` and ``last_ts`` dicts are the context's.

        Its ``parse(payload)`` gives ``"book"`` or ``"trade"`` for a frame it takes (None: the general
        path takes the frame, nothing changed); ``commit(recv_ts)`` applies it and notes each symbol
        seen.  A book update gives the verified ``Book`` event when everything is usual (its venue
        time, the same width as the last and not before it, becomes the last; the book not crossed;
        not the item sampled for venue delay; no ``strict_times``), else ``(event or None if the
        checksums differ, symbol, ts, venue checksum, computed, sampled)`` for the general checks.  A
        trade update gives a list of ``Trade`` events, or ``(event, sampled)`` for each from the first
        whose time needs the general check.

        ``take(payload, recv_ts)`` is the whole way in one call: ``parse``, then for a frame taken the
        resend check in ``digests`` (from ``digest_window``; False: a duplicate), the frame counted in
        ``counts`` (channel -> frames) and ``commit``'s result; ``taken`` is the channel parsed last.
        With ``venue_delay`` (a callable taking seconds), the item sampled for venue delay is recorded
        there when its time is the usual case, instead of being handed back as sampled.

        ``receiver(stats, liveness, outlet, trade_route, general, duplicate, trades, books, failed,
        sample_every)``
        gives the session's whole way in for every frame in one compiled call (its ``receive`` is the
        session's ``frame_received``): the frame counted in ``stats.received`` (one in ``sample_every``
        timed into ``stats.record``), ``take``; for a frame taken ``liveness.last_data`` set and the usual
        ``Book`` handed to ``outlet.market``, a list of usual ``Trade`` events to ``trade_route``, what
        else ``take`` hands back to ``duplicate()``, ``trades(list, recv_ts)`` or ``books(tuple,
        recv_ts)``; a frame not taken to ``general(payload, recv_ts)``; an ``Exception`` after taking
        to ``failed(channel, error, recv_ts)``.
        """


class IOrderBook(Interface):
    """One symbol's local book at the pair's precision, with the venue's checksum."""

    symbol = Attribute("The book's symbol.")
    depth = Attribute("Levels kept a side (those beyond are dropped: the venue sends no delete).")
    live = Attribute("Verified since its snapshot (a compiled update path reads it).")

    def set_precision(price_decimals, qty_decimals):
        """The pair's decimals; a change clears the book."""

    def clear():
        """Forget every level."""

    def apply(bids, asks):
        """Apply ``(price, qty)`` levels at the pair's precision, in order; a zero size deletes."""

    def top_bids():
        """The best ``depth`` bids, ``(price, qty)`` pairs, best first."""

    def top_asks():
        """The best ``depth`` asks, ``(price, qty)`` pairs, best first."""

    def checksum():
        """The checksum the venue sends for this book."""


class IConnector(Interface):
    """What a thin WebSocket protocol reports to: it owns the logic.

    The protocol calls ``connection_opened`` once the handshake is done and
    then hands every message to the function that returned (the hot path is
    one call); ``connection_closed`` comes exactly once per protocol, also for
    a connection that never opened (a refused handshake).
    """

    def connection_opened(protocol):
        """The WebSocket is open; return ``deliver(payload: bytes, is_binary: bool)``."""

    def connection_closed(protocol, code, reason, clean, cause):
        """The WebSocket is gone: close ``code`` (None if none), the ``reason``
        text, and ``cause``, the transport's Failure (TLS checks) or None."""


class IConnectionLink(Interface):
    """What one open connection offers its handler: the way out, and the
    three things a conversation may tell the endpoint that keeps it."""

    def send(payload):
        """Send one text frame (dropped once the connection is closing)."""

    def active(refused=None):
        """Every configured subscription has been answered; ``refused`` names the
        ones the venue refused for good (the connection is then not fully active)."""

    def readiness_changed():
        """``ready`` of the handler may have changed (a book verified or lost)."""

    def venue_status(system):
        """The venue announced its system status (``online``, ``maintenance``...)."""

    def unusable(reason):
        """The connection cannot be mended in place (silent, no pong, no ack): replace it."""


class IConnectionHandler(Interface):
    """One open connection's conversation: subscribe, route, keep alive.

    Made fresh for every connection by a factory the endpoint is given.
    """

    ready = Attribute(
        "True while the conversation delivers verified data: active, and every configured book verified."
    )

    def connection_made(link):
        """The WebSocket opened; ``link`` is an ``IConnectionLink``. Begin subscribing."""

    def frame_received(payload, recv_ts):
        """One text frame (bytes) received at ``recv_ts`` (POSIX seconds)."""

    def binary_received(payload, recv_ts):
        """One binary frame: the venue never sends them, so it is only counted."""

    def leave():
        """Unsubscribe everything (graceful shutdown); a Deferred fires when answered."""

    def connection_lost(reason):
        """The WebSocket is gone: stop timers, fail what is pending, forget state."""

    def restate(recv_ts):
        """Events restating the current verified state (books), for a consumer
        that switches to this connection as its source."""


class ITokenProvider(Interface):
    """Credentials for a venue's private channels."""

    def token():
        """A Deferred firing with a fresh token (callers at the same time share one request),
        or failing with the venue's reason."""


class IEventOutlet(Interface):
    """Where one endpoint's events enter the feed."""

    publish = Attribute("Callable taking any event of the endpoint.")
    market = Attribute(
        "Callable taking the endpoint's books and tickers: the bus while the endpoint leads, nowhere otherwise. "
        "It changes with the leader: read it for each event."
    )
    trades = Attribute("Callable taking one frame's trades (a list of Trade events, in order): as publish for each.")


class IEventSink(Interface):
    """Receives normalized events in batches, in the order they were made."""

    def write(events):
        """Take a non-empty list of events; must not raise for one bad event."""

    def flush():
        """Make everything written so far durable or visible; may return a Deferred."""

    def close():
        """Flush and release resources; called once at shutdown; may return a Deferred."""


class IEventHandler(Interface):
    """Handles one channel's checked messages and publishes events."""

    channel = Attribute("The channel name this handler takes.")

    def handle(message, recv_ts):
        """Process one ``ChannelData``; ``recv_ts`` is POSIX seconds."""

    def reset():
        """Forget per-connection state (a new connection starts from snapshots)."""
