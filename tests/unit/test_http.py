"""The HTTP session: TLS against a private CA (`--ca-bundle`) or the OS trust store,
plain http refused beyond loopback, a timeout on every request."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from assetctl.config import Settings
from assetctl.errors import ApiError, ConfigError, NetworkError
from assetctl.http import check_transport, make_session, send


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _cert(subject, issuer, key, signer, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def https_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A local HTTPS server whose certificate a private test CA signed."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _cert("assetctl test CA", "assetctl test CA", ca_key, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert("127.0.0.1", "assetctl test CA", key, ca_key, ca=False)

    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (folder / "server.pem").write_bytes(cert.public_bytes(pem))
    (folder / "server.key").write_bytes(
        key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}/", folder / "ca.pem"
    server.shutdown()


def test_a_private_ca_is_trusted_with_ca_bundle(https_server):
    url, ca = https_server
    session = make_session(Settings(ca_bundle=str(ca), timeout=5))
    assert send(session, "GET", url).text == "hello"


def test_without_the_ca_tls_fails_with_a_hint_naming_ca_bundle(https_server):
    url, _ = https_server
    session = make_session(Settings(timeout=5))  # the OS trust store does not know it
    with pytest.raises(NetworkError, match="TLS verification failed") as caught:
        send(session, "GET", url)
    assert "--ca-bundle" in str(caught.value)


def test_every_request_gets_the_default_timeout(monkeypatch):
    seen = {}

    def fake_request(self, method, url, **kwargs):
        seen.update(kwargs)
        raise NetworkError("stop here")

    monkeypatch.setattr("requests.Session.request", fake_request)
    session = make_session(Settings(timeout=7))
    with pytest.raises(NetworkError):
        session.get("https://example.test/")
    assert seen["timeout"] == 7


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://kc.example.com", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080", True),
        ("http://[::1]:8080", True),
        ("http://kc.example.com", False),
        ("http://10.0.0.5", False),
        ("ftp://kc.example.com", False),
    ],
)
def test_plain_http_only_on_loopback(url, allowed):
    if allowed:
        check_transport(url, Settings(), "Keycloak server")
    else:
        with pytest.raises(ConfigError):
            check_transport(url, Settings(), "Keycloak server")


def test_allow_http_lets_plain_http_through():
    check_transport(
        "http://kc.example.com", Settings(allow_http=True), "Keycloak server"
    )


def test_proxies_come_from_the_environment(monkeypatch):
    seen: list[str] = []

    class Proxy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)  # a proxy sees the absolute URL
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"via proxy")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        session = make_session(Settings(timeout=5))
        answer = send(session, "GET", "http://assets.example.test/datasets")
    finally:
        server.shutdown()
    assert answer.text == "via proxy"
    assert seen == ["http://assets.example.test/datasets"]


def test_https_to_a_plain_http_server_says_so():
    class Plain(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Plain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        session = make_session(Settings(timeout=5))
        with pytest.raises(NetworkError) as caught:
            send(session, "GET", f"https://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
    assert "does not speak TLS" in str(caught.value) and "http://" in str(caught.value)


def test_a_redirect_loop_is_an_api_error():
    class Loop(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", self.path)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Loop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        session = make_session(Settings(timeout=5))
        with pytest.raises(ApiError, match="redirects in a loop"):
            send(session, "GET", f"http://127.0.0.1:{server.server_address[1]}/x")
    finally:
        server.shutdown()
