"""Certificates for the security-profile scenarios, made fresh for every run with ``cryptography``."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
Issuer = tuple[PrivateKey, x509.Certificate]


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(parts)


def _write(directory: Path, stem: str, key: PrivateKey, cert: x509.Certificate) -> None:
    (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{stem}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def make_ca(directory: Path, stem: str, name: str) -> Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write(directory, stem, key, cert)
    return key, cert


def make_cert(
    directory: Path,
    stem: str,
    issuer: Issuer,
    common_name: str,
    organization: str | None = None,
    server: bool = False,
    expired: bool = False,
    key_type: str = "ec",
) -> None:
    """A certificate signed by ``issuer``, with a P-256 key, or a 2048-bit RSA key when ``key_type`` is "rsa"."""
    key: PrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if key_type == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    now = datetime.datetime.now(datetime.UTC)
    start, end = (
        (now - datetime.timedelta(days=10), now - datetime.timedelta(days=1))
        if expired
        else (
            now - datetime.timedelta(days=1),
            now + datetime.timedelta(days=30),
        )
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organization))
        .issuer_name(issuer[1].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    _write(directory, stem, key, builder.sign(issuer[0], hashes.SHA256()))


def make_pki(directory: Path) -> Path:
    """A CA, the gateway's server certificate and the client certificates the scenarios use."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca(directory, "ca", "OCPP Test CA")
    rogue = make_ca(directory, "rogue-ca", "Rogue CA")
    make_cert(directory, "server", ca, "localhost", server=True)
    make_cert(directory, "client-valid", ca, "CP_TLS3", "Test Operator")
    make_cert(directory, "client-untrusted", rogue, "CP_TLS3", "Test Operator")
    make_cert(directory, "client-expired", ca, "CP_TLS3", "Test Operator", expired=True)
    make_cert(directory, "client-mismatch", ca, "CP_OTHER", "Test Operator")
    return directory


def make_server_pki(directory: Path) -> Path:
    """A CA ("ca") and two server certificates for localhost it signs: "server-rsa" and "server-ecdsa"."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca(directory, "ca", "OCPP Test CA")
    make_cert(directory, "server-rsa", ca, "localhost", server=True, key_type="rsa")
    make_cert(directory, "server-ecdsa", ca, "localhost", server=True)
    return directory
