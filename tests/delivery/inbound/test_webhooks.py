"""Relays' webhooks, with each provider's documented payload shapes, authenticated as
each documents: SNS's RSA signature with a certificate made here (the real one is
fetched from an SNS host this machine cannot reach), Postmark's basic auth, Mailgun's
HMAC, SendGrid's ECDSA (also against SendGrid's own published test vector)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.auth import Principal
from app.core.config import Settings
from app.delivery import returns
from app.delivery.inbound import webhooks
from app.main import create_app
from app.models import Bounce, Channel, Delivery, DeliveryStatus, InboundDropped
from app.organisers import inbox
from tests.appeals.factories import make_appeal
from tests.conftest import SECRET, drain, make_settings
from tests.letters.factories import sign
from tests.support.smtp import SmtpSink

TOPIC = "arn:aws:sns:us-west-2:123456789012:outcry-ses"
CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem"
SUBSCRIBE_URL = (
    "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC}&Token=2336412f37"
)
MAILGUN_KEY = "key-mailgun-signing-0123456789abcdef"
POSTMARK_AUTH = "outcry:postmark-webhook-password"
ADMIN = Principal(via="token", organisation_id=None)


def _rsa_certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


SNS_KEY, SNS_CERT = _rsa_certificate()
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


@pytest.fixture
def relay(db_url: str, tmp_path: Path, sink: SmtpSink) -> Settings:
    return make_settings(
        db_url,
        tmp_path,
        smtp_url=sink.url,
        bounce_domain="bounces.example.org",
        ses_topic_arns=TOPIC,
        postmark_webhook_auth=POSTMARK_AUTH,
        mailgun_signing_key=MAILGUN_KEY,
        sendgrid_verification_key=SENDGRID_PUBLIC,
    )


@pytest.fixture
def fetched() -> list[str]:
    return []


@pytest.fixture
def api(relay: Settings, fetched: list[str]) -> Iterator[TestClient]:
    app = create_app(relay, deliver_in_process=False)

    def fetch(url: str) -> bytes:  # SNS's hosts are out of reach here
        fetched.append(url)
        return SNS_CERT if url == CERT_URL else b"<ConfirmSubscriptionResponse/>"

    app.state.sns_fetch = fetch
    with TestClient(app) as client:
        yield client


@pytest.fixture
def delivery(session: Session, relay: Settings, sink: SmtpSink) -> Delivery:
    appeal = make_appeal(session, require_confirmation=False)
    letter = sign(session, appeal, relay)
    session.commit()
    drain(relay)
    found = session.scalars(
        select(Delivery).where(Delivery.letter_id == letter.id, Delivery.channel == Channel.email)
    ).one()
    [sent] = [m for m in sink.messages if "president@example.org" in m.rcpt_tos]
    # Postmark gets the token back as metadata; the others echo our Message-ID.
    assert sent.message["X-PM-Metadata-outcry"] == returns.token(SECRET, found.id)
    return found


def _status(session: Session, delivery: Delivery) -> DeliveryStatus:
    session.expire_all()
    found = session.get(Delivery, delivery.id)
    assert found is not None
    return found.status


def _sns(kind: str, message: str, *, version: str = "2", **extra: str) -> dict[str, str]:
    body = {
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "TopicArn": TOPIC,
        "Message": message,
        "Timestamp": "2026-11-30T01:00:00.000Z",
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
        **extra,
    }
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = SNS_KEY.sign(webhooks.string_to_sign(body), padding.PKCS1v15(), algorithm)
    body["Signature"] = base64.b64encode(signature).decode()
    return body


def _ses_bounce(delivery: Delivery, kind: str = "Bounce") -> str:
    """SES's documented bounce (or complaint) notification, about our message."""
    mail = {
        "timestamp": "2026-11-30T00:59:58.000Z",
        "source": "letters@example.org",
        "sourceArn": "arn:aws:ses:us-west-2:123456789012:identity/example.org",
        "sendingAccountId": "123456789012",
        "messageId": "0100018c2b4d1e8f-6ee2c3a2-0000-0000-0000-000000000000-000000",
        "destination": ["president@example.org"],
        "headersTruncated": False,
        "commonHeaders": {
            "from": ["Ada via Campaign <letters@example.org>"],
            "to": ["A. President <president@example.org>"],
            "messageId": delivery.message_id,
            "subject": "Free them now",
        },
    }
    if kind == "Complaint":
        detail = {
            "complainedRecipients": [{"emailAddress": "president@example.org"}],
            "timestamp": "2026-11-30T01:00:00.000Z",
            "feedbackId": "0100018c-complaint",
            "complaintFeedbackType": "abuse",
        }
        return json.dumps({"notificationType": "Complaint", "complaint": detail, "mail": mail})
    detail = {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": "president@example.org",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
        "timestamp": "2026-11-30T01:00:00.000Z",
        "feedbackId": "0100018c-bounce",
        "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
    }
    return json.dumps({"notificationType": "Bounce", "bounce": detail, "mail": mail})


def test_ses_subscription_and_bounce(
    api: TestClient, session: Session, delivery: Delivery, fetched: list[str]
) -> None:
    confirm = _sns(
        "SubscriptionConfirmation",
        f"You have chosen to subscribe to the topic {TOPIC}.",
        version="1",
        Token="2336412f37",
        SubscribeURL=SUBSCRIBE_URL,
    )
    assert api.post("/api/v1/webhooks/ses", json=confirm).status_code == 200
    assert fetched == [CERT_URL, SUBSCRIBE_URL]
    bounce = _sns("Notification", _ses_bounce(delivery))
    response = api.post("/api/v1/webhooks/ses", json=bounce)
    assert response.json() == {"outcomes": ["bounce"]}
    assert api.post("/api/v1/webhooks/ses", json=bounce).json() == {"outcomes": ["duplicate"]}
    assert _status(session, delivery) is DeliveryStatus.bounced
    [row] = session.scalars(select(Bounce)).all()
    assert (row.recipient, row.permanent, row.status, row.reply, row.source) == (
        "president@example.org",
        True,
        "5.1.1",
        "550 5.1.1 user unknown",
        "ses",
    )
    complaint = _sns("Notification", _ses_bounce(delivery, "Complaint"))
    assert api.post("/api/v1/webhooks/ses", json=complaint).json() == {"outcomes": ["bounce"]}
    assert {b.status for b in session.scalars(select(Bounce))} == {"5.1.1", "complaint"}
    assert delivery.letter is not None
    page = inbox.bounces(session, appeal=delivery.letter.appeal, who=ADMIN)
    assert page.counts == {"hard": 1, "soft": 0, "complaint": 1}


def test_ses_refuses_what_sns_did_not_sign(
    api: TestClient, delivery: Delivery, fetched: list[str]
) -> None:
    altered = _sns("Notification", _ses_bounce(delivery))
    altered["Message"] = altered["Message"].replace("Permanent", "Transient")
    assert api.post("/api/v1/webhooks/ses", json=altered).status_code == 401
    elsewhere = _sns("Notification", _ses_bounce(delivery))
    elsewhere["SigningCertURL"] = "https://sns.example.net/cert.pem"
    assert api.post("/api/v1/webhooks/ses", json=elsewhere).status_code == 401
    lookalike = _sns("Notification", _ses_bounce(delivery))
    lookalike["SigningCertURL"] = "https://sns.us-west-2.amazonaws.com.example.net/x.pem"
    assert api.post("/api/v1/webhooks/ses", json=lookalike).status_code == 401
    other_topic = _sns("Notification", _ses_bounce(delivery), TopicArn="arn:aws:sns:x:1:other")
    assert api.post("/api/v1/webhooks/ses", json=other_topic).status_code == 401
    assert fetched == [CERT_URL]  # no other host was ever asked
    garbage = api.post("/api/v1/webhooks/ses", content=b"not json")
    assert garbage.status_code == 422


def test_postmark_bounce_by_basic_auth_and_metadata(
    api: TestClient, session: Session, delivery: Delivery
) -> None:
    # Postmark's documented bounce webhook; Metadata carries what the letter was sent with.
    payload = {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ServerID": 23,
        "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": "president@example.org",
        "From": "letters@example.org",
        "BouncedAt": "2026-11-30T01:00:00Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Free them now",
        "Metadata": {"outcry": returns.token(SECRET, delivery.id)},
    }
    url = "/api/v1/webhooks/postmark"
    good = "Basic " + base64.b64encode(POSTMARK_AUTH.encode()).decode()
    bad = "Basic " + base64.b64encode(b"outcry:guess").decode()
    assert api.post(url, json=payload).status_code == 401
    assert api.post(url, json=payload, headers={"Authorization": bad}).status_code == 401
    response = api.post(url, json=payload, headers={"Authorization": good})
    assert response.json() == {"outcomes": ["bounce"]}
    assert _status(session, delivery) is DeliveryStatus.bounced
    # An auto-responder is not a bounce; a forged token finds no letter and is counted.
    auto = {**payload, "ID": 2, "Type": "AutoResponder", "TypeCode": 64}
    assert api.post(url, json=auto, headers={"Authorization": good}).json() == {"outcomes": []}
    forged = {**payload, "ID": 3, "Metadata": {"outcry": "1-aaaaaaaaaaaaaaaaaaaaa"}}
    assert api.post(url, json=forged, headers={"Authorization": good}).json() == {
        "outcomes": ["unknown"]
    }
    assert session.get(InboundDropped, "unknown").n == 1  # type: ignore[union-attr]


def _mailgun(delivery: Delivery, *, timestamp: int, key: str = MAILGUN_KEY) -> dict[str, object]:
    token = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    return {
        "signature": {
            "timestamp": str(timestamp),
            "token": token,
            "signature": signature.hexdigest(),
        },
        "event-data": {
            "id": "G9Bn5sl1TC6nu79C8C0bwg",
            "timestamp": timestamp,
            "log-level": "error",
            "event": "failed",
            "severity": "permanent",
            "reason": "bounce",
            "recipient": "president@example.org",
            "recipient-domain": "example.org",
            "delivery-status": {
                "attempt-no": 1,
                "code": 550,
                "message": "5.1.1 The email account that you tried to reach does not exist.",
                "description": "",
            },
            "message": {
                "headers": {
                    "to": "A. President <president@example.org>",
                    "message-id": delivery.message_id.strip("<>"),
                    "from": "Ada via Campaign <letters@example.org>",
                    "subject": "Free them now",
                },
                "attachments": [],
                "size": 111,
            },
            "user-variables": {},
            "flags": {"is-routed": False, "is-authenticated": True, "is-test-mode": False},
        },
    }


def test_mailgun_failed_event_by_hmac(
    api: TestClient, session: Session, delivery: Delivery
) -> None:
    url = "/api/v1/webhooks/mailgun"
    now = int(time.time())
    assert api.post(url, json=_mailgun(delivery, timestamp=now, key="wrong")).status_code == 401
    stale = _mailgun(delivery, timestamp=now - 3600)
    assert api.post(url, json=stale).status_code == 401
    # The report came before the send was recorded: Mailgun is asked to try again.
    _set_status(session, delivery, DeliveryStatus.sending)
    early = api.post(url, json=_mailgun(delivery, timestamp=now))
    assert early.status_code == 503
    assert early.headers["Retry-After"] == "60"
    assert session.scalars(select(Bounce)).all() == []
    _set_status(session, delivery, DeliveryStatus.sent)
    response = api.post(url, json=_mailgun(delivery, timestamp=now))
    assert response.json() == {"outcomes": ["bounce"]}
    assert _status(session, delivery) is DeliveryStatus.bounced
    [row] = session.scalars(select(Bounce)).all()
    assert row.reply == "550 5.1.1 The email account that you tried to reach does not exist."


def _set_status(session: Session, delivery: Delivery, status: DeliveryStatus) -> None:
    session.execute(update(Delivery).where(Delivery.id == delivery.id).values(status=status))
    session.commit()


def _sendgrid(body: bytes, timestamp: str, key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        webhooks.SENDGRID_SIGNATURE: base64.b64encode(signature).decode(),
        webhooks.SENDGRID_TIMESTAMP: timestamp,
        "Content-Type": "application/json",
    }


def test_sendgrid_signed_events(api: TestClient, session: Session, delivery: Delivery) -> None:
    events = [
        {
            "email": "president@example.org",
            "timestamp": 1796000000,
            "smtp-id": delivery.message_id,
            "event": "bounce",
            "category": [],
            "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPw==",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "reason": "500 unknown recipient",
            "status": "5.0.0",
            "type": "bounce",
        },
        {
            "email": "copies@example.org",
            "timestamp": 1796000000,
            "smtp-id": delivery.message_id,
            "event": "deferred",
            "sg_event_id": "t7LEShmowp86DTdUW8M-GQ==",
            "response": "400 try again later",
            "attempt": "5",
        },
        {"email": "x@example.org", "timestamp": 1796000000, "event": "delivered"},
    ]
    body = json.dumps(events).encode()
    url = "/api/v1/webhooks/sendgrid"
    assert api.post(url, content=body).status_code == 401
    other = ec.generate_private_key(ec.SECP256R1())
    assert api.post(
        url, content=body, headers=_sendgrid(body, "1796000000", other)
    ).status_code == (401)
    response = api.post(url, content=body, headers=_sendgrid(body, "1796000000", SENDGRID_KEY))
    assert response.json() == {"outcomes": ["bounce", "bounce"]}
    assert _status(session, delivery) is DeliveryStatus.bounced
    kinds = {(b.recipient, b.permanent) for b in session.scalars(select(Bounce))}
    assert kinds == {("president@example.org", True), ("copies@example.org", False)}


def test_sendgrid_published_test_vector() -> None:
    """SendGrid's own example key, payload and signature (its SDKs' tests) verify."""
    payload = b'{"category":"example_payload","event":"test_event","message_id":"message_id"}'
    webhooks.check_sendgrid(
        payload,
        signature="MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=",
        timestamp="1588788367",
        key="MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==",
    )


def test_webhooks_are_off_until_configured(db_url: str, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(db_url, tmp_path), deliver_in_process=False)) as c:
        for provider in ("ses", "postmark", "mailgun", "sendgrid"):
            assert c.post(f"/api/v1/webhooks/{provider}", json={}).status_code == 404
