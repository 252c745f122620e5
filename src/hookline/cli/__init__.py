"""The ``hookline`` command line: run the service and manage tenants, keys, webhooks, events.

Every command that creates or shows something accepts ``--json`` and then prints exactly one
JSON object on stdout. Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import sys

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError

from hookline.cli import listen, manage, serving  # noqa: F401  (they register their commands)
from hookline.cli.base import app
from hookline.logs import configure_logging


def main() -> None:
    """Entry point of the ``hookline`` script: usage mistakes are one line and exit code 2."""
    configure_logging()
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError:
        code = 0  # typer has shown the help already
    except UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "hookline"
        typer.echo(f"error: {exc.format_message()} (see '{command} --help')", err=True)
        code = 2
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("aborted", err=True)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main"]
