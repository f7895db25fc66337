"""Every Kafka client of every program is made here, with the ``[kafka]`` connection and security settings.

One place decides how a client reaches the cluster (servers, TLS, SASL), so the gateway, the CSMS
worker, ``csms-server call``, the credentials CLI, the admin clients and the test harnesses all
connect the same way. :func:`check_access` turns the refusals that retrying cannot fix (a wrong
password, an untrusted broker certificate) into one line instead of a client's retry loop.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context

from .config import KafkaConfig

METADATA_MAX_AGE_MS = 5000
"""Clients refresh metadata this often, so added partitions, topics and moved leaders are picked up quickly."""

MAX_RECORD_BYTES = 4 * 2**20
"""Largest record the programs produce and create topics for: a station answer of the largest allowed
frame (``max_message_size``, 1 MiB by default) plus the CSMS call attached to it, with room to spare."""


class KafkaAccessError(Exception):
    """Kafka refused this program in a way retrying cannot fix; the message is the one line to show."""


@functools.cache
def tls_context(config: KafkaConfig) -> ssl.SSLContext:
    """The TLS context of SSL and SASL_SSL clients: the broker's certificate checked against
    ``ssl_cafile`` (or the system's CAs), a client certificate for mTLS when one is configured."""
    context: ssl.SSLContext = create_ssl_context(
        cafile=config.ssl_cafile or None,
        certfile=config.ssl_certfile or None,
        keyfile=config.ssl_keyfile or None,
    )
    context.check_hostname = config.ssl_check_hostname
    return context


def client_options(config: KafkaConfig) -> dict[str, Any]:
    """The keyword arguments every aiokafka client gets: servers and security."""
    options: dict[str, Any] = {
        "bootstrap_servers": config.bootstrap_servers,
        "security_protocol": config.security_protocol,
    }
    if config.uses_tls:
        options["ssl_context"] = tls_context(config)
    if config.uses_sasl:
        options.update(
            sasl_mechanism=config.sasl_mechanism,
            sasl_plain_username=config.sasl_username,
            sasl_plain_password=config.sasl_password,
        )
    return options


def make_producer(config: KafkaConfig) -> AIOKafkaProducer:
    """An idempotent producer that waits for all in-sync replicas: nothing published twice or lost."""
    return AIOKafkaProducer(
        **client_options(config),
        acks="all",
        enable_idempotence=True,
        linger_ms=config.linger_ms,
        max_request_size=MAX_RECORD_BYTES + 2**16,
        request_timeout_ms=config.request_timeout_ms,
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
    )


def make_consumer(config: KafkaConfig, *topics: str, **settings: Any) -> AIOKafkaConsumer:
    """A consumer of ``topics`` (none: assign or subscribe later); ``settings`` are aiokafka's own."""
    settings.setdefault("metadata_max_age_ms", METADATA_MAX_AGE_MS)
    settings.setdefault("fetch_min_bytes", config.fetch_min_bytes)
    settings.setdefault("fetch_max_wait_ms", config.fetch_max_wait_ms)
    settings.setdefault("group_id", None)
    return AIOKafkaConsumer(*topics, **client_options(config), **settings)


def make_admin(config: KafkaConfig) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(config), request_timeout_ms=config.request_timeout_ms)


AUTH_ERRORS = (
    SaslAuthenticationFailed,
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    UnsupportedSaslMechanismError,
    IllegalSaslStateError,
)


async def check_access(config: KafkaConfig) -> None:
    """Connect once to the bootstrap servers as every client will, and stop at a lasting refusal.

    A wrong password or an untrusted certificate raises :class:`KafkaAccessError` naming the cause
    (never the password); a broker that does not answer is left to the clients, which report it
    and retry as before.
    """
    options = client_options(config)
    for server in config.bootstrap_servers:
        host, _, port = server.rpartition(":")
        try:
            connection = await create_conn(
                host,
                int(port),
                client_id="ocpp-gw-access-check",
                request_timeout_ms=config.request_timeout_ms,
                ssl_context=options.get("ssl_context"),
                security_protocol=config.security_protocol,
                sasl_mechanism=options.get("sasl_mechanism"),
                sasl_plain_username=options.get("sasl_plain_username"),
                sasl_plain_password=options.get("sasl_plain_password"),
            )
        except ssl.SSLCertVerificationError as error:
            raise KafkaAccessError(
                f"Kafka broker {server} presented a certificate that is not trusted ({error.verify_message});"
                " check [kafka] ssl_cafile and ssl_check_hostname"
            ) from None
        except ssl.SSLError as error:
            raise KafkaAccessError(
                f"TLS with Kafka broker {server} failed ({error.reason or error}); does the listener speak"
                f" {config.security_protocol}, and does it need a client certificate (ssl_certfile)?"
            ) from None
        except AUTH_ERRORS as error:
            detail = str(error).replace(config.sasl_password, "***") if config.sasl_password else str(error)
            raise KafkaAccessError(
                f"Kafka broker {server} refused user {config.sasl_username!r} with {config.sasl_mechanism}"
                f" ({type(error).__name__}: {detail}); check [kafka] sasl_username and sasl_password"
            ) from None
        except (OSError, KafkaError, TimeoutError):
            continue
        connection.close()
        return
