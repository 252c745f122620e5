"""Deliveries made by a running Hookline verify with independent libraries and with our SDK.

The independent checks use only ``standardwebhooks`` (Standard Webhooks ``v1``),
``http_message_signatures`` (RFC 9421, with the public key built here from the JWK with
``cryptography``) and the API (``GET /webhooks/{id}/secret``, ``GET /auth/verify_keys``);
nothing from ``hookline.signatures`` or ``hookline.receiver``. Then each kind of tampering
with a real captured delivery must be rejected.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import standardwebhooks
import standardwebhooks.webhooks
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from http_message_signatures import (
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)

from hookline.receiver import (
    BadDigest,
    BadSignature,
    Expired,
    JWKSClient,
    MissingHeader,
    UnknownKey,
    VerificationError,
    verify,
)
from tests.conftest import SettingsFor
from tests.support.hookline import Hookline, Tenant
from tests.support.receiver import Answer, Received, Receiver

COVERED = ("@method", "@target-uri", "content-type", "content-digest", "webhook-id")
TOLERANCE = 300
OTHER_ID = "0190c1a2-0000-7000-8000-000000000000"

# --- independent verification (third-party libraries only) ------------------------------------


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_from_jwk(jwk: Mapping[str, str]) -> Any:
    """The public key of a JWK, built with ``cryptography`` alone."""
    if jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(_b64url(jwk["x"]))
    assert (jwk["kty"], jwk["crv"]) == ("EC", "P-256"), jwk
    x, y = (int.from_bytes(_b64url(jwk[c]), "big") for c in ("x", "y"))
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


_ALGORITHMS: dict[str, Any] = {
    "ed25519": algorithms.ED25519,
    "ecdsa-p256-sha256": algorithms.ECDSA_P256_SHA256,
}


@dataclass
class Message:
    """What ``http_message_signatures`` reads from a request."""

    method: str
    url: str
    headers: dict[str, str]


class JWKSResolver(HTTPSignatureKeyResolver):
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.keys = {jwk["kid"]: key_from_jwk(jwk) for jwk in document["keys"]}

    def resolve_public_key(self, key_id: str) -> Any:
        return self.keys.get(key_id)


class FixedClockVerifier(HTTPMessageVerifier):
    """The library's verifier, with "now" moved to ``now`` (to test replays)."""

    now: dt.datetime | None = None

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        if self.now is None:
            return super().validate_created_and_expires(sig_input, max_age)
        created = dt.datetime.fromtimestamp(sig_input.params["created"], dt.UTC)
        if max_age is not None and created + max_age < self.now - self.max_clock_skew:
            raise InvalidSignature(f"Signature age exceeds maximum allowable age {max_age}")
        return None


def verify_rfc9421(
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    document: Mapping[str, Any],
    *,
    now: dt.datetime | None = None,
) -> str:
    """Verify with ``http_message_signatures`` (signature, coverage, age and
    ``Content-Digest``); returns the ``keyid`` used."""
    sig_input = {k.lower(): v for k, v in headers.items()}["signature-input"]
    keyid = sig_input.split('keyid="')[1].split('"')[0]
    [jwk] = [k for k in document["keys"] if k["kid"] == keyid] or [None]
    if jwk is None:
        raise InvalidSignature(f"keyid {keyid} is not in the JWKS")
    verifier = FixedClockVerifier(
        signature_algorithm=_ALGORITHMS[jwk["alg"]], key_resolver=JWKSResolver(document)
    )
    verifier.now = now
    [result] = verifier.verify(
        Message("POST", url, dict(headers)),
        max_age=dt.timedelta(seconds=TOLERANCE),
        require_components=COVERED,
        body=body,
    )
    assert result.label == "sig1"
    assert result.body == body  # the digest was checked against these bytes
    assert set(result.parameters) >= {"created", "keyid", "alg"}
    return keyid


def verify_standard(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: dt.datetime | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> Any:
    """Verify with the ``standardwebhooks`` package (optionally with its clock moved)."""
    if now is not None:
        assert monkeypatch is not None
        fixed = now

        class Clock(dt.datetime):
            @classmethod
            def now(cls, tz: dt.tzinfo | None = None) -> Any:
                return fixed

        monkeypatch.setattr(standardwebhooks.webhooks, "datetime", Clock)
    try:
        return standardwebhooks.Webhook(secret).verify(body, dict(headers))
    finally:
        if now is not None:
            assert monkeypatch is not None
            monkeypatch.undo()


# --- helpers ----------------------------------------------------------------------------------


async def get_secrets(tenant: Tenant, webhook_id: str) -> list[str]:
    response = await tenant.client.get(f"/webhooks/{webhook_id}/secret")
    assert response.status_code == 200, response.text
    body = response.json()
    return [body["secret"], *body["previous"]]


async def get_jwks(tenant: Tenant) -> dict[str, Any]:
    response = await tenant.client.get("/auth/verify_keys")
    assert response.status_code == 200, response.text
    return dict(response.json())


def api_jwks_client(client: httpx.AsyncClient) -> JWKSClient:
    """A JWKSClient whose fetches go through the API (from the verifying thread)."""
    loop = asyncio.get_running_loop()

    def fetch(url: str) -> Mapping[str, Any]:
        future = asyncio.run_coroutine_threadsafe(client.get(url), loop)
        response = future.result(timeout=10)
        if response.status_code != 200:
            raise OSError(f"GET {url}: HTTP {response.status_code}")
        return dict(response.json())

    return JWKSClient("http://hookline.test/auth/verify_keys", fetch=fetch)


async def sdk_verify(request: Received, url: str, **options: Any) -> Any:
    """Our SDK, run in a thread as a receiver would (a JWKS fetch blocks)."""
    return await asyncio.to_thread(verify, request.headers, request.body, url=url, **options)


async def publish_one(tenant: Tenant, receiver: Receiver, path: str = "/hook") -> Received:
    before = len(receiver.at(path))
    [stored] = await tenant.publish({"type": "ORDER.FILLED", "object": {"id": "ord_1"}})
    await receiver.wait_for(
        lambda: any(e["id"] == stored["id"] for r in receiver.at(path) for e in r.events),
        what="the delivery",
    )
    return receiver.at(path)[before]


@dataclass
class Delivery:
    tenant: Tenant
    webhook: dict[str, Any]
    request: Received
    url: str
    secret: str
    jwks: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.request.headers)

    @property
    def timestamp(self) -> int:
        return int(self.request.headers["webhook-timestamp"])


async def deliver(hookline: Hookline, receiver: Receiver) -> Delivery:
    tenant = await hookline.tenant("acme")
    url = receiver.url("/hook")
    webhook = await tenant.create_webhook(url, config={"delay": "1s"})
    request = await publish_one(tenant, receiver)
    [secret] = await get_secrets(tenant, webhook["id"])
    return Delivery(tenant, webhook, request, url, secret, await get_jwks(tenant))


# --- a delivery verifies three ways -----------------------------------------------------------


async def test_delivery_verifies_with_independent_libraries_and_the_sdk(
    hookline: Hookline, receiver: Receiver
) -> None:
    d = await deliver(hookline, receiver)
    headers = d.headers
    assert {k.lower() for k in headers} >= {
        "content-type", "content-digest", "signature-input", "signature",
        "webhook-id", "webhook-timestamp", "webhook-signature",
    }  # fmt: skip
    assert headers["Content-Digest"].startswith("sha-512=:")
    assert headers["Signature-Input"].startswith('sig1=("@method" "@target-uri"')
    assert headers["webhook-signature"].startswith("v1,")

    # (a) standardwebhooks, with the secret from the API
    assert standardwebhooks.Webhook(d.secret).verify(d.request.body, headers) == d.request.json
    # (b) http_message_signatures, with the key from the JWKS built here
    keyid = verify_rfc9421(d.url, headers, d.request.body, d.jwks)
    assert keyid in {k["kid"] for k in d.jwks["keys"]}
    assert [k["kty"] for k in d.jwks["keys"]] == ["OKP"]  # ed25519 by default
    assert f'alg="{d.jwks["keys"][0]["alg"]}"' in headers["Signature-Input"]
    # the signature's created is the Standard Webhooks timestamp of this attempt
    assert f"created={d.timestamp};" in headers["Signature-Input"]
    # (c) our SDK, fetching the JWKS through the API with the tenant's key
    client = api_jwks_client(d.tenant.client)
    events = await sdk_verify(d.request, d.url, secret=d.secret, jwks=client)
    assert [e.id for e in events] == [e["id"] for e in d.request.events]
    assert events[0].webhook_id == d.webhook["id"]


async def test_jwks_endpoint_needs_an_api_key_with_webhooks_read(
    hookline: Hookline, receiver: Receiver
) -> None:
    d = await deliver(hookline, receiver)
    anonymous = hookline.client()
    assert (await anonymous.get("/auth/verify_keys")).status_code == 401
    with pytest.raises(UnknownKey, match="could not fetch"):
        await sdk_verify(d.request, d.url, jwks=api_jwks_client(anonymous))
    reader = hookline.client(await hookline.key_for(d.tenant.id, ["webhooks:read"]))
    assert await sdk_verify(d.request, d.url, jwks=api_jwks_client(reader))


# --- each tampering is rejected ---------------------------------------------------------------


def _drop(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != name}


def _set(headers: dict[str, str], name: str, value: str) -> dict[str, str]:
    return {**_drop(headers, name), name: value}


Tamper = Callable[[Delivery], tuple[dict[str, str], bytes]]

TAMPERINGS: dict[str, tuple[Tamper, type[VerificationError], bool]] = {
    # name: (change, what our SDK raises, whether the Standard Webhooks v1 covers it)
    "body": (
        lambda d: (d.headers, d.request.body.replace(b"ord_1", b"ord_2")),
        BadDigest,
        True,
    ),
    "content-type header": (
        lambda d: (_set(d.headers, "Content-Type", "text/plain"), d.request.body),
        BadSignature,
        False,  # v1 signs id.timestamp.body only; RFC 9421 covers content-type
    ),
    "webhook-id header": (
        lambda d: (_set(d.headers, "webhook-id", OTHER_ID), d.request.body),
        BadSignature,
        True,
    ),
    "webhook-timestamp header": (
        lambda d: (_set(d.headers, "webhook-timestamp", str(d.timestamp - 1)), d.request.body),
        BadSignature,
        True,
    ),
    "missing Content-Digest": (
        lambda d: (_drop(d.headers, "content-digest"), d.request.body),
        MissingHeader,
        False,  # not part of Standard Webhooks
    ),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
async def test_tampered_delivery_is_rejected(
    hookline: Hookline, receiver: Receiver, name: str
) -> None:
    d = await deliver(hookline, receiver)
    change, sdk_error, covered_by_v1 = TAMPERINGS[name]
    headers, body = change(d)
    tampered = Received(d.request.path, headers, body, d.request.at, d.request.answered)
    jwks_doc = d.jwks

    # our SDK, each scheme alone and both
    if name != "webhook-timestamp header":  # RFC 9421 signs "created", not that header
        with pytest.raises(sdk_error):
            await sdk_verify(tampered, d.url, jwks=jwks_doc)
    if covered_by_v1:
        with pytest.raises(BadSignature):
            await sdk_verify(tampered, d.url, secret=d.secret)
    with pytest.raises(VerificationError):
        await sdk_verify(tampered, d.url, secret=d.secret, jwks=jwks_doc)

    # the independent libraries agree
    if name != "webhook-timestamp header":
        with pytest.raises(InvalidSignature):
            verify_rfc9421(d.url, headers, body, jwks_doc)
    if covered_by_v1:
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            standardwebhooks.Webhook(d.secret).verify(body, headers)
    else:  # and the untouched scheme still verifies: the tampering is what RFC 9421 caught
        assert standardwebhooks.Webhook(d.secret).verify(body, headers)


async def test_wrong_key_or_secret_is_rejected(hookline: Hookline, receiver: Receiver) -> None:
    d = await deliver(hookline, receiver)
    other = await get_secrets(d.tenant, (await d.tenant.create_webhook(d.url))["id"])
    with pytest.raises(BadSignature):
        await sdk_verify(d.request, d.url, secret=other[0])
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(other[0]).verify(d.request.body, d.headers)

    # a different Ed25519 key published under the same kid
    impostor = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    forged_jwks = {
        "keys": [{**k, "x": base64.urlsafe_b64encode(impostor).rstrip(b"=").decode()}
                 for k in d.jwks["keys"]]
    }  # fmt: skip
    with pytest.raises(BadSignature):
        await sdk_verify(d.request, d.url, jwks=forged_jwks)
    with pytest.raises(InvalidSignature):
        verify_rfc9421(d.url, d.headers, d.request.body, forged_jwks)

    # a JWKS without the kid (another deployment's keys)
    with pytest.raises(UnknownKey):
        await sdk_verify(d.request, d.url, jwks={"keys": []})

    # the signature binds the URL too
    with pytest.raises(BadSignature):
        await sdk_verify(d.request, d.url + "/other", jwks=d.jwks)


async def test_replayed_old_delivery_is_rejected(
    hookline: Hookline, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = await deliver(hookline, receiver)
    late = d.timestamp + TOLERANCE + 1
    with pytest.raises(Expired):
        await sdk_verify(d.request, d.url, secret=d.secret, now=late, tolerance=TOLERANCE)
    with pytest.raises(Expired):
        await sdk_verify(d.request, d.url, jwks=d.jwks, now=late, tolerance=TOLERANCE)
    # still fine at the edge of the window
    edge = d.timestamp + TOLERANCE
    assert await sdk_verify(d.request, d.url, secret=d.secret, jwks=d.jwks, now=edge)

    later = dt.datetime.fromtimestamp(late, dt.UTC)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError, match="too old"):
        verify_standard(d.secret, d.headers, d.request.body, now=later, monkeypatch=monkeypatch)
    much_later = later + FixedClockVerifier.max_clock_skew
    with pytest.raises(InvalidSignature, match="age"):
        verify_rfc9421(d.url, d.headers, d.request.body, d.jwks, now=much_later)


# --- retries, test sends, ECDSA ---------------------------------------------------------------


async def test_retried_package_keeps_its_id_and_is_signed_again(
    hookline: Hookline, receiver: Receiver
) -> None:
    tenant = await hookline.tenant("acme")
    url = receiver.url("/hook")
    webhook = await tenant.create_webhook(url, config={"delay": "1s"})
    # 503 with Retry-After: 2 makes the retry come at least 2 s later: a new timestamp
    receiver.script("/hook", Answer(status=503, headers={"Retry-After": "2"}))
    await tenant.publish({"type": "ORDER.FILLED", "object": {"id": "ord_1"}})
    await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 1, what="the retry")
    first, second = receiver.at("/hook")
    assert (first.answered, second.answered) == (503, 200)
    assert first.body == second.body
    assert first.package_id == second.package_id
    assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
    assert first.headers["Signature-Input"] != second.headers["Signature-Input"]  # new created
    [secret] = await get_secrets(tenant, webhook["id"])
    document = await get_jwks(tenant)
    for attempt in (first, second):
        standardwebhooks.Webhook(secret).verify(attempt.body, attempt.headers)
        verify_rfc9421(url, attempt.headers, attempt.body, document)
        created = f"created={attempt.headers['webhook-timestamp']};"
        assert created in attempt.headers["Signature-Input"]
        assert await sdk_verify(attempt, url, secret=secret, jwks=document)


async def test_test_endpoint_sends_a_signed_package(hookline: Hookline, receiver: Receiver) -> None:
    tenant = await hookline.tenant("acme")
    url = receiver.url("/test-hook")
    webhook = await tenant.create_webhook(url)
    response = await tenant.client.post(f"/webhooks/{webhook['id']}/test", params={"wait": True})
    assert response.status_code == 200, response.text
    assert response.json()["response"]["status"] == 200
    [request] = receiver.at("/test-hook")
    assert request.package_id == response.json()["package_id"]
    [secret] = await get_secrets(tenant, webhook["id"])
    document = await get_jwks(tenant)
    assert standardwebhooks.Webhook(secret).verify(request.body, request.headers)
    verify_rfc9421(url, request.headers, request.body, document)
    [event] = await sdk_verify(request, url, secret=secret, jwks=document)
    assert event.type == "WEBHOOK.TEST"


async def test_ecdsa_p256_deliveries_verify_independently(
    settings_for: SettingsFor, receiver: Receiver
) -> None:
    instance = await Hookline(settings_for(signing_alg="ecdsa-p256-sha256")).start()
    try:
        d = await deliver(instance, receiver)
        [jwk] = d.jwks["keys"]
        assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("EC", "P-256", "ecdsa-p256-sha256")
        assert 'alg="ecdsa-p256-sha256"' in d.headers["Signature-Input"]
        raw = base64.b64decode(d.headers["Signature"].split(":")[1])
        assert len(raw) == 64  # RFC 9421: r || s, not DER
        assert verify_rfc9421(d.url, d.headers, d.request.body, d.jwks) == jwk["kid"]
        assert standardwebhooks.Webhook(d.secret).verify(d.request.body, d.headers)
        client = api_jwks_client(d.tenant.client)
        assert await sdk_verify(d.request, d.url, secret=d.secret, jwks=client)
        tampered = Received(d.request.path, d.headers, d.request.body + b" ", 0.0, 200)
        with pytest.raises(BadDigest):
            await sdk_verify(tampered, d.url, jwks=client)
    finally:
        await instance.stop()


async def test_non_ascii_digits_in_the_timestamp_are_a_bad_signature(
    hookline: Hookline, receiver: Receiver
) -> None:
    d = await deliver(hookline, receiver)
    for value in ("²", f"{d.timestamp}\u0661"):  # str.isdigit() is true for these
        tampered = Received(
            d.request.path, _set(d.headers, "webhook-timestamp", value), d.request.body, 0.0, 200
        )
        with pytest.raises(BadSignature, match="Unix seconds"):
            await sdk_verify(tampered, d.url, secret=d.secret)
