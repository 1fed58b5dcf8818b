"""Organiser accounts, organisations, API tokens and browser logins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core import security
from app.core.auth import SESSION_LIFETIME, token_label
from app.core.errors import Conflict, InvalidInput, InvalidLogin, NotFound
from app.letters.service import normalise_email
from app.models import (
    ApiToken,
    Letter,
    LoginSession,
    Organisation,
    Organiser,
)

PASSWORD_MIN = security.PASSWORD_MIN


def add_organiser(
    session: Session, *, email: str, password: str, organisation: Organisation | None = None
) -> Organiser:
    """Create an organiser account (admin, or scoped to `organisation`) with an argon2
    password hash. Flushes."""
    address = normalise_email(email, check_deliverability=False)
    password_hash = new_password_hash(password)
    if session.scalar(select(Organiser).where(Organiser.email == address)):
        raise Conflict(f"an organiser {address} exists already")
    organiser = Organiser(
        email=address,
        password_hash=password_hash,
        organisation=organisation,
    )
    session.add(organiser)
    session.flush()
    return organiser


def password_problem(password: str) -> str | None:
    """Why `password` may not be an organiser's new password, or None."""
    if len(password) < PASSWORD_MIN:
        return f"must be at least {PASSWORD_MIN} characters"
    return None


def new_password_hash(password: str, *, field: str = "password") -> str:
    """The argon2 hash of a new password; InvalidInput naming `field` if it is too short."""
    problem = password_problem(password)
    if problem:
        raise InvalidInput({field: problem}, codes={field: "password_too_short"})
    return security.hash_password(password)


def get_organisation(session: Session, slug: str) -> Organisation:
    """The organisation with this slug, or NotFound."""
    organisation = session.scalar(select(Organisation).where(Organisation.slug == slug))
    if organisation is None:
        raise NotFound(f"no organisation {slug!r}")
    return organisation


def ensure_organisation(session: Session, *, slug: str, name: str | None = None) -> Organisation:
    """The organisation with this slug, created if missing; `name` renames it. Flushes."""
    organisation = session.scalar(select(Organisation).where(Organisation.slug == slug))
    if organisation is None:
        organisation = Organisation(slug=slug, name=name or slug)
        session.add(organisation)
    elif name:
        organisation.name = name
    session.flush()
    return organisation


def create_token(
    session: Session, *, organisation: Organisation | None, name: str = "", by: str
) -> tuple[ApiToken, str]:
    """A new API token (admin when organisation is None); the raw token is only returned
    here (the audit log gets its id, name and scope)."""
    raw = "oc_" + security.new_token(32)
    token = ApiToken(token_hash=security.hash_token(raw), organisation=organisation, name=name)
    session.add(token)
    session.flush()
    audit.record(
        session,
        by=by,
        action="token.created",
        organisation_id=token.organisation_id,
        subject=token_label(token),
        changes={"scope": organisation.slug if organisation else "admin"},
    )
    return token, raw


def log_in(session: Session, *, email: str, password: str, now: datetime) -> str:
    """Check an organiser's password and start a login session; returns its raw token
    (for the cookie). Raises InvalidLogin, the same for an unknown address and a wrong
    password. Flushes."""
    try:
        address = normalise_email(email, check_deliverability=False)
    except InvalidInput:
        address = ""
    organiser = (
        session.scalar(select(Organiser).where(Organiser.email == address)) if address else None
    )
    # verify_password does one argon2 check even when the organiser is unknown.
    if not security.verify_password(password, organiser.password_hash if organiser else None):
        raise InvalidLogin()
    if organiser is None:  # verify_password is never true without a hash
        raise AssertionError("no organiser")
    return start_session(session, organiser, now=now)


def start_session(session: Session, organiser: Organiser, *, now: datetime) -> str:
    """A new login session of `organiser` (whose password was just checked or set); its
    raw token, for the cookie. Their expired sessions are cleared. Flushes."""
    session.execute(
        delete(LoginSession).where(
            LoginSession.organiser_id == organiser.id, LoginSession.expires_at <= now
        )
    )
    raw = security.new_token(32)
    session.add(
        LoginSession(
            token_hash=security.hash_token(raw),
            organiser_id=organiser.id,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    session.flush()
    return raw


def log_out(session: Session, raw: str) -> None:
    """End the login session behind `raw` (the cookie stops working everywhere). Flushes."""
    session.execute(delete(LoginSession).where(LoginSession.token_hash == security.hash_token(raw)))
    session.flush()


def find_letter(session: Session, public_id: str) -> Letter:
    """The letter with this public id, or NotFound."""
    letter = session.scalar(select(Letter).where(Letter.public_id == public_id))
    if letter is None:
        raise NotFound("No such letter.")
    return letter
