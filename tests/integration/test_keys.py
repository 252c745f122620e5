"""Key material of a running Hookline: webhook secret rotation, signing key rotation, keys
encrypted at rest, the key file, and the optional ``v1a`` signature."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import stat
from datetime import timedelta
from pathlib import Path

import pytest
import standardwebhooks
from sqlalchemy import select

from hookline.errors import ConfigError
from hookline.keyring import Keyring
from hookline.store.db import Database
from hookline.store.migrate import migrate
from hookline.store.tables import signing_keys
from tests.conftest import SettingsFor
from tests.integration.test_signed_delivery import (
    get_jwks,
    get_secrets,
    key_from_jwk,
    publish_one,
    sdk_verify,
    verify_rfc9421,
)
from tests.support.hookline import Hookline, make_settings
from tests.support.receiver import Receiver


def _v1_entries(header: str) -> list[bytes]:
    return [base64.b64decode(e[3:]) for e in header.split() if e.startswith("v1,")]


def _hmac(secret: str, msg_id: str, timestamp: str, body: bytes) -> bytes:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


async def worker_signs_with(hookline: Hookline, webhook_id: str, secrets: list[str]) -> None:
    """Wait (bounded) until the worker has reloaded the webhook with these secrets.

    Publishing while that reload is in flight can lose the wake-up of the new events (see
    the report on ``Worker._install`` dropping ``poked``); wait so that these tests check
    signing, not that race."""
    assert hookline.worker is not None
    for _ in range(300):
        runtime = hookline.worker._runtimes.get(webhook_id)
        if runtime is not None and runtime.secrets == secrets and not runtime.busy:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the worker did not pick up the secrets of {webhook_id}")


# --- webhook secrets --------------------------------------------------------------------------


async def test_rotated_secret_and_its_predecessor_both_sign(
    hookline: Hookline, receiver: Receiver
) -> None:
    tenant = await hookline.tenant("acme")
    url = receiver.url("/hook")
    webhook = await tenant.create_webhook(url, config={"delay": "1s"})
    [old] = await get_secrets(tenant, webhook["id"])
    before = await publish_one(tenant, receiver)
    assert len(_v1_entries(before.headers["webhook-signature"])) == 1

    response = await tenant.client.post(f"/webhooks/{webhook['id']}/secret/rotate")
    assert response.status_code == 200, response.text
    new = response.json()["secret"]
    assert new != old and new.startswith("whsec_")
    assert response.json()["previous"] == [old]
    assert await get_secrets(tenant, webhook["id"]) == [new, old]

    await worker_signs_with(hookline, webhook["id"], [new, old])
    after = await publish_one(tenant, receiver)
    entries = _v1_entries(after.headers["webhook-signature"])
    timestamp = after.headers["webhook-timestamp"]
    expected = [_hmac(s, after.package_id, timestamp, after.body) for s in (new, old)]
    assert entries == expected  # one v1 entry per valid secret, the newest first
    for secret in (new, old):  # a receiver holding either secret accepts it
        assert standardwebhooks.Webhook(secret).verify(after.body, after.headers)
        assert await sdk_verify(after, url, secret=secret)
    assert await sdk_verify(after, url, secret=[old, new])
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new).verify(before.body, before.headers)  # old deliveries


async def test_secret_stops_signing_after_the_overlap(
    settings_for: SettingsFor, receiver: Receiver
) -> None:
    # an overlap of zero: the old secret expires at once
    settings = settings_for(secret_rotation_overlap="0s")
    instance = await Hookline(settings).start()
    try:
        tenant = await instance.tenant("acme")
        webhook = await tenant.create_webhook(receiver.url("/hook"), config={"delay": "1s"})
        response = await tenant.client.post(f"/webhooks/{webhook['id']}/secret/rotate")
        assert response.json()["previous"] == []
        new = response.json()["secret"]
        await worker_signs_with(instance, webhook["id"], [new])
        delivered = await publish_one(tenant, receiver)
        assert len(_v1_entries(delivered.headers["webhook-signature"])) == 1
        assert standardwebhooks.Webhook(new).verify(delivered.body, delivered.headers)
    finally:
        await instance.stop()


# --- signing keys -----------------------------------------------------------------------------


async def test_signing_key_rotation_publishes_both_and_signs_with_the_new_one(
    hookline: Hookline, receiver: Receiver
) -> None:
    assert hookline.services is not None
    tenant = await hookline.tenant("acme")
    url = receiver.url("/hook")
    await tenant.create_webhook(url, config={"delay": "1s"})
    [old_jwk] = (await get_jwks(tenant))["keys"]
    before = await publish_one(tenant, receiver)
    assert f'keyid="{old_jwk["kid"]}"' in before.headers["Signature-Input"]

    new_key = await hookline.services.keyring.rotate()
    await hookline.services.refresh_keys()
    document = await get_jwks(tenant)
    assert [k["kid"] for k in document["keys"]] == [new_key.kid, old_jwk["kid"]]
    assert document["keys"][1] == old_jwk

    after = await publish_one(tenant, receiver)
    assert f'keyid="{new_key.kid}"' in after.headers["Signature-Input"]
    assert verify_rfc9421(url, after.headers, after.body, document) == new_key.kid
    assert await sdk_verify(after, url, jwks=document)
    # deliveries signed before the rotation still verify during the overlap
    assert verify_rfc9421(url, before.headers, before.body, document) == old_jwk["kid"]
    assert await sdk_verify(before, url, jwks=document)


async def test_signing_key_overlap_ends(hookline: Hookline) -> None:
    assert hookline.services is not None
    services = hookline.services
    first = (await services.keyring.load())[0]
    short = Keyring(
        services.db, services.settings.model_copy(update={"signing_key_overlap": timedelta(0)})
    )
    second = await short.rotate()
    assert [k.kid for k in await short.load()] == [second.kid]  # first expired at once
    assert first.kid != second.kid


async def test_signing_keys_are_encrypted_at_rest(hookline: Hookline) -> None:
    assert hookline.services is not None
    services = hookline.services
    [key] = await services.keyring.load()
    async with services.db.read() as conn:
        [row] = (await conn.execute(select(signing_keys))).all()
    assert row.kid == key.kid
    assert "PRIVATE KEY" not in row.private_key
    assert key.private_pem().decode() not in row.private_key

    same = Keyring(services.db, services.settings.model_copy())
    assert [k.kid for k in await same.load()] == [key.kid]
    other_settings = services.settings.model_copy(update={"secret_key": "another-secret-key-987"})
    with pytest.raises(ConfigError, match="HOOKLINE_SECRET_KEY"):
        await Keyring(services.db, other_settings).load()


async def test_without_secret_key_sqlite_keeps_a_private_key_file(tmp_path: Path) -> None:
    instance = await Hookline(make_settings(tmp_path, secret_key=None)).start(worker=False)
    try:
        key_file = tmp_path / "hookline.db.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        tenant = await instance.tenant("acme")
        kid = (await get_jwks(tenant))["keys"][0]["kid"]
        await instance.restart()
        tenant = await instance.tenant("acme2")
        assert [k["kid"] for k in (await get_jwks(tenant))["keys"]] == [kid]
    finally:
        await instance.stop()


async def test_processes_starting_together_create_one_key(settings_for: SettingsFor) -> None:
    settings = settings_for()
    await asyncio.to_thread(migrate, settings.database_url)
    databases = [Database(settings.database_url) for _ in range(4)]
    try:
        loaded = await asyncio.gather(*(Keyring(db, settings).load() for db in databases))
        assert len({tuple(k.kid for k in keys) for keys in loaded}) == 1
        assert len(loaded[0]) == 1
    finally:
        for db in databases:
            await db.close()


# --- HOOKLINE_SIGNING_KEY_FILE ----------------------------------------------------------------


async def test_key_file_is_created_private_and_stable_across_restarts(
    settings_for: SettingsFor, tmp_path: Path, receiver: Receiver
) -> None:
    key_file = tmp_path / "k.pem"
    instance = await Hookline(settings_for(signing_key_file=key_file)).start()
    try:
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")
        tenant = await instance.tenant("acme")
        [jwk] = (await get_jwks(tenant))["keys"]
        async with instance.services.db.read() as conn:  # type: ignore[union-attr]
            assert (await conn.execute(select(signing_keys))).all() == []  # not in the DB

        await instance.restart()
        tenant = await instance.tenant("acme2")
        assert (await get_jwks(tenant))["keys"] == [jwk]
        url = receiver.url("/hook")
        await tenant.create_webhook(url, config={"delay": "1s"})
        delivered = await publish_one(tenant, receiver)
        assert verify_rfc9421(url, delivered.headers, delivered.body, {"keys": [jwk]})

        assert instance.services is not None
        new_key = await instance.services.keyring.rotate()
        await instance.services.refresh_keys()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        document = await get_jwks(tenant)
        assert [k["kid"] for k in document["keys"]] == [new_key.kid, jwk["kid"]]
        assert "published until" in key_file.read_text()

        after = await publish_one(tenant, receiver)
        assert verify_rfc9421(url, after.headers, after.body, document) == new_key.kid
        await instance.restart()  # the rotation is in the file, not only in memory
        tenant = await instance.tenant("acme3")
        assert (await get_jwks(tenant)) == document
    finally:
        await instance.stop()


async def test_key_file_drops_keys_past_their_overlap(tmp_path: Path) -> None:
    key_file = tmp_path / "k.pem"
    settings = make_settings(tmp_path, signing_key_file=key_file, signing_key_overlap="0s")
    instance = await Hookline(settings).start(worker=False)
    try:
        assert instance.services is not None
        [first] = await instance.services.keyring.load()
        second = await instance.services.keyring.rotate()
        assert [k.kid for k in await instance.services.keyring.load()] == [second.kid]
        assert key_file.read_text().count("BEGIN PRIVATE KEY") == 1
        assert first.kid != second.kid

        # a retired key whose publication ended is no longer published, but the file loads
        retired = "Retired signing key, published until 2000-01-01T00:00:00+00:00\n"
        key_file.write_text(key_file.read_text() + retired + first.private_pem().decode())
        assert [k.kid for k in await instance.services.keyring.load()] == [second.kid]
    finally:
        await instance.stop()


async def test_key_file_with_an_unusable_key_is_a_config_error(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key_file = tmp_path / "k.pem"
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_file.write_bytes(rsa_pem)
    with pytest.raises(ConfigError, match=r"k\.pem"):
        await Hookline(make_settings(tmp_path, signing_key_file=key_file)).start(worker=False)


# --- v1a --------------------------------------------------------------------------------------


async def test_v1a_entry_verifies_with_the_published_ed25519_key(
    settings_for: SettingsFor, receiver: Receiver
) -> None:
    instance = await Hookline(settings_for(sign_v1a=True)).start()
    try:
        tenant = await instance.tenant("acme")
        url = receiver.url("/hook")
        webhook = await tenant.create_webhook(url, config={"delay": "1s"})
        delivered = await publish_one(tenant, receiver)
        entries = delivered.headers["webhook-signature"].split()
        assert [e.split(",")[0] for e in entries] == ["v1", "v1a"]
        [jwk] = (await get_jwks(tenant))["keys"]
        content = (
            f"{delivered.package_id}.{delivered.headers['webhook-timestamp']}.".encode()
            + delivered.body
        )
        key_from_jwk(jwk).verify(base64.b64decode(entries[1][4:]), content)  # raises if bad
        [secret] = await get_secrets(tenant, webhook["id"])
        assert standardwebhooks.Webhook(secret).verify(delivered.body, delivered.headers)
        assert await sdk_verify(delivered, url, secret=secret)
    finally:
        await instance.stop()


async def test_v1a_with_an_ecdsa_key_is_refused_at_start(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sign_v1a=True, signing_alg="ecdsa-p256-sha256")
    instance = Hookline(settings)
    with pytest.raises(ConfigError, match="HOOKLINE_SIGN_V1A"):
        await instance.start(worker=False)
    await instance.stop()


def test_overlap_settings_parse() -> None:
    settings = make_settings(Path("/nonexistent"), signing_key_overlap="7d")
    assert settings.signing_key_overlap == timedelta(days=7)
