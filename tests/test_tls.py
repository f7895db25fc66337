"""TLS listeners: the cipher suites OCPP 2.0.1 requires (A00.FR.318/.421) over an RSA and an ECDSA certificate,
nothing weaker, and certificate reloads that never leave a listener without a certificate."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from support.pki import Issuer, make_ca, make_cert

from ocpp_gw.config import ConfigError, load_config
from ocpp_gw.tls import TlsContexts

RSA, ECDSA = "server-rsa", "server-ecdsa"


class Pki:
    """A CA and an RSA and an ECDSA server certificate for localhost, in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca: Issuer = make_ca(directory, "ca", "OCPP Test CA")
        self.renew()

    def renew(self, stem: str | None = None) -> None:
        """New server certificates and keys (only ``stem``'s when given) in place of the current files."""
        for name, key_type in ((RSA, "rsa"), (ECDSA, "ec")):
            if stem in (None, name):
                make_cert(self.directory, name, self.ca, "localhost", server=True, key_type=key_type)

    def path(self, stem: str, suffix: str) -> str:
        return str(self.directory / f"{stem}.{suffix}")

    def contexts(self, *stems: str) -> TlsContexts:
        certs = ",".join(self.path(stem, "pem") for stem in stems)
        keys = ",".join(self.path(stem, "key") for stem in stems)
        return TlsContexts(certs, keys, self.path("ca", "pem"))

    def client(self, ciphers: str | None = None, tls_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        """A client trusting the CA; ``ciphers`` restricts it to TLS 1.2 with those suites."""
        context = ssl.create_default_context(cafile=self.path("ca", "pem"))
        if ciphers is not None:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers(ciphers)
        if tls_version is not None:
            context.minimum_version = context.maximum_version = tls_version
        return context


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


class Handshake:
    """What a client saw of an established connection."""

    def __init__(self, tls: ssl.SSLObject) -> None:
        self.cipher, self.version, _ = tls.cipher() or ("", "", 0)
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        self.certificate = x509.load_der_x509_certificate(der)

    @property
    def key_type(self) -> str:
        key = self.certificate.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            return "rsa"
        return "ecdsa" if isinstance(key, ec.EllipticCurvePublicKey) else type(key).__name__


async def _exchange(port: int, client: ssl.SSLContext) -> Handshake:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname="localhost")
    try:
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        return Handshake(writer.get_extra_info("ssl_object"))
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ssl.SSLError, asyncio.IncompleteReadError):
        writer.write(await reader.readexactly(4))
        await writer.drain()
    writer.close()


def connect(server: ssl.SSLContext, client: ssl.SSLContext) -> Handshake:
    """One TLS connection from ``client`` to an echo server on 127.0.0.1 with the context ``server``."""

    async def run() -> Handshake:
        listener = await asyncio.start_server(_echo, "127.0.0.1", 0, ssl=server)
        async with listener:
            return await _exchange(listener.sockets[0].getsockname()[1], client)

    return asyncio.run(run())


def refused(server: ssl.SSLContext, client: ssl.SSLContext) -> bool:
    try:
        connect(server, client)
    except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError):
        return True
    return False


def profile_2(contexts: TlsContexts) -> ssl.SSLContext:
    context = contexts.for_profile(2)
    assert context is not None
    return context


REQUIRED = [
    ("AES128-GCM-SHA256", "rsa"),
    ("AES256-GCM-SHA384", "rsa"),
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "ecdsa"),
    ("ECDHE-ECDSA-AES256-GCM-SHA384", "ecdsa"),
]


@pytest.mark.parametrize(("cipher", "key_type"), [*REQUIRED, ("ECDHE-RSA-AES128-GCM-SHA256", "rsa")])
def test_a_tls12_client_offering_one_required_suite_gets_it_with_the_matching_certificate(
    pki: Pki, cipher: str, key_type: str
) -> None:
    handshake = connect(profile_2(pki.contexts(RSA, ECDSA)), pki.client(cipher))
    assert (handshake.cipher, handshake.version, handshake.key_type) == (cipher, "TLSv1.2", key_type)


@pytest.mark.parametrize("cipher", ["AES128-GCM-SHA256", "AES256-GCM-SHA384"])
def test_the_rsa_key_exchange_suites_work_with_a_single_rsa_certificate(pki: Pki, cipher: str) -> None:
    handshake = connect(profile_2(pki.contexts(RSA)), pki.client(cipher))
    assert (handshake.cipher, handshake.key_type) == (cipher, "rsa")


def test_both_certificates_serve_profile_3_too(pki: Pki) -> None:
    make_cert(pki.directory, "client", pki.ca, "CP_1", "Test Operator")
    server = pki.contexts(RSA, ECDSA).for_profile(3)
    assert server is not None
    for cipher, key_type in REQUIRED:
        client = pki.client(cipher)
        client.load_cert_chain(pki.path("client", "pem"), pki.path("client", "key"))
        assert connect(server, client).key_type == key_type


def test_a_modern_client_gets_tls13_and_the_listener_never_compresses(pki: Pki) -> None:
    server = profile_2(pki.contexts(RSA, ECDSA))
    assert connect(server, pki.client()).version == "TLSv1.3"
    assert server.options & ssl.OP_NO_COMPRESSION and server.minimum_version == ssl.TLSVersion.TLSv1_2


def test_the_tls12_list_holds_only_aead_suites(pki: Pki) -> None:
    offered = [suite for suite in profile_2(pki.contexts(RSA, ECDSA)).get_ciphers() if suite["protocol"] == "TLSv1.2"]
    names = {suite["name"] for suite in offered}
    assert {cipher for cipher, _ in REQUIRED} <= names
    assert all(suite["aead"] for suite in offered), names


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    ("ciphers", "tls_version"),
    [
        ("ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:AES128-SHA256", None),
        ("ECDHE-RSA-AES128-SHA:AES256-SHA", None),
        ("DEFAULT:@SECLEVEL=0", ssl.TLSVersion.TLSv1_1),
    ],
    ids=["cbc-sha2", "cbc-sha1", "tls1.1"],
)
def test_weak_suites_and_old_versions_are_refused(pki: Pki, ciphers: str, tls_version: ssl.TLSVersion | None) -> None:
    client = pki.client(ciphers, tls_version)
    permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    permissive.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    permissive.set_ciphers("ALL:@SECLEVEL=0")
    permissive.load_cert_chain(pki.path(RSA, "pem"), pki.path(RSA, "key"))
    assert not refused(permissive, client), "the client should be able to connect to a server that allows it"
    assert refused(profile_2(pki.contexts(RSA, ECDSA)), client)


def test_a_reload_serves_both_new_certificates(pki: Pki) -> None:
    contexts = pki.contexts(RSA, ECDSA)
    server = profile_2(contexts)
    before = {key_type: connect(server, pki.client(cipher)).certificate for cipher, key_type in REQUIRED}
    pki.renew()
    contexts.reload()
    for cipher, key_type in REQUIRED:
        handshake = connect(server, pki.client(cipher))
        assert handshake.key_type == key_type and handshake.certificate != before[key_type]


def _break_key(pki: Pki, stem: str) -> None:
    Path(pki.path(stem, "key")).write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n")


def _new_cert_old_key(pki: Pki, stem: str) -> None:
    key = Path(pki.path(stem, "key")).read_bytes()
    pki.renew(stem)
    Path(pki.path(stem, "key")).write_bytes(key)


def _break_cert(pki: Pki, stem: str) -> None:
    Path(pki.path(stem, "pem")).write_text("")


def _remove_key(pki: Pki, stem: str) -> None:
    Path(pki.path(stem, "key")).unlink()


@pytest.mark.parametrize("breakage", [_break_key, _new_cert_old_key, _break_cert, _remove_key])
@pytest.mark.parametrize("broken", [RSA, ECDSA])
def test_a_reload_with_a_broken_file_keeps_serving_the_current_certificates(
    pki: Pki, breakage: Callable[[Pki, str], None], broken: str
) -> None:
    contexts = pki.contexts(RSA, ECDSA)
    server = profile_2(contexts)
    before = {key_type: connect(server, pki.client(cipher)).certificate for cipher, key_type in REQUIRED}
    pki.renew(RSA if broken == ECDSA else ECDSA)
    breakage(pki, broken)
    contexts.reload()
    for cipher, key_type in REQUIRED:
        assert connect(server, pki.client(cipher)).certificate == before[key_type]


def test_a_rotated_certificate_whose_key_is_not_there_yet_keeps_a_single_pair_serving(pki: Pki) -> None:
    contexts = pki.contexts(RSA)
    server = profile_2(contexts)
    before = connect(server, pki.client()).certificate
    _new_cert_old_key(pki, RSA)
    contexts.reload()
    assert connect(server, pki.client()).certificate == before


def _gateway_config(tmp_path: Path, certs: str, keys: str) -> Path:
    path = tmp_path / "gateway.cfg"
    path.write_text(f"[ocpp_gateway]\nsecurity_profile = 2\ntls_cert_file = {certs}\ntls_key_file = {keys}\n")
    return path


def test_the_config_pairs_certificates_and_keys_in_order(tmp_path: Path) -> None:
    config = load_config(_gateway_config(tmp_path, "rsa.pem, ecdsa.pem", "rsa.key,ecdsa.key"), {}).ocpp_gateway
    assert config.tls_cert_pairs == [("rsa.pem", "rsa.key"), ("ecdsa.pem", "ecdsa.key")]
    assert config.tls_cert_file == "rsa.pem, ecdsa.pem"
    single = load_config(_gateway_config(tmp_path, "server.pem", "server.key"), {}).ocpp_gateway
    assert single.tls_cert_pairs == [("server.pem", "server.key")]


@pytest.mark.parametrize(
    ("certs", "keys", "message"),
    [
        ("rsa.pem,ecdsa.pem", "rsa.key", "one key per certificate, in the same order; got 2 and 1"),
        ("rsa.pem", "rsa.key,ecdsa.key", "one key per certificate, in the same order; got 1 and 2"),
        ("a.pem,b.pem,c.pem", "a.key,b.key,c.key", "at most two pairs"),
        ("rsa.pem,", "rsa.key,ecdsa.key", "empty path"),
        ("", "", "needed by a profile 2 or 3 listener"),
    ],
)
def test_mismatched_certificate_and_key_lists_are_a_config_error(
    tmp_path: Path, certs: str, keys: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(_gateway_config(tmp_path, certs, keys), {})
    assert "tls_cert_file and tls_key_file" in str(raised.value) and message in str(raised.value)
