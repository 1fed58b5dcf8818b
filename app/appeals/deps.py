"""Request dependencies that load an appeal: for everyone (published only), or for an
organiser who may see it (drafts too)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.appeals import service
from app.core import auth
from app.core.db import SessionDep
from app.core.deps import Organiser
from app.models import Appeal


def public_appeal(session: SessionDep, slug: str) -> Appeal:
    return service.published_appeal(session, slug)


CurrentAppeal = Annotated[Appeal, Depends(public_appeal)]


def organiser_appeal(session: SessionDep, who: Organiser, slug: str) -> Appeal:
    """The appeal (drafts too) if `who` may see it: 404 if none, 403 if out of scope."""
    appeal = service.get_appeal(session, slug)
    auth.check_appeal(who, appeal)
    return appeal


OrganiserAppeal = Annotated[Appeal, Depends(organiser_appeal)]
