"""The authorisation matrix: every organiser route × every kind of caller.

Callers: no credentials, a token that does not exist, a union that does not take part
in the appeal (rmt), a union that does but whose letter this is not (gmb), the union
whose letter it is (unite), an admin token, and the same through the login cookie
(unite's organiser, an admin organiser) with their CSRF token. One table of expected
status codes; every mismatch is reported at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.main import create_app
from app.models import Bounce, Channel, Delivery, DeliveryStatus, Letter
from app.organisers import service as organisers
from tests.appeals.factories import appeal_data, make_appeal
from tests.organisers.factories import (
    ORGANISATIONS,
    PASSWORD,
    fail_deliveries,
    log_in,
    make_world,
    signed,
)

CALLERS = ("none", "bad", "rmt", "gmb", "unite", "admin", "unite-session", "admin-session")


@dataclass
class Route:
    method: str
    path: str  # {letter}, {delivery}, {token} are filled in per call
    expected: dict[str, int]
    body: Callable[[int], dict[str, object]] | None = None


def codes(**by_caller: int) -> dict[str, int]:
    base = {"none": 401, "bad": 401}
    base.update({k.replace("_", "-"): v for k, v in by_caller.items()})
    assert set(base) == set(CALLERS), set(CALLERS) - set(base)
    return base


READ = codes(rmt=403, gmb=200, unite=200, admin=200, unite_session=200, admin_session=200)
MINE = codes(rmt=403, gmb=403, unite=200, admin=200, unite_session=200, admin_session=200)
MINE_FORM = codes(rmt=403, gmb=403, unite=303, admin=303, unite_session=303, admin_session=303)
SESSION_ONLY = codes(rmt=403, gmb=403, unite=403, admin=403, unite_session=200, admin_session=200)
ADMIN_ONLY_READ = codes(
    rmt=403, gmb=403, unite=403, admin=200, unite_session=403, admin_session=200
)
# The appeal editor's forms sent empty: an admin gets them back with their errors.
ADMIN_FORM = codes(rmt=403, gmb=403, unite=403, admin=422, unite_session=403, admin_session=422)
# An admin's own pages in the dashboard: for an admin who logged in.
ADMIN_SESSION = codes(rmt=403, gmb=403, unite=403, admin=403, unite_session=403, admin_session=200)

NAMED_GMB = codes(rmt=403, gmb=200, unite=403, admin=200, unite_session=403, admin_session=200)

ROUTES = [
    Route("GET", "/api/v1/appeals/free-them/stats", READ),
    Route("GET", "/api/v1/appeals/free-them/letters", READ),
    # A union may name itself in any letters filter, never another union.
    Route("GET", "/api/v1/appeals/free-them/letters?organisation=gmb", NAMED_GMB),
    Route("GET", "/api/v1/appeals/free-them/letters.csv", READ),
    Route("GET", "/api/v1/appeals/free-them/letters.csv?organisation=gmb", NAMED_GMB),
    Route("GET", "/api/v1/appeals/free-them/moderation", READ),
    Route("GET", "/api/v1/appeals/free-them/letters.pdf", READ),
    Route("GET", "/api/v1/appeals/free-them/letters.pdf?organisation=gmb", NAMED_GMB),
    Route("GET", "/api/v1/appeals/free-them/letters.zip", READ),
    Route("GET", "/api/v1/appeals/free-them/replies", READ),
    Route("GET", "/api/v1/appeals/free-them/replies?kind=auto", READ),
    Route("GET", "/api/v1/appeals/free-them/bounces", READ),
    Route("GET", "/api/v1/bounces/{bounce}", MINE),
    # A union retries the bounced letters of its own members (none, for gmb).
    Route(
        "POST",
        "/api/v1/appeals/free-them/bounces/retry",
        codes(rmt=403, gmb=202, unite=202, admin=202, unite_session=202, admin_session=202),
    ),
    Route("GET", "/dashboard/bounces/{bounce}", MINE),
    Route(
        "POST",
        "/dashboard/free-them/bounces/retry",
        codes(rmt=403, gmb=303, unite=303, admin=303, unite_session=303, admin_session=303),
    ),
    Route("POST", "/api/v1/letters/{letter}/approve", MINE),
    Route("POST", "/api/v1/letters/{letter}/reject", MINE),
    Route(
        "POST",
        "/api/v1/appeals",
        codes(rmt=403, gmb=403, unite=403, admin=201, unite_session=403, admin_session=201),
        body=lambda n: appeal_data(slug=f"new-appeal-{n}"),
    ),
    Route(
        "PUT",
        "/api/v1/appeals/free-them",
        codes(rmt=403, gmb=403, unite=403, admin=200, unite_session=403, admin_session=200),
        # PUT replaces: the body keeps the organisations, or they would stop taking part.
        body=lambda n: appeal_data(title=f"Renamed {n}", organisations=ORGANISATIONS),
    ),
    Route(
        "GET",
        "/dashboard",
        codes(rmt=200, gmb=200, unite=200, admin=200, unite_session=200, admin_session=200),
    ),
    Route("GET", "/dashboard/free-them", READ),
    Route("GET", "/dashboard/free-them/moderation", READ),
    Route("POST", "/dashboard/letters/{letter}/approve", MINE_FORM),
    Route("POST", "/dashboard/letters/{letter}/reject", MINE_FORM),
    Route("POST", "/dashboard/deliveries/{delivery}/retry", MINE_FORM),
    Route(
        "POST",
        "/api/v1/deliveries/{delivery}/retry",
        codes(rmt=403, gmb=403, unite=202, admin=202, unite_session=202, admin_session=202),
    ),
    # The account page is for people who log in: a token has no password to change.
    Route("GET", "/dashboard/account", SESSION_ONLY),
    Route(
        "POST",
        "/dashboard/account/password",  # no fields: the form comes back with its errors
        codes(rmt=403, gmb=403, unite=403, admin=403, unite_session=422, admin_session=422),
    ),
    Route(
        "POST",
        "/dashboard/tokens",
        codes(rmt=403, gmb=403, unite=403, admin=403, unite_session=403, admin_session=201),
    ),
    Route(
        "POST",
        "/dashboard/tokens/{token}/revoke",
        codes(rmt=403, gmb=403, unite=403, admin=403, unite_session=403, admin_session=303),
    ),
    # The appeal editor, status changes and appeal files: admins only.
    Route("GET", "/dashboard/appeals/new", ADMIN_ONLY_READ),
    Route("POST", "/dashboard/appeals/new", ADMIN_FORM),
    Route("GET", "/dashboard/free-them/edit", ADMIN_ONLY_READ),
    Route("POST", "/dashboard/free-them/edit", ADMIN_FORM),
    Route("GET", "/dashboard/free-them/appeal.yaml", ADMIN_ONLY_READ),
    Route("POST", "/dashboard/appeals/upload", ADMIN_FORM),  # no file
    Route("GET", "/dashboard/free-them/status?to=close", ADMIN_ONLY_READ),
    Route("POST", "/dashboard/free-them/status", ADMIN_FORM),  # no `to`
    # The audit log: everyone reads what concerns them (rmt: its own tokens).
    Route(
        "GET",
        "/dashboard/audit",
        codes(rmt=200, gmb=200, unite=200, admin=200, unite_session=200, admin_session=200),
    ),
    Route("GET", "/dashboard/free-them/audit", READ),
    # Organisers' accounts: a logged-in admin's.
    Route("GET", "/dashboard/account/organisers", ADMIN_SESSION),
    Route(
        "POST",
        "/dashboard/account/organisers/invite",  # no address: the form comes back
        codes(rmt=403, gmb=403, unite=403, admin=403, unite_session=403, admin_session=422),
    ),
    Route(
        "POST",
        "/dashboard/account/organisers/{scoped}/scope",
        codes(rmt=403, gmb=403, unite=403, admin=403, unite_session=403, admin_session=303),
    ),
    Route("GET", "/dashboard/account/organisers/{removed}/remove", ADMIN_SESSION),
    Route(
        "POST",
        "/dashboard/account/organisers/{removed}/remove",
        codes(rmt=403, gmb=403, unite=403, admin=403, unite_session=403, admin_session=303),
    ),
    # Test sends go to the asker's own address: only a logged-in admin has one.
    Route(
        "POST",
        "/dashboard/not-yet/test-send",
        codes(rmt=403, gmb=403, unite=403, admin=403, unite_session=403, admin_session=303),
    ),
]


def test_authorisation_matrix(client: TestClient, session: Session, settings: Settings) -> None:
    world = make_world(session, accounts=True, moderation=True, require_confirmation=False)
    make_appeal(
        session,
        slug="not-yet",
        status="draft",
        organisations=ORGANISATIONS,
    )
    session.commit()
    # A fresh held letter of unite's for every call that may succeed in approving or
    # rejecting one, and a fresh failed delivery for every retry.
    held = iter(
        signed(
            session, world.appeal, settings, org="unite", email=f"held{i}@example.net", message="!"
        )
        for i in range(100)
    )
    for i in range(16):
        signed(session, world.appeal, settings, org="unite", email=f"fail{i}@example.net")
    fail_deliveries(settings)
    failed: Iterator[Delivery] = iter(
        session.query(Delivery)
        .filter(Delivery.status == DeliveryStatus.failed, Delivery.channel == Channel.email)
        .order_by(Delivery.id)
        .all()
    )

    # A permanent bounce of one of unite's letters, for the bounce report routes.
    bounced = session.query(Delivery).filter(Delivery.channel == Channel.email).first()
    assert bounced is not None
    report = Bounce(
        key="matrix",
        delivery_id=bounced.id,
        appeal_id=bounced.appeal_id,
        organisation_id=bounced.organisation_id,
        recipient="president@example.org",
        permanent=True,
        status="5.1.1",
        reply="550 5.1.1 User unknown",
        report="Action: failed",
        source="lmtp",
    )
    session.add(report)
    session.flush()

    # A spare token for every call that may succeed in revoking one.
    spare = iter(
        [
            organisers.create_token(session, organisation=None, name=f"spare {i}", by="test")[0].id
            for i in range(len(CALLERS))
        ]
    )
    # Accounts to re-scope (to admin: the first call changes it, the others do nothing)
    # and to remove (only the logged-in admin's call does).
    rmt = organisers.get_organisation(session, "rmt")
    scoped = organisers.add_organiser(
        session, email="scoped@example.org", password=PASSWORD, organisation=rmt
    ).id
    removed = organisers.add_organiser(
        session, email="removed@example.org", password=PASSWORD, organisation=rmt
    ).id
    session.commit()

    app = create_app(settings, deliver_in_process=False)
    with TestClient(app) as unite_browser, TestClient(app) as admin_browser:
        csrf = {
            "unite-session": (unite_browser, log_in(unite_browser, "unite@example.org")),
            "admin-session": (admin_browser, log_in(admin_browser, "admin@example.org")),
        }
        mismatches = []
        n = 0
        for route in ROUTES:
            for caller in CALLERS:
                n += 1
                letter: Letter | None = next(held) if "{letter}" in route.path else None
                delivery = next(failed) if "{delivery}" in route.path else None
                path = route.path.format(
                    letter=letter.public_id if letter else "",
                    delivery=delivery.id if delivery else "",
                    token=next(spare) if "{token}" in route.path else "",
                    scoped=scoped,
                    removed=removed,
                    bounce=report.id,
                )
                kwargs: dict[str, object] = {"follow_redirects": False}
                if route.body:
                    kwargs["json"] = route.body(n)
                if caller in csrf:
                    browser, token = csrf[caller]
                    if route.method != "GET":
                        kwargs["headers"] = {"X-CSRF-Token": token}
                        if "json" not in kwargs:
                            kwargs.pop("headers")
                            kwargs["data"] = {"csrf_token": token}
                    response = browser.request(route.method, path, **kwargs)  # type: ignore[arg-type]
                else:
                    kwargs["headers"] = world.auth(caller)
                    response = client.request(route.method, path, **kwargs)  # type: ignore[arg-type]
                expected = route.expected[caller]
                if response.status_code != expected:
                    mismatches.append(
                        f"{route.method} {route.path} as {caller}: "
                        f"{response.status_code} (expected {expected}) {response.text[:120]}"
                    )
        assert not mismatches, "\n".join(mismatches)


def test_every_form_refuses_a_login_without_its_csrf_token(
    client: TestClient, session: Session, settings: Settings
) -> None:
    """Each unsafe route, sent by a logged-in admin's browser without the CSRF token (or
    with another session's): 403, and nothing is done."""
    world = make_world(session, accounts=True)
    make_appeal(session, slug="not-yet", status="draft", organisations=ORGANISATIONS)
    session.commit()
    letter = signed(session, world.appeal, settings, org="unite", email="x@example.net")
    log_in(client, "admin@example.org")
    unsafe = [r for r in ROUTES if r.method != "GET" and not r.path.startswith("/api/")]
    refused = []
    for route in unsafe:
        path = route.path.format(letter=letter.public_id, delivery=1, token=1, scoped=1, removed=1)
        for data in ({}, {"csrf_token": "not-this-session's"}):
            response = client.request(route.method, path, data=data, follow_redirects=False)
            if response.status_code != 403:
                refused.append(f"{route.method} {route.path} {data}: {response.status_code}")
    assert not refused, "\n".join(refused)
    assert len(unsafe) >= 14
