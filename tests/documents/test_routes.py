"""The PDF endpoints as a supporter, a union and an organiser use them."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.models import Appeal, Letter
from tests.documents.factories import (
    MAY_1,
    add_letters,
    admin_token,
    make_trilingual_appeal,
    sign_at,
    union,
)
from tests.documents.helpers import (
    KAZAKH,
    all_text,
    ink,
    page_texts,
    reader,
    render_png,
    squash,
)
from tests.documents.test_hostile import CANARY, CVE_2023_33733, HOSTILE

SLUG = "free-them"


@pytest.fixture
def appeal(session: Session) -> Appeal:
    appeal = make_trilingual_appeal(session)
    session.commit()
    return appeal


def pdf(response: Response) -> bytes:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert disposition.isascii()
    return response.content


def letter_url(letter: Letter) -> str:
    return f"/api/v1/letters/{letter.public_id}.pdf?key={letter.key}"


# --- a supporter's letter ---------------------------------------------------------


def test_letter_pdf_in_english(
    client: TestClient, session: Session, settings: Settings, appeal: Appeal
) -> None:
    letter = sign_at(session, appeal, settings, MAY_1, message="Hands off the union!")
    session.commit()

    response = client.get(letter_url(letter))

    data = pdf(response)
    assert response.headers["content-disposition"] == (
        f'attachment; filename="letter-{letter.public_id}.pdf"'
    )
    [text] = page_texts(data)
    for expected in (
        "Solidarity Campaign",  # the sender
        "May 1, 2026",  # the date it was confirmed, in English
        "A. President",
        "Presidential Office",
        "1 Main Square",
        "Free them now",
        "Hands off the union!",
        "Ada Example",
        "Example Union",
        "United Kingdom",
        "Page 1 of 1",
    ):
        assert expected in text
    # The signature is in the letter's text already: the PDF does not repeat it.
    assert text.count("Ada Example") == 1
    assert "ada@example.net" not in text


def test_letter_pdf_in_russian(
    client: TestClient, session: Session, settings: Settings, appeal: Appeal
) -> None:
    letter = sign_at(
        session, appeal, settings, MAY_1, name="Анна Петрова", country="KZ", language="ru"
    )
    session.commit()

    text = all_text(pdf(client.get(letter_url(letter))))

    for expected in (
        "Освободите их",
        "1 мая 2026 г.",
        "Анна Петрова",
        "Казахстан",
        "Страница 1 из 1",
    ):
        assert expected in text


def test_letter_pdf_in_kazakh(
    client: TestClient, session: Session, settings: Settings, appeal: Appeal
) -> None:
    letter = sign_at(
        session,
        appeal,
        settings,
        MAY_1,
        name="Әлия Құрманғазы",
        organisation="Қазақстан кәсіподақтары",
        country="KZ",
        language="kk",
        message=KAZAKH,
    )
    session.commit()

    text = all_text(pdf(client.get(letter_url(letter))))

    for expected in (
        "Оларды босатыңыз",
        "2026 ж. 1 мамыр",
        "Әлия Құрманғазы",
        "Қазақстан кәсіподақтары",
        "Қазақстан",
        "Бет 1 / 1",
    ):
        assert expected in text
    assert squash(KAZAKH) in squash(text)


def test_wrong_key_is_404_like_the_json(
    client: TestClient, session: Session, settings: Settings, appeal: Appeal
) -> None:
    letter = sign_at(session, appeal, settings, MAY_1)
    session.commit()

    for key in ("", "wrong", letter.key[:-1]):
        response = client.get(f"/api/v1/letters/{letter.public_id}.pdf", params={"key": key})
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert "Ada" not in response.text
    assert client.get("/api/v1/letters/nope.pdf", params={"key": letter.key}).status_code == 404
    # The JSON route beside it still answers for the same letter.
    json = client.get(f"/api/v1/letters/{letter.public_id}", params={"key": letter.key})
    assert json.status_code == 200
    assert json.json()["pdf_url"].endswith(letter_url(letter))


def test_long_letter_flows_onto_a_second_page(
    client: TestClient, session: Session, settings: Settings, appeal: Appeal
) -> None:
    message = "\n".join(["Solidarity for ever!"] * 60)
    letter = sign_at(session, appeal, settings, MAY_1, message=message)
    session.commit()

    pages = page_texts(pdf(client.get(letter_url(letter))))

    assert len(pages) == 2
    assert "Page 1 of 2" in pages[0]
    assert "Page 2 of 2" in pages[1]
    assert "Ada Example" in pages[1]


def test_hostile_message_comes_out_as_text(
    client: TestClient,
    session: Session,
    settings: Settings,
    appeal: Appeal,
    tmp_path: Path,
) -> None:
    canary = tmp_path / "pwned"
    message = (
        CVE_2023_33733.replace(CANARY, str(canary))
        + "\n\n"
        + HOSTILE["reportlab-markup"]
        + "\n\n"
        + HOSTILE["html"]
    )
    letter = sign_at(session, appeal, settings, MAY_1, message=message, name="<b>Ada</b> &amp;")
    session.commit()

    text = all_text(pdf(client.get(letter_url(letter))))

    assert not canary.exists()
    assert squash("<para><font color=") in squash(text)
    assert squash('<font color="red" size="40">big red</font>') in squash(text)
    assert squash("<script>alert('x')</script>") in squash(text)
    assert "<b>Ada</b> &amp;" in text


# --- public documents for unions -----------------------------------------------------


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", ("Free them now", "Name:", "Union:", "Signature:", "Page 1 of 1")),
        ("ru", ("Освободите их", "Имя и фамилия:", "Подпись:", "Страница 1 из 1")),
        ("kk", ("Оларды босатыңыз", "Аты-жөні:", "Кәсіподақ:", "Қолы:", "Бет 1 / 1")),
    ],
)
def test_blank_letter_in_each_language(
    client: TestClient, appeal: Appeal, language: str, expected: tuple[str, ...]
) -> None:
    response = client.get(f"/api/v1/appeals/{SLUG}/letter.pdf", params={"language": language})

    data = pdf(response)
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{SLUG}-letter-{language}.pdf"'
    )
    [text] = page_texts(data)
    for value in expected:
        assert value in text
    assert "A. President" in text
    # Nothing is filled in for the person who will sign it by hand.
    assert "Ada" not in text
    assert "[" not in text


def test_blank_letter_defaults_to_the_appeals_language(client: TestClient, appeal: Appeal) -> None:
    text = all_text(pdf(client.get(f"/api/v1/appeals/{SLUG}/letter.pdf")))
    assert "Free them now" in text


def test_blank_letter_in_a_language_the_appeal_lacks_is_422(
    client: TestClient, appeal: Appeal
) -> None:
    response = client.get(f"/api/v1/appeals/{SLUG}/letter.pdf", params={"language": "de"})
    assert response.status_code == 422
    assert "language" in response.json()["fields"]


def test_signature_sheet(client: TestClient, appeal: Appeal) -> None:
    response = client.get(f"/api/v1/appeals/{SLUG}/signature-sheet.pdf")

    data = pdf(response)
    [text] = page_texts(data)
    for expected in (
        "Free the jailed union leaders",
        "Two union leaders are in prison for organising.",
        "A. President, President, Presidential Office",
        "Name",
        "Union",
        "Country",
        "Signature",
    ):
        assert expected in text


def test_signature_sheet_pages_and_language(client: TestClient, appeal: Appeal) -> None:
    response = client.get(
        f"/api/v1/appeals/{SLUG}/signature-sheet.pdf", params={"pages": 3, "language": "kk"}
    )

    pages = page_texts(pdf(response))
    assert len(pages) == 3
    assert "Бет 3 / 3" in pages[2]
    assert "Қолы" in pages[0]


@pytest.mark.parametrize("pages", [0, -1, 51, "many"])
def test_signature_sheet_pages_are_bounded(
    client: TestClient, appeal: Appeal, pages: int | str
) -> None:
    response = client.get(f"/api/v1/appeals/{SLUG}/signature-sheet.pdf", params={"pages": pages})
    assert response.status_code == 422
    assert "pages" in response.json()["fields"]


def test_public_pdfs_of_a_draft_or_unknown_appeal_are_404(
    client: TestClient, session: Session
) -> None:
    make_trilingual_appeal(session, status="draft")
    session.commit()
    for slug in (SLUG, "no-such-appeal"):
        for name in ("letter.pdf", "signature-sheet.pdf"):
            assert client.get(f"/api/v1/appeals/{slug}/{name}").status_code == 404


# --- the union's bundle ---------------------------------------------------------------


@pytest.fixture
def unions(session: Session, settings: Settings, appeal: Appeal) -> dict[str, str]:
    """Two unions with two and one letters, one letter from nobody's union; their tokens."""
    unite, unite_token = union(session, "unite", "Unite the Union")
    kz, kz_token = union(session, "kz-union", "Қазақстан кәсіподақтары")
    # Only an organisation taking part in the appeal is credited with letters (?org=).
    appeal.organisations.extend([unite, kz])
    session.flush()
    sign_at(
        session, appeal, settings, MAY_1, name="Maria Okonkwo", email="m@example.net", org="unite"
    )
    sign_at(
        session,
        appeal,
        settings,
        MAY_1 + timedelta(days=1),
        name="John Smith",
        email="j@example.net",
        org="unite",
        organisation="Unite the Union",
    )
    sign_at(
        session,
        appeal,
        settings,
        MAY_1 + timedelta(days=2),
        name="Әлия Құрманғазы",
        email="a@example.net",
        country="KZ",
        language="kk",
        org="kz-union",
        organisation="Қазақстан кәсіподақтары",
    )
    sign_at(session, appeal, settings, MAY_1 + timedelta(days=3), name="Nobody Special")
    tokens = {"unite": unite_token, "kz-union": kz_token, "admin": admin_token(session)}
    session.commit()
    assert unite.id != kz.id
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def bundle(client: TestClient, token: str | None, **params: str) -> Response:
    headers = bearer(token) if token else {}
    return client.get(f"/api/v1/appeals/{SLUG}/letters.pdf", params=params, headers=headers)


def archive(client: TestClient, token: str | None, **params: str) -> Response:
    headers = bearer(token) if token else {}
    return client.get(f"/api/v1/appeals/{SLUG}/letters.zip", params=params, headers=headers)


def signers_in_zip(response: Response) -> list[str]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        return [
            page_texts(archive.read(name))[0]
            for name in archive.namelist()
            if name.endswith(".pdf")
        ]


NAMES = ("Maria Okonkwo", "John Smith", "Әлия Құрманғазы", "Nobody Special")


def names_in(text: str) -> set[str]:
    return {name for name in NAMES if name in text}


@pytest.mark.parametrize("fetch", [bundle, archive])
def test_bundles_need_a_valid_token(
    client: TestClient, unions: dict[str, str], fetch: Callable[..., Response]
) -> None:
    for token in (None, "oc_not-a-token", unions["unite"] + "x"):
        response = fetch(client, token)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert not names_in(response.text)
    # No token: the appeal's existence is not revealed either.
    response = client.get("/api/v1/appeals/no-such-appeal/letters.pdf")
    assert response.status_code == 401
    assert fetch(client, unions["admin"]).status_code == 200


def test_admin_bundle_holds_every_signed_letter_after_a_handover_page(
    client: TestClient, unions: dict[str, str]
) -> None:
    response = bundle(client, unions["admin"])

    data = pdf(response)
    assert response.headers["content-disposition"] == (f'attachment; filename="{SLUG}-letters.pdf"')
    pages = page_texts(data)
    assert len(pages) == 1 + 4
    handover = pages[0]
    for expected in (
        "Hand-over of letters",
        "Free the jailed union leaders",
        "A. President",
        "Number of letters: 4",
        "Pages in this bundle: 5",
        "Signed between May 1, 2026 and May 4, 2026",
        "Page 1 of 5",
        "United Kingdom",
        "Kazakhstan",
        "Unite the Union",
        "Қазақстан кәсіподақтары",
    ):
        assert expected in handover
    # The letters follow in the order they were signed.
    assert [names_in(page) for page in pages[1:]] == [{name} for name in NAMES]


def test_union_token_sees_only_its_own_letters(client: TestClient, unions: dict[str, str]) -> None:
    pages = page_texts(pdf(bundle(client, unions["unite"])))
    assert "Number of letters: 2" in pages[0]
    assert names_in("\n".join(pages)) == {"Maria Okonkwo", "John Smith"}
    assert "Kazakhstan" not in pages[0]

    kz = page_texts(pdf(bundle(client, unions["kz-union"], language="kk")))
    assert "Хаттар саны: 1" in kz[0]
    assert f"Барлық бет саны: {len(kz)}" in kz[0]
    assert "Қол қойылған күні: " in kz[0]  # one letter: one day, not a range
    assert names_in("\n".join(kz)) == {"Әлия Құрманғазы"}

    assert {n for t in signers_in_zip(archive(client, unions["unite"])) for n in names_in(t)} == {
        "Maria Okonkwo",
        "John Smith",
    }
    assert [names_in(t) for t in signers_in_zip(archive(client, unions["kz-union"]))] == [
        {"Әлия Құрманғазы"}
    ]


# Every surface that lists an appeal's letters for organisers and unions: one rule for
# `organisation` (app.core.auth.named_organisation) and one for `since`/`until`
# (app.core.params.signed_between) behind them all.
SURFACES = ("letters", "letters.csv", "letters.pdf", "letters.zip")


def fetch_names(
    client: TestClient, token: str, surface: str, **params: str
) -> tuple[Response, set[str]]:
    """The response and the signers' names in it, however the surface writes them."""
    url = f"/api/v1/appeals/{SLUG}/{surface}"
    response = client.get(url, params=params, headers=bearer(token))
    if response.status_code != 200:
        return response, names_in(response.text)
    if surface == "letters":
        return response, {item["name"] for item in response.json()["items"]}
    if surface == "letters.csv":
        return response, {row["name"] for row in csv.DictReader(io.StringIO(response.text))}
    if surface == "letters.pdf":
        return response, names_in("\n".join(page_texts(pdf(response))))
    return response, {name for text in signers_in_zip(response) for name in names_in(text)}


@pytest.mark.parametrize("surface", SURFACES)
def test_a_union_may_name_its_own_organisation_and_no_other(
    client: TestClient, unions: dict[str, str], surface: str
) -> None:
    for other in ("kz-union", "no-such-union"):
        response, names = fetch_names(client, unions["unite"], surface, organisation=other)
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
        assert not names
    for params in ({"organisation": "unite"}, {}):
        response, names = fetch_names(client, unions["unite"], surface, **params)
        assert response.status_code == 200, response.text
        assert names == {"Maria Okonkwo", "John Smith"}


@pytest.mark.parametrize("surface", SURFACES)
def test_an_admin_naming_no_organisation_that_exists_is_told_so(
    client: TestClient, unions: dict[str, str], surface: str
) -> None:
    response, names = fetch_names(client, unions["admin"], surface, organisation="no-such-union")
    assert response.status_code == 422, response.text
    assert "organisation" in response.json()["fields"]
    assert not names


@pytest.mark.parametrize("surface", SURFACES)
def test_since_and_until_mean_when_a_letter_was_signed_everywhere(
    client: TestClient, session: Session, unions: dict[str, str], surface: str
) -> None:
    # Maria signed on May 1 and confirmed only on May 3: she signed before May 2.
    session.execute(
        update(Letter)
        .where(Letter.signer_name == "Maria Okonkwo")
        .values(confirmed_at=MAY_1 + timedelta(days=2))
    )
    session.commit()
    admin = unions["admin"]

    _, names = fetch_names(client, admin, surface, since="2026-05-02", until="2026-05-03")
    assert names == {"John Smith", "Әлия Құрманғазы"}
    _, names = fetch_names(client, admin, surface, until="2026-05-01")
    assert names == {"Maria Okonkwo"}
    for field in ("since", "until"):
        for value in ("yesterday", "10000-01-01", "2026-13-01"):
            response, _ = fetch_names(client, admin, surface, **{field: value})
            assert response.status_code == 422, response.text
            assert field in response.json()["fields"]


def test_admin_filters_by_organisation(client: TestClient, unions: dict[str, str]) -> None:
    response = archive(client, unions["admin"], organisation="kz-union")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{SLUG}-letters-kz-union.zip"'
    )
    assert [names_in(t) for t in signers_in_zip(response)] == [{"Әлия Құрманғазы"}]
    assert len(signers_in_zip(archive(client, unions["admin"]))) == 4

    unknown = bundle(client, unions["admin"], organisation="no-such-union")
    assert unknown.status_code == 422
    assert "organisation" in unknown.json()["fields"]


def test_since_and_until_filter_by_signing_date(client: TestClient, unions: dict[str, str]) -> None:
    # `until` as a date takes in that whole day.
    pages = page_texts(pdf(bundle(client, unions["admin"], since="2026-05-02", until="2026-05-03")))
    assert names_in("\n".join(pages)) == {"John Smith", "Әлия Құрманғазы"}
    assert "Number of letters: 2" in pages[0]

    texts = signers_in_zip(archive(client, unions["admin"], since="2026-05-03T00:00:00Z"))
    assert [names_in(t) for t in texts] == [{"Әлия Құрманғазы"}, {"Nobody Special"}]
    texts = signers_in_zip(archive(client, unions["unite"], until="2026-05-01T12:00"))
    assert [names_in(t) for t in texts] == [{"Maria Okonkwo"}]

    for field in ("since", "until"):
        response = bundle(client, unions["admin"], **{field: "yesterday"})
        assert response.status_code == 422
        assert field in response.json()["fields"]


def test_unconfirmed_letters_stay_out_of_bundles(
    client: TestClient, session: Session, settings: Settings
) -> None:
    appeal = make_trilingual_appeal(session, require_confirmation=True)
    sign_at(session, appeal, settings, MAY_1, name="Not Yet Confirmed")
    token = admin_token(session)
    session.commit()

    pages = page_texts(pdf(bundle(client, token)))
    assert len(pages) == 1
    assert "Number of letters: 0" in pages[0]
    assert "Not Yet Confirmed" not in pages[0]
    assert signers_in_zip(archive(client, token)) == []


def test_organisers_get_bundles_of_draft_appeals_and_404_for_none(
    client: TestClient, session: Session
) -> None:
    make_trilingual_appeal(session, status="draft")
    token = admin_token(session)
    session.commit()
    assert bundle(client, token).status_code == 200
    response = client.get("/api/v1/appeals/no-such-appeal/letters.zip", headers=bearer(token))
    assert response.status_code == 404


def test_a_bundle_of_hundreds_of_letters_is_streamed(
    client: TestClient, session: Session, appeal: Appeal
) -> None:
    add_letters(session, appeal, 300)
    token = admin_token(session)
    session.commit()

    response = bundle(client, token)

    data = pdf(response)
    # A StreamingResponse: the length is not known when the headers go out.
    assert "content-length" not in response.headers
    pdf_reader = reader(data)
    assert len(pdf_reader.pages) == 301
    assert "Number of letters: 300" in pdf_reader.pages[0].extract_text()
    assert "Signer 299" in pdf_reader.pages[300].extract_text()

    zipped = archive(client, token)
    assert "content-length" not in zipped.headers
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as files:
        names = files.namelist()
        assert len(names) == 300
        assert names[0].startswith("00001-letter-bulk")
        assert "Signer 299" in all_text(files.read(names[-1]))


# --- looking at them ------------------------------------------------------------------


def test_every_kind_of_pdf_renders_to_visible_pages(
    client: TestClient, session: Session, settings: Settings, appeal: Appeal, artifacts: Path
) -> None:
    letter = sign_at(session, appeal, settings, MAY_1, name="Әлия Құрманғазы", language="kk")
    token = admin_token(session)
    session.commit()
    documents = {
        "letter": client.get(letter_url(letter)),
        "blank-letter": client.get(f"/api/v1/appeals/{SLUG}/letter.pdf?language=ru"),
        "signature-sheet": client.get(f"/api/v1/appeals/{SLUG}/signature-sheet.pdf?pages=2"),
        "bundle": bundle(client, token),
    }
    for name, response in documents.items():
        pngs = render_png(pdf(response), artifacts, name)
        assert len(pngs) == len(reader(response.content).pages), name
        for png in pngs:
            assert ink(png) > 0.002, (name, png)
