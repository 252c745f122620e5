"""The event loop the ``hookline`` commands run on."""

from __future__ import annotations

import asyncio

import pytest

from hookline.cli.base import run


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_commands_run_on_uvloop_where_it_is_installed() -> None:
    pytest.importorskip("uvloop")
    assert run(_loop_module()).startswith("uvloop")
