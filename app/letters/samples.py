"""An organiser's test send: the letter as targets will get it, mailed only to the organiser."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.header import decode_header, make_header

from sqlalchemy.orm import Session

from app.appeals import service as appeals
from app.appeals import templating
from app.core.config import Settings
from app.core.errors import Conflict
from app.delivery import compose
from app.delivery import service as delivery
from app.delivery.messages import message_id
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
    planned = []
    for language in appeal.languages:
        letter = _example_letter(appeal, language, now)
        # Not an address anyone has: the one-letter-per-address rule must never stop the
        # organiser, who may sign for real later, and nothing is sent here.
        letter.signer_email = f"sample-{letter.public_id}@outcry.invalid"
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


HEADERS = ("Subject", "From", "To", "Cc")


@dataclass(frozen=True, slots=True)
class Preview:
    """The e-mail a target gets in one language, as the sender builds it."""

    language: str
    subject: str
    from_: str
    to: str
    cc: str
    body: str
    faxes: tuple[str, ...]  # "name: number" of each target the letter is also faxed to


def preview(appeal: Appeal, *, settings: Settings, now: datetime) -> list[Preview]:
    """The appeal's letter in each language as a target receives it, signed by the example
    signer: rendered by the letters' own code and built into a message by the sender's
    (app.delivery.compose), so what is shown cannot drift from what is sent. `appeal`
    may be unsaved (appeals.unsaved_appeal); nothing is written. Raises
    LetterUnavailable for a letter that does not render."""
    shown = []
    for language in appeal.languages:
        letter = _example_letter(
            appeal, language, now, public_id="preview", key="", share_email=False
        )
        faxes = tuple(
            f"{appeals.target_text(t, language).name}: {t.fax}" for t in appeal.targets if t.fax
        )
        emails = [t.email for t in appeal.targets if t.email]
        if not emails:  # faxed only: the fax's PDF carries this subject and body
            shown.append(Preview(language, letter.subject, "", "", "", letter.body, faxes))
            continue
        outgoing = compose.outgoing(
            Delivery(
                channel=Channel.email,
                recipients=emails,
                cc=list(appeal.copies),
                accepted=[],
                message_id=message_id("letter", "preview", "0", settings.mail_from),
                created_at=now,
            ),
            letter,
            appeal,
            settings=settings,
        )
        message = outgoing.message
        text = message.get_body(("plain",))
        # As a mail client shows them: encoded-words decoded (RFC 2047 readers drop the
        # space between two of them, as decode_header does).
        header = {name: _shown(message.get(name, "")) for name in HEADERS}
        shown.append(
            Preview(
                language=language,
                subject=header["Subject"],
                from_=header["From"],
                to=header["To"],
                cc=header["Cc"],
                body=text.get_content() if text is not None else letter.body,
                faxes=faxes,
            )
        )
    return shown


def _example_letter(appeal: Appeal, language: str, now: datetime, **row: object) -> Letter:
    """A letter in `language` signed by the example signer, not added to any session."""
    signer = EXAMPLE.signer
    return letters.new_letter(
        appeal,
        language=language,
        signer_name=signer.name,
        signer_organisation=signer.organisation,
        signer_country=signer.country,
        signer_city=signer.city,
        message=EXAMPLE.message,
        now=now,
        status=LetterStatus.sample,
        **row,
    )


def _shown(raw: object) -> str:
    """A header's value as a mail client shows it."""
    decoded = str(make_header(decode_header(str(raw))))
    return " ".join(decoded.split())
