"""Invitations instead of shell access: an admin invites by e-mail, the e-mail goes through
the outbox, the link works once and not after it expires; admins re-scope and remove
accounts, and never the last admin."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes, policy

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.main import create_app
from app.models import AuditEvent, Channel, Delivery, Invitation, Organiser, utcnow
from app.organisers import invitations
from tests.conftest import drain
from tests.organisers.factories import log_in, make_world

NEW_PASSWORD = "a long new password"


def invite(client: TestClient, csrf: str, email: str, organisation: str = "") -> int:
    response = client.post(
        "/dashboard/account/organisers/invite",
        data={"csrf_token": csrf, "email": email, "organisation": organisation},
        follow_redirects=False,
    )
    return response.status_code


def link_in_outbox(settings: Settings, to: str) -> str:
    """The invitation link in the e-mail the outbox sent to `to`."""
    drain(settings)
    for path in settings.outbox_dir.glob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if to in str(message["To"]):
            body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            found = re.search(r"http://testserver(/invitations/\S+)", body)
            assert found, body
            return found.group(1)
    raise AssertionError(f"no e-mail to {to}")


def accept(browser: TestClient, link: str, password: str = NEW_PASSWORD) -> int:
    page = browser.get(link)
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    response = browser.post(
        link,
        data={"csrf_token": csrf.group(1), "new_password": password, "repeat_password": password},
        follow_redirects=False,
    )
    return response.status_code


def test_an_invitation_makes_an_account_once(
    client: TestClient, session: Session, settings: Settings
) -> None:
    make_world(session, accounts=True)
    csrf = log_in(client, "admin@example.org")
    assert invite(client, csrf, "new-officer@example.org", "unite") == 303
    delivery = session.scalars(select(Delivery).where(Delivery.channel == Channel.invitation)).one()
    assert (delivery.letter_id, delivery.recipients) == (None, ["new-officer@example.org"])
    link = link_in_outbox(settings, "new-officer@example.org")
    invitation = session.scalars(select(Invitation)).one()
    assert link.rsplit("/", 1)[1] not in (invitation.token_hash, invitation.nonce)  # only a hash

    app = create_app(settings, deliver_in_process=False)
    with TestClient(app) as scanner, TestClient(app) as invitee:
        assert scanner.get(link).status_code == 200  # a mail scanner opens it: nothing happens
        session.expire_all()
        assert session.get(Invitation, invitation.id).used_at is None  # type: ignore[union-attr]
        short = invitee.get(link)
        csrf_invitee = re.search(r'name="csrf_token" value="([^"]+)"', short.text)
        assert csrf_invitee
        too_short = invitee.post(
            link,
            data={
                "csrf_token": csrf_invitee.group(1),
                "new_password": "short",
                "repeat_password": "short",
            },
        )
        assert too_short.status_code == 422
        assert 'id="f-new_password-error"' in too_short.text
        forged = invitee.post(
            link,
            data={"csrf_token": "x", "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD},
        )
        assert forged.status_code == 403

        assert accept(invitee, link) == 303
        dashboard = invitee.get("/dashboard")
        assert dashboard.status_code == 200
        assert "Unite the Union" in dashboard.text  # logged in, scoped to the union

        assert scanner.get(link).status_code == 404  # used: refused
        assert invitee.post(link, data={"csrf_token": "x"}).status_code in (403, 404)
    session.expire_all()
    officer = session.scalars(
        select(Organiser).where(Organiser.email == "new-officer@example.org")
    ).one()
    assert officer.organisation is not None
    assert officer.organisation.slug == "unite"
    actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions[-2:] == ["organiser.invited", "invitation.accepted"]
    logged = " ".join(str(e.changes) + e.subject for e in session.scalars(select(AuditEvent)))
    assert NEW_PASSWORD not in logged


def test_an_invitation_used_twice_or_late_is_refused(session: Session, settings: Settings) -> None:
    make_world(session)
    now = utcnow()
    first = invitations.invite(
        session,
        email="a@example.org",
        organisation=None,
        language="en",
        settings=settings,
        now=now,
        by="admin@example.org",
    )
    token = invitations.token_of(settings, first)
    invitations.accept(session, token=token, password=NEW_PASSWORD, repeat=NEW_PASSWORD, now=now)
    session.commit()
    try:
        invitations.accept(
            session, token=token, password=NEW_PASSWORD, repeat=NEW_PASSWORD, now=now
        )
    except invitations.InvalidInvitation:
        pass
    else:
        raise AssertionError("an invitation used twice was accepted")
    session.rollback()

    late = invitations.invite(
        session,
        email="b@example.org",
        organisation=None,
        language="en",
        settings=settings,
        now=now,
        by="admin@example.org",
    )
    session.commit()
    expired = now + timedelta(days=settings.invitation_days, seconds=1)
    for when in (expired,):
        try:
            invitations.accept(
                session,
                token=invitations.token_of(settings, late),
                password=NEW_PASSWORD,
                repeat=NEW_PASSWORD,
                now=when,
            )
        except invitations.InvalidInvitation:
            continue
        raise AssertionError("an expired invitation was accepted")
    # A second invitation to the same address makes the first stop working.
    session.rollback()
    again = invitations.invite(
        session,
        email="b@example.org",
        organisation=None,
        language="en",
        settings=settings,
        now=now,
        by="admin@example.org",
    )
    session.commit()
    session.expire_all()
    assert session.get(Invitation, late.id).expires_at <= now  # type: ignore[union-attr]
    assert invitations.find(session, token=invitations.token_of(settings, again), now=now)


def test_expired_link_is_a_404_page(
    client: TestClient, session: Session, settings: Settings
) -> None:
    make_world(session)
    invitation = invitations.invite(
        session,
        email="c@example.org",
        organisation=None,
        language="ru",
        settings=settings,
        now=utcnow(),
        by="admin@example.org",
    )
    session.execute(update(Invitation).values(expires_at=utcnow() - timedelta(minutes=1)))
    session.commit()
    page = client.get(f"/invitations/{invitations.token_of(settings, invitation)}?lang=ru")
    assert page.status_code == 404
    assert client.get("/invitations/not-a-token").status_code == 404


def test_admins_rescope_and_remove_but_keep_an_admin(
    client: TestClient, session: Session, settings: Settings
) -> None:
    make_world(session, accounts=True)
    csrf = log_in(client, "admin@example.org")
    page = client.get("/dashboard/account/organisers")
    assert page.status_code == 200
    assert "unite@example.org" in page.text
    admin = session.scalars(select(Organiser).where(Organiser.email == "admin@example.org")).one()
    unite = session.scalars(select(Organiser).where(Organiser.email == "unite@example.org")).one()

    # Each account's access is shown chosen: the union's account has its union selected,
    # the admin's none (its first option, "Admin: everything", stands).
    def scope_options(organiser: Organiser) -> str:
        return page.text.split(f'id="scope-{organiser.id}"')[1].split("</select>")[0]

    assert '<option value="unite" selected>' in scope_options(unite)
    assert " selected" not in scope_options(admin)

    # The only admin can neither demote nor remove themselves.
    demote = client.post(
        f"/dashboard/account/organisers/{admin.id}/scope",
        data={"csrf_token": csrf, "organisation": "unite"},
    )
    assert demote.status_code == 409
    remove_self = client.post(
        f"/dashboard/account/organisers/{admin.id}/remove", data={"csrf_token": csrf}
    )
    assert remove_self.status_code == 409

    promote = client.post(
        f"/dashboard/account/organisers/{unite.id}/scope",
        data={"csrf_token": csrf, "organisation": ""},
        follow_redirects=False,
    )
    assert promote.status_code == 303
    asked = client.get(f"/dashboard/account/organisers/{unite.id}/remove")
    assert asked.status_code == 200
    removed = client.post(
        f"/dashboard/account/organisers/{unite.id}/remove",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert removed.status_code == 303
    assert (
        client.post(f"/dashboard/account/organisers/{admin.id}/remove", data={}).status_code == 403
    )  # no CSRF token
    session.expire_all()
    assert [o.email for o in session.scalars(select(Organiser))] == ["admin@example.org"]
    changes = [
        (e.action, e.subject, e.changes)
        for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("organiser.%")).order_by(AuditEvent.id)
        )
    ]
    assert changes == [
        ("organiser.rescoped", "unite@example.org", {"scope": ["unite", "admin"]}),
        ("organiser.removed", "unite@example.org", {"scope": "admin"}),
    ]
