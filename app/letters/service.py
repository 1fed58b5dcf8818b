"""Signing, confirming and looking up a supporter's letter."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, EmailUndeliverableError
from sqlalchemy import and_, bindparam, delete, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from app.appeals import service as appeals
from app.appeals.letter import letter_vars, render
from app.core import security
from app.core.config import Settings
from app.core.errors import (
    AppealClosed,
    AppealNotFound,
    DuplicateSignature,
    InvalidConfirmation,
    InvalidInput,
    LetterNotFound,
)
from app.delivery import service as delivery
from app.letters import guard, privacy
from app.letters.schemas import (
    AttemptRead,
    DeliveryRead,
    LetterCreated,
    LetterRead,
    SignatureIn,
    SignerRead,
    normalised_address,
)
from app.models import (
    Appeal,
    Delivery,
    Letter,
    LetterStatus,
    Organisation,
    StatusEvent,
    table_of,
    transition,
)

log = logging.getLogger(__name__)

# An earlier letter in one of these states gives way to a new signature of the same address.
REPLACEABLE = (LetterStatus.pending_confirmation, LetterStatus.rejected)
# One in these never went out either, but stays counted: it is set aside, not deleted.
SET_ASIDE = (LetterStatus.expired, LetterStatus.withdrawn)


def needs_moderation(appeal: Appeal, message: str, hold_reason: str = "") -> bool:
    """True if a letter must wait for a moderator: the flood guard held it, or the appeal
    moderates and the supporter added words of their own (the appeal's own text needs no
    review)."""
    return bool(hold_reason) or (appeal.moderation and bool(message.strip()))


def normalise_email(address: str, *, check_deliverability: bool) -> str:
    """The address as we store and compare it; InvalidInput naming `email` if it is not one."""
    try:
        return normalised_address(address, check_deliverability=check_deliverability)
    except EmailNotValidError as exc:
        kind = "email_undeliverable" if isinstance(exc, EmailUndeliverableError) else "email_syntax"
        raise InvalidInput({"email": str(exc)}, codes={"email": kind}) from exc


def letter_row(
    appeal: Appeal,
    *,
    language: str,
    signer_name: str,
    signer_organisation: str,
    signer_country: str,
    signer_city: str,
    message: str,
    now: datetime,
    **row: Any,
) -> dict[str, Any]:
    """The columns of a letter signed with these details: its subject and body rendered
    from the appeal's letter in `language` (LetterUnavailable if it fails), a new public
    id and key unless `row` gives them; `row` sets its other columns. The one place a
    letter's text is written, for signatures, test sends and previews alike."""
    rendered = render(
        appeal,
        language,
        letter_vars(
            appeal,
            name=signer_name,
            organisation=signer_organisation,
            country=signer_country,
            city=signer_city,
            message=message,
            language=language,
            today=now.date(),
        ),
    )
    row.setdefault("public_id", security.new_token(12))
    row.setdefault("key", security.new_token(24))
    return {
        "language": language,
        "signer_name": signer_name,
        "signer_organisation": signer_organisation,
        "signer_country": signer_country,
        "signer_city": signer_city,
        "message": message,
        "subject": rendered.subject,
        "body": rendered.body,
        "created_at": now,
        **row,
    }


def new_letter(appeal: Appeal, **details: Any) -> Letter:
    """A letter with letter_row()'s columns (`details` as letter_row() takes them), not
    added to any session: for samples and previews."""
    return Letter(appeal=appeal, **letter_row(appeal, **details))


def sign_letter(
    session: Session,
    *,
    appeal: Appeal,
    form: SignatureIn,
    settings: Settings,
    now: datetime,
    client: str | None = None,
    earlier: Earlier | None = None,
) -> Letter:
    """Store a signed letter; enqueue its confirmation e-mail, or its deliveries when the
    appeal needs no confirmation. Replaces an earlier never-confirmed letter of the same
    address. `client` (the signer's IP address) feeds the flood guard, which may hold the
    letter for moderation. Raises AppealClosed, DuplicateSignature, InvalidInput or
    TooManyConfirmations. The letter returned is in the session, as if loaded, and so
    must `appeal` be.

    `earlier`: what appeal_to_sign() read of the address's earlier letter, in this
    session; without it, it is read here."""
    if inspect(appeal).session_id != session.hash_key:
        # Never the process's copy (published_copy()): the letter would point at it.
        raise AssertionError("sign_letter() takes the session's own appeal")
    letter_id, row, organisation = _write(
        session,
        appeal=appeal,
        form=form,
        settings=settings,
        now=now,
        client=client,
        earlier=earlier,
    )
    letter = _as_loaded(session, letter_id, row, appeal=appeal, organisation=organisation)
    if not appeal.require_confirmation and letter.status is LetterStatus.queued:
        delivery.plan_letter(session, letter=letter, mail_from=settings.mail_from, now=now)
    return letter


@dataclass(frozen=True, slots=True)
class Signed:
    """A letter just signed, as the API answers for it (created())."""

    public_id: str
    key: str
    status: LetterStatus


def sign(
    session: Session,
    *,
    slug: str,
    form: SignatureIn,
    settings: Settings,
    now: datetime,
    client: str | None,
) -> Signed:
    """Sign the published appeal with this slug, for the API: AppealNotFound, then the
    signing limit of `client` (RateLimited), then as sign_letter().

    A letter that waits for its confirmation is written from the process's copy of the
    appeal, and no ORM object is made of either: merging the copy into the session and
    making the letter an object in it took a seventh of a signature's own CPU, for an
    answer that needs three of the letter's columns (issue 10)."""
    appeal, earlier = appeal_to_sign(session, slug=slug, address=form.email, settings=settings)
    guard.check_signing_limit(settings, client)
    if appeal.require_confirmation:
        _id, row, _organisation = _write(
            session,
            appeal=appeal,
            form=form,
            settings=settings,
            now=now,
            client=client,
            earlier=earlier,
        )
        return Signed(row["public_id"], row["key"], row["status"])
    letter = sign_letter(
        session,
        appeal=appeals.attached(session, appeal),
        form=form,
        settings=settings,
        now=now,
        client=client,
        earlier=earlier,
    )
    return Signed(letter.public_id, letter.key, letter.status)


def _write(
    session: Session,
    *,
    appeal: Appeal,
    form: SignatureIn,
    settings: Settings,
    now: datetime,
    client: str | None,
    earlier: Earlier | None,
) -> tuple[int, dict[str, Any], Organisation | None]:
    """sign_letter()'s letter, and its confirmation e-mail when the appeal asks for one,
    written with Core alone: `appeal` is only read, so it may be the process's copy. The
    letter's id, its row and the organisation it credits."""
    if not appeals.accepting(appeal, now):
        raise AppealClosed()
    email = normalise_email(form.email, check_deliverability=settings.check_email_deliverability)
    language = appeals.offered_language(appeal, form.language)
    # Only an organisation taking part in the appeal is credited: a link with another
    # slug still signs the letter, just unattributed.
    organisation = next((o for o in appeal.organisations if o.slug == form.org), None)
    digest = privacy.email_hash(settings, email)
    _make_way(session, appeal=appeal, digest=digest, earlier=earlier)
    row = letter_row(
        appeal,
        language=language,
        signer_name=form.name,
        signer_organisation=form.organisation,
        signer_country=form.country,
        signer_city=form.city,
        message=form.message,
        now=now,
        appeal_id=appeal.id,
        organisation_id=organisation.id if organisation else None,
        signer_email=email,
        email_hash=digest,
        share_email=form.share_email,
        copy_to_me=form.copy_to_me,
        notify_replies=form.notify_replies,
        rejection_reason="",
        confirmed_at=None,
        sent_at=None,
        finished_at=None,
        erased_at=None,
    )
    # Counted only once the letter is written: one that cannot be rendered costs the
    # address none of its confirmation e-mails, and counts towards no flood.
    confirm = appeal.require_confirmation
    hold_reason = guard.check_signature(
        settings, appeal=appeal, email=email, client=client, confirmation=confirm
    )
    row["hold_reason"] = hold_reason
    if confirm:
        row["status"] = LetterStatus.pending_confirmation
        letter_id = _store_with_confirmation(
            session, row, max_attempts=appeal.max_attempts, settings=settings, now=now
        )
    else:
        held = needs_moderation(appeal, form.message, hold_reason)
        row["status"] = LetterStatus.held if held else LetterStatus.queued
        row["confirmed_at"] = now
        letter_id = _store(session, row)
    return letter_id, row, organisation


_LETTER = table_of(Letter)
# One statement, compiled once per process: the ORM's unit of work took a fifth of a
# signature's CPU to write the same row (issue 10).
_INSERT_LETTER = insert(_LETTER).returning(_LETTER.c.id)
_EARLIER_LETTER = select(_LETTER.c.id, _LETTER.c.status).where(
    _LETTER.c.appeal_id == bindparam("appeal_id"), _LETTER.c.email_hash == bindparam("digest")
)


@dataclass(frozen=True, slots=True)
class Earlier:
    """The letter an address signed an appeal with before (id and status; None for none),
    as appeal_to_sign() read it with the appeal."""

    appeal_id: int
    digest: str
    id: int | None
    status: LetterStatus | None


_APPEAL_AND_EARLIER = appeals.REVISION.add_columns(
    _LETTER.c.id.label("earlier_id"), _LETTER.c.status.label("earlier_status")
).outerjoin_from(
    table_of(Appeal),
    _LETTER,
    and_(
        _LETTER.c.appeal_id == table_of(Appeal).c.id,
        _LETTER.c.email_hash == bindparam("digest"),
    ),
)


def appeal_to_sign(
    session: Session, *, slug: str, address: str, settings: Settings
) -> tuple[Appeal, Earlier]:
    """The published appeal with this slug, as the process's copy (published_copy():
    AppealNotFound for none or a draft), and the letter `address` signed it with before,
    for sign(): in one round trip, where they took two, each a tenth of a signature's
    CPU (issue 10). sign_letter() takes the copy only once attached (appeals.attached()).

    The earlier letter is read before the limits are counted (a call to Redis), so a
    moment sooner than _make_way() would read it. That costs nothing in safety: each
    write of _make_way() checks the status it read, and the unique key catches a letter
    that came meanwhile; either way the signature is refused (409), never stored twice."""
    digest = privacy.email_hash(settings, normalise_email(address, check_deliverability=False))
    row = session.execute(_APPEAL_AND_EARLIER, {"slug": slug, "digest": digest}).first()
    if row is None:
        raise AppealNotFound()
    appeal = appeals.published_copy(session, slug, seen=row)
    # The appeal id read with the letter: should published_copy() have found another
    # appeal by now (deleted and made again), _make_way() reads its earlier letter itself.
    return appeal, Earlier(row.id, digest, row.earlier_id, row.earlier_status)


def _store(session: Session, row: dict[str, Any]) -> int:
    """INSERT the letter's row in the session's transaction; its id. DuplicateSignature if
    the address signed at the same moment."""
    try:
        letter_id: int = session.execute(_INSERT_LETTER, row).scalar_one()
    except IntegrityError as exc:
        # The same address signing twice at the same moment. No SAVEPOINT to go on
        # from: the request ends here and its transaction is rolled back whole.
        raise DuplicateSignature() from exc
    return letter_id


def _store_with_confirmation(
    session: Session, row: dict[str, Any], *, max_attempts: int, settings: Settings, now: datetime
) -> int:
    """_store(), and the letter's confirmation e-mail, enqueued after commit: in one
    statement on PostgreSQL, in two on SQLite (which cannot INSERT in a WITH clause)."""
    confirmation = delivery.confirmation_row(
        public_id=row["public_id"],
        appeal_id=row["appeal_id"],
        organisation_id=row["organisation_id"],
        signer_email=row["signer_email"],
        max_attempts=max_attempts,
        mail_from=settings.mail_from,
        now=now,
    )
    if session.get_bind().dialect.name != "postgresql":
        letter_id = _store(session, row)
        delivery_id = delivery.insert_confirmation(session, letter_id, confirmation)
    else:
        try:
            letter_id, delivery_id = delivery.insert_with_confirmation(
                session, _LETTER, row, confirmation
            )
        except IntegrityError as exc:
            # As in _store(), but only for the letter's own unique keys: the delivery's
            # half of the statement failing is no duplicate signature.
            diag = getattr(exc.orig, "diag", None)
            if str(getattr(diag, "constraint_name", "")).startswith("uq_letter_"):
                raise DuplicateSignature() from exc
            raise
    delivery.enqueue_after_commit(session, [delivery_id])
    return letter_id


def _as_loaded(
    session: Session,
    letter_id: int,
    row: dict[str, Any],
    *,
    appeal: Appeal,
    organisation: Organisation | None,
) -> Letter:
    """The letter with this id and row as an object in the session, as if loaded."""
    letter = Letter(id=letter_id, **row)
    # What the row holds and nothing pending: the object stays clean, and its
    # deliveries (written without the ORM, in the same statement or the next) load when
    # first read.
    make_transient_to_detached(letter)
    set_committed_value(letter, "appeal", appeal)
    set_committed_value(letter, "organisation", organisation)
    session.add(letter)
    return letter


def _make_way(session: Session, *, appeal: Appeal, digest: str, earlier: Earlier | None) -> None:
    """Clear the way for a new signature of the address with this hash, or raise
    DuplicateSignature if its letter has gone (or may go) to the targets."""
    if earlier is not None and earlier.digest == digest and earlier.appeal_id == appeal.id:
        existing = None if earlier.id is None else (earlier.id, earlier.status)
    else:
        session.flush()  # as the ORM query this was did: what is pending is written first
        query = {"appeal_id": appeal.id, "digest": digest}
        found = session.execute(_EARLIER_LETTER, query).first()
        existing = None if found is None else (found.id, found.status)
    if existing is None:
        return
    existing_id, status = existing
    # Each statement checks the status it was read with: the address may have confirmed
    # its letter a moment ago, and a confirmed letter is never deleted or set aside.
    if status in REPLACEABLE:
        # Never confirmed, or declined by a moderator, so nothing went out: the new
        # signature takes its place (and whoever typed someone else's address cannot
        # lock the real owner out).
        done = session.execute(
            delete(_LETTER).where(_LETTER.c.id == existing_id, _LETTER.c.status.in_(REPLACEABLE))
        )
    elif status in SET_ASIDE:
        # Expired or withdrawn: it keeps its place in the counts, without the hash.
        done = session.execute(
            update(_LETTER)
            .where(_LETTER.c.id == existing_id, _LETTER.c.status.in_(SET_ASIDE))
            .values(email_hash=None)
        )
    else:
        raise DuplicateSignature()
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise DuplicateSignature()
    # The session may hold the old letter (a test, a page that showed it): it is gone or
    # changed underneath, so the session lets go of it.
    stale = session.identity_map.get(identity_key(Letter, existing_id))
    if stale is not None:
        session.expunge(stale)


def letter_for_token(session: Session, *, token: str, settings: Settings, now: datetime) -> Letter:
    """The letter a confirmation token is for; InvalidConfirmation if forged or expired."""
    public_id = security.unsign(settings.resolved_secret_key(), "confirm", token)
    letter = (
        session.scalar(select(Letter).where(Letter.public_id == public_id)) if public_id else None
    )
    gone = (LetterStatus.expired, LetterStatus.withdrawn)
    if letter is None or letter.status in gone or letter.erased_at is not None:
        raise InvalidConfirmation()
    if letter.status is LetterStatus.pending_confirmation and now - letter.created_at > timedelta(
        days=settings.confirmation_days
    ):
        raise InvalidConfirmation()
    return letter


def confirm_letter(
    session: Session, *, token: str, settings: Settings, now: datetime
) -> tuple[Letter, bool]:
    """Confirm the letter behind `token`: it becomes `queued` and its deliveries are written
    and enqueued after commit. Returns (letter, already_confirmed)."""
    letter = letter_for_token(session, token=token, settings=settings, now=now)
    if letter.status is not LetterStatus.pending_confirmation:
        return letter, True
    held = needs_moderation(letter.appeal, letter.message, letter.hold_reason)
    why = "; held: many signatures at once" if letter.hold_reason else "; held for moderation"
    won = transition(
        session,
        letter,
        LetterStatus.held if held else LetterStatus.queued,
        values={"confirmed_at": now},
        detail="confirmed by the supporter" + (why if held else ""),
    )
    if not won:  # confirmed a moment ago through the other link
        return letter, True
    if not held:
        delivery.plan_letter(session, letter=letter, mail_from=settings.mail_from, now=now)
    return letter, False


def get_letter(session: Session, *, public_id: str, key: str) -> Letter:
    """The letter if `key` is its secret; otherwise LetterNotFound (the same for both)."""
    letter = session.scalar(select(Letter).where(Letter.public_id == public_id))
    if letter is None or not security.same(letter.key, key or ""):
        raise LetterNotFound()
    return letter


def _history(session: Session, deliveries: list[Delivery]) -> dict[int, list[AttemptRead]]:
    ids = [d.id for d in deliveries]
    history: dict[int, list[AttemptRead]] = {i: [] for i in ids}
    if not ids:
        return history
    events = session.scalars(
        select(StatusEvent)
        .where(StatusEvent.delivery_id.in_(ids), StatusEvent.from_status == "sending")
        .order_by(StatusEvent.id)
    )
    for event in events:
        if event.delivery_id is None:  # the WHERE clause admits only deliveries' events
            raise AssertionError(event.id)
        history[event.delivery_id].append(
            AttemptRead(at=event.created_at, outcome=event.to_status, detail=event.detail)
        )
    return history


def to_read(session: Session, letter: Letter, *, settings: Settings) -> LetterRead:
    """The supporter's view of their letter, with every delivery and its attempts."""
    deliveries = list(letter.deliveries)
    history = _history(session, deliveries)
    return LetterRead(
        id=letter.public_id,
        appeal=letter.appeal.slug,
        status=letter.status,
        language=letter.language,
        signer=SignerRead(
            name=letter.signer_name,
            organisation=letter.signer_organisation,
            country=letter.signer_country,
            city=letter.signer_city,
        ),
        subject=letter.subject,
        body=letter.body,
        created_at=letter.created_at,
        confirmed_at=letter.confirmed_at,
        sent_at=letter.sent_at,
        rejection_reason=letter.rejection_reason,
        withdrawable=privacy.can_withdraw(letter),
        erased_at=letter.erased_at,
        deliveries=[
            DeliveryRead(
                id=d.id,
                channel=d.channel,
                status=d.status,
                recipients=[*d.recipients, *d.cc],
                attempts=d.attempts,
                last_error=d.last_error,
                sent_at=d.sent_at,
                next_attempt_at=d.next_attempt_at if d.status in delivery.UNFINISHED else None,
                history=history[d.id],
            )
            for d in deliveries
        ],
        pdf_url=f"{settings.base_url}/api/v1/letters/{letter.public_id}.pdf?key={letter.key}",
    )


def status_url(settings: Settings, letter: Letter | Signed) -> str:
    """The API URL a supporter polls for their letter's status."""
    return f"{settings.base_url}/api/v1/letters/{letter.public_id}?key={letter.key}"


def created(settings: Settings, letter: Letter | Signed) -> LetterCreated:
    """What the API answers for a letter just signed or confirmed."""
    return LetterCreated(
        id=letter.public_id, status=letter.status, status_url=status_url(settings, letter)
    )
