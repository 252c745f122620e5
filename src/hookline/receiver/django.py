"""Django adapter: a view decorator that verifies the request and passes ``events``.

    from django.http import HttpResponse
    from hookline.receiver.django import verify_webhook

    @verify_webhook(secret="whsec_...")
    def receive(request, events):
        ...
        return HttpResponse(status=204)

The decorated view is exempt from CSRF protection (the signature authenticates the request).
Failures answer ``400`` (malformed) or ``401`` (not authentic) with ``{"detail": "..."}``
and the view is not called.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Unpack

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .errors import VerificationError
from .verify import VerifierOptions, WebhookVerifier

View = Callable[..., HttpResponse]


def verify_webhook(**options: Unpack[VerifierOptions]) -> Callable[[View], View]:
    """Decorate a (synchronous) view so it runs only for verified deliveries, with
    ``events=[Event, ...]``.

    Takes the options of :class:`~hookline.receiver.WebhookVerifier`; ``url`` overrides
    ``request.build_absolute_uri()`` (use it behind a proxy, or set
    ``SECURE_PROXY_SSL_HEADER`` / ``USE_X_FORWARDED_HOST``).
    """
    verifier = WebhookVerifier(**options)

    def decorator(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        def verified_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                events = verifier.verify(
                    request.headers,
                    request.body,
                    method=request.method or "POST",
                    url=request.build_absolute_uri(),
                )
            except VerificationError as exc:
                return JsonResponse({"detail": str(exc)}, status=exc.status_code)
            return view(request, *args, events=events, **kwargs)

        return verified_view

    return decorator
