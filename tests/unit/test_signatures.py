"""Sender-side signing: keys, digests, Standard Webhooks, RFC 9421, and the documented vectors.

Independent checks use the ``standardwebhooks`` package, ``http_message_signatures``'
verifier, and ``cryptography`` directly, not Hookline's own verification code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hookline.signatures import (
    ECDSA_P256_SHA256,
    ED25519,
    InvalidKey,
    SigningKey,
    canonical_target_uri,
    content_digest,
    digest_matches,
    generate_secret,
    generate_signing_key,
    jwks,
    load_signing_key,
    package_request,
    public_key_from_jwk,
    sign_package,
    sign_v1,
    signature_header,
)
from hookline.signatures.rfc9421 import _fast_prepare, signature_base
from hookline.signatures.standard import signed_content

DOC = Path(__file__).resolve().parents[2] / "docs" / "signatures.md"
URL = "https://receiver.example.com/hooks/hookline"
BODY = b'{"payload":[{"id":"e1","type":"ORDER.FILLED","object":{"n":"\xc3\xa9"}}]}'
ALGS = [ED25519, ECDSA_P256_SHA256]


@pytest.fixture(params=ALGS)
def key(request: pytest.FixtureRequest) -> SigningKey:
    return generate_signing_key(request.param)


def _sign(key: SigningKey, secrets: list[str], **overrides: Any) -> dict[str, str]:
    args: dict[str, Any] = {
        "url": URL,
        "body": BODY,
        "msg_id": "msg_1",
        "timestamp": int(time.time()),
        "signing_key": key,
        "secrets": secrets,
    }
    return sign_package(**(args | overrides))


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key_from_jwk_by_hand(
    jwk: dict[str, str],
) -> ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey:
    """JWK -> key with cryptography alone (independent of public_key_from_jwk)."""
    if jwk["kty"] == "OKP":
        return ed25519.Ed25519PublicKey.from_public_bytes(_b64url(jwk["x"]))
    x, y = (int.from_bytes(_b64url(jwk[c]), "big") for c in ("x", "y"))
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


@dataclass
class _Request:
    method: str
    url: str
    headers: dict[str, str]


# --- keys ---------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=2048))
def test_ed25519_signatures_are_openssls_bytes(seed: bytes, message: bytes) -> None:
    """Ed25519 keys sign through libsodium (faster): byte for byte what OpenSSL (the
    ``cryptography`` key itself) signs, which OpenSSL verifies; a key loaded from its PEM
    signs the same."""
    private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    key = SigningKey(kid="k", alg=ED25519, private_key=private)
    signature = key.sign(message)
    assert signature == private.sign(message)
    private.public_key().verify(signature, message)
    with pytest.raises(CryptoInvalidSignature):
        private.public_key().verify(signature, message + b"x")
    assert load_signing_key(key.private_pem(), "k", ED25519).sign(message) == signature


def test_public_jwk_shape(key: SigningKey) -> None:
    jwk = key.public_jwk()
    assert jwk["kid"] == key.kid and key.kid.startswith("hk_")
    assert jwk["alg"] == key.alg and jwk["use"] == "sig"
    if key.alg == ED25519:
        assert (jwk["kty"], jwk["crv"], len(_b64url(jwk["x"]))) == ("OKP", "Ed25519", 32)
    else:
        assert (jwk["kty"], jwk["crv"]) == ("EC", "P-256")
        assert len(_b64url(jwk["x"])) == len(_b64url(jwk["y"])) == 32
    assert "d" not in jwk


def test_jwk_round_trips_to_the_same_public_key(key: SigningKey) -> None:
    alg, public = public_key_from_jwk(key.public_jwk())
    assert alg == key.alg
    assert public == key.public_key() == _key_from_jwk_by_hand(key.public_jwk())


def test_private_pem_round_trip_keeps_kid_alg_and_key(key: SigningKey) -> None:
    loaded = load_signing_key(key.private_pem(), key.kid, key.alg)
    assert loaded.public_jwk() == key.public_jwk()
    assert key.private_pem().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_jwks_lists_public_keys_only() -> None:
    keys = [generate_signing_key(), generate_signing_key(ECDSA_P256_SHA256)]
    document = jwks(keys)
    assert [jwk["kid"] for jwk in document["keys"]] == [k.kid for k in keys]
    assert all("d" not in jwk for jwk in document["keys"])


def test_kids_are_unique() -> None:
    assert len({generate_signing_key().kid for _ in range(50)}) == 50


@pytest.mark.parametrize("alg", ["rsa-pss-sha512", "hmac-sha256", "ed448"])
def test_unsupported_alg_is_rejected(alg: str) -> None:
    with pytest.raises(InvalidKey):
        generate_signing_key(alg)


def test_key_alg_mismatch_is_rejected() -> None:
    ed_key = generate_signing_key(ED25519).private_key
    with pytest.raises(InvalidKey):
        SigningKey(kid="k", alg=ECDSA_P256_SHA256, private_key=ed_key)
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(InvalidKey):
        SigningKey(kid="k", alg=ECDSA_P256_SHA256, private_key=p384)


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        {"kty": "OKP", "crv": "Ed25519"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": "QZMrRgYXFbeSNTwpOGN0DjXz8ZGH3g2mzaDVkBiSD24",
            "alg": "ecdsa-p256-sha256",
        },
    ],
)
def test_unusable_jwks_are_rejected(jwk: dict[str, str]) -> None:
    with pytest.raises(InvalidKey):
        public_key_from_jwk(jwk)


# --- Content-Digest -------------------------------------------------------------------------


def test_content_digest_matches_rfc9530_example() -> None:
    # RFC 9530 section 2, the example for the content {"hello": "world"}
    assert content_digest(b'{"hello": "world"}') == (
        "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEm"
        "THWXvJwew==:"
    )


@pytest.mark.parametrize("body", [b"", BODY, bytes(range(256)) * 10])
def test_content_digest_agrees_with_library(body: bytes) -> None:
    class Sha512(ContentDigest):
        algorithm = "sha-512"

    assert content_digest(body) == Sha512.create(body)
    assert digest_matches(content_digest(body), body)
    assert digest_matches(ContentDigest.create(body), body)  # sha-256 also accepted


@pytest.mark.parametrize("value", ["", "sha-512=:AAAA:", "md5=:AAAA:", "garbage(("])
def test_digest_mismatch_or_garbage_does_not_match(value: str) -> None:
    assert not digest_matches(value, BODY)
    assert not digest_matches(content_digest(BODY), BODY + b" ")


# --- Standard Webhooks ------------------------------------------------------------------------


def test_generate_secret_format() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert generate_secret() != secret


def test_sign_v1_is_hmac_sha256_of_id_timestamp_body() -> None:
    secret = generate_secret()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, b"msg_1.1700000000." + BODY, hashlib.sha256).digest()
    assert sign_v1(secret, "msg_1", 1700000000, BODY) == "v1," + base64.b64encode(expected).decode()


def test_signature_header_has_one_entry_per_secret_and_optional_v1a() -> None:
    secrets = [generate_secret(), generate_secret()]
    key = generate_signing_key()
    header = signature_header(secrets, "msg_1", 1700000000, BODY, v1a_key=key)
    entries = header.split(" ")
    assert entries[:2] == [sign_v1(s, "msg_1", 1700000000, BODY) for s in secrets]
    version, _, signature = entries[2].partition(",")
    assert version == "v1a"
    public = key.private_key.public_key()
    assert isinstance(public, ed25519.Ed25519PublicKey)
    public.verify(base64.b64decode(signature), b"msg_1.1700000000." + BODY)


def test_v1a_needs_ed25519_and_header_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        signature_header(
            [generate_secret()], "m", 1, BODY, v1a_key=generate_signing_key(ECDSA_P256_SHA256)
        )
    with pytest.raises(ValueError):
        signature_header([], "m", 1, BODY)


def test_invalid_secret_is_rejected() -> None:
    with pytest.raises(ValueError):
        sign_v1("whsec_!!!not base64", "m", 1, BODY)
    with pytest.raises(ValueError):
        sign_v1("whsec_", "m", 1, BODY)


@pytest.mark.parametrize("n_secrets", [1, 2])
def test_standardwebhooks_package_accepts_our_headers(key: SigningKey, n_secrets: int) -> None:
    secrets = [generate_secret() for _ in range(n_secrets)]
    headers = _sign(key, secrets)
    for secret in secrets:
        assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secrets[0]).verify(BODY + b" ", headers)


# --- RFC 9421 -------------------------------------------------------------------------------


def test_sign_package_returns_all_headers(key: SigningKey) -> None:
    headers = _sign(key, [generate_secret()], timestamp=1700000000)
    assert set(headers) == {
        "Content-Type",
        "Content-Digest",
        "Signature-Input",
        "Signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Digest"] == content_digest(BODY)
    assert headers["webhook-id"] == "msg_1" and headers["webhook-timestamp"] == "1700000000"
    assert headers["Signature-Input"] == (
        'sig1=("@method" "@target-uri" "content-type" "content-digest" "webhook-id")'
        f';created=1700000000;keyid="{key.kid}";alg="{key.alg}"'
    )
    assert re.fullmatch(r"sig1=:[A-Za-z0-9+/]+={0,2}:", headers["Signature"])


def _signature_bytes(headers: dict[str, str]) -> bytes:
    return base64.b64decode(headers["Signature"].removeprefix("sig1=:").removesuffix(":"))


def test_ecdsa_signature_is_raw_r_s_not_der() -> None:
    key = generate_signing_key(ECDSA_P256_SHA256)
    headers = _sign(key, [generate_secret()], timestamp=1700000000)
    raw = _signature_bytes(headers)
    assert len(raw) == 64  # RFC 9421 section 3.3.4; DER would be 70-72 bytes, starting 0x30
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    base = signature_base(
        package_request(url=URL, body=BODY, msg_id="msg_1"), signing_key=key, created=1700000000
    )
    public = key.private_key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(der, base.encode(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(CryptoInvalidSignature):
        public.verify(der, base.encode() + b"x", ec.ECDSA(hashes.SHA256()))


def _library_verify(
    headers: dict[str, str], jwk: dict[str, str], url: str = URL, body: bytes = BODY
) -> Any:
    verifier = HTTPMessageVerifier(
        signature_algorithm={
            ED25519: algorithms.ED25519,
            ECDSA_P256_SHA256: algorithms.ECDSA_P256_SHA256,
        }[jwk["alg"]],
        key_resolver=MappingKeyResolver(
            public_keys={jwk["kid"]: _key_from_jwk_by_hand(jwk)}, private_keys={}
        ),
    )
    request = _Request("POST", url, dict(headers))
    return verifier.verify(
        request,
        body=body,
        require_components=(
            "@method",
            "@target-uri",
            "content-type",
            "content-digest",
            "webhook-id",
        ),
    )


@pytest.mark.parametrize("n_secrets", [1, 2])
def test_http_message_signatures_verifier_accepts_our_signature(
    key: SigningKey, n_secrets: int
) -> None:
    headers = _sign(key, [generate_secret() for _ in range(n_secrets)])
    (result,) = _library_verify(headers, key.public_jwk())
    assert result.label == "sig1"
    assert result.parameters["keyid"] == key.kid
    assert result.body == BODY  # the library checked Content-Digest against the body


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("webhook-id", "msg_2"),
        ("Content-Type", "text/plain"),
        ("Content-Digest", content_digest(b"x")),
    ],
)
def test_http_message_signatures_verifier_rejects_changed_header(change: str, value: str) -> None:
    key = generate_signing_key()
    headers = _sign(key, [generate_secret()]) | {change: value}
    with pytest.raises(InvalidSignature):
        _library_verify(headers, key.public_jwk())


def test_http_message_signatures_verifier_rejects_other_url_body_or_key() -> None:
    key = generate_signing_key()
    headers = _sign(key, [generate_secret()])
    with pytest.raises(InvalidSignature):
        _library_verify(headers, key.public_jwk(), url=URL + "x")
    with pytest.raises(InvalidSignature):
        _library_verify(headers, key.public_jwk(), body=BODY + b" ")
    impostor = generate_signing_key().public_jwk() | {"kid": key.kid}
    with pytest.raises(InvalidSignature):
        _library_verify(headers, impostor)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://Example.COM:443/hook", "https://example.com/hook"),
        ("HTTPS://example.com", "https://example.com/"),
        ("http://example.com:80/a?b=c#frag", "http://example.com/a?b=c"),
        ("https://example.com:8443/a/%7Eb?x=1&y", "https://example.com:8443/a/%7Eb?x=1&y"),
        ("https://user:pw@[::1]:443/p", "https://[::1]/p"),
    ],
)
def test_canonical_target_uri(url: str, canonical: str) -> None:
    assert canonical_target_uri(url) == canonical


def test_url_spelling_does_not_change_the_signature() -> None:
    key = generate_signing_key()
    a = _sign(key, [generate_secret()], url="https://Receiver.Example.com:443/hooks/hookline")
    b = _sign(key, [generate_secret()], url=URL, timestamp=int(a["webhook-timestamp"]))
    assert a["Signature"] == b["Signature"]
    _library_verify(a, key.public_jwk(), url=URL)


def test_signature_depends_on_timestamp_and_method_target() -> None:
    key = generate_signing_key()
    first = _sign(key, [generate_secret()], timestamp=1700000000)
    later = _sign(key, [generate_secret()], timestamp=1700000001)
    other = _sign(key, [generate_secret()], timestamp=1700000000, url=URL + "/2")
    assert len({first["Signature"], later["Signature"], other["Signature"]}) == 3


# --- documented test vectors ------------------------------------------------------------------


def _doc_vectors() -> dict[str, str]:
    blocks = re.findall(
        r"<!-- vector:([\w-]+) -->\n```[\w-]*\n(.*?)\n```", DOC.read_text(), re.DOTALL
    )
    return dict(blocks)


def test_documented_vectors() -> None:
    doc = _doc_vectors()
    inputs = json.loads(doc["inputs"])
    body = doc["body"].encode()
    key = load_signing_key((doc["private-key"] + "\n").encode(), "hk_docs_example", ED25519)
    headers = sign_package(
        url=inputs["url"],
        body=body,
        msg_id=inputs["msg_id"],
        timestamp=inputs["timestamp"],
        signing_key=key,
        secrets=[inputs["secret"]],
    )
    documented = dict(line.split(": ", 1) for line in doc["headers"].splitlines())
    assert headers == documented
    request = package_request(url=inputs["url"], body=body, msg_id=inputs["msg_id"])
    assert (
        signature_base(request, signing_key=key, created=inputs["timestamp"])
        == doc["signature-base"]
    )
    assert (
        signed_content(inputs["msg_id"], inputs["timestamp"], body).decode()
        == doc["signed-content"]
    )
    assert key.public_jwk() == json.loads(doc["jwk"])


def test_documented_signature_verifies_independently() -> None:
    doc = _doc_vectors()
    headers = dict(line.split(": ", 1) for line in doc["headers"].splitlines())
    public = _key_from_jwk_by_hand(json.loads(doc["jwk"]))
    assert isinstance(public, ed25519.Ed25519PublicKey)
    public.verify(_signature_bytes(headers), doc["signature-base"].encode())
    secret = json.loads(doc["inputs"])["secret"]
    mac = Webhook(secret).sign(
        headers["webhook-id"], datetime.fromtimestamp(1719835200, UTC), doc["body"]
    )
    assert headers["webhook-signature"] == mac


# --- the direct signature base (rfc9421._fast_prepare) against the library's ---------------

_PCHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@"
_url_text = st.text(alphabet=_PCHARS, max_size=20)


@settings(max_examples=200, deadline=None)
@given(
    host=st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}(\.[A-Za-z0-9-]{1,10}){0,3}", fullmatch=True),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    path=st.lists(_url_text, max_size=4),
    query=st.one_of(st.none(), _url_text),
    msg_id=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1,
                   max_size=40),
    kid=st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1,
                max_size=20),
    created=st.integers(0, 2**34),
    alg=st.sampled_from(ALGS),
    body=st.binary(max_size=64),
)  # fmt: skip
def test_direct_signature_base_is_the_libraries(
    host: str, port: int | None, path: list[str], query: str | None, msg_id: str, kid: str,
    created: int, alg: str, body: bytes,
) -> None:  # fmt: skip
    netloc = host if port is None else f"{host}:{port}"
    url = f"https://{netloc}/{'/'.join(path)}" + ("" if query is None else f"?{query}")
    key = SigningKey(kid=kid, alg=alg, private_key=_KEYS[alg].private_key)
    request = package_request(url=url, body=body, msg_id=msg_id)
    fast = _fast_prepare(request, key, created)
    assert fast is not None
    assert fast[0].decode("ascii") == signature_base(request, signing_key=key, created=created)
    headers = sign_package(url=url, body=body, msg_id=msg_id, timestamp=created,
                           signing_key=key, secrets=[generate_secret()])  # fmt: skip
    assert headers["Signature-Input"] == f"sig1={fast[1]}"


@pytest.mark.parametrize("msg_id", [" padded", "tab\there"])
def test_values_the_template_does_not_cover_are_left_to_the_library(msg_id: str) -> None:
    key = _KEYS[ED25519]
    request = package_request(url=URL, body=BODY, msg_id=msg_id)
    assert _fast_prepare(request, key, 1700000000) is None
    headers = sign_package(url=URL, body=BODY, msg_id=msg_id, timestamp=1700000000,
                           signing_key=key, secrets=[generate_secret()])  # fmt: skip
    base = signature_base(request, signing_key=key, created=1700000000)
    assert headers["Signature-Input"] == "sig1=" + base.rsplit('"@signature-params": ', 1)[1]
    public = key.private_key.public_key()
    assert isinstance(public, ed25519.Ed25519PublicKey)
    public.verify(_signature_bytes(headers), base.encode())


@pytest.mark.parametrize("msg_id", ["line\nbreak", "caf\u00e9"])
def test_values_no_signature_base_can_hold_are_refused(msg_id: str) -> None:
    with pytest.raises(HTTPMessageSignaturesException):
        sign_package(url=URL, body=BODY, msg_id=msg_id, timestamp=1700000000,
                     signing_key=_KEYS[ED25519], secrets=[generate_secret()])  # fmt: skip


_KEYS = {alg: generate_signing_key(alg) for alg in ALGS}


@pytest.mark.parametrize("url", ["https://example.com/{id}", "https://example.com/%zz"])
def test_urls_an_http_client_would_re_escape_are_not_signed_from_the_template(url: str) -> None:
    request = package_request(url=url, body=BODY, msg_id="msg_1")
    assert _fast_prepare(request, _KEYS[ED25519], 1700000000) is None
