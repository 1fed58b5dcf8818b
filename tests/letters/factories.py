"""Signed letters for tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.letters import service
from app.letters.schemas import SignatureIn
from app.models import Appeal, Letter, utcnow
from app.web import formtrap


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


def form_data(client: TestClient, slug: str = "free-them", **overrides: Any) -> dict[str, Any]:
    """The signing form as a person sends it: the fields, and the token of the form as it
    was shown to them an hour ago (long enough for the bots' timing trap)."""
    settings = cast(FastAPI, client.app).state.settings
    token = formtrap.issue(settings, slug=slug, now=utcnow() - timedelta(hours=1))
    return {**signature(**overrides), formtrap.TOKEN_FIELD: token}


def sign(
    session: Session,
    appeal: Appeal,
    settings: Settings,
    *,
    client: str | None = None,
    **overrides: Any,
) -> Letter:
    """A letter signed through the service (`client`: the signer's IP address)."""
    form = SignatureIn.model_validate(signature(**overrides))
    return service.sign_letter(
        session, appeal=appeal, form=form, settings=settings, now=utcnow(), client=client
    )


def confirm(session: Session, letter: Letter, settings: Settings) -> Letter:
    from app.delivery.compose import confirm_token

    confirmed, _ = service.confirm_letter(
        session, token=confirm_token(settings, letter), settings=settings, now=utcnow()
    )
    return confirmed
