"""The hub every guarantee test talks to: a real one on loopback, over SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from asyncstream.hub import RunningHub, running_hub


@pytest.fixture
async def hub() -> AsyncIterator[RunningHub]:
    async with running_hub(store="sqlite") as running:
        yield running
