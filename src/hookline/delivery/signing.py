"""Signs each request with the deployment's current key and the webhook's secrets."""

from __future__ import annotations

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
