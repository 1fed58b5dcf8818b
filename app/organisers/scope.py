"""Who is asking (an API token or a logged-in organiser) and what they may see.

Admins see everything. A union (a token or an organiser scoped to one organisation)
sees only the appeals its organisation takes part in, and of those only the letters
attributed to it: a supporter's details never reach another union.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import Session

from app.core.errors import Forbidden
from app.models import Appeal, Bounce, Delivery, Letter, Organisation, Reply


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
    Forbidden if it names any other; for an admin, the one named (None when it names none,
    or a slug no organisation has)."""
    if who.is_admin:
        if not slug:
            return None
        return session.scalar(select(Organisation).where(Organisation.slug == slug))
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
