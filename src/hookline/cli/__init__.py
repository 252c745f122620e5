"""The ``hookline`` command line: run the service and manage tenants, keys, webhooks, events.

Every command that creates or shows something accepts ``--json`` and then prints exactly one
JSON object on stdout. Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import hookline.cli.listen  # noqa: F401  (registers `hookline listen`)
from hookline.cli import manage, serving  # noqa: F401  (they register their commands)
from hookline.cli.base import app
from hookline.logs import configure_logging


def main() -> None:
    """Entry point of the ``hookline`` script."""
    configure_logging()
    app()


__all__ = ["app", "main"]
