"""In-process delivery for `outcry serve` without a broker: the same claim/send loop."""

from __future__ import annotations

import asyncio
import logging
import threading

from app.delivery.deliverer import Deliverer
from app.delivery.dispatch import WakeUp

log = logging.getLogger(__name__)


class EmbeddedLoop:
    """A thread with its own event loop that sweeps and sends until stopped."""

    def __init__(self, deliverer: Deliverer, wake: WakeUp, *, interval: float):
        self.deliverer = deliverer
        self.wake = wake
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outcry-delivery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wake.event.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        try:
            while not self._stop.is_set():
                self.wake.event.clear()
                try:
                    ids = await asyncio.to_thread(self.deliverer.sweep)
                    outcomes = await self.deliverer.deliver_many(ids) if ids else []
                    if any(o.result != "skipped" for o in outcomes):
                        continue  # there may be more due than one sweep returns
                except Exception:
                    log.exception("embedded delivery loop")
                await asyncio.to_thread(self.wake.event.wait, self.interval)
        finally:
            await self.deliverer.transport.close()
