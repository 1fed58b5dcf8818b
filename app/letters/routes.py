"""JSON API for supporters: sign, confirm, follow a letter."""

from __future__ import annotations

import math
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, Request

from app.appeals.routes import CurrentAppeal, SettingsDep
from app.core.db import SessionDep
from app.core.errors import RateLimited, error_responses
from app.delivery import ratelimit
from app.letters import service
from app.letters.schemas import ConfirmIn, LetterCreated, LetterRead, SignatureIn
from app.models import utcnow

router = APIRouter(prefix="/api/v1", tags=["letters"])


def signing_limit(request: Request, settings: SettingsDep) -> None:
    """429 once a client address has signed sign_limit_per_hour letters this hour."""
    if settings.sign_limit_per_hour <= 0:
        return
    host = request.client.host if request.client else "unknown"
    limiter = ratelimit.limiter_for(settings.broker_url)
    try:
        wait = limiter.try_acquire(f"sign:{host}", limit=settings.sign_limit_per_hour, period=3600)
    except redis.RedisError:
        return  # a broken Redis must never cost a signature
    if wait > 0:
        raise RateLimited(math.ceil(wait))


SigningLimit = Annotated[None, Depends(signing_limit)]


@router.post(
    "/appeals/{slug}/letters",
    status_code=202,
    responses=error_responses(404, 409, 413, 422, 429),
)
def sign(
    session: SessionDep,
    settings: SettingsDep,
    appeal: CurrentAppeal,
    form: SignatureIn,
    _limit: SigningLimit,
) -> LetterCreated:
    """Sign the appeal's letter; 202 with the letter's status URL."""
    letter = service.sign_letter(session, appeal=appeal, form=form, settings=settings, now=utcnow())
    return LetterCreated(
        id=letter.public_id, status=letter.status, status_url=service.status_url(settings, letter)
    )


@router.post("/letters/confirm", responses=error_responses(404, 409, 413, 422))
def confirm(session: SessionDep, settings: SettingsDep, body: ConfirmIn) -> LetterCreated:
    """Confirm a letter with the token from the confirmation e-mail."""
    letter, _already = service.confirm_letter(
        session, token=body.token, settings=settings, now=utcnow()
    )
    return LetterCreated(
        id=letter.public_id, status=letter.status, status_url=service.status_url(settings, letter)
    )


@router.get("/letters/{public_id}", responses=error_responses(404, 422))
def get_letter(
    session: SessionDep, settings: SettingsDep, public_id: str, key: str = ""
) -> LetterRead:
    """The letter and each delivery's status and attempts; 404 for a wrong key."""
    letter = service.get_letter(session, public_id=public_id, key=key)
    return service.to_read(session, letter, settings=settings)
