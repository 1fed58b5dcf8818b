"""Organiser accounts and API tokens after they are made: list them, change a password,
remove an account, revoke a token. Every function flushes and never commits."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, joinedload

from app.audit import service as audit
from app.core import security
from app.core.auth import token_label
from app.core.errors import Conflict, InvalidInput, NotFound
from app.letters.service import normalise_email
from app.models import ApiToken, LoginSession, Organisation, Organiser
from app.organisers.service import new_password_hash, password_problem


def list_organisers(session: Session) -> list[Organiser]:
    """Every organiser account, admins first, then by organisation and address."""
    organisers = session.scalars(select(Organiser).options(joinedload(Organiser.organisation)))
    return sorted(
        organisers,
        key=lambda o: (
            o.organisation is not None,
            o.organisation.slug if o.organisation else "",
            o.email,
        ),
    )


def list_organisations(session: Session) -> list[Organisation]:
    """Every organisation (union), by name."""
    return list(session.scalars(select(Organisation).order_by(Organisation.name)))


def get_organiser(session: Session, organiser_id: int | None) -> Organiser:
    """The organiser with this id, or NotFound."""
    organiser = session.get(Organiser, organiser_id) if organiser_id is not None else None
    if organiser is None:
        raise NotFound("No such organiser.")
    return organiser


def find_organiser(session: Session, email: str) -> Organiser:
    """The organiser with this address (compared as stored), or NotFound."""
    try:
        address = normalise_email(email, check_deliverability=False)
    except InvalidInput:
        address = ""
    organiser = session.scalar(select(Organiser).where(Organiser.email == address))
    if organiser is None:
        raise NotFound(f"no organiser {email!r}")
    return organiser


def end_sessions(session: Session, organiser: Organiser, *, keep: str | None = None) -> int:
    """Log `organiser` out everywhere, except the login session behind `keep` (a raw
    session token); returns how many sessions ended."""
    query = delete(LoginSession).where(LoginSession.organiser_id == organiser.id)
    if keep is not None:
        query = query.where(LoginSession.token_hash != security.hash_token(keep))
    result = session.execute(query.execution_options(synchronize_session=False))
    session.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def set_password(
    session: Session, organiser: Organiser, password: str, *, keep: str | None = None
) -> int:
    """Give `organiser` a new password and end their other login sessions (someone who
    knew the old password may be logged in); returns how many sessions ended."""
    organiser.password_hash = new_password_hash(password)
    session.flush()
    return end_sessions(session, organiser, keep=keep)


def change_password(
    session: Session,
    organiser: Organiser,
    *,
    current: str,
    new: str,
    repeat: str,
    keep: str | None,
) -> int:
    """An organiser changing their own password: the current one must be right and the
    new one long enough and typed twice alike. InvalidInput names every field at fault."""
    fields: dict[str, str] = {}
    codes: dict[str, str] = {}
    if not security.verify_password(current, organiser.password_hash):
        fields["current_password"] = "is not your current password"  # noqa: S105  field name
        codes["current_password"] = "wrong_password"  # noqa: S105  field name
    problem = password_problem(new)
    if problem:
        fields["new_password"] = problem
        codes["new_password"] = "password_too_short"  # noqa: S105  field name
    elif new != repeat:
        fields["repeat_password"] = "is not the same as the new password"  # noqa: S105  field name
        codes["repeat_password"] = "password_mismatch"  # noqa: S105  field name
    if fields:
        raise InvalidInput(fields, codes=codes)
    return set_password(session, organiser, new, keep=keep)


def remove_organiser(
    session: Session, organiser: Organiser, *, by: str, last_admin_ok: bool = False
) -> None:
    """Delete the account (logged); its login sessions end with it. LastAdmin if it is the
    last admin (nobody could invite anyone from the dashboard any more), unless
    `last_admin_ok`: the command line, which can always add one again."""
    if not last_admin_ok and organiser.organisation_id is None and admin_count(session) <= 1:
        raise LastAdmin()
    end_sessions(session, organiser)
    audit.record(
        session,
        by=by,
        action="organiser.removed",
        organisation_id=organiser.organisation_id,
        subject=organiser.email,
        changes={"scope": organiser.organisation.slug if organiser.organisation else "admin"},
    )
    session.delete(organiser)
    session.flush()


class LastAdmin(Conflict):
    code = "last_admin"
    default_detail = "This is the last admin account: invite another admin first."


def admin_count(session: Session) -> int:
    """How many admin accounts there are."""
    return int(
        session.scalar(
            select(func.count()).select_from(Organiser).where(Organiser.organisation_id.is_(None))
        )
        or 0
    )


def rescope_organiser(
    session: Session, organiser: Organiser, *, organisation: Organisation | None, by: str
) -> None:
    """Make the account an admin's (organisation None) or a union's, and log it; its
    login sessions end so the new scope holds at once. LastAdmin if that would leave no
    admin."""
    before = organiser.organisation.slug if organiser.organisation else "admin"
    after = organisation.slug if organisation else "admin"
    if before == after:
        return
    if organiser.organisation_id is None and admin_count(session) <= 1:
        raise LastAdmin()
    organiser.organisation = organisation
    session.flush()
    end_sessions(session, organiser)
    audit.record(
        session,
        by=by,
        action="organiser.rescoped",
        organisation_id=organisation.id if organisation else None,
        subject=organiser.email,
        changes={"scope": [before, after]},
    )


def list_tokens(session: Session) -> list[ApiToken]:
    """Every API token (never the token itself: only its hash is kept), oldest first."""
    return list(
        session.scalars(
            select(ApiToken).options(joinedload(ApiToken.organisation)).order_by(ApiToken.id)
        )
    )


def get_token(session: Session, token_id: int) -> ApiToken:
    """The token with this id (its organisation loaded), or NotFound."""
    token = session.get(ApiToken, token_id, options=[joinedload(ApiToken.organisation)])
    if token is None:
        raise NotFound(f"no token {token_id}")
    return token


def revoke_token(session: Session, token_id: int, *, by: str) -> ApiToken:
    """Delete the token (logged): a client still using it gets 401 from now on. NotFound
    if none."""
    token = get_token(session, token_id)
    audit.record(
        session,
        by=by,
        action="token.revoked",
        organisation_id=token.organisation_id,
        subject=token_label(token),
    )
    session.delete(token)
    session.flush()
    return token
