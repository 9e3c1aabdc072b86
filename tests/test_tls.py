"""wss:// endpoints verify the venue's certificate and host name."""

from __future__ import annotations

import datetime

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import ssl

from gfws.config import ConfigError, parse_config
from gfws.service import FeedService
from gfws.sim import SimulatorService, SimVenue
from tests.loopback import tag, wait_for


def self_signed(hostname: str):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture
def tls_venue(tmp_path):
    """The simulator behind TLS on loopback, certificate for 'localhost'."""
    from twisted.internet import reactor

    cert_pem, key_pem = self_signed("localhost")
    (tmp_path / "ca.pem").write_bytes(cert_pem)
    options = ssl.PrivateCertificate.loadPEM(cert_pem + key_pem).options()
    gate = SimulatorService(SimVenue(clock=reactor, interval=0.02), port=0, tls=options)
    gate.startService()
    assert gate.url.startswith("wss://")
    yield gate.port, str(tmp_path / "ca.pem")
    pytest_twisted.blockon(gate.stopService())


def config(port, ca_bundle=None, host="localhost"):
    endpoint = {"name": "tls", "url": f"wss://{host}:{port}/v2"}
    if ca_bundle:
        endpoint["ca_bundle"] = ca_bundle
    return parse_config({
        "venue": {"name": "kraken"}, "endpoints": [endpoint],
        "subscriptions": [{"channel": "book", "symbols": ["BTC/USD"]}],
        "connection": {"backoff_initial": 0.05, "backoff_cap": 0.1},
    }, "<tls test>")


@pytest_twisted.inlineCallbacks
def test_trusted_certificate_connects(tls_venue):
    port, ca = tls_venue
    feed = FeedService(config(port, ca))
    feed.startService()
    try:
        book = yield wait_for(feed, lambda e: tag(e) == "book")
        assert book.symbol == "BTC/USD"
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_unknown_certificate_is_refused_by_default(tls_venue):
    port, _ca = tls_venue
    feed = FeedService(config(port))  # platform trust store: does not know our CA
    events = []
    feed.subscribe(events.append)
    feed.startService()
    try:
        retries = yield wait_for(feed, lambda e: tag(e) == "connection" and e.state == "connecting"
                                 and e.reason == "attempt 3")
        assert retries
        assert not [e for e in events if tag(e) in ("status", "book")]
        assert "connected" not in [e.state for e in events if tag(e) == "connection"]
        failed = [e.reason for e in events if tag(e) == "connection" and e.state == "reconnecting"]
        assert failed and "TLS failure" in failed[0] and "certificate verify failed" in failed[0], failed
    finally:
        yield feed.stopService()


@pytest_twisted.inlineCallbacks
def test_host_name_is_checked(tls_venue):
    port, ca = tls_venue
    # Right certificate, wrong name: 127.0.0.1 is not 'localhost' in the certificate.
    feed = FeedService(config(port, ca, host="127.0.0.1"))
    events = []
    feed.subscribe(events.append)
    feed.startService()
    try:
        yield wait_for(feed, lambda e: tag(e) == "connection" and e.state == "connecting"
                       and e.reason == "attempt 2")
        assert not [e for e in events if tag(e) in ("status", "book")]
        failed = [e.reason for e in events if tag(e) == "connection" and e.state == "reconnecting"]
        assert failed and failed[0].startswith("TLS failure: host name check failed"), failed
    finally:
        yield feed.stopService()


def test_plain_ws_to_a_remote_host_is_refused_at_startup():
    with pytest.raises(ConfigError, match="plain ws:// only to a loopback host"):
        parse_config({"venue": {"name": "kraken"}, "endpoints": [{"url": "ws://ws.kraken.com/v2"}],
                      "subscriptions": [{"channel": "book", "symbols": ["BTC/USD"]}]}, "<x>")
