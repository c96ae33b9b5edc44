"""The collector set-up of the serve paths: start-up's heap frozen once resources are open."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from asgi_lifespan import LifespanManager

from chatcore.testing import in_memory_storage
from entrypoints import gc_tuning
from entrypoints.app import create_app
from entrypoints.runtime import Runtime
from support.app import make_container, make_settings


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_settle_heap_collects_start_up_garbage_freezes_the_rest_and_widens_thresholds() -> None:
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    dead = weakref.ref(a)
    del a, b
    thresholds = gc.get_threshold()
    try:
        gc_tuning.settle_heap()
        assert dead() is None
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == gc_tuning.SERVER_THRESHOLDS
    finally:
        gc.unfreeze()  # the test process must not keep its heap forever
        gc.set_threshold(*thresholds)


async def test_after_startup_runs_once_with_the_resources_open(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    container = make_container(settings, storage=in_memory_storage())
    runtime: Runtime = container.runtime()
    seen: list[bool] = []
    app = create_app(
        settings,
        container=container,
        after_startup=lambda: seen.append(runtime.chat_instance is not None),
    )
    async with LifespanManager(app):
        assert seen == [True]
    assert seen == [True]
