"""The long-lived objects one Hookline process shares between its API and its workers."""

from __future__ import annotations

from dataclasses import dataclass, field

from hookline.config import Settings
from hookline.delivery.relay import PgRelay
from hookline.delivery.sender import Sender
from hookline.delivery.signing import Signer
from hookline.delivery.wakeups import Wakeups
from hookline.keyring import Keyring
from hookline.signatures.keys import SigningKey
from hookline.store.db import Database


@dataclass
class Services:
    """Built once per process by :func:`open_services`; closed with :meth:`close`."""

    settings: Settings
    db: Database
    wakeups: Wakeups
    keyring: Keyring
    signer: Signer
    sender: Sender
    published_keys: list[SigningKey] = field(default_factory=list)
    relay: PgRelay | None = None

    async def refresh_keys(self) -> None:
        """Pick up a key rotation made by another process."""
        keys = await self.keyring.load()
        self.signer.key, self.published_keys = keys[0], keys

    async def close(self) -> None:
        if self.relay is not None:
            await self.relay.stop()
        await self.sender.close()
        await self.db.close()


async def open_services(settings: Settings, *, wakeups: Wakeups | None = None) -> Services:
    """Connect to the database and load the keys; call inside the running event loop."""
    db = Database(settings.database_url)
    keyring = Keyring(db, settings)
    keys = await keyring.load()
    wakeups = wakeups or Wakeups()
    relay = None
    if not db.is_sqlite:
        relay = PgRelay(settings.database_url, wakeups)
        await relay.start()
    return Services(
        settings=settings,
        db=db,
        relay=relay,
        wakeups=wakeups,
        keyring=keyring,
        signer=Signer(keys[0], v1a=settings.sign_v1a),
        sender=Sender(settings, allowed=settings.allowed_subnets),
        published_keys=keys,
    )
