"""Signed letters for tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.core.config import Settings
from app.letters import service
from app.letters.schemas import SignatureIn
from app.models import Appeal, Letter, utcnow


def signature(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Ada Example",
        "email": "ada@example.net",
        "country": "GB",
        "organisation": "Example Union",
        "city": "Leeds",
        "message": "",
    }
    data.update(overrides)
    return data


def sign(session: Session, appeal: Appeal, settings: Settings, **overrides: Any) -> Letter:
    form = SignatureIn.model_validate(signature(**overrides))
    return service.sign_letter(session, appeal=appeal, form=form, settings=settings, now=utcnow())


def confirm(session: Session, letter: Letter, settings: Settings) -> Letter:
    from app.delivery.compose import confirm_token

    confirmed, _ = service.confirm_letter(
        session, token=confirm_token(settings, letter), settings=settings, now=utcnow()
    )
    return confirmed
