"""Appeals for tests: example.org addresses only."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.appeals import service
from app.appeals.schemas import AppealIn
from app.core import paths
from app.models import Appeal


def appeal_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "slug": "free-them",
        "title": "Free the jailed union leaders",
        "summary": "Two union leaders are in prison for organising.",
        "status": "open",
        "languages": ["en", "ru"],
        "sender_name": "Solidarity Campaign",
        "targets": [
            {
                "name": "A. President",
                "title": "President",
                "organisation": "Presidential Office",
                "email": "president@example.org",
                "fax": "+7 727 900 0000",
                "address": "1 Main Square\nAstana",
            }
        ],
        "copies": ["copies@example.org", "campaign@example.net"],
        "letter": {
            "en": {
                "subject": "Free them now",
                "body": (
                    "Dear {{ target.title }} {{ target.name }},\n\nRelease them.\n"
                    "{% if message %}\n{{ message }}\n{% endif %}\n"
                    "{{ signer.name }}\n{{ signer.organisation }}\n{{ signer.country_name }}"
                ),
            },
            "ru": {
                "subject": "Освободите их",
                "body": (
                    "Уважаемый {{ target.name }}!\n\nОсвободите их.\n"
                    "{% if message %}\n{{ message }}\n{% endif %}\n"
                    "{{ signer.name }}\n{{ signer.country_name }}"
                ),
            },
        },
        "goal": 100,
        "require_confirmation": True,
    }
    data.update(overrides)
    return data


def make_appeal(session: Session, **overrides: Any) -> Appeal:
    appeal, _ = service.save_appeal(
        session,
        data=AppealIn.model_validate(appeal_data(**overrides)),
        directory=paths.letter_templates_dir(),
        by="test",
    )
    return appeal
