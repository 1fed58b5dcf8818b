"""Request dependencies of signing, shared by the JSON API and the signing page."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from app.core.deps import SettingsDep, client_host
from app.core.errors import RateLimited
from app.delivery import ratelimit


async def signing_limit(request: Request, settings: SettingsDep) -> None:
    """429 once a client address has signed sign_limit_per_hour letters this hour."""
    if settings.sign_limit_per_hour <= 0:
        return  # no limit: no worker thread either
    host = client_host(request) or "unknown"
    wait = await run_in_threadpool(
        ratelimit.client_wait,
        settings.broker_url,
        f"sign:{host}",
        limit=settings.sign_limit_per_hour,
        period=3600,
    )
    if wait > 0:
        raise RateLimited(math.ceil(wait))


SigningLimit = Annotated[None, Depends(signing_limit)]
