"""Station authentication for security profiles 1-3 (OCPP 2.0.1 part 2, A00-A02): pure decisions.

Profile 1 is HTTP Basic over ws, 2 is Basic over TLS, 3 is TLS with a client certificate; 0 means
no security (development only). A station's stored record holds a salted password hash and,
optionally, the profile it must use.

Why salted SHA-256 and not a slow password hash: station passwords are 16-40 random characters
(OCPP's BasicAuthPassword / AuthorizationKey), so even 16 characters from the 94 printable ones
leave about 2^104 guesses; stretching adds nothing against that, while a reconnect storm of
10,000 stations must be checked in milliseconds (one SHA-256 is about a microsecond; bcrypt or
scrypt at a useful cost would take minutes of CPU). The salt keeps equal passwords from having
equal hashes and defeats precomputed tables; comparison is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import orjson

SCHEME = "sha256"
MIN_PASSWORD_LENGTH = 16
MAX_PASSWORD_LENGTH = 40


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``sha256$<salt hex>$<digest hex>`` of ``password``."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode()).hexdigest()
    return f"{SCHEME}${salt.hex()}${digest}"


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches the stored hash; constant-time in the digest comparison."""
    try:
        scheme, salt_hex, digest = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != SCHEME:
        return False
    candidate = hashlib.sha256(salt + password.encode()).hexdigest()
    return hmac.compare_digest(candidate, digest)


def generate_password(length: int = 32) -> str:
    """A random password of ``length`` URL-safe characters (within OCPP's 16-40)."""
    return secrets.token_urlsafe(length)[:length]


@dataclass(frozen=True, slots=True)
class StationCredentials:
    """What the credential store knows of one station."""

    password_hash: str | None
    profile: int | None = None
    revoked: bool = False
    """A tombstone in the credentials topic: refused whatever the policy allows."""

    def encode(self) -> bytes:
        document: dict[str, Any] = {"password_hash": self.password_hash}
        if self.profile is not None:
            document["profile"] = self.profile
        return orjson.dumps(document)

    @classmethod
    def decode(cls, value: bytes) -> StationCredentials:
        try:
            document = orjson.loads(value)
            password_hash = document.get("password_hash")
            profile = document.get("profile")
        except (orjson.JSONDecodeError, AttributeError) as error:
            raise ValueError(f"not a credentials record: {error}") from error
        if password_hash is not None and not isinstance(password_hash, str):
            raise ValueError("password_hash must be a string")
        if profile is not None and profile not in (0, 1, 2, 3):
            raise ValueError("profile must be 0-3")
        return cls(password_hash, profile)


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(username, password) from an ``Authorization: Basic ...`` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """The operator's choices that shape the checks."""

    allow_unknown_stations: bool = False
    username_must_match: bool = True
    operator_name: str = ""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a handshake is refused: HTTP status and a reason for logs and counters (never for the peer)."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """The parts of a verified client certificate the checks need."""

    common_name: str | None
    organization: str | None
    san_names: tuple[str, ...]


def authorize(
    profile: int,
    station_id: str,
    record: StationCredentials | None,
    policy: AuthPolicy,
    authorization: str | None = None,
    certificate: ClientCertificate | None = None,
    cert_identity: str = "cn",
) -> Refusal | None:
    """None when the station may connect on a listener of ``profile``; otherwise the refusal.

    TLS itself has already refused untrusted and expired certificates on a profile 3 listener.
    """
    if record is not None and record.revoked:
        return Refusal(401, "credentials revoked")
    if profile == 0:
        if record is not None and record.profile:
            return Refusal(403, f"station must use security profile {record.profile}")
        return None
    if record is None and not policy.allow_unknown_stations:
        return Refusal(404, "unknown station")
    if record is not None and record.profile is not None and record.profile != profile:
        return Refusal(403, f"station must use security profile {record.profile}")
    if profile == 3:
        return _check_certificate(station_id, certificate, policy, cert_identity)
    credentials = parse_basic(authorization)
    if credentials is None:
        return Refusal(401, "no basic credentials")
    username, password = credentials
    if policy.username_must_match and username != station_id:
        return Refusal(401, "username does not match the station id")
    if record is None:
        return None
    if record.password_hash is None or not verify_password(record.password_hash, password):
        return Refusal(401, "wrong password")
    return None


def _check_certificate(
    station_id: str, certificate: ClientCertificate | None, policy: AuthPolicy, cert_identity: str
) -> Refusal | None:
    if certificate is None:
        return Refusal(401, "no client certificate")
    names = certificate.san_names if cert_identity == "san" else (certificate.common_name or "",)
    if station_id not in names:
        return Refusal(403, f"certificate {cert_identity} does not match the station id")
    if policy.operator_name and certificate.organization != policy.operator_name:
        return Refusal(403, "certificate organization does not match the operator")
    return None


def certificate_from_peercert(peercert: dict[str, Any] | None) -> ClientCertificate | None:
    """Read the subject CN and O and the DNS/URI SAN entries from ``ssl``'s ``getpeercert()``."""
    if not peercert:
        return None
    subject = {key: value for rdn in peercert.get("subject", ()) for key, value in rdn}
    sans = tuple(value for kind, value in peercert.get("subjectAltName", ()) if kind in ("DNS", "URI"))
    return ClientCertificate(subject.get("commonName"), subject.get("organizationName"), sans)


class FailureThrottle:
    """Slows down addresses that keep failing authentication, with bounded memory.

    Each failure within ``window`` seconds doubles the delay before the next refusal from that
    address is answered, from ``base`` up to ``cap`` seconds; at most ``max_addresses`` are tracked.
    """

    def __init__(self, base: float = 0.1, cap: float = 3.0, window: float = 60.0, max_addresses: int = 10_000) -> None:
        self.base, self.cap, self.window, self.max_addresses = base, cap, window, max_addresses
        self._failures: dict[str, tuple[int, float]] = {}

    def delay(self, address: str, now: float) -> float:
        count, last = self._failures.get(address, (0, 0.0))
        if count == 0 or now - last > self.window:
            return 0.0
        return float(min(self.cap, self.base * 2 ** (count - 1)))

    def failed(self, address: str, now: float) -> None:
        count, last = self._failures.pop(address, (0, 0.0))
        self._failures[address] = (1 if now - last > self.window else count + 1, now)
        while len(self._failures) > self.max_addresses:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)
