"""Bearer-token dependencies for organiser and union routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.db import SessionDep
from app.core.errors import Forbidden
from app.models import ApiToken, utcnow
from app.organisers import service

_bearer = HTTPBearer(auto_error=False, description="An Outcry API token")


def api_token(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiToken:
    return service.authenticate(
        session, credentials.credentials if credentials else None, now=utcnow()
    )


def admin_token(token: Annotated[ApiToken, Depends(api_token)]) -> ApiToken:
    if token.organisation_id is not None:
        raise Forbidden("This needs an admin token.")
    return token


OrganiserToken = Annotated[ApiToken, Depends(api_token)]
AdminToken = Annotated[ApiToken, Depends(admin_token)]
