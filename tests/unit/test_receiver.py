"""The receiver SDK: verify(), JWKSClient, parse_package, de-duplication and the adapters."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from hookline.receiver import (
    BadDigest,
    BadPayload,
    BadSignature,
    Event,
    Expired,
    JWKSClient,
    MemorySeenStore,
    MissingHeader,
    SQLiteSeenStore,
    UnknownKey,
    VerificationError,
    WebhookVerifier,
    dedupe,
    parse_package,
    verify,
)
from hookline.signatures import (
    ECDSA_P256_SHA256,
    ED25519,
    SigningKey,
    content_digest,
    generate_secret,
    generate_signing_key,
    jwks,
    sign_package,
)

URL = "https://app.example.com/hooks/hookline"
NOW = 1_750_000_000
SECRET = generate_secret()


def _event(n: int, type_: str = "ORDER.FILLED") -> dict[str, Any]:
    return {
        "id": f"evt_{n}",
        "created_at": "2025-06-15T15:06:40.5Z",
        "type": type_,
        "object": {"id": f"ord_{n}", "status": "FILLED"},
        "webhook_id": "wh_1",
    }


BODY = json.dumps({"payload": [_event(1), _event(2, "USER.CREATED")]}).encode()


@pytest.fixture(scope="module")
def ed_key() -> SigningKey:
    return generate_signing_key(ED25519)


def _headers(
    key: SigningKey, *, secrets: list[str] | None = None, **overrides: Any
) -> dict[str, str]:
    args: dict[str, Any] = {
        "url": URL,
        "body": BODY,
        "msg_id": "msg_1",
        "timestamp": NOW,
        "signing_key": key,
        "secrets": secrets or [SECRET],
    }
    return sign_package(**(args | overrides))


class FakeJWKS:
    """A JWKS endpoint double: counts fetches, serves the current key list, can fail."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.fail = False

    def __call__(self, url: str) -> Mapping[str, Any]:
        self.fetches += 1
        if self.fail:
            raise OSError("connection refused")
        return jwks(self.keys)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", [ED25519, ECDSA_P256_SHA256])
@pytest.mark.parametrize("n_secrets", [1, 2])
def test_round_trip_both_schemes(alg: str, n_secrets: int) -> None:
    key = generate_signing_key(alg)
    secrets = [generate_secret() for _ in range(n_secrets)]
    headers = _headers(key, secrets=secrets)
    client = JWKSClient("https://hookline.test/auth/verify_keys", fetch=FakeJWKS(key))
    for secret in secrets:  # a receiver holding either the old or the new secret
        events = verify(headers, BODY, url=URL, secret=secret, jwks=client, now=NOW)
        assert [e.id for e in events] == ["evt_1", "evt_2"]
    assert verify(headers, BODY, url=URL, secret=secrets, jwks=jwks([key]), now=NOW)


@pytest.mark.parametrize("alg", [ED25519, ECDSA_P256_SHA256])
def test_public_key_as_object_or_pem(alg: str) -> None:
    key = generate_signing_key(alg)
    headers = _headers(key)
    public = key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for material in (public, pem, pem.decode()):
        assert verify(headers, BODY, url=URL, public_key=material, now=NOW)


def test_each_scheme_alone(ed_key: SigningKey) -> None:
    headers = _headers(ed_key)
    only_standard = {
        k: v for k, v in headers.items() if k.lower() not in {"signature", "signature-input"}
    }
    assert verify(only_standard, BODY, secret=SECRET, now=NOW)
    only_rfc9421 = {k: v for k, v in headers.items() if k != "webhook-signature"}
    assert verify(only_rfc9421, BODY, url=URL, jwks=jwks([ed_key]), now=NOW)


def test_header_names_are_case_insensitive(ed_key: SigningKey) -> None:
    headers = {k.upper(): v for k, v in _headers(ed_key).items()}
    assert verify(headers, BODY, url=URL, secret=SECRET, jwks=jwks([ed_key]), now=NOW)


def test_url_spelling_and_default_port_are_normalised(ed_key: SigningKey) -> None:
    headers = _headers(ed_key)
    assert verify(
        headers,
        BODY,
        url="https://APP.example.com:443/hooks/hookline",
        jwks=jwks([ed_key]),
        now=NOW,
    )


def test_timestamp_within_tolerance_either_way(ed_key: SigningKey) -> None:
    headers = _headers(ed_key)
    for now in (NOW - 300, NOW + 300):
        assert verify(headers, BODY, url=URL, secret=SECRET, jwks=jwks([ed_key]), now=now)


def test_real_clock_is_the_default(ed_key: SigningKey) -> None:
    headers = _headers(ed_key, timestamp=int(time.time()))
    assert verify(headers, BODY, url=URL, secret=SECRET, jwks=jwks([ed_key]))
    with pytest.raises(Expired):
        verify(_headers(ed_key), BODY, url=URL, secret=SECRET)  # signed at NOW, long ago


# --- rejections -------------------------------------------------------------------------------


def _rfc9421(key: SigningKey) -> dict[str, Any]:
    return {"url": URL, "jwks": jwks([key]), "now": NOW}


def test_tampered_body_is_bad_digest(ed_key: SigningKey) -> None:
    with pytest.raises(BadDigest):
        verify(_headers(ed_key), BODY.replace(b"FILLED", b"CANCEL"), **_rfc9421(ed_key))
    with pytest.raises(BadDigest):  # checked before the HMAC when both are given
        verify(_headers(ed_key), BODY + b" ", secret=SECRET, **_rfc9421(ed_key))


def test_tampered_body_with_matching_digest_is_bad_signature(ed_key: SigningKey) -> None:
    body = BODY + b" "
    headers = _headers(ed_key) | {"Content-Digest": content_digest(body)}
    with pytest.raises(BadSignature):
        verify(headers, body, **_rfc9421(ed_key))


def test_tampered_body_standard_only_is_bad_signature(ed_key: SigningKey) -> None:
    with pytest.raises(BadSignature):
        verify(_headers(ed_key), BODY + b" ", secret=SECRET, now=NOW)


@pytest.mark.parametrize(
    ("name", "value"), [("webhook-id", "msg_2"), ("Content-Type", "text/plain")]
)
def test_tampered_covered_header_is_bad_signature(
    ed_key: SigningKey, name: str, value: str
) -> None:
    with pytest.raises(BadSignature):
        verify(_headers(ed_key) | {name: value}, BODY, **_rfc9421(ed_key))


def test_tampered_webhook_id_fails_standard_webhooks_too(ed_key: SigningKey) -> None:
    with pytest.raises(BadSignature):
        verify(_headers(ed_key) | {"webhook-id": "msg_2"}, BODY, secret=SECRET, now=NOW)


def test_other_url_or_method_is_bad_signature(ed_key: SigningKey) -> None:
    with pytest.raises(BadSignature):
        verify(_headers(ed_key), BODY, **_rfc9421(ed_key) | {"url": URL + "/other"})
    with pytest.raises(BadSignature):
        verify(_headers(ed_key), BODY, method="PUT", **_rfc9421(ed_key))


def test_wrong_secret_is_bad_signature(ed_key: SigningKey) -> None:
    with pytest.raises(BadSignature):
        verify(_headers(ed_key), BODY, secret=[generate_secret(), generate_secret()], now=NOW)


@pytest.mark.parametrize("alg", [ED25519, ECDSA_P256_SHA256])
def test_wrong_key_with_the_same_kid_is_bad_signature(alg: str) -> None:
    key = generate_signing_key(alg)
    impostor = generate_signing_key(alg).public_jwk() | {"kid": key.kid}
    with pytest.raises(BadSignature):
        verify(_headers(key), BODY, url=URL, jwks={"keys": [impostor]}, now=NOW)
    with pytest.raises(BadSignature):
        verify(
            _headers(key), BODY, url=URL, public_key=generate_signing_key(alg).public_key(), now=NOW
        )


def test_key_of_other_algorithm_under_the_same_kid_is_bad_signature() -> None:
    key = generate_signing_key(ED25519)
    other = generate_signing_key(ECDSA_P256_SHA256).public_jwk() | {"kid": key.kid}
    with pytest.raises(BadSignature):
        verify(_headers(key), BODY, url=URL, jwks={"keys": [other]}, now=NOW)


@pytest.mark.parametrize("now", [NOW + 301, NOW - 301])
def test_timestamp_outside_tolerance_is_expired(ed_key: SigningKey, now: int) -> None:
    with pytest.raises(Expired):
        verify(_headers(ed_key), BODY, secret=SECRET, now=now)
    with pytest.raises(Expired):
        verify(_headers(ed_key), BODY, url=URL, jwks=jwks([ed_key]), now=now)
    assert verify(_headers(ed_key), BODY, secret=SECRET, now=now, tolerance=400)


@pytest.mark.parametrize(
    ("drop", "material"),
    [
        ("Content-Digest", "jwks"),
        ("Signature-Input", "jwks"),
        ("Signature", "jwks"),
        ("webhook-signature", "secret"),
        ("webhook-timestamp", "secret"),
        ("webhook-id", "secret"),
    ],
)
def test_missing_header(ed_key: SigningKey, drop: str, material: str) -> None:
    headers = {k: v for k, v in _headers(ed_key).items() if k != drop}
    options: dict[str, Any] = (
        {"secret": SECRET} if material == "secret" else {"jwks": jwks([ed_key])}
    )
    with pytest.raises(MissingHeader, match=drop.lower()):
        verify(headers, BODY, url=URL, now=NOW, **options)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Signature-Input", "garbage(("),
        ("Signature-Input", 'sig1=("@method");keyid="x"'),  # no created
        ("Signature", "sig1=:AAAA:"),
        ("webhook-timestamp", "soon"),
    ],
)
def test_malformed_signature_headers_are_bad_signature(
    ed_key: SigningKey, name: str, value: str
) -> None:
    with pytest.raises(BadSignature):
        verify(_headers(ed_key) | {name: value}, BODY, secret=SECRET, **_rfc9421(ed_key))


def test_signature_not_covering_the_required_components_is_rejected(ed_key: SigningKey) -> None:
    from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

    from hookline.signatures import HTTPRequestView

    headers = dict(_headers(ed_key))
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(
            public_keys={}, private_keys={ed_key.kid: ed_key.private_key}
        ),
    )
    request = HTTPRequestView("POST", URL, headers)
    signer.sign(
        request,
        key_id=ed_key.kid,
        label="sig1",
        created=datetime.fromtimestamp(NOW, UTC),
        covered_component_ids=("@method", "@target-uri"),
        use_existing_digest=True,
    )
    with pytest.raises(BadSignature, match="not covered"):
        verify(headers, BODY, **_rfc9421(ed_key))


def test_unknown_keyid(ed_key: SigningKey) -> None:
    with pytest.raises(UnknownKey):
        verify(_headers(ed_key), BODY, url=URL, jwks=jwks([generate_signing_key()]), now=NOW)


def test_rejections_share_a_base_class_with_status_codes() -> None:
    assert {cls.status_code for cls in (MissingHeader, BadPayload)} == {400}
    assert {cls.status_code for cls in (BadDigest, BadSignature, Expired, UnknownKey)} == {401}
    for cls in (MissingHeader, BadPayload, BadDigest, BadSignature, Expired, UnknownKey):
        assert issubclass(cls, VerificationError)


def test_usage_errors(ed_key: SigningKey) -> None:
    with pytest.raises(ValueError, match="nothing to verify"):
        verify(_headers(ed_key), BODY, now=NOW)
    with pytest.raises(ValueError, match="url"):
        verify(_headers(ed_key), BODY, jwks=jwks([ed_key]), now=NOW)
    with pytest.raises(ValueError, match="not both"):
        verify(_headers(ed_key), BODY, url=URL, jwks=jwks([ed_key]), public_key=ed_key.public_key())
    with pytest.raises(ValueError):
        WebhookVerifier()


# --- JWKSClient -------------------------------------------------------------------------------


def test_jwks_client_caches_then_refreshes_after_cache_seconds(ed_key: SigningKey) -> None:
    fetch, clock = FakeJWKS(ed_key), FakeClock()
    client = JWKSClient("u", fetch=fetch, clock=clock, cache_seconds=300)
    for _ in range(3):
        assert client.get_key(ed_key.kid) == ed_key.public_key()
    assert fetch.fetches == 1
    clock.now += 300
    client.get_key(ed_key.kid)
    assert fetch.fetches == 2


def test_unknown_kid_refetches_once_rate_limited(ed_key: SigningKey) -> None:
    fetch, clock = FakeJWKS(ed_key), FakeClock()
    client = JWKSClient("u", fetch=fetch, clock=clock)
    client.get_key(ed_key.kid)
    clock.now += 11
    headers = _headers(generate_signing_key())  # signed with a key the JWKS does not have
    with pytest.raises(UnknownKey):
        verify(headers, BODY, url=URL, jwks=client, now=NOW)
    assert fetch.fetches == 2  # the initial fetch and exactly one refetch
    for _ in range(5):
        with pytest.raises(UnknownKey):
            verify(headers, BODY, url=URL, jwks=client, now=NOW)
    assert fetch.fetches == 2  # rate-limited
    clock.now += 10
    with pytest.raises(UnknownKey):
        client.get_key("nope")
    assert fetch.fetches == 3


def test_rotated_key_is_found_by_the_refetch(ed_key: SigningKey) -> None:
    fetch, clock = FakeJWKS(ed_key), FakeClock()
    client = JWKSClient("u", fetch=fetch, clock=clock)
    client.get_key(ed_key.kid)
    new_key = generate_signing_key()
    fetch.keys.append(new_key)
    clock.now += 10
    assert verify(_headers(new_key), BODY, url=URL, jwks=client, now=NOW)
    assert fetch.fetches == 2


def test_failed_refresh_keeps_known_keys(ed_key: SigningKey) -> None:
    fetch, clock = FakeJWKS(ed_key), FakeClock()
    client = JWKSClient("u", fetch=fetch, clock=clock)
    client.get_key(ed_key.kid)
    fetch.fail = True
    clock.now += 1000
    assert client.get_key(ed_key.kid) == ed_key.public_key()
    assert fetch.fetches == 2


def test_failed_first_fetch_is_unknown_key() -> None:
    fetch = FakeJWKS()
    fetch.fail = True
    with pytest.raises(UnknownKey, match="could not fetch"):
        JWKSClient("u", fetch=fetch).get_key("k")


def test_jwks_skips_foreign_keys(ed_key: SigningKey) -> None:
    document = {
        "keys": [
            {"kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB"},
            ed_key.public_jwk() | {"kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": ed_key.public_jwk()["x"]},  # no kid
            ed_key.public_jwk(),
        ]
    }
    client = JWKSClient("u", fetch=lambda _url: document)
    assert set(client.keys()) == {ed_key.kid}


@pytest.fixture
def jwks_server(ed_key: SigningKey) -> Iterator[str]:
    payload = json.dumps(jwks([ed_key])).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/auth/verify_keys"
    server.shutdown()
    server.server_close()


def test_jwks_client_fetches_with_urllib(ed_key: SigningKey, jwks_server: str) -> None:
    verifier = WebhookVerifier(jwks=jwks_server)  # a URL becomes a JWKSClient
    assert verifier.verify(_headers(ed_key), BODY, url=URL, now=NOW)


# --- parse_package ----------------------------------------------------------------------------


def test_parse_package() -> None:
    first, second = parse_package(BODY)
    assert first == Event(
        id="evt_1",
        created_at=datetime(2025, 6, 15, 15, 6, 40, 500000, tzinfo=UTC),
        type="ORDER.FILLED",
        object={"id": "ord_1", "status": "FILLED"},
        webhook_id="wh_1",
    )
    assert (first.category, first.action) == ("ORDER", "FILLED")
    assert second.category == "USER"
    assert parse_package(BODY.decode()) == [first, second]
    assert parse_package(b'{"payload": []}') == []


def test_event_category_with_underscores() -> None:
    (event,) = parse_package(json.dumps({"payload": [_event(1, "CASH_TRANSACTION.EXECUTED")]}))
    assert event.category == "CASH_TRANSACTION"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"events": []}',
        b'{"payload": {}}',
        b'{"payload": [1]}',
        json.dumps({"payload": [{k: v for k, v in _event(1).items() if k != "id"}]}).encode(),
        json.dumps({"payload": [_event(1) | {"object": []}]}).encode(),
        json.dumps({"payload": [_event(1) | {"created_at": "yesterday"}]}).encode(),
        json.dumps({"payload": [_event(1) | {"created_at": "2025-06-15T15:06:40"}]}).encode(),
        json.dumps({"payload": [_event(1) | {"type": 7}]}).encode(),
    ],
)
def test_parse_package_rejects_malformed(body: bytes) -> None:
    with pytest.raises(BadPayload):
        parse_package(body)


def test_verify_reports_bad_payload_after_good_signature(ed_key: SigningKey) -> None:
    body = b'{"payload": "nope"}'
    headers = _headers(ed_key, body=body)
    with pytest.raises(BadPayload):
        verify(headers, body, secret=SECRET, **_rfc9421(ed_key))


# --- de-duplication ---------------------------------------------------------------------------


def test_memory_store_records_and_evicts_oldest() -> None:
    store = MemorySeenStore(max_items=2)
    assert [store.seen(k) for k in ("a", "a", "b", "c")] == [False, True, False, False]
    assert len(store) == 2
    assert store.seen("a") is False  # evicted
    assert store.seen("c") is True


def test_sqlite_store_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "seen.sqlite3"
    store = SQLiteSeenStore(path)
    assert (store.seen("evt_1"), store.seen("evt_1")) == (False, True)
    store.close()
    reopened = SQLiteSeenStore(path)
    assert reopened.seen("evt_1") is True
    assert reopened.seen("evt_2") is False
    assert reopened.prune(older_than_seconds=-10) == 2
    assert reopened.seen("evt_1") is False
    reopened.close()


@pytest.mark.parametrize(
    "make_store", [lambda p: MemorySeenStore(), lambda p: SQLiteSeenStore(p / "s.db")]
)
def test_stores_are_atomic_under_threads(tmp_path: Path, make_store: Callable[[Path], Any]) -> None:
    store = make_store(tmp_path)
    keys = [f"k{i % 50}" for i in range(1000)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(store.seen, keys))
    assert results.count(False) == 50  # each key reported unseen exactly once


def test_dedupe_drops_redelivered_events(tmp_path: Path) -> None:
    store = SQLiteSeenStore(tmp_path / "seen.db")
    events = parse_package(BODY)
    assert dedupe(events, store) == events
    redelivery = parse_package(json.dumps({"payload": [_event(2, "USER.CREATED"), _event(3)]}))
    assert [e.id for e in dedupe(redelivery, store)] == ["evt_3"]
    store.close()


# --- import hygiene ---------------------------------------------------------------------------


def test_receiver_imports_without_server_dependencies() -> None:
    code = (
        "import sys, hookline.receiver, hookline.signatures\n"
        "heavy = {'fastapi', 'starlette', 'sqlalchemy', 'aiohttp', 'flask', 'django', 'pydantic'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
    )
    assert out.stdout.strip() == "[]"


# --- adapters ---------------------------------------------------------------------------------

ADAPTER_URL = "http://testserver/hook"


def _adapter_headers(key: SigningKey, url: str = ADAPTER_URL) -> dict[str, str]:
    return _headers(key, url=url, timestamp=int(time.time()))


@pytest.mark.filterwarnings("ignore:Using `httpx`")
def test_fastapi_adapter(ed_key: SigningKey) -> None:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from hookline.receiver.fastapi import webhook_events

    app = FastAPI()
    direct = Depends(webhook_events(secret=SECRET, jwks=jwks([ed_key])))
    proxied = Depends(webhook_events(jwks=jwks([ed_key]), url=URL))

    @app.post("/hook")
    def receive(events: list[Event] = direct) -> list[str]:
        return [e.id for e in events]

    @app.post("/behind-proxy")
    def receive_proxied(events: list[Event] = proxied) -> list[str]:
        return [e.id for e in events]

    client = TestClient(app)
    assert client.post("/hook", content=BODY, headers=_adapter_headers(ed_key)).json() == [
        "evt_1",
        "evt_2",
    ]
    tampered = client.post("/hook", content=BODY + b" ", headers=_adapter_headers(ed_key))
    assert tampered.status_code == 401 and "Content-Digest" in tampered.json()["detail"]
    assert (
        client.post("/hook", content=BODY, headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    signed_for_public_url = _adapter_headers(ed_key, url=URL)
    assert (
        client.post("/behind-proxy", content=BODY, headers=signed_for_public_url).status_code == 200
    )
    assert client.post("/hook", content=BODY, headers=signed_for_public_url).status_code == 401


def test_flask_adapter(ed_key: SigningKey) -> None:
    flask = pytest.importorskip("flask")
    from hookline.receiver.flask import verify_webhook

    app = flask.Flask(__name__)
    seen: list[list[Event]] = []

    @app.post("/hook")
    @verify_webhook(secret=SECRET, jwks=jwks([ed_key]))
    def receive(events: list[Event]) -> tuple[str, int]:
        seen.append(events)
        return "", 204

    client = app.test_client()
    headers = _adapter_headers(ed_key, url="http://localhost/hook")  # Flask's test base URL
    assert client.post("/hook", data=BODY, headers=headers).status_code == 204
    assert [e.id for e in seen[0]] == ["evt_1", "evt_2"]
    bad = client.post("/hook", data=BODY, headers=headers | {"webhook-id": "x"})
    assert bad.status_code == 401 and bad.get_json()["detail"]
    assert client.post("/hook", data=BODY).status_code == 400
    assert len(seen) == 1


@pytest.fixture(scope="module")
def django_settings() -> None:
    pytest.importorskip("django")
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(ALLOWED_HOSTS=["testserver"], ROOT_URLCONF=__name__, USE_TZ=True)
        django.setup()


def test_django_adapter(ed_key: SigningKey, django_settings: None) -> None:
    from django.http import HttpRequest, HttpResponse
    from django.test import RequestFactory

    from hookline.receiver.django import verify_webhook

    seen: list[list[Event]] = []

    @verify_webhook(secret=SECRET, jwks=jwks([ed_key]))
    def receive(request: HttpRequest, events: list[Event]) -> HttpResponse:
        seen.append(events)
        return HttpResponse(status=204)

    assert getattr(receive, "csrf_exempt", False)
    factory = RequestFactory()

    def post(headers: dict[str, str], body: bytes = BODY) -> HttpResponse:
        return receive(
            factory.post("/hook", data=body, content_type="application/json", headers=headers)
        )

    headers = {k: v for k, v in _adapter_headers(ed_key).items() if k != "Content-Type"}
    assert post(headers).status_code == 204
    assert [e.id for e in seen[0]] == ["evt_1", "evt_2"]
    assert post(headers, BODY + b" ").status_code == 401
    response = post({})
    assert response.status_code == 400 and b"missing header" in response.content
    assert len(seen) == 1


urlpatterns: list[Any] = []  # ROOT_URLCONF for the Django test


# --- examples ---------------------------------------------------------------------------------


def _load_example(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    import importlib.util

    monkeypatch.setenv("HOOKLINE_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("HOOKLINE_SEEN_DB", str(tmp_path / "seen.db"))
    path = Path(__file__).resolve().parents[2] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore:Using `httpx`")
def test_fastapi_example(
    ed_key: SigningKey, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(_load_example("receiver_fastapi", monkeypatch, tmp_path).app)
    headers = _adapter_headers(ed_key, url="http://testserver/hooks/hookline")
    for _ in range(2):
        assert client.post("/hooks/hookline", content=BODY, headers=headers).status_code == 204
    assert capsys.readouterr().out.count("evt_1") == 1  # the re-delivery was de-duplicated
    assert client.post("/hooks/hookline", content=b"{}", headers=headers).status_code == 401


def test_flask_example(
    ed_key: SigningKey, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    pytest.importorskip("flask")
    client = _load_example("receiver_flask", monkeypatch, tmp_path).app.test_client()
    headers = _adapter_headers(ed_key, url="http://localhost/hooks/hookline")
    for _ in range(2):
        assert client.post("/hooks/hookline", data=BODY, headers=headers).status_code == 204
    assert capsys.readouterr().out.count("evt_1") == 1
    assert client.post("/hooks/hookline", data=b"{}", headers=headers).status_code == 401
