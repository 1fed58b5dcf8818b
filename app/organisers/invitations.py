"""Invitations: an admin invites an organiser by e-mail instead of running the CLI.

The e-mail goes through the outbox (a delivery with no letter, enqueued after commit).
Its link carries a token derived from the invitation's random nonce with the secret
key; the database keeps only the token's SHA-256, so a copy of the database alone opens
no account. A link works once, until it expires (OUTCRY_INVITATION_DAYS), and only its
form (a POST) uses it: opening it changes nothing, because mail scanners open links.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from app.audit import service as audit
from app.core import security
from app.core.config import Settings
from app.core.errors import Conflict, InvalidInput, NotFound
from app.delivery import service as delivery
from app.letters.service import normalise_email
from app.models import Invitation, Organisation, Organiser
from app.organisers import service as organisers


class InvalidInvitation(NotFound):
    code = "invalid_invitation"
    default_detail = "This invitation link is not valid: it has been used, or it has expired."


class AlreadyOrganiser(Conflict):
    code = "organiser_exists"
    default_detail = "There is an organiser account with this address already."


def token_of(settings: Settings, invitation: Invitation) -> str:
    """The token in the invitation's link (derived, never stored)."""
    return security.invitation_token(settings.resolved_secret_key(), invitation.nonce)


def invite(
    session: Session,
    *,
    email: str,
    organisation: Organisation | None,
    language: str,
    settings: Settings,
    now: datetime,
    by: str,
) -> Invitation:
    """Invite `email` to an admin account (organisation None) or a union's; the e-mail is
    written to the outbox and enqueued after commit, and the invitation logged. An
    earlier invitation to the same address stops working. InvalidInput naming `email`
    for an address that is not one; AlreadyOrganiser if it has an account."""
    address = normalise_email(email, check_deliverability=False)
    if session.scalar(select(Organiser.id).where(Organiser.email == address)) is not None:
        raise AlreadyOrganiser()
    session.execute(
        update(Invitation)
        .where(Invitation.email == address, Invitation.used_at.is_(None))
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    invitation = Invitation(
        email=address,
        organisation=organisation,
        nonce=security.new_token(24),
        token_hash="",
        invited_by=by,
        language=language,
        created_at=now,
        expires_at=now + timedelta(days=settings.invitation_days),
    )
    invitation.token_hash = security.hash_token(token_of(settings, invitation))
    session.add(invitation)
    session.flush()
    delivery.plan_invitation(session, invitation=invitation, mail_from=settings.mail_from, now=now)
    audit.record(
        session,
        by=by,
        action="organiser.invited",
        organisation_id=organisation.id if organisation else None,
        subject=address,
        changes={
            "scope": organisation.slug if organisation else "admin",
            "expires_at": invitation.expires_at.isoformat(timespec="minutes"),
        },
    )
    return invitation


def find(session: Session, *, token: str, now: datetime) -> Invitation:
    """The invitation behind a link's token while it can still be used; else
    InvalidInvitation (the same for a forged, used or expired link)."""
    invitation = session.scalar(
        select(Invitation)
        .where(Invitation.token_hash == security.hash_token(token))
        .options(joinedload(Invitation.organisation))
    )
    if invitation is None or invitation.used_at is not None or invitation.expires_at <= now:
        raise InvalidInvitation()
    return invitation


def accept(session: Session, *, token: str, password: str, repeat: str, now: datetime) -> Organiser:
    """Use the invitation: the account is made with the invitee's own password (the rules
    of every organiser password) and the invitation can never be used again. Flushes.
    InvalidInput names the password fields at fault; InvalidInvitation if the link is
    not (or no longer) valid, also when two tabs send the form at once."""
    invitation = find(session, token=token, now=now)
    problem = organisers.password_problem(password)
    if problem:
        raise InvalidInput({"new_password": problem}, codes={"new_password": "password_too_short"})
    if password != repeat:
        raise InvalidInput(
            {"repeat_password": "is not the same as the new password"},
            codes={"repeat_password": "password_mismatch"},
        )
    used = session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation.id,
            Invitation.used_at.is_(None),
            Invitation.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidInvitation()
    try:
        organiser = organisers.add_organiser(
            session,
            email=invitation.email,
            password=password,
            organisation=invitation.organisation,
        )
    except Conflict as exc:
        raise AlreadyOrganiser() from exc
    audit.record(
        session,
        by=organiser.email,
        action="invitation.accepted",
        organisation_id=organiser.organisation_id,
        subject=organiser.email,
        changes={"invited_by": invitation.invited_by},
    )
    return organiser


def pending(session: Session, *, now: datetime) -> list[Invitation]:
    """Invitations not used yet that still work, newest first."""
    return list(
        session.scalars(
            select(Invitation)
            .where(Invitation.used_at.is_(None), Invitation.expires_at > now)
            .options(joinedload(Invitation.organisation))
            .order_by(Invitation.id.desc())
        )
    )
