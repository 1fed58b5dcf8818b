"""JSON API for appeals: public listing, organisers' create and update."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.appeals import service
from app.appeals.schemas import AppealIn, AppealRead
from app.core import paths
from app.core.config import Settings
from app.core.db import SessionDep
from app.core.deps import Admin, SettingsDep
from app.core.errors import Conflict, InvalidInput, error_responses
from app.core.responses import model_response
from app.models import Appeal, utcnow

# Every route here waits its turn for the database (admission.py): 503 when it cannot.
router = APIRouter(prefix="/api/v1/appeals", tags=["appeals"], responses=error_responses(503))


# ?lang=: the language of an appeal's texts in the answer (default: each appeal's own).
LangQuery = Annotated[
    str | None,
    Query(
        max_length=35,
        description="Give the appeal's texts in this language where it has them "
        "(`language` and `untranslated` in the answer say what you got).",
    ),
]


def _read(
    session: SessionDep, appeal: Appeal, settings: Settings, lang: str | None = None
) -> AppealRead:
    counted = service.counts(session, [appeal.id])[appeal.id]
    return service.to_read(appeal, counted, base_url=settings.base_url, now=utcnow(), language=lang)


@router.get("", responses=error_responses(422))
def list_appeals(
    session: SessionDep, settings: SettingsDep, lang: LangQuery = None
) -> list[AppealRead]:
    """Open and closed appeals with their counts (drafts are not listed)."""
    appeals = service.list_appeals(session)
    counted = service.counts(session, [a.id for a in appeals])
    now = utcnow()
    return [
        service.to_read(a, counted[a.id], base_url=settings.base_url, now=now, language=lang)
        for a in appeals
    ]


@router.get("/{slug}", response_model=AppealRead, responses=error_responses(404, 422))
def get_appeal(
    session: SessionDep, settings: SettingsDep, slug: str, lang: LangQuery = None
) -> Response:
    """One appeal with its counts, its texts in `lang` where it has them.

    The lookup (404) and the answer's JSON on the route's own thread: as a dependency
    (CurrentAppeal) and as FastAPI's step after the route, each took a thread call of its
    own (core/responses.py). A crowd reads this page's data as it signs."""
    appeal = service.published_appeal(session, slug)
    return model_response(_read(session, appeal, settings, lang))


@router.post("", status_code=201, responses=error_responses(401, 403, 409, 413, 422))
def create_appeal(
    session: SessionDep, settings: SettingsDep, who: Admin, data: AppealIn
) -> AppealRead:
    """Create an appeal (admin); 409 if the slug is taken."""
    if service.find_appeal(session, data.slug) is not None:
        raise Conflict(f"an appeal {data.slug!r} exists already; PUT /api/v1/appeals/{data.slug}")
    appeal, _ = service.save_appeal(
        session, data=data, directory=paths.letter_templates_dir(), by=who.label
    )
    return _read(session, appeal, settings)


@router.put(
    "/{slug}",
    responses={
        201: {"model": AppealRead, "description": "Created"},
        **error_responses(401, 403, 413, 422),
    },
)
def put_appeal(
    slug: str,
    session: SessionDep,
    settings: SettingsDep,
    who: Admin,
    data: AppealIn,
    response: Response,
) -> AppealRead:
    """Create or replace the appeal with this slug (admin)."""
    if data.slug != slug:
        raise InvalidInput({"slug": f"must be {slug!r}, as in the URL"})
    appeal, created = service.save_appeal(
        session, data=data, directory=paths.letter_templates_dir(), by=who.label
    )
    if created:
        response.status_code = 201
    return _read(session, appeal, settings)
