"""The OpenAPI 3.1 document: FastAPI's, completed with what the gate and the handlers add.

FastAPI documents a ``422`` validation error that Hookline never sends (bad input is a
``400`` problem), and knows nothing of the responses the gate (api/gate.py) gives before a
route runs. This module fixes both, so the document lists every status an operation returns.
"""

from __future__ import annotations

from typing import Any

from hookline.api.idempotency import MAX_KEY_LENGTH
from hookline.api.problems import PROBLEM_MEDIA_TYPE

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
METHODS = ("get", "put", "post", "patch", "delete", "head", "options")

ALWAYS = {
    413: "The request body is too large (see `HOOKLINE_MAX_BODY_BYTES`)",
    414: "The request URL is too long",
    431: "Too many or too large request headers",
}
AUTHED = {
    400: "Invalid request (the problem names the field)",
    401: "Missing, unknown or revoked API key, or a missing or invalid request signature",
    403: "The API key lacks the scope",
    429: "Over the tenant's rate limit; retry after `Retry-After` seconds",
}
IDEMPOTENT = {
    409: "A request with this Idempotency-Key is still running",
    422: "This Idempotency-Key was used with a different method, path or body",
}
IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes the POST safe to retry: the same key with the same request replays the first "
        "response (with `Idempotent-Replayed: true`) for 24 h."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
SIGNATURE_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "Signature",
    "description": (
        "RFC 9421 HTTP Message Signature, required (with the bearer key) for API keys that "
        "have a registered public key: `Signature-Input` covers `@method`, `@path`, `@query`, "
        "`content-digest` (with a body) and `idempotency-key` (when sent), with `created`, "
        "`expires` and `keyid` = the API key id. See docs/security.md."
    ),
}
DELIVERY_HEADERS = (
    ("webhook-id", "The package id (the same on every retry)"),
    ("webhook-timestamp", "Unix seconds of this attempt"),
    ("webhook-signature", "Standard Webhooks `v1,` HMAC-SHA256 signature(s)"),
    ("Signature-Input", "RFC 9421 signature parameters (label `sig1`)"),
    ("Signature", "RFC 9421 signature (label `sig1`)"),
    ("Content-Digest", "RFC 9530 `sha-512` digest of the body"),
)


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}}


def _is_problem(response: dict[str, Any]) -> bool:
    schemas = [media.get("schema") for media in response.get("content", {}).values()]
    return PROBLEM_REF in schemas or PROBLEM_MEDIA_TYPE in response.get("content", {})


def _complete_operation(method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's validation error: Hookline answers 400 instead
    for code, response in list(responses.items()):
        if _is_problem(response):
            responses[code] = _problem_response(response.get("description", "Error"))
    wanted = dict(ALWAYS)
    if operation.get("security"):
        wanted.update(AUTHED)
        if method == "post":
            wanted.update(IDEMPOTENT)
            operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
    for status, description in wanted.items():
        responses.setdefault(str(status), _problem_response(description))
    if "429" in responses:
        responses["429"]["headers"] = RETRY_AFTER
    operation["responses"] = dict(sorted(responses.items()))


def _complete_webhook(operation: dict[str, Any]) -> None:
    operation["responses"] = {
        "2XX": {"description": "Acknowledged: the package is delivered"},
        "default": {"description": "Anything else is a failure; the package is retried"},
    }
    operation["parameters"] = [
        {"name": name, "in": "header", "required": True, "description": description,
         "schema": {"type": "string"}}
        for name, description in DELIVERY_HEADERS
    ]  # fmt: skip


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Finish the document in place and return it."""
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                _complete_operation(method, item[method])
        if path == "/metrics" and "get" in item:
            item["get"]["responses"]["200"]["content"] = {
                "text/plain": {"schema": {"type": "string"}}
            }
    for item in schema.get("webhooks", {}).values():
        for method in METHODS:
            if method in item:
                _complete_webhook(item[method])
    components = schema.setdefault("components", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(unused, None)
    components.setdefault("securitySchemes", {})["RequestSignature"] = SIGNATURE_SCHEME
    return schema
