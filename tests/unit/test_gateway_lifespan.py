"""The gateway app's lifespan, run in-process without any server behind it."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

from serving.app import create_app
from shipyard.settings import Settings


def test_the_startup_heap_is_frozen_while_serving_and_released_at_shutdown(
    settings_factory: Callable[..., Settings],
) -> None:
    app = create_app(settings_factory())

    async def serve() -> int:
        async with app.router.lifespan_context(app):
            return gc.get_freeze_count()

    frozen_while_serving = asyncio.run(serve())
    # Imports and startup leave hundreds of thousands of objects; none of them is walked by a
    # full collection while requests are served.
    assert frozen_while_serving > 50_000
    assert gc.get_freeze_count() == 0
