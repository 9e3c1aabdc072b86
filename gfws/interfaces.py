"""The seams where a user plugs into gfws.

* ``IVenueDialect``: one venue's wire protocol (requests out, messages in).
* ``IEventSink``: where normalized events go (JSONL file, recorder, broker...).
* ``IEventHandler``: turns one kind of checked venue message into events.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IVenueDialect(Interface):
    """Speaks one venue's WebSocket protocol; holds no connection state."""

    name = Attribute("Venue name carried by every event, e.g. 'kraken'.")
    channels = Attribute("Public channels this dialect can subscribe (frozenset).")
    instrument_channel = Attribute(
        "Channel announcing pair precisions, subscribed before any other, or None."
    )

    def subscribe_request(channel, symbols, options, req_id):  # noqa: N805
        """Bytes of a subscribe request for ``symbols`` (empty for symbol-less channels)."""

    def unsubscribe_request(channel, symbols, options, req_id):  # noqa: N805
        """Bytes of the matching unsubscribe request."""

    def ping_request(req_id):  # noqa: N805
        """Bytes of an application-level ping."""

    def expected_acks(channel, symbols):  # noqa: N805
        """How many acks a (un)subscribe request for ``symbols`` brings back."""

    def parse(payload):  # noqa: N805
        """One wire message (bytes) as a ``gfws.messages.VenueMessage``.

        Raises ``gfws.messages.MessageError`` for anything unusable.
        """

    def level_text(price, qty):  # noqa: N805
        """Checksum text of one book level at pair precision."""

    def book_checksum(book):  # noqa: N805
        """The checksum the venue sends for ``book`` (an ``OrderBook``)."""


class IEventSink(Interface):
    """Receives normalized events in batches, in the order they were made."""

    def write(events):  # noqa: N805
        """Take a non-empty list of events; must not raise for one bad event."""

    def flush():  # noqa: N805
        """Make everything written so far durable or visible."""

    def close():  # noqa: N805
        """Flush and release resources; called once at shutdown."""


class IEventHandler(Interface):
    """Handles one channel's checked messages and publishes events."""

    channel = Attribute("The channel name this handler takes.")

    def handle(message, recv_ts):  # noqa: N805
        """Process one ``ChannelData``; ``recv_ts`` is POSIX seconds."""

    def reset():  # noqa: N805
        """Forget per-connection state (a new connection starts from snapshots)."""
