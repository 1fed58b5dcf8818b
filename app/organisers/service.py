"""Organiser accounts and API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core import security
from app.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from app.letters.service import normalise_email
from app.models import ApiToken, Organisation, Organiser

PASSWORD_MIN = 12


def add_organiser(session: Session, *, email: str, password: str) -> Organiser:
    """Create an organiser account with an argon2 password hash. Flushes."""
    address = normalise_email(email, check_deliverability=False)
    if len(password) < PASSWORD_MIN:
        raise InvalidInput({"password": f"must be at least {PASSWORD_MIN} characters"})
    if session.scalar(select(Organiser).where(Organiser.email == address)):
        raise Conflict(f"an organiser {address} exists already")
    organiser = Organiser(email=address, password_hash=security.hash_password(password))
    session.add(organiser)
    session.flush()
    return organiser


def get_organisation(session: Session, slug: str) -> Organisation:
    organisation = session.scalar(select(Organisation).where(Organisation.slug == slug))
    if organisation is None:
        raise NotFound(f"no organisation {slug!r}")
    return organisation


def ensure_organisation(session: Session, *, slug: str, name: str | None = None) -> Organisation:
    """The organisation with this slug, created if missing. Flushes."""
    organisation = session.scalar(select(Organisation).where(Organisation.slug == slug))
    if organisation is None:
        organisation = Organisation(slug=slug, name=name or slug)
        session.add(organisation)
        session.flush()
    return organisation


def create_token(
    session: Session, *, organisation: Organisation | None, name: str = ""
) -> tuple[ApiToken, str]:
    """A new API token (admin when organisation is None); the raw token is only returned here."""
    raw = "oc_" + security.new_token(32)
    token = ApiToken(token_hash=security.hash_token(raw), organisation=organisation, name=name)
    session.add(token)
    session.flush()
    return token, raw


def authenticate(session: Session, raw: str | None, *, now: datetime) -> ApiToken:
    """The token for a bearer string, or Unauthorized."""
    if not raw:
        raise Unauthorized()
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == security.hash_token(raw)))
    if token is None:
        raise Unauthorized("The token is not valid.")
    token.last_used_at = now
    return token
