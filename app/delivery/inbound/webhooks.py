"""Relays that report bounces and complaints by webhook: Amazon SES (through SNS),
Postmark, Mailgun and SendGrid, each authenticated as the provider documents.

- SES/SNS: the message's RSA signature (SignatureVersion 1: SHA1, 2: SHA256) over the
  documented string to sign, checked with the certificate at SigningCertURL, which must
  be an https URL of an SNS host (sns.<region>.amazonaws.com); the topic must be one of
  OUTCRY_SES_TOPIC_ARNS. A subscription is confirmed by fetching its SubscribeURL (an
  SNS host too).
- Postmark: HTTP basic auth, the credentials written into the webhook's URL.
- Mailgun: HMAC-SHA256 of timestamp + token under the webhook signing key, the
  timestamp recent.
- SendGrid: the Signed Event Webhook, ECDSA (P-256, SHA-256) over timestamp + body with
  the verification key SendGrid shows.

An event names its letter by our Message-ID (which SES, Mailgun and SendGrid echo) or by
the return token Postmark carries back as metadata. Events for no letter of ours are
dropped and counted; an event delivered twice is recorded once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core import security
from app.core.config import Settings
from app.core.errors import InvalidInput, NotFound, Unauthorized
from app.delivery import returns
from app.delivery.inbound import parse, service
from app.delivery.inbound.parse import Failure
from app.delivery.service import TARGET_CHANNELS
from app.models import Delivery, Letter

# SNS signing certificates and subscription links come from these hosts only.
SNS_URL = re.compile(r"https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[^?#\s]*(\?[^#\s]*)?")
# <outcry.{kind}.{letter's public id}.{a part of its own}@domain> (messages.message_id).
_MESSAGE_ID = re.compile(r"<?outcry\.[a-z_]+\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+@[^>\s]+>?")
MAILGUN_MAX_AGE = 15 * 60  # seconds a Mailgun signature stays good

Fetch = Callable[[str], bytes]


def fetch_sns(url: str) -> bytes:
    """GET an SNS URL over verified HTTPS (a signing certificate, a subscription link)."""
    if not SNS_URL.fullmatch(url):
        raise Unauthorized("Not an Amazon SNS address.")
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310  https only: SNS_URL
        body: bytes = response.read(1_000_000)
        return body


@dataclass(frozen=True, slots=True)
class Report:
    """One recipient's bounce or complaint as a relay reports it."""

    event_id: str
    recipient: str
    permanent: bool
    status: str
    reply: str
    raw: str  # the event as it came, for the organiser
    message_id: str = ""
    token: str = ""


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput({"body": "must be JSON"}) from exc


def _text(value: object, limit: int = parse.MAX_REPLY) -> str:
    return " ".join(str(value or "").split())[:limit]


# --- matching and recording -------------------------------------------------------------


def find_delivery(session: Session, report: Report, *, settings: Settings) -> Delivery | None:
    """The delivery an event is about: by its return token, else by our Message-ID."""
    if report.token:
        delivery_id = returns.delivery_of(settings.resolved_secret_key(), report.token)
        found = session.get(Delivery, delivery_id) if delivery_id is not None else None
        return found if found is not None and found.channel in TARGET_CHANNELS else None
    message_id = report.message_id.strip()
    match = _MESSAGE_ID.fullmatch(message_id)
    if match is None:
        return None
    # The letter by its public id (indexed), then its own delivery with that Message-ID.
    if not message_id.startswith("<"):
        message_id = f"<{message_id}>"
    return session.scalar(
        select(Delivery)
        .join(Letter, Letter.id == Delivery.letter_id)
        .where(
            Letter.public_id == match.group(1),
            Delivery.message_id == message_id,
            Delivery.channel.in_(TARGET_CHANNELS),
        )
        .execution_options(populate_existing=True)
    )


def record(
    session: Session, reports: list[Report], *, settings: Settings, source: str, now: datetime
) -> list[str]:
    """Record each report against its delivery (a permanent bounce of a target turns it
    `bounced`); reports for no letter of ours are dropped and counted. Flushes."""
    outcomes = []
    for report in reports:
        delivery = find_delivery(session, report, settings=settings)
        if delivery is None:
            service.count_dropped(session, service.UNKNOWN)
            outcomes.append(service.UNKNOWN)
            continue
        event = service.Event(
            delivery=delivery,
            failure=Failure(
                recipient=report.recipient.lower()[:254],
                permanent=report.permanent,
                status=report.status[:16],
                reply=report.reply,
            ),
            report=report.raw[: parse.MAX_REPORT],
            key=f"{source}:{report.event_id}",
        )
        outcomes.append(
            service.record_event(session, event=event, source=source, settings=settings, now=now)
        )
    return outcomes


# --- Postmark ---------------------------------------------------------------------------

# Postmark's bounce types that mean the address will not take mail; AutoResponder and the
# like are not failures at all.
POSTMARK_HARD = {
    "HardBounce",
    "BadEmailAddress",
    "ManuallyDeactivated",
    "Blocked",
    "SpamNotification",
}
POSTMARK_SOFT = {"SoftBounce", "Transient", "DnsError", "Unknown", "MailboxFull"}


def check_postmark(authorization: str | None, settings: Settings) -> None:
    """Basic auth against OUTCRY_POSTMARK_WEBHOOK_AUTH; NotFound while it is not set."""
    if not settings.postmark_webhook_auth:
        raise NotFound()
    expected = "Basic " + base64.b64encode(settings.postmark_webhook_auth.encode()).decode()
    if not authorization or not security.same(authorization.strip(), expected):
        raise Unauthorized("The webhook's credentials are wrong.")


def postmark(body: bytes) -> list[Report]:
    """A Postmark bounce or spam-complaint webhook as reports (others are ignored)."""
    data = _json(body)
    if not isinstance(data, dict):
        raise InvalidInput({"body": "must be a JSON object"})
    record_type = data.get("RecordType")
    kind = str(data.get("Type", ""))
    metadata = _dict(data.get("Metadata"))
    complaint = record_type == "SpamComplaint"
    if not complaint and (record_type != "Bounce" or kind not in POSTMARK_HARD | POSTMARK_SOFT):
        return []
    details = _text(data.get("Details")) or _text(data.get("Description"))
    return [
        Report(
            event_id=f"{record_type}:{data.get('ID', '')}",
            recipient=_text(data.get("Email"), 254),
            permanent=kind in POSTMARK_HARD and not complaint,
            status="complaint" if complaint else _status_of(details),
            reply=f"{kind}: {details}" if kind else details,
            raw=json.dumps(data, indent=1, ensure_ascii=False),
            token=_text(metadata.get("outcry"), 64),
        )
    ]


def _status_of(text: str) -> str:
    found = re.search(r"\b[245]\.\d{1,3}\.\d{1,3}\b", text)
    return found.group(0) if found else ""


# --- Mailgun ----------------------------------------------------------------------------


def mailgun(body: bytes, *, settings: Settings, now: float | None = None) -> list[Report]:
    """A Mailgun `failed` or `complained` event, its signature checked."""
    if not settings.mailgun_signing_key:
        raise NotFound()
    data = _json(body)
    signature = data.get("signature") if isinstance(data, dict) else None
    event = data.get("event-data") if isinstance(data, dict) else None
    if not isinstance(signature, dict) or not isinstance(event, dict):
        raise InvalidInput({"body": "must carry signature and event-data"})
    timestamp = str(signature.get("timestamp", ""))
    token = str(signature.get("token", ""))
    mac = hmac.new(
        settings.mailgun_signing_key.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    if not security.same(mac, str(signature.get("signature", ""))):
        raise Unauthorized("The webhook's signature is wrong.")
    if not timestamp.isdigit() or abs((now or time.time()) - int(timestamp)) > MAILGUN_MAX_AGE:
        raise Unauthorized("The webhook's signature has expired.")
    name = event.get("event")
    if name not in ("failed", "complained"):
        return []
    status = _dict(event.get("delivery-status"))
    headers = _dict(_dict(event.get("message")).get("headers"))
    variables = _dict(event.get("user-variables"))
    code = status.get("code", "")
    said = _text(status.get("message")) or _text(status.get("description"))
    return [
        Report(
            event_id=_text(event.get("id"), 200),
            recipient=_text(event.get("recipient"), 254),
            permanent=name == "failed" and event.get("severity") == "permanent",
            status="complaint" if name == "complained" else _status_of(said),
            reply=f"{code} {said}".strip() if name == "failed" else "complaint",
            raw=json.dumps(event, indent=1, ensure_ascii=False),
            message_id=_text(headers.get("message-id"), 300),
            token=_text(variables.get("outcry"), 64),
        )
    ]


# --- SendGrid ---------------------------------------------------------------------------

SENDGRID_SIGNATURE = "x-twilio-email-event-webhook-signature"
SENDGRID_TIMESTAMP = "x-twilio-email-event-webhook-timestamp"


def _sendgrid_key(text: str) -> ec.EllipticCurvePublicKey:
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text))
    except (ValueError, binascii.Error) as exc:
        raise ValueError("OUTCRY_SENDGRID_VERIFICATION_KEY is not an EC public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("OUTCRY_SENDGRID_VERIFICATION_KEY is not an EC public key")
    return key


def check_sendgrid(body: bytes, *, signature: str | None, timestamp: str | None, key: str) -> None:
    """The Signed Event Webhook's ECDSA signature over timestamp + body."""
    if not signature or not timestamp:
        raise Unauthorized("The webhook is not signed.")
    try:
        _sendgrid_key(key).verify(
            base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise Unauthorized("The webhook's signature is wrong.") from exc


def sendgrid(
    body: bytes, *, signature: str | None, timestamp: str | None, settings: Settings
) -> list[Report]:
    """SendGrid's events, signature checked: bounces (permanent), blocks and deferrals
    (temporary), drops, and spam reports."""
    if not settings.sendgrid_verification_key:
        raise NotFound()
    key = settings.sendgrid_verification_key
    check_sendgrid(body, signature=signature, timestamp=timestamp, key=key)
    events = _json(body)
    if not isinstance(events, list):
        raise InvalidInput({"body": "must be a JSON array of events"})
    reports = []
    for event in events:
        if not isinstance(event, dict):
            continue
        name = event.get("event")
        if name not in ("bounce", "dropped", "deferred", "spamreport"):
            continue
        reason = _text(event.get("reason")) or _text(event.get("response"))
        blocked = name == "bounce" and event.get("type") == "blocked"
        digest = hashlib.sha256(json.dumps(event, sort_keys=True).encode()).hexdigest()
        status = _text(event.get("status"), 16) or _status_of(reason)
        reports.append(
            Report(
                event_id=_text(event.get("sg_event_id"), 200) or digest,
                recipient=_text(event.get("email"), 254),
                permanent=name in ("bounce", "dropped") and not blocked,
                status="complaint" if name == "spamreport" else status,
                reply=reason or name,
                raw=json.dumps(event, indent=1, ensure_ascii=False),
                message_id=_text(event.get("smtp-id"), 300),
                token=_text(event.get("outcry"), 64),
            )
        )
    return reports


# --- Amazon SES through SNS -------------------------------------------------------------

_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_SUBSCRIPTION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)


def string_to_sign(message: dict[str, Any]) -> bytes:
    """SNS's string to sign: each field's name and value on lines of their own, in order
    (Subject only when present)."""
    fields = _NOTIFICATION_FIELDS if message.get("Type") == "Notification" else _SUBSCRIPTION_FIELDS
    lines = []
    for name in fields:
        if name in message and message[name] is not None:
            lines += [name, str(message[name])]
    return ("\n".join(lines) + "\n").encode()


def check_sns(message: dict[str, Any], *, settings: Settings, fetch: Fetch) -> None:
    """The topic is ours, the certificate is an SNS host's, the signature is genuine."""
    topics = {t.strip() for t in settings.ses_topic_arns.split(",") if t.strip()}
    if message.get("TopicArn") not in topics:
        raise Unauthorized("Not a topic this site subscribed to.")
    url = str(message.get("SigningCertURL", ""))
    if not SNS_URL.fullmatch(url):
        raise Unauthorized("The signing certificate is not an Amazon SNS one.")
    version = str(message.get("SignatureVersion", ""))
    algorithm: hashes.HashAlgorithm
    if version == "1":
        algorithm = hashes.SHA1()  # noqa: S303  SNS signs version 1 with SHA1
    elif version == "2":
        algorithm = hashes.SHA256()
    else:
        raise Unauthorized("Unknown signature version.")
    try:
        certificate = x509.load_pem_x509_certificate(fetch(url))
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise Unauthorized("The signing certificate is not an RSA one.")
        signature = base64.b64decode(str(message.get("Signature", "")))
        key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError, binascii.Error, OSError) as exc:
        raise Unauthorized("The message's signature is wrong.") from exc


def ses(body: bytes, *, settings: Settings, fetch: Fetch) -> list[Report]:
    """An SNS message: a subscription confirmed (its SubscribeURL fetched), or an SES
    bounce or complaint notification as reports."""
    if not settings.ses_topic_arns:
        raise NotFound()
    message = _json(body)
    if not isinstance(message, dict):
        raise InvalidInput({"body": "must be a JSON object"})
    check_sns(message, settings=settings, fetch=fetch)
    kind = message.get("Type")
    if kind == "SubscriptionConfirmation":
        url = str(message.get("SubscribeURL", ""))
        if not SNS_URL.fullmatch(url):
            raise Unauthorized("The subscription link is not an Amazon SNS one.")
        fetch(url)
        return []
    if kind != "Notification":
        return []
    notification = _json(str(message.get("Message", "")).encode())
    if not isinstance(notification, dict):
        return []
    return ses_reports(notification, message_id=str(message.get("MessageId", "")))


def _ses_message_id(mail: dict[str, Any]) -> str:
    common = mail.get("commonHeaders")
    if isinstance(common, dict) and common.get("messageId"):
        return str(common["messageId"])
    for header in mail.get("headers") or []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            return str(header.get("value", ""))
    return ""


def ses_reports(notification: dict[str, Any], *, message_id: str) -> list[Report]:
    """The recipients an SES bounce or complaint notification names."""
    kind = notification.get("notificationType") or notification.get("eventType")
    ours = _ses_message_id(_dict(notification.get("mail")))
    raw = json.dumps(notification, indent=1, ensure_ascii=False)
    complaint = kind == "Complaint"
    if kind not in ("Bounce", "Complaint"):
        return []
    detail = _dict(notification.get("complaint" if complaint else "bounce"))
    feedback = detail.get("feedbackId", message_id)
    field = "complainedRecipients" if complaint else "bouncedRecipients"
    reports = []
    for recipient in detail.get(field) or []:
        if not isinstance(recipient, dict):
            continue
        address = _text(recipient.get("emailAddress"), 254)
        diagnostic = _text(recipient.get("diagnosticCode"))
        if complaint:
            said = f"complaint: {_text(detail.get('complaintFeedbackType')) or 'spam'}"
            status = "complaint"
        else:
            said = diagnostic.split(";", 1)[-1].strip() or _text(detail.get("bounceSubType"))
            status = _text(recipient.get("status"), 16) or _status_of(diagnostic)
        reports.append(
            Report(
                event_id=f"{feedback}:{address}",
                recipient=address,
                permanent=not complaint and detail.get("bounceType") == "Permanent",
                status=status,
                reply=said,
                raw=raw,
                message_id=ours,
            )
        )
    return reports
