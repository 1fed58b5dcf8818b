"""Faxes through the delivery machinery: to an e-mail-to-fax gateway (a real aiosmtpd
server stands in for it) or to the outbox's fax folder, with retries and records."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import engine_for, session_factory
from app.delivery import compose, transports
from app.delivery.transports import PermanentError
from app.models import Appeal, Channel, Delivery, Letter
from tests.appeals.factories import appeal_data, make_appeal
from tests.conftest import drain, make_settings
from tests.documents.helpers import (
    all_text,
    colours,
    operations,
    page_texts,
    render_png,
    squash,
)
from tests.documents.test_hostile import CANARY, CVE_2023_33733
from tests.documents.test_pdf import COLOUR_OPERATORS
from tests.letters.factories import sign
from tests.support.smtp import Handler, Received, SmtpSink

GATEWAY = "{number}@fax.example.net"
FAX_ADDRESS = "77279000000@fax.example.net"
SUPPORTER = "ada.private@example.net"


def signed(session: Session, settings: Settings, **appeal: Any) -> Letter:
    """A confirmed letter (the appeal needs no confirmation) whose deliveries are due."""
    made = make_appeal(session, require_confirmation=False, **appeal)
    letter = sign(
        session,
        made,
        settings,
        name="Әлия Құрманғазы",
        email=SUPPORTER,
        country="KZ",
        share_email=True,  # even when the supporter shares it, a fax never carries it
        message="Hands off the strike committee!",
    )
    session.commit()
    return letter


def letter_json(client: TestClient, letter: Letter) -> dict[str, Any]:
    response = client.get(f"/api/v1/letters/{letter.public_id}", params={"key": letter.key})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def faxes(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in view["deliveries"] if d["channel"] == "fax"]


def only_pdf(received: Received) -> bytes:
    [part] = list(received.message.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    content = part.get_content()
    assert isinstance(content, bytes)
    return content


def test_fax_goes_to_the_gateway_from_the_campaign(
    session: Session, client: TestClient, db_url: str, tmp_path: Path, smtp: SmtpSink
) -> None:
    settings = make_settings(db_url, tmp_path, smtp_url=smtp.url, fax_gateway=GATEWAY)
    letter = signed(session, settings)

    drain(settings)

    received = smtp.wait_for(2)
    [fax] = [m for m in received if FAX_ADDRESS in m.rcpt_tos]
    assert fax.rcpt_tos == [FAX_ADDRESS]
    assert fax.mail_from == "letters@localhost"
    msg = fax.message
    [sender] = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Solidarity Campaign", "letters@localhost")
    assert [a.addr_spec for a in msg["To"].addresses] == [FAX_ADDRESS]
    assert msg["Reply-To"] is None
    assert msg["Cc"] is None
    assert ".fax." in msg["Message-ID"]
    # The supporter's address is nowhere in the message, PDF included.
    assert SUPPORTER.encode() not in fax.data.lower()
    content = only_pdf(fax)
    pages = page_texts(content)
    assert SUPPORTER not in "".join(pages)
    assert len(pages) == 2  # the cover sheet, then the letter
    for expected in ("A. President", "+7 727 900 0000", "Solidarity Campaign", "Pages: 2"):
        assert expected in pages[0]
    for expected in ("A. President", "Presidential Office", "Әлия Құрманғазы", "Kazakhstan"):
        assert expected in pages[1]
    assert "Hands off the strike committee!" in pages[1]

    # The e-mail to the target went separately, with its Reply-To as the supporter asked.
    [email] = [m for m in received if "president@example.org" in m.rcpt_tos]
    assert email.message["Reply-To"].addresses[0].addr_spec == SUPPORTER

    view = letter_json(client, letter)
    assert view["status"] == "sent"
    [record] = faxes(view)
    assert record["recipients"] == ["+77279000000"]
    assert (record["status"], record["attempts"]) == ("sent", 1)
    assert [h["outcome"] for h in record["history"]] == ["sent"]


def test_the_faxed_pdf_is_black_and_white(
    session: Session, db_url: str, tmp_path: Path, smtp: SmtpSink
) -> None:
    settings = make_settings(db_url, tmp_path, smtp_url=smtp.url, fax_gateway=GATEWAY)
    signed(session, settings)
    drain(settings)
    [fax] = [m for m in smtp.wait_for(2) if FAX_ADDRESS in m.rcpt_tos]
    content = only_pdf(fax)

    assert not [op for _, op in operations(content) if op in COLOUR_OPERATORS]
    pngs = render_png(content, tmp_path / "pages", "delivered-fax")
    assert len(pngs) == 2
    for png in pngs:
        assert all(r == g == b for r, g, b in colours(png))


def test_each_target_with_a_fax_gets_its_own(
    session: Session, db_url: str, tmp_path: Path, smtp: SmtpSink
) -> None:
    targets = [
        *appeal_data()["targets"],
        {"name": "B. Prosecutor", "title": "Prosecutor General", "fax": "+7 7172 71 00 00"},
        {"name": "C. Minister", "email": "minister@example.org"},
    ]
    settings = make_settings(db_url, tmp_path, smtp_url=smtp.url, fax_gateway=GATEWAY)
    letter = signed(session, settings, targets=targets)
    rows = session.scalars(
        select(Delivery).where(Delivery.letter_id == letter.id, Delivery.channel == Channel.fax)
    ).all()
    appeal = session.get(Appeal, letter.appeal_id)
    assert appeal is not None
    by_name = {t.name: t.id for t in appeal.targets}
    assert sorted((d.recipients[0], d.target_id) for d in rows) == sorted(
        [("+77279000000", by_name["A. President"]), ("+77172710000", by_name["B. Prosecutor"])]
    )

    drain(settings)

    received = smtp.wait_for(3)
    [to_b] = [m for m in received if m.rcpt_tos == ["77172710000@fax.example.net"]]
    pages = page_texts(only_pdf(to_b))
    # The fax is addressed to the target it goes to, with that target's number.
    assert "B. Prosecutor" in pages[0]
    assert "+7 7172 71 00 00" in pages[0]
    assert "Prosecutor General" in pages[1]
    assert "A. President" not in pages[0]
    [email] = [m for m in received if "president@example.org" in m.rcpt_tos]
    assert sorted(email.rcpt_tos) == sorted(
        [
            "president@example.org",
            "minister@example.org",
            "copies@example.org",
            "campaign@example.net",
        ]
    )


def test_without_a_gateway_the_fax_is_a_file_in_the_outbox(
    session: Session, client: TestClient, db_url: str, tmp_path: Path, smtp: SmtpSink
) -> None:
    settings = make_settings(db_url, tmp_path, smtp_url=smtp.url)
    letter = signed(session, settings)

    drain(settings)

    # Only the e-mail reached the SMTP server; the fax went to the fax folder.
    [email] = smtp.wait_for(1)
    assert FAX_ADDRESS not in email.rcpt_tos
    [path] = list((settings.outbox_dir / "fax").iterdir())
    assert path.name.startswith("77279000000-outcry.fax.")
    assert path.suffix == ".pdf"
    text = all_text(path.read_bytes())
    assert "A. President" in text
    assert "Әлия Құрманғазы" in text
    assert SUPPORTER not in text
    view = letter_json(client, letter)
    assert view["status"] == "sent"
    [record] = faxes(view)
    assert record["status"] == "sent"
    assert str(path) in record["history"][0]["detail"]


def test_a_resent_fax_rewrites_its_file(session: Session, db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path)
    letter = signed(session, settings)
    sessions = session_factory(engine_for(db_url))
    with sessions() as reading:
        row = reading.scalars(
            select(Delivery).where(Delivery.letter_id == letter.id, Delivery.channel == Channel.fax)
        ).one()
        loaded = reading.get(Letter, letter.id)
        appeal = reading.get(Appeal, letter.appeal_id)
        assert loaded is not None
        assert appeal is not None
        outgoing = compose.outgoing(row, loaded, appeal, settings=settings)
    transport = transports.make_transport(settings)

    async def twice() -> list[str]:
        kw: dict[str, Any] = {"sender": outgoing.sender, "recipients": outgoing.recipients}
        return [await transport.send(outgoing.message, **kw) for _ in range(2)]

    first, second = asyncio.run(twice())

    assert first == second
    [path] = list((settings.outbox_dir / "fax").iterdir())  # one file, no temporary left
    assert path.read_bytes() == outgoing.attachments[0].content
    assert not list(settings.outbox_dir.glob("*.eml"))


def test_gateway_without_smtp_writes_the_fax_mail_to_the_outbox(
    session: Session, db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(db_url, tmp_path, fax_gateway=GATEWAY)
    signed(session, settings)

    drain(settings)

    [eml] = [p for p in settings.outbox_dir.glob("*.eml") if ".fax." in p.name]
    assert f"To: {FAX_ADDRESS}" in eml.read_text()
    assert SUPPORTER not in eml.read_text()
    assert not (settings.outbox_dir / "fax").exists()


def test_fax_retries_after_451_like_an_email(
    session: Session, client: TestClient, db_url: str, tmp_path: Path
) -> None:
    refusals = iter(["451 4.3.0 fax line busy, try later"])
    handler = Handler(
        on_rcpt=lambda address: next(refusals, None) if address == FAX_ADDRESS else None
    )
    with SmtpSink(handler) as sink:
        settings = make_settings(db_url, tmp_path, smtp_url=sink.url, fax_gateway=GATEWAY)
        letter = signed(session, settings)
        drain(settings)
        assert [FAX_ADDRESS] in [m.rcpt_tos for m in sink.wait_for(2)]

    view = letter_json(client, letter)
    [record] = faxes(view)
    assert (record["status"], record["attempts"]) == ("sent", 2)
    assert [h["outcome"] for h in record["history"]] == ["retrying", "sent"]
    assert "451" in record["history"][0]["detail"]
    assert view["status"] == "sent"


def test_fax_refused_with_550_fails_and_fails_the_letter(
    session: Session, client: TestClient, db_url: str, tmp_path: Path
) -> None:
    handler = Handler(
        on_rcpt=lambda address: (
            "550 5.1.1 no fax machine on this number" if address == FAX_ADDRESS else None
        )
    )
    with SmtpSink(handler) as sink:
        settings = make_settings(db_url, tmp_path, smtp_url=sink.url, fax_gateway=GATEWAY)
        letter = signed(session, settings)
        drain(settings)
        [email] = sink.wait_for(1)
        assert FAX_ADDRESS not in email.rcpt_tos

    view = letter_json(client, letter)
    [record] = faxes(view)
    assert (record["status"], record["attempts"]) == ("failed", 1)
    assert "550" in record["last_error"]
    assert [h["outcome"] for h in record["history"]] == ["failed"]
    [mail] = [d for d in view["deliveries"] if d["channel"] == "email"]
    assert mail["status"] == "sent"
    assert view["status"] == "failed"


def test_a_message_for_a_number_and_a_mailbox_at_once_is_refused(tmp_path: Path) -> None:
    settings = make_settings("sqlite://", tmp_path)
    transport = transports.make_transport(settings)
    with pytest.raises(PermanentError):
        asyncio.run(
            transport.send(
                EmailMessage(), sender="a@example.org", recipients=["+77279000000", "b@example.org"]
            )
        )
    assert transports.is_fax_number("+77279000000")
    for not_a_number in ("77279000000", "+7 727 900", "+0123456789", "x+77279000000@example.org"):
        assert not transports.is_fax_number(not_a_number)


def test_hostile_message_in_a_fax_is_text(
    session: Session, db_url: str, tmp_path: Path, smtp: SmtpSink
) -> None:
    canary = tmp_path / "pwned"
    settings = make_settings(db_url, tmp_path, smtp_url=smtp.url, fax_gateway=GATEWAY)
    appeal = make_appeal(session, require_confirmation=False)
    sign(session, appeal, settings, message=CVE_2023_33733.replace(CANARY, str(canary)))
    session.commit()

    drain(settings)

    [fax] = [m for m in smtp.wait_for(2) if FAX_ADDRESS in m.rcpt_tos]
    assert squash("<para><font color=") in squash(all_text(only_pdf(fax)))
    assert not canary.exists()


def test_fax_goes_to_the_planned_number_after_the_appeal_changes(
    session: Session, db_url: str, tmp_path: Path, smtp: SmtpSink
) -> None:
    """Targets edited after a letter was confirmed: each fax still goes to, and names,
    the number it was planned for, even when its target is gone."""
    deputy = {"name": "B. Deputy", "fax": "+7 7172 71 00 00"}
    targets = [*appeal_data()["targets"], deputy]
    settings = make_settings(db_url, tmp_path, smtp_url=smtp.url, fax_gateway=GATEWAY)
    signed(session, settings, targets=targets)
    [president] = appeal_data()["targets"]
    make_appeal(
        session, require_confirmation=False, targets=[{**president, "fax": "+7 727 900 0001"}]
    )
    session.commit()

    drain(settings)

    received = smtp.wait_for(3)
    faxed = {
        tuple(m.rcpt_tos): page_texts(only_pdf(m))[0]
        for m in received
        if m.rcpt_tos[0].endswith("@fax.example.net")
    }
    assert "+7 727 900 0000" in faxed[(FAX_ADDRESS,)]
    assert "A. President" in faxed[(FAX_ADDRESS,)]
    assert "+7 7172 71 00 00" in faxed[("77172710000@fax.example.net",)]
    assert ("77279000001@fax.example.net",) not in faxed
