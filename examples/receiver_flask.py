"""Receive Hookline webhooks with Flask.

Verifies both signatures (Standard Webhooks with the webhook's secret, RFC 9421 with the keys
from Hookline's JWKS), drops re-deliveries, and prints the events.

    pip install flask
    export HOOKLINE_WEBHOOK_SECRET=whsec_...       # GET /webhooks/{id}/secret
    export HOOKLINE_JWKS_URL=http://localhost:8080/auth/verify_keys
    export HOOKLINE_PUBLIC_URL=https://app.example.com/hooks/hookline   # only behind a proxy
    python examples/receiver_flask.py

Register ``http://localhost:8000/hooks/hookline`` (or your public URL) as the webhook URL.
Give either variable alone to verify only that scheme.
"""

from __future__ import annotations

import os

from flask import Flask

from hookline.receiver import Event, SQLiteSeenStore, dedupe
from hookline.receiver.flask import verify_webhook

app = Flask(__name__)
seen = SQLiteSeenStore(os.environ.get("HOOKLINE_SEEN_DB", "hookline-seen.sqlite3"))


@app.post("/hooks/hookline")
@verify_webhook(
    secret=os.environ.get("HOOKLINE_WEBHOOK_SECRET"),
    jwks=os.environ.get("HOOKLINE_JWKS_URL"),
    url=os.environ.get("HOOKLINE_PUBLIC_URL"),
)
def receive(events: list[Event]) -> tuple[str, int]:
    """Runs only for authentic deliveries; answer 2xx quickly, or Hookline retries."""
    for event in dedupe(events, seen):
        print(f"{event.created_at:%H:%M:%S} {event.type:<28} {event.id}", flush=True)
    return "", 204


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=8000)
