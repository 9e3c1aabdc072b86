"""Every subscription of one connection: subscribe, renew, leave.

Requests leave through the throttle and are matched to their acks by
``req_id``.  Each (channel, symbol) has its own state machine
(``Subscription``): symbols refused with ``Exceeded msg rate`` wait and are
asked for again; other refusals are final and reported as ``error`` events;
a request the venue never answers makes the connection unusable.  A renewal
(a book that failed its checksum, a stale or gapped stream) unsubscribes,
then subscribes again, one at a time per subscription.

Account channels (executions) take no symbols (their one subscription has
the symbol ``""``) and carry a token in every request: the subscription
first authenticates, then subscribes.  A token the venue calls invalid
(``ESession:Invalid session``) is not a refusal for good: the connection is
given up, and the next one asks for a fresh token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, DeferredList, fail
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from gfws.config import SubscriptionConfig
from gfws.interfaces import IVenueDialect
from gfws.messages import AuthenticationError
from gfws.session.requests import PendingRequests, RequestFailed, RequestsClosed, RequestTimedOut
from gfws.session.subscription import Subscription
from gfws.session.throttle import RequestThrottle

RATE_LIMITED = "Exceeded msg rate"
INVALID_TOKEN = ("ESession:Invalid session", "EAPI:Invalid token")

ErrorReport = Callable[[str, str | None, str | None, str], None]
"""(venue text, channel, symbol, method) of a refusal no retry will mend."""


class Subscriptions:
    log = Logger()

    def __init__(
        self,
        dialect: IVenueDialect,
        configs: Sequence[SubscriptionConfig],
        clock: IReactorTime,
        requests: PendingRequests,
        throttle: RequestThrottle,
        retry_delay: float,
        on_error: ErrorReport,
        on_unusable: Callable[[str], None],
        on_refused: Callable[[], None] = lambda: None,
        on_renewal: Callable[[], None] = lambda: None,
        token: Callable[[], Deferred[str]] | None = None,
        on_subscribe: Callable[[str, Mapping[str, Any]], None] = lambda channel, options: None,
    ) -> None:
        self._dialect = dialect
        self._configs = configs
        self._clock = clock
        self._requests = requests
        self._throttle = throttle
        self._retry_delay = retry_delay
        self._on_error = on_error
        self._on_unusable = on_unusable
        self._on_refused = on_refused  # a subscription refused for good: what "ready" means changed
        self._on_renewal = on_renewal
        self._token = token
        self._on_subscribe = on_subscribe  # a subscribe request leaves (the handler may expect a snapshot)
        self._private = dialect.private_channels
        self.by_key: dict[tuple[str, str], Subscription] = {
            (c.channel, symbol): Subscription(c.channel, symbol, dict(c.options))
            for c in configs
            for symbol in c.symbols or ("",)
        }
        self._waiting: set[Deferred[Any]] = set()  # rate-limit pauses
        self.leaving = False  # unsubscribing everything: no renewal starts any more
        self.closed = False
        self.renewals = 0

    # -- reading ------------------------------------------------------------

    def live(self, channel: str) -> list[str]:
        """Symbols of ``channel`` whose subscription the venue accepted (sorted)."""
        return sorted(s.symbol for s in self.by_key.values() if s.channel == channel and s.state == "live")

    def expected(self, channel: str) -> list[str]:
        """Symbols of ``channel`` that should deliver: all but those refused for good."""
        return sorted(s.symbol for s in self.by_key.values() if s.channel == channel and s.state != "refused")

    # -- requests -----------------------------------------------------------

    def request(
        self, method: str, channel: str, symbols: Sequence[str], options: Mapping[str, Any],
        authenticated: Callable[[], None] = lambda: None,
    ) -> Deferred[list[str]]:
        """Send a (un)subscribe; the Deferred fires when the venue acked it.

        The ack timeout runs from when the request leaves the throttle.  An
        account channel's request waits for a token first.
        """
        symbols = [symbol for symbol in symbols if symbol]  # "": an account channel's one subscription
        if channel in self._private:
            if self._token is None:
                return fail(AuthenticationError(f"{channel} needs a token and this feed has no credentials"))

            def send(token: str) -> Deferred[list[str]]:
                authenticated()
                return self._send_request(method, channel, symbols, options, {"token": token})

            return self._token().addCallback(send)
        return self._send_request(method, channel, symbols, options)

    def _send_request(
        self, method: str, channel: str, symbols: Sequence[str], options: Mapping[str, Any],
        credentials: Mapping[str, str] | None = None,
    ) -> Deferred[list[str]]:
        if self.closed:
            return fail(RequestsClosed(f"{method} {channel}: connection closed"))
        if method == "subscribe":
            self._on_subscribe(channel, options)
        req_id = self._requests.next_id()
        build = self._dialect.subscribe_request if method == "subscribe" else self._dialect.unsubscribe_request
        payload = build(channel, symbols, {**options, **credentials} if credentials else options, req_id)
        expected = self._dialect.expected_acks(channel, symbols)
        d = self._requests.expect(req_id, method, channel, symbols, expected, armed=False)
        self._throttle.send(payload, lambda: self._requests.arm(req_id))
        return d

    def subscribe_channel(self, channel: str) -> Deferred[Any]:
        """A symbol-less channel (the instrument list)."""
        return self._track(self.request("subscribe", channel, (), {}), channel)

    def subscribe_all(self) -> Deferred[Any]:
        """Every configured subscription; fires once each is answered."""
        requests = []
        for config in self._configs:
            subs = [self.by_key[config.channel, symbol] for symbol in config.symbols or ("",)]
            requests.append(self._subscribe(config.channel, subs, config.options))
        return DeferredList(requests, consumeErrors=True)

    def _subscribe(self, channel: str, subs: list[Subscription], options: Mapping[str, Any]) -> Deferred[Any]:
        """Subscribe until every symbol is accepted or refused for good."""
        private = channel in self._private
        for sub in subs:
            if private:
                sub.inputs.authenticate()
            else:
                sub.inputs.request()
        by_symbol = {sub.symbol or channel: sub for sub in subs}

        def accepted(symbols: list[str]) -> list[str]:
            for symbol in symbols:
                sub = by_symbol.get(symbol)
                if sub is not None and sub.state == "subscribing":
                    sub.inputs.accepted()
            return symbols

        def refused(failure: Failure) -> Any:
            if not failure.check(RequestFailed):
                return failure
            error: RequestFailed = failure.value  # type: ignore[assignment]
            accepted(error.accepted)
            again = []
            for symbol, text in error.rejected.items():
                sub = by_symbol.get(symbol)
                if any(marker in text for marker in INVALID_TOKEN):
                    self._on_error(text, channel, symbol if symbol != channel else None, error.method)
                    self._on_unusable(f"token refused: {text}")
                    return None
                if sub is None:  # refused as a whole, for the channel
                    self._on_error(text, channel, None, error.method)
                elif RATE_LIMITED in text and sub.state == "subscribing":
                    sub.inputs.rate_limited()
                    again.append(sub)
                elif sub.state == "subscribing":
                    sub.inputs.refused(text)
                    self._on_error(text, channel, symbol, error.method)
                    self._on_refused()
            if not again or self.closed:
                return None
            pause = deferLater(self._clock, self._retry_delay, lambda: None)
            self._waiting.add(pause)
            def paused(result: Any) -> Any:
                self._waiting.discard(pause)
                return result

            pause.addBoth(paused)
            return pause.addCallback(lambda _: self._subscribe(channel, again, options))

        symbols = [sub.symbol for sub in subs]

        def authenticated() -> None:
            for sub in subs:
                if sub.state == "authenticating":
                    sub.inputs.request()

        d = self.request("subscribe", channel, symbols, options, authenticated)
        d.addCallbacks(accepted, refused)
        return self._track(d, channel)

    def _track(self, d: Deferred[Any], channel: str) -> Deferred[Any]:
        """Report what no retry will mend: an unanswered request fails the connection."""

        def failed(failure: Failure) -> None:
            if failure.check(RequestTimedOut):
                self._on_error(str(failure.value), channel, None, "request")
                self._on_unusable(str(failure.value))
            elif failure.check(AuthenticationError):
                # No token (said once by the authenticator): this connection cannot subscribe.
                self._on_unusable(f"authentication failed: {failure.getErrorMessage()}")
            elif failure.check(RequestFailed):
                for symbol, text in failure.value.rejected.items():  # type: ignore[union-attr]
                    self._on_error(text, channel, None if symbol == channel else symbol, failure.value.method)  # type: ignore[union-attr]
            elif not failure.check(RequestsClosed, CancelledError):
                self.log.failure("request on {channel} failed", failure, channel=channel)

        return d.addErrback(failed)

    # -- renewal ------------------------------------------------------------

    def renew(self, channel: str, symbol: str) -> bool:
        """Replace a subscription that can no longer be trusted: unsubscribe,
        then subscribe again (for a book: a fresh snapshot).  False when no
        renewal starts (not live yet, one already under way, or closed)."""
        sub = self.by_key.get((channel, symbol))
        if sub is None or self.closed or self.leaving or not sub.inputs.resync():
            return False
        self.renewals += 1
        self._on_renewal()

        def again(_: object) -> object:
            # Whatever the unsubscribe's fate (refused: not subscribed; timed
            # out), ask again, unless the connection is gone.
            if self.closed:
                return None
            return self._subscribe(channel, [sub], sub.options)

        d = self.request("unsubscribe", channel, [symbol], self._unsubscribe_options(sub.options))
        d.addBoth(again)
        d.addErrback(lambda f: None)  # reported by _subscribe, or the connection went
        return True

    def renew_channel(self, channel: str) -> None:
        for symbol in self.live(channel):
            self.renew(channel, symbol)

    @staticmethod
    def _unsubscribe_options(options: Mapping[str, Any]) -> dict[str, Any]:
        return {"depth": options["depth"]} if "depth" in options else {}

    # -- end ----------------------------------------------------------------

    def leave(self) -> Deferred[Any]:
        """Unsubscribe everything live (graceful shutdown); fires when all answered."""
        self.leaving = True
        requests = []
        for config in self._configs:
            symbols = [s for s in self.live(config.channel) if s in (config.symbols or ("",))]
            if symbols:
                requests.append(
                    self.request("unsubscribe", config.channel, symbols, self._unsubscribe_options(config.options))
                )
        return DeferredList(requests, consumeErrors=True)

    def close(self) -> None:
        """The connection is gone: fail pending requests, stop pauses and the throttle."""
        self.closed = True
        self._throttle.close()
        for waiting in list(self._waiting):
            waiting.cancel()
        self._requests.close()
        for sub in self.by_key.values():
            sub.inputs.closed()

    def states(self) -> Iterable[Subscription]:
        return self.by_key.values()
