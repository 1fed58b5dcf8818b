"""Turn a claimed delivery into the message that goes out (loads nothing itself)."""

from __future__ import annotations

from email.headerregistry import Address

from app.core import security
from app.core.config import Settings
from app.delivery import messages
from app.delivery.messages import Outgoing
from app.models import Appeal, Channel, Delivery, Letter
from app.web import i18n


def letter_url(settings: Settings, letter: Letter) -> str:
    """The supporter's private link to their letter."""
    return f"{settings.base_url}/letters/{letter.public_id}?key={letter.key}"


def confirm_token(settings: Settings, letter: Letter) -> str:
    return security.sign(settings.resolved_secret_key(), "confirm", letter.public_id)


def confirm_url(settings: Settings, letter: Letter) -> str:
    return f"{settings.base_url}/confirm/{confirm_token(settings, letter)}"


def _targets(appeal: Appeal, addresses: list[str]) -> list[Address]:
    names = {t.email: t.name for t in appeal.targets if t.email}
    return [messages.mailbox(names.get(a, ""), a) for a in addresses]


def _supporter_text(template: str, language: str, **context: object) -> tuple[str, str]:
    """(subject, body) from an e-mail template's two blocks, in the supporter's language."""
    tmpl = i18n.make_environment(language).get_template(template)
    ctx = tmpl.new_context(context)
    subject = "".join(tmpl.blocks["subject"](ctx))
    body = "".join(tmpl.blocks["body"](tmpl.new_context(context)))
    return " ".join(subject.split()), body.strip("\n") + "\n"


def outgoing(delivery: Delivery, letter: Letter, appeal: Appeal, *, settings: Settings) -> Outgoing:
    """The message and envelope for `delivery`."""
    sender = settings.mail_from_address
    common = {
        "from_address": sender,
        "message_id": delivery.message_id,
        "date": delivery.created_at,
        "language": letter.language,
    }
    if delivery.channel is Channel.email:
        to = _targets(appeal, delivery.recipients)
        cc = [messages.plain(a) for a in delivery.cc]
        reply_to = messages.mailbox(letter.signer_name, letter.signer_email)
        message = messages.build(
            subject=letter.subject,
            body=letter.body,
            from_name=messages.from_display(letter.signer_name, appeal.sender_name),
            to=to,
            cc=cc,
            reply_to=reply_to if letter.share_email else None,
            **common,  # type: ignore[arg-type]
        )
        recipients = (*delivery.recipients, *delivery.cc)
    elif delivery.channel in (Channel.confirmation, Channel.copy):
        template = (
            "email/confirmation.txt"
            if delivery.channel is Channel.confirmation
            else "email/copy.txt"
        )
        subject, body = _supporter_text(
            template,
            letter.language,
            appeal_title=appeal.title,
            signer_name=letter.signer_name,
            confirm_url=confirm_url(settings, letter),
            letter_url=letter_url(settings, letter),
            subject=letter.subject,
            body=letter.body,
            expires_days=settings.confirmation_days,
        )
        message = messages.build(
            subject=subject or appeal.title,
            body=body,
            from_name=appeal.sender_name,
            to=[messages.mailbox(letter.signer_name, letter.signer_email)],
            **common,  # type: ignore[arg-type]
        )
        recipients = tuple(delivery.recipients)
    else:
        raise ValueError(f"no composer for channel {delivery.channel}")
    return Outgoing(
        message=message, sender=sender, recipients=recipients, message_id=delivery.message_id
    )
