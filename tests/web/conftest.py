"""Fixtures: the real app served by uvicorn on a free port, on fresh in-memory storage.

The live server is the one of the realtime tests (``tests/realtime/livechat.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from realtime.livechat import LiveChat, live_server


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveChat]:
    async with live_server(tmp_path) as chat:
        yield chat
