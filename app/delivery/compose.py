"""Turn a claimed delivery into the message that goes out (loads nothing itself)."""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage

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


# The e-mails to the supporter, each a template with a subject and a body block.
SUPPORTER_TEMPLATES = {
    Channel.confirmation: "email/confirmation.txt",
    Channel.copy: "email/copy.txt",
    Channel.rejection: "email/rejected.txt",
}


def letter_pdf_attachments(letter: Letter, appeal: Appeal) -> tuple[messages.Attachment, ...]:
    """HOOK for app/documents: the letter's fax PDF, attached to an organiser's test send
    (and to letters whose appeal sets attach_pdf). Returns nothing until the PDF
    renderer is wired in here."""
    return ()


def _sample(
    delivery: Delivery, letter: Letter, appeal: Appeal, common: dict[str, object]
) -> EmailMessage:
    """An organiser's test send: the target's e-mail as it will go out, addressed only to
    the organiser, with the real To, Cc and fax numbers named in a note above the letter."""
    to = _targets(appeal, [t.email for t in appeal.targets if t.email])
    from_name = messages.from_display(letter.signer_name, appeal.sender_name)
    subject, note = _supporter_text(
        "email/sample.txt",
        letter.language,
        subject=letter.subject,
        organiser=", ".join(delivery.recipients),
        from_line=str(messages.mailbox(from_name, str(common["from_address"]))),
        to_line=", ".join(str(a) for a in to),
        cc_line=", ".join(appeal.copies),
        faxes=[f"{t.name} {t.fax}" for t in appeal.targets if t.fax],
    )
    return messages.build(
        subject=subject,
        body=f"{note}\n{letter.body}",
        from_name=from_name,
        to=[messages.plain(a) for a in delivery.recipients],
        attachments=letter_pdf_attachments(letter, appeal),
        **common,  # type: ignore[arg-type]
    )


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
    elif delivery.channel is Channel.sample:
        message = _sample(delivery, letter, appeal, common)
        recipients = tuple(delivery.recipients)
    elif delivery.channel in SUPPORTER_TEMPLATES:
        subject, body = _supporter_text(
            SUPPORTER_TEMPLATES[delivery.channel],
            letter.language,
            appeal_title=appeal.title,
            appeal_url=f"{settings.base_url}/a/{appeal.slug}",
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
