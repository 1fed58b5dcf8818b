"""The audit log in the dashboard: overall and per appeal, newest first, a page at a time.

An admin reads every entry. A union reads what was done to the appeals it takes part
in as a whole, and what concerns its own organisation (app.audit.service.visible_to).
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.appeals.deps import OrganiserAppeal
from app.audit import service as audit
from app.core.db import SessionDep
from app.core.deps import Organiser
from app.organisers.pages import private_page

router = APIRouter(include_in_schema=False)

# How much of one value an entry shows (a letter's body can be long).
SHOWN_MAX = 300


def shown(value: object) -> str:
    """A value of an entry as text: as it is, or as JSON with its own letters (Cyrillic
    stays Cyrillic), cut at SHOWN_MAX characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"


PageNumber = Query(default=1, ge=1, le=100_000)


@router.get("/dashboard/audit", response_class=HTMLResponse)
def audit_log(
    request: Request, session: SessionDep, who: Organiser, page: int = PageNumber
) -> Response:
    """Every change organisers made that `who` may read."""
    found = audit.read(session, organisation_id=who.organisation_id, page=page)
    return private_page(request, "dashboard/audit.html", who, log=found, appeal=None, shown=shown)


@router.get("/dashboard/{slug}/audit", response_class=HTMLResponse)
def appeal_audit_log(
    request: Request,
    session: SessionDep,
    who: Organiser,
    appeal: OrganiserAppeal,
    page: int = PageNumber,
) -> Response:
    """The changes made to one appeal and its letters that `who` may read."""
    found = audit.read(session, organisation_id=who.organisation_id, appeal_id=appeal.id, page=page)
    return private_page(request, "dashboard/audit.html", who, log=found, appeal=appeal, shown=shown)
