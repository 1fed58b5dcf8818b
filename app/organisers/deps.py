"""Request dependencies of the organisers' routes and pages: a letter they may see, and
the reason given for rejecting one. Who is asking lives in app/core/deps.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from pydantic import ValidationError

from app.core import auth
from app.core.db import SessionDep
from app.core.deps import Organiser
from app.core.errors import InvalidInput, validation_fields
from app.models import Letter
from app.organisers import service
from app.organisers.schemas import RejectIn


def organiser_letter(session: SessionDep, who: Organiser, letter_id: str) -> Letter:
    """The letter with this public id if `who` may see it: 404 if none, 403 if out of scope."""
    letter = service.find_letter(session, letter_id)
    auth.check_letter(who, letter)
    return letter


async def reject_reason(request: Request) -> str:
    """Why a letter is rejected (optional): `{"reason": …}` as JSON, or a form field, since
    a page's form may post to the API with its CSRF token alongside."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            given = RejectIn.model_validate_json((await request.body()) or b"{}")
        else:
            form = await request.form() if content_type else {}
            reason = form.get("reason", "")
            given = RejectIn(reason=reason if isinstance(reason, str) else "")
    except ValidationError as exc:
        raise InvalidInput(validation_fields(list(exc.errors()))) from exc
    return given.reason


RejectReason = Annotated[str, Depends(reject_reason)]
OrganiserLetter = Annotated[Letter, Depends(organiser_letter)]
