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

from app.appeals.routes import SettingsDep
from app.core.db import SessionDep
from app.core.errors import TryLater
from app.delivery.inbound import service, webhooks
from app.models import utcnow

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


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


@router.post("/ses")
async def ses(request: Request, session: SessionDep, settings: SettingsDep) -> Recorded:
    """Amazon SNS: a subscription confirmation (confirmed) or an SES bounce or complaint."""
    fetch: webhooks.Fetch = request.app.state.sns_fetch
    reports = webhooks.ses(await request.body(), settings=settings, fetch=fetch)
    return _record(session, settings, reports, "ses")


@router.post("/postmark")
async def postmark(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Recorded:
    """Postmark's bounce and spam-complaint webhooks (basic auth in the webhook's URL)."""
    webhooks.check_postmark(authorization, settings)
    return _record(session, settings, webhooks.postmark(await request.body()), "postmark")


@router.post("/mailgun")
async def mailgun(request: Request, session: SessionDep, settings: SettingsDep) -> Recorded:
    """Mailgun's `failed` and `complained` events (signed with the webhook signing key)."""
    reports = webhooks.mailgun(await request.body(), settings=settings)
    return _record(session, settings, reports, "mailgun")


@router.post("/sendgrid")
async def sendgrid(request: Request, session: SessionDep, settings: SettingsDep) -> Recorded:
    """SendGrid's Signed Event Webhook: bounces, blocks, deferrals, drops, spam reports."""
    reports = webhooks.sendgrid(
        await request.body(),
        signature=request.headers.get(webhooks.SENDGRID_SIGNATURE),
        timestamp=request.headers.get(webhooks.SENDGRID_TIMESTAMP),
        settings=settings,
    )
    return _record(session, settings, reports, "sendgrid")
