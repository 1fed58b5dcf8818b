"""Who is asking (an API token or a logged-in organiser) and what they may see.

A bearer token or a login session resolves to a Principal here, so every domain's routes
can ask who is calling (app/core/deps.py) without importing the organisers' package.

Admins see everything. A union (a token or an organiser scoped to one organisation)
sees only the appeals its organisation takes part in, and of those only the letters
attributed to it: a supporter's details never reach another union.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import Session

from app.core import security
from app.core.errors import Forbidden, InvalidInput, Unauthorized
from app.models import ApiToken, Appeal, Bounce, Delivery, Letter, LoginSession, Organisation, Reply

# Organisers live in the dashboard for the weeks a campaign runs; a week between
# logins is a fair balance against a cookie left on a shared computer.
SESSION_LIFETIME = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Principal:
    via: Literal["token", "session"]
    organisation_id: int | None  # None: admin
    organisation_name: str | None = None
    organiser_id: int | None = None  # a logged-in organiser
    email: str | None = None  # the organiser's own address (test sends go only there)
    csrf_token: str | None = None  # for the forms of a logged-in organiser
    label: str = ""  # who it was, for the audit trail ("approved by …")

    @property
    def is_admin(self) -> bool:
        return self.organisation_id is None


def token_label(token: ApiToken) -> str:
    """How the audit log names a token: its id and name, never the token."""
    return f"token {token.id}" + (f" ({token.name})" if token.name else "")


def authenticate(session: Session, raw: str | None, *, now: datetime) -> ApiToken:
    """The token for a bearer string, or Unauthorized."""
    if not raw:
        raise Unauthorized()
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == security.hash_token(raw)))
    if token is None:
        raise Unauthorized("The token is not valid.")
    token.last_used_at = now
    return token


def token_principal(token: ApiToken) -> Principal:
    """Who a bearer token speaks for."""
    return Principal(
        via="token",
        organisation_id=token.organisation_id,
        organisation_name=token.organisation.name if token.organisation else None,
        label=token_label(token),
    )


def session_principal(
    session: Session, raw: str, *, secret: str, now: datetime
) -> Principal | None:
    """The logged-in organiser behind a session token, or None if it ended or expired."""
    login = session.scalar(
        select(LoginSession).where(LoginSession.token_hash == security.hash_token(raw))
    )
    if login is None or login.expires_at <= now:
        return None
    organiser = login.organiser
    return Principal(
        via="session",
        organisation_id=organiser.organisation_id,
        organisation_name=organiser.organisation.name if organiser.organisation else None,
        organiser_id=organiser.id,
        email=organiser.email,
        csrf_token=csrf_token(secret, raw),
        label=organiser.email,
    )


def csrf_token(secret: str, raw_session: str) -> str:
    """The CSRF token of one login session: derived, so nothing more is stored."""
    return security.derive(secret, "csrf", raw_session)


def check_admin(who: Principal) -> None:
    """Forbidden unless `who` is an admin."""
    if not who.is_admin:
        raise Forbidden("This needs an admin.")


def may_test_send(who: Principal) -> bool:
    """Test sends show the targets' addresses and go to the asker's own address: only a
    logged-in admin organiser (a token has no address of its own)."""
    return who.is_admin and who.via == "session" and who.email is not None


def own_address(who: Principal) -> str:
    """The address a test send may go to: the logged-in admin's own; else Forbidden."""
    if not may_test_send(who) or who.email is None:
        raise Forbidden("Test sends go to your own address: log in as an admin organiser.")
    return who.email


def check_appeal(who: Principal, appeal: Appeal) -> None:
    """Forbidden unless `who` is an admin or its organisation takes part in `appeal`."""
    if who.is_admin:
        return
    if all(org.id != who.organisation_id for org in appeal.organisations):
        raise Forbidden("Your organisation does not take part in this appeal.")


def check_letter(who: Principal, letter: Letter) -> None:
    """Forbidden unless `who` may see `letter` (a union: only letters attributed to it)."""
    check_appeal(who, letter.appeal)
    if not who.is_admin and letter.organisation_id != who.organisation_id:
        raise Forbidden("This letter was not signed through your organisation.")


def letters_filter(who: Principal) -> ColumnElement[bool]:
    """The WHERE clause that keeps a union to its own letters."""
    if who.is_admin:
        return true()
    return Letter.organisation_id == who.organisation_id


def named_organisation(session: Session, who: Principal, slug: str | None) -> Organisation | None:
    """The organisation a letters filter (`?organisation=`) stands for, the same for the
    list, the CSV and the bundles: a union's own, whether it names itself or nobody, and
    Forbidden if it names any other; for an admin, the one named (None when it names none;
    InvalidInput naming `organisation` for a slug no organisation has)."""
    if who.is_admin:
        if not slug:
            return None
        found = session.scalar(select(Organisation).where(Organisation.slug == slug))
        if found is None:
            raise InvalidInput({"organisation": f"no organisation {slug!r}"})
        return found
    own = session.get(Organisation, who.organisation_id)
    # The same answer whether the one named exists or not: no probing for names. (And a
    # union whose organisation is gone sees nothing, rather than everything.)
    if own is None or (slug and own.slug != slug):
        raise Forbidden("A union token sees only its own organisation's letters.")
    return own


def deliveries_filter(who: Principal) -> ColumnElement[bool]:
    """The same for deliveries (each carries its letter's organisation)."""
    if who.is_admin:
        return true()
    return Delivery.organisation_id == who.organisation_id


def replies_filter(who: Principal) -> ColumnElement[bool]:
    """A union sees the replies to its own members' letters only."""
    if who.is_admin:
        return true()
    return Reply.organisation_id == who.organisation_id


def bounces_filter(who: Principal) -> ColumnElement[bool]:
    """A union sees the bounces of its own members' letters only."""
    if who.is_admin:
        return true()
    return Bounce.organisation_id == who.organisation_id


def check_bounce(who: Principal, bounce: Bounce, appeal: Appeal) -> None:
    """Forbidden unless `who` may read this bounce report (of `appeal`)."""
    check_appeal(who, appeal)
    if not who.is_admin and bounce.organisation_id != who.organisation_id:
        raise Forbidden("This letter was not signed through your organisation.")
