"""An organiser's test send: the letter as targets will get it, mailed only to the organiser."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.appeals import service as appeals
from app.appeals import templating
from app.core import security
from app.core.config import Settings
from app.core.errors import Conflict
from app.delivery import service as delivery
from app.letters import service as letters
from app.models import Appeal, Channel, Delivery, Letter, LetterStatus

# Who signs a sample: the example the appeal's templates are checked with.
EXAMPLE = templating.SAMPLE


class AlreadyOpen(Conflict):
    code = "appeal_opened"
    default_detail = "Test sends are only for appeals that have not opened yet."


def send_samples(
    session: Session, *, appeal: Appeal, to: str, settings: Settings, now: datetime
) -> list[Delivery]:
    """Before the appeal opens, write one sample letter per language with example signer
    details, each with one delivery to `to` (the organiser's own address) and never to the
    targets or copies; enqueued after commit. Raises AlreadyOpen once it has opened."""
    if appeals.phase(appeal, now) not in ("draft", "scheduled"):
        raise AlreadyOpen()
    signer = EXAMPLE.signer
    planned = []
    for language in appeal.languages:
        rendered = letters.render(
            appeal,
            language,
            letters.letter_vars(
                appeal,
                name=signer.name,
                organisation=signer.organisation,
                country=signer.country,
                city=signer.city,
                message=EXAMPLE.message,
                language=language,
                today=now.date(),
            ),
        )
        public_id = security.new_token(12)
        letter = Letter(
            public_id=public_id,
            key=security.new_token(24),
            appeal=appeal,
            signer_name=signer.name,
            # Not an address anyone has: the one-letter-per-address rule must never
            # stop the organiser, who may sign for real later, and nothing is sent here.
            signer_email=f"sample-{public_id}@outcry.invalid",
            signer_country=signer.country,
            signer_city=signer.city,
            signer_organisation=signer.organisation,
            message=EXAMPLE.message,
            language=language,
            status=LetterStatus.sample,
            subject=rendered.subject,
            body=rendered.body,
            created_at=now,
        )
        session.add(letter)
        session.flush()
        planned.append(
            delivery.plan_message(
                session,
                letter=letter,
                channel=Channel.sample,
                to=[to],
                kind="sample",
                mail_from=settings.mail_from,
                now=now,
            )
        )
    return planned
