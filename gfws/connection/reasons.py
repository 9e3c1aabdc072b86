"""Why a connection attempt failed or a connection ended, in words an
operator can act on: DNS, refused port, timeout, which TLS check failed, the
HTTP status of a refused handshake, the close code and reason."""

from __future__ import annotations

import re

from twisted.internet import error
from twisted.internet.defer import CancelledError
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.python.failure import Failure

_UPGRADE_FAILED = re.compile(r"WebSocket connection upgrade failed \[(\d+)\]: ?(.*?)\"?\)?$")
_CLOSE_NAMES = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1006: "abnormal closure",
    1007: "invalid payload data",
    1008: "policy violation",
    1009: "message too big",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
}


class AttemptRefused(Exception):
    """An attempt held back before it began (breaker open, budget spent):
    no failure of the venue's, so it counts against nothing."""


def connect_failure(failure: Failure, where: str, timeout: float) -> str:
    """A TCP connect that did not succeed (``where`` is ``host:port``)."""
    value = failure.value
    if isinstance(value, AttemptRefused):
        return f"held back: {value}"
    if isinstance(value, error.DNSLookupError):
        return f"DNS lookup failed for {where.rsplit(':', 1)[0]}"
    if isinstance(value, error.ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(value, (error.TimeoutError, DeferredTimeout, error.TCPTimedOutError)):
        return f"no TCP connection to {where} within {timeout:g}s"
    if isinstance(value, CancelledError):
        return f"attempt to {where} cancelled"
    if isinstance(value, error.ConnectError) and value.osError is not None:
        return f"cannot connect to {where}: {value.osError}"
    return f"cannot connect to {where}: {value.__class__.__name__}: {value}"


def tls_failure(cause: Failure | None) -> str | None:
    """Which TLS check failed, when the transport says so."""
    if cause is None:
        return None
    value = cause.value
    name = type(value).__name__
    if name == "VerificationError":  # service_identity: the certificate is not for this host
        return f"TLS failure: host name check failed ({value})"
    if type(value).__module__.startswith("OpenSSL"):
        args = getattr(value, "args", ())
        details = args[0] if args and isinstance(args[0], list) else []
        text = "; ".join(str(d[2]) for d in details if isinstance(d, tuple) and len(d) > 2) or str(value)
        return f"TLS failure: {text}"
    return None


def close_reason(code: int | None, reason: str | None, clean: bool, cause: Failure | None) -> str:
    """How a WebSocket (or its opening handshake) ended."""
    tls = tls_failure(cause)
    if tls is not None:
        return tls
    text = reason or ""
    refused = _UPGRADE_FAILED.search(text.rstrip('")'))
    if refused is not None:
        status, phrase = refused.groups()
        return f"handshake refused: HTTP {status} {phrase}".rstrip()
    if "opening handshake timeout" in text:
        return "no WebSocket handshake in time (opening handshake timeout)"
    if code is None:
        return f"closed before any close code: {text or 'no reason'}"
    name = _CLOSE_NAMES.get(code, "")
    named = f"code {code} ({name})" if name else f"code {code}"
    return f"closed with {named}{'' if clean else ', unclean'}: {text or 'no reason'}"


def transport_refusal(code: int | None, reason: str | None) -> str | None:
    """The integrity kind of a frame Autobahn refused, from how it closed.

    Autobahn sends 1009/1007, or (when it fails by dropping the socket)
    reports 1006 with its own reason text.
    """
    text = reason or ""
    if code == 1009 or "exceeds payload limit" in text:
        return "oversized_message"
    if code == 1007 or "UTF-8" in text:
        return "invalid_utf8"
    return None
