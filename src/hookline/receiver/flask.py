"""Flask adapter: a view decorator that verifies the request and passes ``events``.

    from flask import Flask
    from hookline.receiver.flask import verify_webhook

    app = Flask(__name__)

    @app.post("/hooks/hookline")
    @verify_webhook(secret="whsec_...")
    def receive(events):
        ...
        return "", 204

Failures answer ``400`` (malformed) or ``401`` (not authentic) with ``{"detail": "..."}``
and the view is not called.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Unpack

from flask import jsonify, request

from .errors import VerificationError
from .verify import VerifierOptions, WebhookVerifier

View = Callable[..., Any]


def verify_webhook(**options: Unpack[VerifierOptions]) -> Callable[[View], View]:
    """Decorate a view so it runs only for verified deliveries, with ``events=[Event, ...]``.

    Takes the options of :class:`~hookline.receiver.WebhookVerifier`; ``url`` overrides
    ``request.url`` (use it behind a proxy, or configure werkzeug's ``ProxyFix``).
    """
    verifier = WebhookVerifier(**options)

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def verified_view(*args: Any, **kwargs: Any) -> Any:
            try:
                events = verifier.verify(
                    request.headers,
                    request.get_data(cache=True),
                    method=request.method,
                    url=request.url,
                )
            except VerificationError as exc:
                return jsonify(detail=str(exc)), exc.status_code
            return view(*args, events=events, **kwargs)

        return verified_view

    return decorator
