"""Hookline's signing keys, as published in its JWKS (``GET /auth/verify_keys``)."""

from __future__ import annotations

import functools
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from hookline.signatures.keys import InvalidKey, PublicKey, public_key_from_jwk

from .errors import UnknownKey

#: Fetches a JWKS document by URL and returns it parsed.
Fetch = Callable[[str], Mapping[str, Any]]

_MAX_JWKS_BYTES = 1_000_000


def fetch_jwks(
    url: str, *, timeout: float = 10.0, headers: Mapping[str, str] | None = None
) -> Mapping[str, Any]:
    """GET a JWKS with the standard library (``urllib.request``) and parse it.

    ``headers`` are added to the request, e.g. ``{"Authorization": "Bearer <api key>"}``:
    Hookline's ``GET /auth/verify_keys`` needs an API key with the ``webhooks:read`` scope.
    """
    request = urllib.request.Request(
        url,
        headers={
            "Accept": "application/json",
            "User-Agent": "hookline-receiver",
            **(headers or {}),
        },
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        document: Mapping[str, Any] = json.loads(response.read(_MAX_JWKS_BYTES))
    return document


def keys_from_jwks(document: Mapping[str, Any]) -> dict[str, PublicKey]:
    """``kid -> public key`` for the usable signing keys of a JWKS document.

    Keys without ``kid``, not for ``use: "sig"``, or of a type Hookline does not sign with
    are skipped, so a JWKS shared with other keys still works. Raises ``ValueError`` if
    the document is not a JWKS at all.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError('a JWKS must be a JSON object with a "keys" array')
    found: dict[str, PublicKey] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, Mapping) or not isinstance(jwk.get("kid"), str):
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        try:
            _, key = public_key_from_jwk(jwk)
        except InvalidKey:
            continue
        found[jwk["kid"]] = key
    return found


class JWKSClient:
    """Fetches and caches a JWKS by URL; thread-safe; share one per process.

    Keys are cached for ``cache_seconds``. A ``kid`` not in the cache (Hookline rotated its
    key) triggers one refetch, at most once per ``refetch_interval`` seconds, so forged
    ``keyid`` values cannot make the receiver hammer the JWKS endpoint. If a refresh fails,
    the keys already known keep working. ``fetch`` (default: :func:`fetch_jwks`) and
    ``clock`` (monotonic seconds) are injectable for tests.

    ``headers`` are sent with every fetch by the default fetcher; Hookline's JWKS endpoint
    needs ``{"Authorization": "Bearer <API key with webhooks:read>"}``. A custom ``fetch``
    is called with the URL only and must add its own credentials.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        cache_seconds: float = 300,
        fetch: Fetch | None = None,
        refetch_interval: float = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self.refetch_interval = refetch_interval
        self.headers = dict(headers or {})
        self._fetch: Fetch = fetch or functools.partial(fetch_jwks, headers=self.headers)
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, PublicKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None

    def get_key(self, kid: str) -> PublicKey:
        """The public key for ``kid``; raises :class:`UnknownKey` if the JWKS lacks it."""
        with self._lock:
            if self._is_stale() and self._may_fetch():
                self._refresh()
            if kid not in self._keys and self._may_fetch():
                self._refresh()
            key = self._keys.get(kid)
        if key is None:
            raise UnknownKey(f"keyid {kid!r} is not in the JWKS at {self.url}")
        return key

    def keys(self) -> dict[str, PublicKey]:
        """All keys currently cached (fetching them first if the cache is stale)."""
        with self._lock:
            if self._is_stale() and self._may_fetch():
                self._refresh()
            return dict(self._keys)

    def _is_stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self.cache_seconds

    def _may_fetch(self) -> bool:
        last = self._attempted_at
        return last is None or self._clock() - last >= self.refetch_interval

    def _refresh(self) -> None:
        self._attempted_at = self._clock()
        try:
            keys = keys_from_jwks(self._fetch(self.url))
        except (OSError, ValueError) as exc:
            if self._fetched_at is None:
                raise UnknownKey(f"could not fetch the JWKS at {self.url}: {exc}") from exc
            return  # keep serving the keys we have; retry after refetch_interval
        self._keys = keys
        self._fetched_at = self._clock()
