"""JSON API for organisers and unions: stats, letters, the CSV export, moderation.

Every route needs a token (or a logged-in organiser's cookie and, to change anything,
its CSRF token): 401 without, 403 when the appeal or letter is out of the asker's scope.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from app.appeals.deps import OrganiserAppeal
from app.core.auth import letters_filter
from app.core.db import SessionDep, SessionsDep
from app.core.deps import Organiser, SettingsDep
from app.core.errors import error_responses
from app.core.files import download_headers
from app.core.params import Offset, RowId
from app.letters import moderation
from app.models import ReplyKind, utcnow
from app.organisers import exports, inbox, stats
from app.organisers.deps import OrganiserLetter, RejectReason
from app.organisers.schemas import (
    BounceDetail,
    BouncePage,
    LetterFilters,
    LetterPage,
    LetterQuery,
    Moderated,
    ModerationQueue,
    RejectIn,
    ReplyPage,
    RetriedBounces,
    Stats,
)

# Every route here waits its turn for the database (admission.py): 503 when it cannot.
router = APIRouter(prefix="/api/v1", tags=["organisers"], responses=error_responses(503))

# Personal data: never kept by a browser or a proxy.
PRIVATE = {"Cache-Control": "no-store"}


# Every route here: a token or login (401), in scope (403), a known appeal or letter (404).
_ORGANISERS = error_responses(401, 403, 404, 422)


@router.get("/appeals/{slug}/stats", responses=_ORGANISERS)
def appeal_stats(session: SessionDep, who: Organiser, appeal: OrganiserAppeal) -> Stats:
    """Letters and deliveries by status, signed letters by country, organisation and day;
    a union's token counts only its own letters."""
    return stats.appeal_stats(session, appeal=appeal, who=who)


@router.get("/appeals/{slug}/letters", responses=_ORGANISERS)
def list_letters(
    session: SessionDep,
    who: Organiser,
    appeal: OrganiserAppeal,
    query: Annotated[LetterQuery, Query()],
) -> LetterPage:
    """The appeal's letters, newest first, filtered and paginated (a union: only its own,
    without supporters' e-mail addresses)."""
    return exports.list_letters(session, appeal=appeal, who=who, query=query)


@router.get(
    "/appeals/{slug}/letters.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **_ORGANISERS},
)
def letters_csv(
    session: SessionDep,
    sessions: SessionsDep,
    who: Organiser,
    appeal: OrganiserAppeal,
    filters: Annotated[LetterFilters, Query()],
) -> StreamingResponse:
    """The same letters as CSV (UTF-8 with BOM), oldest first, streamed."""
    chunks = exports.csv_export(session, sessions, appeal_id=appeal.id, who=who, filters=filters)
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={
            **PRIVATE,
            **download_headers(f"{appeal.slug}-letters.csv"),
        },
    )


@router.get("/appeals/{slug}/moderation", responses=_ORGANISERS)
def moderation_queue(
    session: SessionDep,
    who: Organiser,
    appeal: OrganiserAppeal,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> ModerationQueue:
    """Letters waiting for a moderator, oldest first."""
    held, total = moderation.held_letters(
        session, appeal=appeal, where=letters_filter(who), limit=limit, offset=offset
    )
    return ModerationQueue(items=[exports.summary_of(x, who=who) for x in held], total=total)


@router.post("/letters/{letter_id}/approve", responses=error_responses(401, 403, 404, 409, 422))
def approve(
    session: SessionDep, settings: SettingsDep, who: Organiser, letter: OrganiserLetter
) -> Moderated:
    """Release a held letter to its targets; 409 if it is not waiting."""
    moderation.approve(session, letter=letter, settings=settings, now=utcnow(), by=who.label)
    return Moderated(id=letter.public_id, status=letter.status)


@router.post(
    "/letters/{letter_id}/reject",
    responses=error_responses(401, 403, 404, 409, 413, 422),
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": RejectIn.model_json_schema()}},
        }
    },
)
def reject(
    session: SessionDep,
    settings: SettingsDep,
    who: Organiser,
    letter: OrganiserLetter,
    reason: RejectReason,
) -> Moderated:
    """Decline a held letter: never sent, the supporter is told (with `reason`, if given);
    409 if it is not waiting."""
    moderation.reject(
        session, letter=letter, settings=settings, now=utcnow(), by=who.label, reason=reason
    )
    return Moderated(id=letter.public_id, status=letter.status)


@router.get("/appeals/{slug}/replies", responses=_ORGANISERS)
def appeal_replies(
    session: SessionDep,
    who: Organiser,
    appeal: OrganiserAppeal,
    kind: ReplyKind = ReplyKind.human,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ReplyPage:
    """Targets' answers, newest first: human replies (`kind=human`, the default) and
    automatic ones (`kind=auto`: out-of-office and the like) apart, with both counts; a
    union sees the answers to its own members' letters only."""
    return inbox.replies(session, appeal=appeal, who=who, kind=kind, limit=limit, offset=offset)


@router.get("/appeals/{slug}/bounces", responses=_ORGANISERS)
def appeal_bounces(
    session: SessionDep,
    who: Organiser,
    appeal: OrganiserAppeal,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> BouncePage:
    """Bounces, newest first, hard and soft counted apart, and the addresses whose bounces
    left letters waiting (`current`: still a target's address, to be fixed)."""
    return inbox.bounces(session, appeal=appeal, who=who, limit=limit, offset=offset)


@router.get("/bounces/{bounce_id}", responses=_ORGANISERS)
def bounce_report(session: SessionDep, who: Organiser, bounce_id: RowId) -> BounceDetail:
    """One bounce with the report that came back (the returned letter left out)."""
    return inbox.bounce_detail(session, bounce_id=bounce_id, who=who)


@router.post("/appeals/{slug}/bounces/retry", status_code=202, responses=_ORGANISERS)
def retry_bounces(
    session: SessionDep,
    who: Organiser,
    appeal: OrganiserAppeal,
    recipient: Annotated[str, Query(max_length=254)] = "",
) -> RetriedBounces:
    """Send the bounced letters again (those `recipient` bounced, if given) to the
    targets' addresses as they are now: fix the address in the appeal first."""
    n = inbox.retry_bounced(session, appeal=appeal, who=who, now=utcnow(), recipient=recipient)
    return RetriedBounces(retried=n)
