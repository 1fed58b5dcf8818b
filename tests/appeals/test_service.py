"""Appeals from YAML and the API: one schema, errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.appeals import service
from app.appeals.schemas import AppealIn
from app.core import paths
from app.core.errors import InvalidInput, validation_fields
from app.models import AppealStatus
from tests.appeals.factories import appeal_data, make_appeal


def errors_of(**overrides: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        AppealIn.model_validate(appeal_data(**overrides))
    return validation_fields(list(info.value.errors()))


def test_demo_appeals_import(session: Session) -> None:
    for path in sorted(paths.demo_dir().glob("*.yaml")):
        data = AppealIn.model_validate(yaml.safe_load(path.read_text()))
        appeal, created = service.save_appeal(
            session, data=data, directory=paths.letter_templates_dir(), by="test"
        )
        assert created
        assert appeal.status is AppealStatus.open
        assert set(appeal.languages) >= {"en", "ru"}
        for target in appeal.targets:
            assert target.email is None or target.email.endswith(("example.org", "example.net"))
        assert all(c.endswith(("@example.org", "@example.net")) for c in appeal.copies)


def test_import_updates_by_slug(session: Session) -> None:
    first = make_appeal(session)
    second = make_appeal(
        session,
        title="A new title",
        targets=[
            {"name": "B. Minister", "email": "minister@example.org"},
            {"name": "C. Deputy", "fax": "+7 727 900 0001"},
        ],
    )
    assert first.id == second.id
    assert second.title == "A new title"
    assert [t.name for t in second.targets] == ["B. Minister", "C. Deputy"]
    assert second.targets[1].fax == "+77279000001"
    assert len(service.list_appeals(session)) == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"slug": "Not A Slug"}, "slug"),
        ({"title": "two\nlines"}, "title"),
        ({"status": "maybe"}, "status"),
        ({"languages": ["en", "xx-nope"]}, "languages.1"),
        ({"targets": [{"name": "X", "email": "nope"}]}, "targets.0.email"),
        ({"targets": [{"name": "X", "fax": "12345"}]}, "targets.0.fax"),
        ({"copies": ["bad@"]}, "copies.0"),
        ({"goal": 0}, "goal"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_fields_are_named(overrides: dict[str, Any], field: str) -> None:
    assert field in errors_of(**overrides)


def test_needs_a_letter_for_every_language() -> None:
    data = appeal_data()
    del data["letter"]["ru"]
    with pytest.raises(ValidationError, match="letter has no text for ru"):
        AppealIn.model_validate(data)


def test_broken_template_is_refused_naming_the_language(session: Session) -> None:
    data = appeal_data()
    data["letter"]["ru"]["body"] = "{{ signer.nickname }}"
    with pytest.raises(InvalidInput) as info:
        service.save_appeal(
            session,
            data=AppealIn.model_validate(data),
            directory=paths.letter_templates_dir(),
            by="test",
        )
    assert "letter.ru" in info.value.fields


def test_missing_template_file_is_refused(session: Session) -> None:
    data = appeal_data(template="no-such-letter")
    del data["letter"]
    with pytest.raises(InvalidInput) as info:
        service.save_appeal(
            session,
            data=AppealIn.model_validate(data),
            directory=paths.letter_templates_dir(),
            by="test",
        )
    assert "template" in info.value.fields


def test_accepting_follows_status_and_window(session: Session) -> None:
    from datetime import timedelta

    from app.models import utcnow

    now = utcnow()
    appeal = make_appeal(session, opens_at=now + timedelta(hours=1))
    assert not service.accepting(appeal, now)
    assert service.accepting(appeal, now + timedelta(hours=2))
    appeal = make_appeal(session, opens_at=None, closes_at=now - timedelta(seconds=1))
    assert not service.accepting(appeal, now)
    appeal = make_appeal(session, closes_at=None, status="draft")
    assert not service.accepting(appeal, now)


def test_a_slug_the_dashboard_uses_for_its_own_pages_is_refused() -> None:
    assert "reserved" in errors_of(slug="account")["slug"]
    assert "slug" not in errors_of(slug="accounts", title="")  # only the exact word
