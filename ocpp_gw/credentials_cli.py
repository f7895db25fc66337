"""``ocpp-gw credentials``: add, rotate and revoke a station's credentials in the file or the Kafka topic.

Revoking writes a durable revocation marker (not a deletion, which would make the station unknown
and so welcome where unknown stations are); ``set`` replaces it. Station ids follow the URL's rules,
so no id can smuggle an extra line into the file.
"""

from __future__ import annotations

import argparse
import sys

from .config import Config, ConfigError
from .core.credentials import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    StationCredentials,
    generate_password,
    hash_password,
)
from .core.protocol import MAX_STATION_ID_LENGTH, valid_station_id
from .credential_store import REVOKED, FileCredentials
from .kafka_clients import check_access, make_producer
from .kafka_topics import ensure_topics


def add_arguments(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    credentials = commands.add_parser("credentials", help="add, rotate or revoke station credentials")
    actions = credentials.add_subparsers(dest="credentials_action", required=True)
    setting = actions.add_parser("set", help="add or rotate a station's password (prints a generated one)")
    setting.add_argument("station_id")
    setting.add_argument(
        "--password", help=f"{MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters (default: generate)"
    )
    setting.add_argument("--profile", type=int, choices=(1, 2, 3), help="the security profile the station must use")
    revoking = actions.add_parser("revoke", help="mark a station revoked: refused on every listener until set again")
    revoking.add_argument("station_id")
    for parser in (setting, revoking):
        parser.add_argument("--store", choices=("file", "kafka"), help="default: the file if configured, else Kafka")
        parser.add_argument("--config", default=argparse.SUPPRESS, help="INI configuration file")


async def run(config: Config, args: argparse.Namespace) -> int:
    if not valid_station_id(args.station_id):
        print(
            f"ocpp-gw: invalid station id {args.station_id[:64]!r}: 1-{MAX_STATION_ID_LENGTH} printable characters"
            " without whitespace, ':', '/' or '#'",
            file=sys.stderr,
        )
        return 2
    gateway = config.ocpp_gateway
    store = args.store or ("file" if gateway.credentials_file else "kafka")
    if store == "file" and not gateway.credentials_file:
        raise ConfigError("[ocpp_gateway] credentials_file: not set, so there is no file to write")
    if store == "kafka" and not gateway.credentials_topic:
        raise ConfigError("[ocpp_gateway] credentials_topic: not set, so there is no topic to write")
    record = REVOKED
    password = None
    if args.credentials_action == "set":
        password = args.password or generate_password()
        if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
            print(f"ocpp-gw: a password has {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters", file=sys.stderr)
            return 2
        record = StationCredentials(hash_password(password), args.profile)
    if store == "file":
        FileCredentials(gateway.credentials_file).write(args.station_id, record)
    else:
        await check_access(config.kafka)
        await ensure_topics(config.kafka, gateway.credentials_topic, compacted=(gateway.credentials_topic,))
        producer = make_producer(config.kafka)
        await producer.start()
        try:
            await producer.send_and_wait(gateway.credentials_topic, record.encode(), key=args.station_id.encode())
        finally:
            await producer.stop()
    if password is not None and not args.password:
        print(password)
    print(f"ocpp-gw: {args.credentials_action} {args.station_id} in the {store} store", file=sys.stderr)
    return 0
