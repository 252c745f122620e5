"""Signs each request with the deployment's current key and the webhook's secrets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from hookline.signatures.keys import SigningKey
from hookline.signatures.sign import sign_package


class Signer:
    """Holds the signing key in force; swapped in place when keys rotate."""

    def __init__(self, key: SigningKey, *, v1a: bool = False) -> None:
        self.key = key
        self.v1a = v1a

    def headers(
        self, url: str, body: bytes, *, msg_id: str, timestamp: int, secrets: Sequence[str]
    ) -> dict[str, str]:
        return sign_package(
            url=url,
            body=body,
            msg_id=msg_id,
            timestamp=timestamp,
            signing_key=self.key,
            secrets=secrets,
            v1a=self.v1a,
        )


class Presigned:
    """The headers of a package's first attempt, signed ahead of it.

    Made just before the statement that opens the package is awaited: the signing is left to
    the event loop (``call_soon``), which runs it while the database works on the statement
    (PostgreSQL); one package's chain (send, record, send the next) no longer waits for it.
    Where the statement does not yield (SQLite), the signing only happens a little earlier.
    ``take`` hands the headers over only if they are exactly what signing at send time would
    give: the same second (``created``, ``webhook-timestamp``) and the same key."""

    def __init__(
        self, signer: Signer, url: str, body: bytes, *, msg_id: str, secrets: Sequence[str]
    ) -> None:
        self._signer = signer
        self._key: SigningKey | None = None
        self._second = -1
        self._headers: dict[str, str] | None = None
        loop = asyncio.get_running_loop()
        self._handle: asyncio.Handle | None = loop.call_soon(self._sign, url, body, msg_id, secrets)

    def _sign(self, url: str, body: bytes, msg_id: str, secrets: Sequence[str]) -> None:
        self._handle = None
        second, key = int(time.time()), self._signer.key
        try:
            headers = self._signer.headers(
                url, body, msg_id=msg_id, timestamp=second, secrets=secrets
            )
        except Exception:  # the attempt signs again, and meets the error where it is handled
            return
        self._headers, self._second, self._key = headers, second, key

    def take(self, timestamp: int) -> dict[str, str] | None:
        """The headers for an attempt stamped ``timestamp``, or None: sign them then."""
        self.cancel()
        if self._headers is None or timestamp != self._second or self._signer.key is not self._key:
            return None
        return self._headers

    def cancel(self) -> None:
        """Not needed after all (or not yet signed when needed): do not sign."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
