"""Webhooks from relays: POST /api/v1/webhooks/{ses,postmark,mailgun,sendgrid}.

Each answers 404 until its setting is made, 401 when the request is not the
provider's, 503 when an event is about a letter whose sending is still being recorded
(the relay tries again), 200 with what was recorded otherwise (also for events about
no letter of ours: a relay retries whatever is not a 2xx, forever).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from app.core.db import SessionDep
from app.core.deps import SettingsDep
from app.core.errors import TryLater, error_responses
from app.delivery.inbound import service, webhooks
from app.models import utcnow

# 503 also when the database is away or busy (admission.py): the relay sends it again.
router = APIRouter(
    prefix="/api/v1/webhooks", tags=["webhooks"], responses=error_responses(401, 404, 422, 503)
)


class Recorded(BaseModel):
    """What became of each event the request carried: bounce, duplicate, unknown, …"""

    outcomes: list[str]


def _record(
    session: SessionDep, settings: SettingsDep, reports: list[webhooks.Report], source: str
) -> Recorded:
    outcomes = webhooks.record(session, reports, settings=settings, source=source, now=utcnow())
    if service.LATER in outcomes:
        # The letter's send is still being recorded; the relay retries the whole request
        # (what was recorded of it is rolled back, and would count once anyway).
        raise TryLater()
    return Recorded(outcomes=outcomes)


# The body is read on the event loop; checking signatures (SNS fetches its signing
# certificate) and recording run on a worker thread, never blocking other requests.


@router.post("/ses")
async def ses(request: Request, session: SessionDep, settings: SettingsDep) -> Recorded:
    """Amazon SNS: a subscription confirmation (confirmed) or an SES bounce or complaint."""
    fetch: webhooks.Fetch = request.app.state.sns_fetch
    body = await request.body()

    def work() -> Recorded:
        reports = webhooks.ses(body, settings=settings, fetch=fetch)
        return _record(session, settings, reports, "ses")

    return await run_in_threadpool(work)


@router.post("/postmark")
async def postmark(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Recorded:
    """Postmark's bounce and spam-complaint webhooks (basic auth in the webhook's URL)."""
    webhooks.check_postmark(authorization, settings)
    body = await request.body()
    return await run_in_threadpool(
        lambda: _record(session, settings, webhooks.postmark(body), "postmark")
    )


@router.post("/mailgun")
async def mailgun(request: Request, session: SessionDep, settings: SettingsDep) -> Recorded:
    """Mailgun's `failed` and `complained` events (signed with the webhook signing key)."""
    body = await request.body()

    def work() -> Recorded:
        return _record(session, settings, webhooks.mailgun(body, settings=settings), "mailgun")

    return await run_in_threadpool(work)


@router.post("/sendgrid")
async def sendgrid(request: Request, session: SessionDep, settings: SettingsDep) -> Recorded:
    """SendGrid's Signed Event Webhook: bounces, blocks, deferrals, drops, spam reports."""
    body = await request.body()
    signature = request.headers.get(webhooks.SENDGRID_SIGNATURE)
    timestamp = request.headers.get(webhooks.SENDGRID_TIMESTAMP)

    def work() -> Recorded:
        reports = webhooks.sendgrid(
            body, signature=signature, timestamp=timestamp, settings=settings
        )
        return _record(session, settings, reports, "sendgrid")

    return await run_in_threadpool(work)
