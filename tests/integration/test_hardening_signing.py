"""Signed API requests (RFC 9421): a key with a registered public key only works with a valid
signature made by ``http_message_signatures``' own signer; anything tampered with is 401."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver
from typer.testing import CliRunner

from hookline.cli import app as cli_app
from hookline.signatures.keys import ALGORITHMS, PrivateKey, algorithm_for_key
from hookline.signatures.rfc9421 import HTTPRequestView
from hookline.store import tenants
from tests.support.hookline import ALL_SCOPES, Hookline

BASE = "http://hookline.test"
HOOK = {"title": "signed", "url": "http://127.0.0.1:9/hook"}
Send = Callable[..., Any]


def _pem(private: PrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def sign(
    private: PrivateKey,
    key_id: str,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    headers: dict[str, str] | None = None,
    components: tuple[str, ...] | None = None,
    created: datetime.datetime | None = None,
    lifetime: int = 60,
) -> dict[str, str]:
    """Sign like a client would, with the library's signer; returns the headers to send."""
    fields = {k.lower(): v for k, v in (headers or {}).items()}
    if body:
        fields["content-type"] = "application/json"
    if components is None:
        components = ("@method", "@path", "@query")
        components += ("idempotency-key",) if "idempotency-key" in fields else ()
    signer = HTTPMessageSigner(
        signature_algorithm=ALGORITHMS[algorithm_for_key(private)],
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: private}),
    )
    created = created or datetime.datetime.now(datetime.UTC)
    view = HTTPRequestView(method, BASE + target, fields)
    signer.sign(
        view, key_id=key_id, created=created,
        expires=created + datetime.timedelta(seconds=lifetime), label="sig1",
        covered_component_ids=components, body=body if body else None,
    )  # fmt: skip
    return fields


@pytest.fixture(params=["ed25519", "ecdsa-p256-sha256"])
def private_key(request: pytest.FixtureRequest) -> PrivateKey:
    if request.param == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
async def signed(hookline: Hookline, private_key: PrivateKey) -> tuple[str, httpx.AsyncClient]:
    """(key id, client) of a tenant whose key requires signatures."""
    assert hookline.services is not None
    async with hookline.services.db.write() as conn:
        tenant_id = await tenants.create_tenant(conn, "signer")
        key_id, secret = await tenants.create_key(conn, tenant_id, scopes=ALL_SCOPES)
        await tenants.set_public_key(conn, key_id, public_key=_pem(private_key), alg="x")
    return key_id, hookline.client(secret)


async def test_signed_requests_pass(
    signed: tuple[str, httpx.AsyncClient], private_key: PrivateKey
) -> None:
    key_id, client = signed
    body = json.dumps(HOOK).encode()
    headers = sign(private_key, key_id, "POST", "/webhooks", body, headers={"Idempotency-Key": "a"})
    created = await client.post("/webhooks", content=body, headers=headers)
    assert created.status_code == 201, created.text
    target = "/webhooks?limit=5&sort=title"
    listed = await client.get(target, headers=sign(private_key, key_id, "GET", target))
    assert listed.status_code == 200, listed.text
    assert listed.json()["meta"]["total_count"] == 1


def _tampered(private_key: PrivateKey, key_id: str) -> dict[str, tuple[str, str, bytes, dict]]:
    body = json.dumps(HOOK).encode()
    other = ed25519.Ed25519PrivateKey.generate()
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=10)
    good = sign(private_key, key_id, "POST", "/webhooks", body)
    return {
        "unsigned": ("POST", "/webhooks", body, {"content-type": "application/json"}),
        "body changed": ("POST", "/webhooks", body.replace(b"signed", b"pwned"), good),
        "query changed": (
            "GET", "/webhooks?limit=2", b"", sign(private_key, key_id, "GET", "/webhooks?limit=1")
        ),
        "path changed": (
            "GET", "/webhooks/x", b"", sign(private_key, key_id, "GET", "/webhooks/y")
        ),
        "method changed": ("PUT", "/webhooks", body, good),
        "idempotency key not covered": (
            "POST", "/webhooks", body,
            {**sign(private_key, key_id, "POST", "/webhooks", body), "idempotency-key": "k"},
        ),
        "query not covered": (
            "GET", "/webhooks", b"",
            sign(private_key, key_id, "GET", "/webhooks", components=("@method", "@path")),
        ),
        "expired": ("GET", "/webhooks", b"", sign(private_key, key_id, "GET", "/webhooks",
                                                   created=old, lifetime=60)),
        "created long ago": ("GET", "/webhooks", b"", sign(private_key, key_id, "GET",
                                                            "/webhooks", created=old,
                                                            lifetime=3600)),
        "another key id": ("GET", "/webhooks", b"", sign(private_key, "x", "GET", "/webhooks")),
        "another private key": ("GET", "/webhooks", b"", sign(other, key_id, "GET", "/webhooks")),
        "garbage": ("GET", "/webhooks", b"", {"signature-input": "((", "signature": "x"}),
    }  # fmt: skip


async def test_missing_or_tampered_signatures_are_401(
    signed: tuple[str, httpx.AsyncClient], private_key: PrivateKey
) -> None:
    key_id, client = signed
    for case, (method, target, body, headers) in _tampered(private_key, key_id).items():
        response = await client.request(method, target, content=body, headers=headers)
        assert response.status_code == 401, (case, response.text)
        problem = response.json()
        assert problem["type"] == "urn:hookline:problem:bad-signature", case
        assert problem["detail"], case
    listed = await client.get("/webhooks", headers=sign(private_key, key_id, "GET", "/webhooks"))
    assert listed.json()["meta"]["total_count"] == 0


async def test_keys_without_a_public_key_need_no_signature(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    assert (await acme.client.get("/webhooks")).status_code == 200


def test_the_cli_registers_and_removes_a_public_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("HOOKLINE_SECRET_KEY", "test-secret-key-0123456789")
    pem = tmp_path / "client.pem"
    pem.write_text(_pem(ed25519.Ed25519PrivateKey.generate()))
    (tmp_path / "bad.pem").write_text("not a key")
    runner = CliRunner()

    def cli(*args: str) -> dict[str, Any]:
        result = runner.invoke(cli_app, [*args, "--json"])
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    cli("tenants", "create", "acme")
    made = cli("keys", "create", "--tenant", "acme", "--public-key", str(pem))
    assert made["signed_requests"] == "ed25519"
    [admin, key] = cli("keys", "list", "--tenant", "acme")["data"]
    assert (admin["signed_requests"], key["signed_requests"]) == (None, "ed25519")
    assert key["last_used_at"] is None and "api_key" not in key
    removed = cli("keys", "set-public-key", made["key_id"], "--remove")
    assert removed["signed_requests"] is None
    bad = runner.invoke(
        cli_app, ["keys", "set-public-key", made["key_id"], str(tmp_path / "bad.pem")]
    )
    assert bad.exit_code != 0
