"""Receive Hookline webhooks with Django (a whole project in one file).

Verifies both signatures (Standard Webhooks with the webhook's secret, RFC 9421 with the keys
from Hookline's JWKS), drops re-deliveries, and prints the events.

    pip install django
    export HOOKLINE_WEBHOOK_SECRET=whsec_...       # GET /webhooks/{id}/secret
    export HOOKLINE_JWKS_URL=http://localhost:8080/auth/verify_keys
    export HOOKLINE_PUBLIC_URL=https://app.example.com/hooks/hookline   # only behind a proxy
    python examples/receiver_django.py runserver 8000

Register ``http://localhost:8000/hooks/hookline`` (or your public URL) as the webhook URL.
Give either variable alone to verify only that scheme. In a real project, put the view in an
app's ``views.py`` and the route in ``urls.py``; the decorator makes the view CSRF-exempt.
"""

from __future__ import annotations

import os
import sys

from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["localhost", "127.0.0.1"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="example-only",  # Django requires one; nothing here uses it
)

from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from hookline.receiver import Event, SQLiteSeenStore, dedupe  # noqa: E402
from hookline.receiver.django import verify_webhook  # noqa: E402

seen = SQLiteSeenStore(os.environ.get("HOOKLINE_SEEN_DB", "hookline-seen.sqlite3"))


@verify_webhook(
    secret=os.environ.get("HOOKLINE_WEBHOOK_SECRET"),
    jwks=os.environ.get("HOOKLINE_JWKS_URL"),
    url=os.environ.get("HOOKLINE_PUBLIC_URL"),
)
def receive(request: HttpRequest, events: list[Event]) -> HttpResponse:
    """Runs only for authentic deliveries; answer 2xx quickly, or Hookline retries."""
    for event in dedupe(events, seen):
        print(f"{event.created_at:%H:%M:%S} {event.type:<28} {event.id}", flush=True)
    return HttpResponse(status=204)


urlpatterns = [path("hooks/hookline", receive)]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
