"""Appeals in English, Russian and Kazakh, signed letters, unions and their tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from app.appeals import letter as appeal_letter
from app.core.config import Settings
from app.letters import service as letters
from app.letters.schemas import SignatureIn
from app.models import Appeal, Letter, LetterStatus, Organisation
from app.organisers import service as organisers
from tests.appeals.factories import appeal_data, make_appeal
from tests.letters.factories import signature

MAY_1 = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)

KAZAKH_LETTER = {
    "subject": "Оларды босатыңыз",
    "body": (
        "Құрметті {{ target.name }}!\n\nКәсіподақ жетекшілерін босатыңыз.\n"
        "{% if message %}\n{{ message }}\n{% endif %}\n"
        "{{ signer.name }}\n{{ signer.organisation }}\n{{ signer.country_name }}"
    ),
}


def make_trilingual_appeal(session: Session, **overrides: Any) -> Appeal:
    """The factory appeal with a Kazakh letter too, taking letters without confirmation."""
    letter = {**appeal_data()["letter"], "kk": KAZAKH_LETTER}
    fields: dict[str, Any] = {
        "languages": ["en", "ru", "kk"],
        "letter": letter,
        "require_confirmation": False,
    }
    fields.update(overrides)
    return make_appeal(session, **fields)


def sign_at(
    session: Session, appeal: Appeal, settings: Settings, when: datetime, **fields: Any
) -> Letter:
    """A letter signed (and, with no confirmation needed, confirmed) at `when`."""
    form = SignatureIn.model_validate(signature(**fields))
    return letters.sign_letter(session, appeal=appeal, form=form, settings=settings, now=when)


def union(session: Session, slug: str, name: str) -> tuple[Organisation, str]:
    """An organisation and a raw API token scoped to it."""
    organisation = organisers.ensure_organisation(session, slug=slug, name=name)
    _token, raw = organisers.create_token(session, organisation=organisation, by="test")
    return organisation, raw


def admin_token(session: Session) -> str:
    _token, raw = organisers.create_token(session, organisation=None, by="test")
    return raw


def add_letters(
    session: Session,
    appeal: Appeal,
    count: int,
    *,
    when: datetime = MAY_1,
    organisation: Organisation | None = None,
    first: int = 0,
) -> None:
    """Many confirmed letters at once, written straight to the table (no deliveries):
    for bundles too big to sign one by one in a test."""
    rendered = appeal_letter.render(
        appeal,
        "en",
        appeal_letter.letter_vars(
            appeal,
            name="Signer",
            organisation="Unite",
            country="GB",
            city="Leeds",
            message="",
            language="en",
            today=when.date(),
        ),
    )
    session.add_all(
        Letter(
            public_id=f"bulk{n:08d}",
            key=f"key{n:08d}",
            appeal_id=appeal.id,
            organisation_id=organisation.id if organisation else None,
            signer_name=f"Signer {n}",
            signer_email=f"signer{n}@example.net",
            signer_country="GB",
            signer_organisation="Unite",
            language="en",
            status=LetterStatus.queued,
            subject=rendered.subject,
            body=rendered.body.replace("Signer", f"Signer {n}"),
            created_at=when,
            confirmed_at=when,
        )
        for n in range(first, first + count)
    )
    session.flush()
