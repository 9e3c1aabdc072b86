"""The TCP (and for ``wss://``, verified TLS) endpoint of a venue URL.

Never Autobahn's ``connectWS``: without a context factory it checks neither
the certificate nor the host name.
"""

from __future__ import annotations

from typing import Any

from autobahn.websocket.util import parse_url
from twisted.internet import ssl
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint


def host_port(url: str) -> str:
    """``host:port`` of a WebSocket URL, as failure reasons name it."""
    _secure, host, port, _resource, _path, _params = parse_url(url)
    return f"{host}:{port}"


def load_trust_root(ca_bundle: str) -> Any:
    """Every certificate of a PEM bundle as the trust root (an ``IOpenSSLTrustRoot``,
    an interface Twisted keeps private)."""
    with open(ca_bundle, "rb") as f:
        pem = f.read()
    marker = b"-----END CERTIFICATE-----"
    blocks = [block + marker for block in pem.split(marker) if b"-----BEGIN CERTIFICATE-----" in block]
    if not blocks:
        raise ValueError(f"{ca_bundle}: no PEM certificate in it")
    return ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(b) for b in blocks])


def client_endpoint(
    reactor: Any, url: str, ca_bundle: str | None = None, timeout: float = 10.0
) -> IStreamClientEndpoint:
    """A TCP endpoint for ``url``; for ``wss://`` verified TLS with SNI."""
    secure, host, port, _resource, _path, _params = parse_url(url)
    endpoint: IStreamClientEndpoint = HostnameEndpoint(reactor, host, port, timeout=timeout)
    if secure:
        trust_root = load_trust_root(ca_bundle) if ca_bundle else None
        options = ssl.optionsForClientTLS(host, trustRoot=trust_root)
        endpoint = wrapClientTLS(options, endpoint)
    return endpoint
