"""The appeal editor, status changes and appeal files, as an admin uses them in a browser
(here through the HTTP forms, without JavaScript): every button sends the whole form."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.appeals import files
from app.appeals import service as appeals
from app.appeals.schemas import AppealIn
from app.core import paths
from app.core.config import Settings
from app.main import create_app
from app.models import Appeal, AppealStatus, AuditEvent, Letter, LetterStatus
from tests.appeals.factories import make_appeal
from tests.conftest import drain
from tests.letters.factories import signature
from tests.organisers.factories import ORGANISATIONS, log_in, make_world, signed

BROKEN = "Dear {{ target.name }},\n\nRelease them.\n\n{{ signer.nmae }}"
FIXED = "Dear {{ target.name }},\n\nRelease them.\n\n{{ signer.name }}\n{{ signer.city }}"


def new_appeal_form(csrf: str, **overrides: str) -> dict[str, str]:
    """The editor's fields for a new appeal in English and Russian, two targets (one
    reached by fax only), a copy and a union, as an admin types them."""
    fields = {
        "csrf_token": csrf,
        "slug": "free-the-drivers",
        "languages": "en, ru",
        "title.en": "Free the drivers",
        "title.ru": "Свободу водителям",
        "summary.en": "Two drivers are jailed for a strike.",
        "sender_name.en": "Drivers' Solidarity",
        "sender_name.ru": "Солидарность с водителями",
        "letter_source": "inline",
        "letter.en.subject": "Free the drivers",
        "letter.en.body": BROKEN,
        "letter.ru.subject": "Освободите водителей",
        "letter.ru.body": "Уважаемый {{ target.name }}!\n\nОсвободите их.\n\n{{ signer.name }}",
        "targets.0.name.en": "A. Minister",
        "targets.0.name.ru": "А. Министр",
        "targets.0.title.en": "Minister of Labour",
        "targets.0.email": "minister@example.org",
        "targets.1.name.en": "B. Governor",
        "targets.1.fax": "+7 727 900 0001",
        "copies": "campaign@example.net",
        "organisations.0.slug": "unite",
        "organisations.0.name": "Unite the Union",
        "require_confirmation": "on",
        "page_size": "A4",
        "max_attempts": "8",
        "rate_limit": "60",
        "goal": "500",
        "action": "save",
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def admin(client: TestClient, session: Session) -> str:
    make_world(session, accounts=True, require_confirmation=False)
    return log_in(client, "admin@example.org")


def field_error(page: str, field_id: str) -> str:
    """The error shown next to one field (its id), as text."""
    found = re.search(rf'<p class="field-error" id="{field_id}-error">([^<]*)</p>', page)
    assert found, f"no error by {field_id}"
    return found.group(1)


def test_an_appeal_made_from_nothing_in_the_editor(
    client: TestClient, session: Session, settings: Settings, admin: str
) -> None:
    assert client.get("/dashboard/appeals/new").status_code == 200

    # A template error: named by its line and variable, next to the English letter,
    # and everything typed comes back.
    sent = client.post("/dashboard/appeals/new", data=new_appeal_form(admin))
    assert sent.status_code == 422
    error = field_error(sent.text, "f-letter-en-body")
    assert "line 5" in error
    assert "signer.nmae" in error
    assert "signer has name" in error
    assert "Свободу водителям" in sent.text
    assert "+7 727 900 0001" in sent.text
    assert 'name="targets.2.email"' in sent.text  # a spare row, for a third target

    # The same error on a Russian page, in Russian.
    russian = client.post("/dashboard/appeals/new?lang=ru", data=new_appeal_form(admin))
    assert "строка 5" in field_error(russian.text, "f-letter-en-body")

    # Another target row without JavaScript: the form comes back with a third, empty one.
    more = client.post("/dashboard/appeals/new", data=new_appeal_form(admin, action="add-target"))
    assert more.status_code == 200
    assert 'name="targets.3.email"' in more.text  # the spare row and the one added
    assert 'name="targets.4.email"' not in more.text

    # The preview: the message a target gets, built by the sender's own code.
    preview = client.post(
        "/dashboard/appeals/new",
        data=new_appeal_form(admin, action="preview", **{"letter.en.body": FIXED}),
    )
    assert preview.status_code == 200, preview.text
    english = preview.text[preview.text.index('id="preview-en"') :]
    assert "Ada Example via Drivers&#39; Solidarity" in english
    assert "A. Minister" in english
    assert "&lt;minister@example.org&gt;" in english
    assert "campaign@example.net" in english
    assert "B. Governor: +77279000001" in english
    assert "Ada Example\nLeeds" in english
    russian_preview = preview.text[preview.text.index('id="preview-ru"') :]
    assert "Ada Example via Солидарность с водителями" in russian_preview
    assert "А. Министр" in russian_preview
    assert session.scalar(select(Appeal).where(Appeal.slug == "free-the-drivers")) is None

    saved = client.post(
        "/dashboard/appeals/new",
        data=new_appeal_form(admin, **{"letter.en.body": FIXED}),
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"].startswith("/dashboard/free-the-drivers/edit")
    session.expire_all()
    appeal = appeals.get_appeal(session, "free-the-drivers")
    assert appeal.status is AppealStatus.draft
    assert appeals.in_language(appeal, "ru").title == "Свободу водителям"
    assert [t.fax for t in appeal.targets] == [None, "+77279000001"]
    assert [o.slug for o in appeal.organisations] == ["unite"]
    entry = session.scalars(select(AuditEvent).where(AuditEvent.appeal_id == appeal.id)).one()
    assert (entry.actor, entry.action) == ("admin@example.org", "appeal.created")
    assert entry.changes["title"] == [None, {"en": "Free the drivers", "ru": "Свободу водителям"}]

    # The slug is taken now: said by its field.
    again = client.post(
        "/dashboard/appeals/new", data=new_appeal_form(admin, **{"letter.en.body": FIXED})
    )
    assert again.status_code == 422
    assert "already" in field_error(again.text, "f-slug")


def test_errors_sit_by_their_fields_in_the_page_language(client: TestClient, admin: str) -> None:
    sent = client.post(
        "/dashboard/appeals/new?lang=ru",
        data=new_appeal_form(
            admin,
            **{
                "targets.0.email": "not an address",
                "targets.1.fax": "727 900",
                "summary.en": "x" * 5001,
                "letter.en.body": FIXED,
            },
        ),
    )
    assert sent.status_code == 422
    assert "начиная с +" in field_error(sent.text, "f-targets-1-fax")
    assert field_error(sent.text, "f-targets-0-email")
    assert "5" in field_error(sent.text, "f-summary-en")
    assert "Свободу водителям" in sent.text  # nothing typed is lost
    # Once the schema takes it, what the service checks is said by its field too.
    missing = client.post(
        "/dashboard/appeals/new?lang=kk",
        data=new_appeal_form(admin, **{"title.en": "", "letter.en.body": FIXED}),
    )
    assert missing.status_code == 422
    assert "әдепкі" in field_error(missing.text, "f-title-en")


def test_the_editor_is_for_admins_and_checks_csrf(
    client: TestClient, session: Session, settings: Settings, admin: str
) -> None:
    refused = client.post(
        "/dashboard/appeals/new", data={**new_appeal_form(admin), "csrf_token": "forged"}
    )
    assert refused.status_code == 403
    with TestClient(create_app(settings, deliver_in_process=False)) as unite:
        log_in(unite, "unite@example.org")
        assert unite.get("/dashboard/appeals/new").status_code == 403
        assert unite.get("/dashboard/free-them/edit").status_code == 403
        page = unite.get("/dashboard/free-them")
        assert "/edit" not in page.text
        assert "/dashboard/appeals/new" not in unite.get("/dashboard").text


def test_editing_an_open_appeal_leaves_signed_letters_as_they_were(
    client: TestClient, session: Session, settings: Settings, admin: str
) -> None:
    appeal = appeals.get_appeal(session, "free-them")
    before = signed(session, appeal, settings, email="early@example.net")
    page = client.get("/dashboard/free-them/edit")
    assert 'id="signed-letters-stay"' in page.text  # said before saving
    form = dict(
        re.findall(r'name="([^"]+)" type="(?:text|email|number)" value="([^"]*)"', page.text)
    )
    form.update(
        dict(re.findall(r'<textarea id="[^"]+" name="([^"]+)"[^>]*>([^<]*)</textarea>', page.text))
    )
    form.update(
        {
            "csrf_token": admin,
            "letter_source": "inline",
            "require_confirmation": "on",
            "letter.en.subject": "A new subject",
            "letter.en.body": "A new letter, {{ signer.name }}.",
            "action": "save",
        }
    )
    saved = client.post("/dashboard/free-them/edit", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    session.expire_all()
    kept = session.get(Letter, before.id)
    assert kept is not None
    assert (kept.subject, kept.body) == (before.subject, before.body)
    assert "A new letter" not in kept.body
    later = signed(
        session, appeals.get_appeal(session, "free-them"), settings, email="l@example.net"
    )
    assert later.subject == "A new subject"
    # What goes out for the early letter is still its own text.
    drain(settings)
    sent = [p.read_text() for p in (settings.outbox_dir).glob("*.eml")]
    early = [m for m in sent if "early" not in m and before.subject in m]
    assert early, "the early letter went out with its own subject"
    edit = session.scalars(select(AuditEvent).where(AuditEvent.action == "appeal.edited")).one()
    assert edit.changes["letter"][1]["en"]["subject"] == "A new subject"
    assert edit.changes["require_confirmation"] == [False, True]
    assert "title" not in edit.changes


def test_opening_and_closing_ask_first(
    client: TestClient, session: Session, settings: Settings, admin: str
) -> None:
    make_appeal(session, slug="later", status="draft")
    session.commit()
    asked = client.get("/dashboard/later/status?to=open")
    assert asked.status_code == 200
    assert "takes signatures" in asked.text
    session.expire_all()
    assert (
        appeals.get_appeal(session, "later").status is AppealStatus.draft
    )  # asking changed nothing

    def press(to: str) -> int:
        response = client.post(
            "/dashboard/later/status", data={"csrf_token": admin, "to": to}, follow_redirects=False
        )
        return response.status_code

    assert press("open") == 303
    signing = client.post("/api/v1/appeals/later/letters", json=signature())
    assert signing.status_code == 202
    close_page = client.get("/dashboard/later/status?to=close")
    assert "still delivered" in close_page.text
    assert press("close") == 303
    assert press("close") == 409
    refused = client.post("/api/v1/appeals/later/letters", json=signature(email="b@example.net"))
    assert refused.status_code == 409
    assert press("open") == 303  # reopened
    session.expire_all()
    changes = [
        e.changes["status"]
        for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "appeal.status").order_by(AuditEvent.id)
        )
    ]
    assert changes == [["draft", "open"], ["open", "closed"], ["closed", "open"]]
    no_csrf = client.post("/dashboard/later/status", data={"to": "close"})
    assert no_csrf.status_code == 403


def _reimported(session: Session, text: str) -> dict[str, Any]:
    raw = files.read(text)
    raw["slug"] = raw["slug"] + "-copy"
    copy, created = appeals.save_appeal(
        session,
        data=AppealIn.model_validate(raw),
        directory=paths.letter_templates_dir(),
        by="test",
    )
    assert created
    data = files.as_file(copy)
    data["slug"] = data["slug"].removesuffix("-copy")
    return data


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="inline-letters"),
        pytest.param(
            {
                "title": {"en": "Free them", "ru": "Освободите их"},
                "summary": {"en": "Two lines\nof summary", "ru": "Две строки\nрезюме"},
                "targets": [
                    {
                        "name": {"en": "A. President", "ru": "А. Президент"},
                        "title": "President",
                        "email": "president@example.org",
                        "address": {"en": "1 Main Square\nAstana", "ru": "пл. Главная, 1\nАстана"},
                        "language": "ru",
                    },
                    {"name": "B. Fax", "fax": "+7 727 900 0002"},
                ],
                "opens_at": "2026-05-01T09:00:00+00:00",
                "closes_at": "2026-12-01T00:00:00+00:00",
                "moderation": True,
                "organisations": ORGANISATIONS,
            },
            id="texts-per-language",
        ),
        pytest.param(
            {
                "template": "kazakhstan-union-activists",
                "letter": None,
                "languages": ["en", "ru", "kk"],
            },
            id="template-letters",
        ),
    ],
)
def test_the_appeal_file_downloaded_imports_as_the_same_appeal(
    client: TestClient, session: Session, admin: str, overrides: dict[str, Any]
) -> None:
    original = make_appeal(session, slug="round-trip", **overrides)
    session.commit()
    session.expire_all()
    download = client.get("/dashboard/round-trip/appeal.yaml")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/yaml")
    assert _reimported(session, download.text) == files.as_file(original)

    # Uploading it back over the same appeal changes nothing, so nothing is logged.
    upload = client.post(
        "/dashboard/appeals/upload",
        data={"csrf_token": admin},
        files={"file": ("round-trip.yaml", download.content, "application/yaml")},
        follow_redirects=False,
    )
    assert upload.status_code == 303, upload.text
    edits = select(AuditEvent).where(
        AuditEvent.action == "appeal.edited", AuditEvent.subject == "round-trip"
    )
    assert session.scalars(edits).all() == []


def test_an_uploaded_file_is_checked_as_an_import_is(client: TestClient, admin: str) -> None:
    broken = (
        "slug: bad\ntitle: Bad\nlanguages: [en]\nsender_name: X\n"
        "targets:\n- name: T\n  fax: '727'\n"
    )
    response = client.post(
        "/dashboard/appeals/upload",
        data={"csrf_token": admin},
        files={"file": ("bad.yaml", broken.encode(), "application/yaml")},
    )
    assert response.status_code == 422
    assert "targets.0.fax" in response.text
    assert "letter" in response.text
    not_yaml = client.post(
        "/dashboard/appeals/upload",
        data={"csrf_token": admin},
        files={"file": ("bad.yaml", b"- just\n- a list\n", "application/yaml")},
    )
    assert not_yaml.status_code == 422
    assert "<code>file</code>" in not_yaml.text
    no_csrf = client.post(
        "/dashboard/appeals/upload",
        files={"file": ("bad.yaml", broken.encode(), "application/yaml")},
    )
    assert no_csrf.status_code == 403


def test_letter_status_after_a_status_change_is_untouched(
    client: TestClient, session: Session, settings: Settings, admin: str
) -> None:
    """Closing stops new signatures only: a letter already confirmed still goes out."""
    appeal = appeals.get_appeal(session, "free-them")
    letter = signed(session, appeal, settings, email="queued@example.net")
    assert letter.status is LetterStatus.queued
    client.post("/dashboard/free-them/status", data={"csrf_token": admin, "to": "close"})
    drain(settings)
    session.expire_all()
    assert session.get(Letter, letter.id).status is LetterStatus.sent  # type: ignore[union-attr]
