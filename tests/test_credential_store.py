"""The credential stores: revocation markers, change notification, and ``ocpp-gw credentials``."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ocpp_gw import credential_store, credentials_cli
from ocpp_gw.config import Config, KafkaConfig, load_config
from ocpp_gw.core.credentials import AuthPolicy, StationCredentials, authorize, hash_password
from ocpp_gw.credential_store import CredentialStore, FileCredentials

PASSWORD = "s3cret-s3cret-s3cret"
RECORD = StationCredentials(hash_password(PASSWORD))
OTHER = StationCredentials(hash_password("other-password-0123"), profile=2)
REVOKED = StationCredentials(None, revoked=True)
LENIENT = AuthPolicy(allow_unknown_stations=True)


@pytest.fixture(autouse=True)
def fast_reload(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(credential_store, "RELOAD_CHECK_INTERVAL", 0.0)
    yield


def publish(store: CredentialStore, station_id: str, record: StationCredentials | None) -> None:
    """What the table does when a record (None: a tombstone) arrives on the topic."""
    assert store.table is not None
    store.table._apply(station_id.encode(), None if record is None else record.encode(), {})


def rewrite(path: Path, station_id: str, record: StationCredentials | None) -> None:
    FileCredentials(path).write(station_id, record)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


async def with_table(path: Path | None, test: Any, on_change: Any = None) -> None:
    store = CredentialStore(FileCredentials(path) if path else None, KafkaConfig(), "credentials", on_change)
    try:
        test(store)
    finally:
        assert store.table is not None
        await store.table._consumer.stop()


def test_a_revoked_marker_in_either_store_revokes(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    FileCredentials(path).write("IN_FILE", REVOKED)
    FileCredentials(path).write("IN_TOPIC", RECORD)
    FileCredentials(path).write("BOTH", RECORD)

    def check(store: CredentialStore) -> None:
        publish(store, "IN_FILE", OTHER)
        publish(store, "IN_TOPIC", REVOKED)
        publish(store, "BOTH", OTHER)
        assert store.get("IN_FILE") == REVOKED
        assert store.get("IN_TOPIC") == REVOKED
        assert store.get("BOTH") == OTHER  # the topic's record still wins when neither is revoked
        publish(store, "BOTH", None)
        assert store.get("BOTH") == REVOKED  # a tombstone revokes while it exists
        publish(store, "IN_TOPIC", RECORD)
        assert store.get("IN_TOPIC") == RECORD  # a new record un-revokes
        for station_id in ("IN_FILE", "BOTH"):
            refusal = authorize(1, station_id, store.get(station_id), LENIENT, None)
            assert refusal is not None and refusal.status == 401

    asyncio.run(with_table(path, check))


def test_every_topic_record_and_tombstone_is_announced() -> None:
    changed: list[str] = []

    def check(store: CredentialStore) -> None:
        publish(store, "CP_1", RECORD)
        publish(store, "CP_2", REVOKED)
        publish(store, "CP_1", None)
        assert changed == ["CP_1", "CP_2", "CP_1"]
        assert store.known("CP_1") and store.known("CP_2") and not store.known("CP_3")

    asyncio.run(with_table(None, check, changed.append))


def test_a_file_reload_announces_the_stations_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    FileCredentials(path).write("SAME", RECORD)
    FileCredentials(path).write("CHANGED", RECORD)
    FileCredentials(path).write("REMOVED", RECORD)
    changed: list[str] = []
    store = CredentialStore(FileCredentials(path), None, "", changed.append)
    assert store.known("SAME") and not store.known("ADDED")
    rewrite(path, "CHANGED", REVOKED)
    FileCredentials(path).write("REMOVED", None)
    FileCredentials(path).write("ADDED", OTHER)
    assert store.get("SAME") == RECORD
    assert sorted(changed) == ["ADDED", "CHANGED", "REMOVED"]
    assert store.get("CHANGED") == REVOKED and store.known("ADDED") and not store.known("REMOVED")
    assert len(changed) == 3  # no second announcement for the same change


def test_the_file_is_watched_even_when_nobody_connects(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    FileCredentials(path).write("CP_1", RECORD)

    async def scenario() -> None:
        noticed = asyncio.Event()
        changed: list[str] = []

        def on_change(station_id: str) -> None:
            changed.append(station_id)
            noticed.set()

        store = CredentialStore(FileCredentials(path), None, "", on_change)
        await store.start()
        rewrite(path, "CP_1", REVOKED)
        await asyncio.wait_for(noticed.wait(), 5)
        assert changed == ["CP_1"]
        await store.stop()
        assert store.watching is None or store.watching.done()
        rewrite(path, "CP_1", RECORD)
        await asyncio.sleep(0.05)
        assert changed == ["CP_1"]

    asyncio.run(scenario())


def test_a_bad_file_keeps_the_previous_entries_and_announces_nothing(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    FileCredentials(path).write("CP_1", RECORD)
    changed: list[str] = []
    store = CredentialStore(FileCredentials(path), None, "", changed.append)
    path.write_text("CP_1 too many fields here\n")
    assert store.get("CP_1") == RECORD and changed == []
    path.unlink()
    assert store.get("CP_1") is None and changed == ["CP_1"]


def config_with_file(tmp_path: Path) -> Config:
    cfg = tmp_path / "c.cfg"
    cfg.write_text(f"[ocpp_gateway]\ncredentials_file = {tmp_path / 'credentials'}\ncredentials_topic = credentials\n")
    return load_config(cfg, {})


def cli(config: Config, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    credentials_cli.add_arguments(parser.add_subparsers(dest="command"))
    return asyncio.run(credentials_cli.run(config, parser.parse_args(["credentials", *argv])))


@pytest.mark.parametrize("station_id", ["a b", "CP_1 sha256$00$00 0\nEVIL", "a\nb", "a#b", "a:b", "a" * 49, ""])
@pytest.mark.parametrize("store", ["file", "kafka"])
def test_the_cli_refuses_invalid_station_ids(
    station_id: str, store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_kafka(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("Kafka must not be contacted")

    monkeypatch.setattr(credentials_cli, "check_access", no_kafka)
    config = config_with_file(tmp_path)
    for action in (["set", station_id, "--password", PASSWORD], ["revoke", station_id]):
        assert cli(config, *action, "--store", store) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "station id" in err
    assert not (tmp_path / "credentials").exists()


def test_the_cli_revokes_with_a_durable_file_marker_and_set_unrevokes(tmp_path: Path) -> None:
    config = config_with_file(tmp_path)
    path = tmp_path / "credentials"
    assert cli(config, "set", "CP_1", "--password", PASSWORD, "--store", "file") == 0
    assert cli(config, "revoke", "CP_1", "--store", "file") == 0
    assert FileCredentials(path).get("CP_1") == REVOKED
    refusal = authorize(1, "CP_1", FileCredentials(path).get("CP_1"), LENIENT, None)
    assert refusal is not None and refusal.status == 401
    assert cli(config, "revoke", "CP_NEVER_SET", "--store", "file") == 0
    assert FileCredentials(path).get("CP_NEVER_SET") == REVOKED
    assert cli(config, "set", "CP_1", "--password", PASSWORD, "--store", "file") == 0
    record = FileCredentials(path).get("CP_1")
    assert record is not None and not record.revoked
    assert authorize(1, "CP_1", record, LENIENT, None) is not None  # still needs its password


def test_the_cli_revokes_with_a_durable_topic_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, bytes | None, bytes]] = []

    class Producer:
        async def start(self) -> None: ...

        async def stop(self) -> None: ...

        async def send_and_wait(self, topic: str, value: bytes | None, key: bytes) -> None:
            sent.append((topic, value, key))

    async def nothing(*args: Any, **kwargs: Any) -> None: ...

    monkeypatch.setattr(credentials_cli, "check_access", nothing)
    monkeypatch.setattr(credentials_cli, "ensure_topics", nothing)
    monkeypatch.setattr(credentials_cli, "make_producer", lambda config: Producer())
    assert cli(config_with_file(tmp_path), "revoke", "CP_1", "--store", "kafka") == 0
    [(topic, value, key)] = sent
    assert topic == "credentials" and key == b"CP_1" and value is not None
    assert orjson.loads(value) == {"revoked": True}
    assert StationCredentials.decode(value) == REVOKED


def test_a_bad_file_is_reported_once_per_change(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "credentials"
    FileCredentials(path).write("CP_1", RECORD)
    store = FileCredentials(path)
    path.write_text("CP_1 too many fields here\n")
    for _ in range(3):
        assert store.get("CP_1") == RECORD
    assert len([r for r in caplog.records if "not reloaded" in r.getMessage()]) == 1
