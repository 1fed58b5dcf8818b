"""Where a piece of code runs: in the event loop, or on a worker thread."""

from __future__ import annotations

import asyncio


def in_event_loop() -> bool:
    """True if called in a running event loop (an async route or dependency)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
