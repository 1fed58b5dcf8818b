"""Turn a claimed delivery into the message that goes out (loads nothing itself)."""

from __future__ import annotations

from collections.abc import Callable
from email.headerregistry import Address
from urllib.parse import urlencode

from app.appeals import service as appeals
from app.core import security
from app.core.config import Settings
from app.delivery import mailtexts, messages, returns
from app.delivery.messages import Attachment, Outgoing
from app.documents import build, pdf
from app.models import Appeal, Channel, Delivery, Invitation, Letter, Target


def invitation_url(settings: Settings, invitation: Invitation) -> str:
    """The invitee's link (the database keeps only its token's hash)."""
    token = security.invitation_token(settings.resolved_secret_key(), invitation.nonce)
    return f"{settings.base_url}/invitations/{token}"


def invitation(delivery: Delivery, invitation: Invitation, *, settings: Settings) -> Outgoing:
    """The e-mail inviting an organiser, in the language the admin invited them in."""
    subject, body = _supporter_text(
        "email/invitation.txt",
        invitation.language,
        invited_by=invitation.invited_by,
        organisation=invitation.organisation.name if invitation.organisation else "",
        invitation_url=invitation_url(settings, invitation),
        expires_at=invitation.expires_at,
    )
    message = messages.build(
        subject=subject,
        body=body,
        from_name="Outcry",
        from_address=settings.mail_from_address,
        to=[messages.plain(a) for a in delivery.recipients],
        message_id=delivery.message_id,
        date=delivery.created_at,
        language=invitation.language,
    )
    return Outgoing(
        message=message,
        sender=settings.mail_from_address,
        recipients=tuple(delivery.recipients),
        message_id=delivery.message_id,
    )


def letter_url(settings: Settings, letter: Letter) -> str:
    """The supporter's private link to their letter."""
    return f"{settings.base_url}/letters/{letter.public_id}?key={letter.key}"


def sign_again_url(settings: Settings, letter: Letter) -> str:
    """Where a supporter whose letter was declined or expired signs again: the appeal's
    page in the letter's language, through the same organisation's link (so the new
    letter still counts for their union)."""
    query = {"org": letter.organisation.slug} if letter.organisation else {}
    query["lang"] = letter.language
    return f"{settings.base_url}/a/{letter.appeal.slug}?{urlencode(query)}"


def confirm_token(settings: Settings, letter: Letter) -> str:
    return security.sign(settings.resolved_secret_key(), "confirm", letter.public_id)


def confirm_url(settings: Settings, letter: Letter) -> str:
    return f"{settings.base_url}/confirm/{confirm_token(settings, letter)}"


def _targets(appeal: Appeal, addresses: list[str], language: str) -> list[Address]:
    """The targets' mailboxes, named as the letter (in `language`) addresses them."""
    names = {t.email: appeals.target_text(t, language).name for t in appeal.targets if t.email}
    return [messages.mailbox(names.get(a, ""), a) for a in addresses]


def _supporter_text(template: str, language: str, **context: object) -> tuple[str, str]:
    """(subject, body) from an e-mail template's two blocks, in the supporter's language."""
    tmpl = mailtexts.make_environment(language).get_template(template)
    ctx = tmpl.new_context(context)
    subject = "".join(tmpl.blocks["subject"](ctx))
    body = "".join(tmpl.blocks["body"](tmpl.new_context(context)))
    return " ".join(subject.split()), body.strip("\n") + "\n"


def letter_attachment(letter: Letter, appeal: Appeal) -> Attachment:
    """The signed letter as a PDF attachment, named after the letter's public id."""
    content = pdf.render_letter(build.letter_doc(letter, appeal))
    return Attachment(filename=f"letter-{letter.public_id}.pdf", content=content)


def _fax_target(appeal: Appeal, delivery: Delivery) -> Target:
    for target in appeal.targets:
        if target.id == delivery.target_id:
            return target
    # The target was removed from the appeal after the letter was confirmed: the fax
    # still goes to the number it was planned for, addressed by number alone.
    number = build.fax_display(delivery.recipients[0])
    return Target(name=number, title="", organisation="", address="")


def fax_attachment(
    letter: Letter, appeal: Appeal, target: Target, *, number: str, settings: Settings
) -> Attachment:
    """The fax to `target` at `number`: a cover sheet, then the letter addressed to them."""
    contact = f"{settings.base_url}/a/{appeal.slug}"
    content = pdf.render_fax(
        build.letter_doc(letter, appeal, target=target, fax=number),
        build.fax_cover(letter, appeal, target, fax=number, contact=contact),
    )
    digits = build.fax_digits(number)
    return Attachment(filename=f"fax-{digits}-{letter.public_id}.pdf", content=content)


def _fax(delivery: Delivery, letter: Letter, appeal: Appeal, settings: Settings) -> Outgoing:
    """A fax: the PDF mailed to the gateway's address for the number, or for the fax folder
    addressed to the number itself, which the transports hand to the folder."""
    # The number the delivery was planned for, even if the target's has changed since:
    # the cover sheet must name the number the fax actually goes to.
    number = delivery.recipients[0]
    target = _fax_target(appeal, delivery)
    attachment = fax_attachment(letter, appeal, target, number=number, settings=settings)
    digits = build.fax_digits(number)
    to: list[Address] = []
    recipients = (f"+{digits}",)
    if settings.fax_gateway:
        gateway = settings.fax_gateway.replace("{number}", digits)
        to, recipients = [messages.plain(gateway)], (gateway,)
    sender = _return_address(settings, returns.BOUNCES, delivery) or settings.mail_from_address
    # From the campaign, with no Reply-To: the supporter's address never reaches a gateway
    # or a fax machine. The body stays empty because many gateways fax the body too, as a
    # page before the attachment.
    message = messages.build(
        subject=letter.subject,
        body="",
        from_name=appeals.in_language(appeal, letter.language).sender_name,
        from_address=sender,
        to=to,
        message_id=delivery.message_id,
        date=delivery.created_at,
        language=letter.language,
        attachments=(attachment,),
    )
    return Outgoing(message, sender, recipients, delivery.message_id, (attachment,))


def _to_targets(delivery: Delivery, letter: Letter, appeal: Appeal, settings: Settings) -> Outgoing:
    """The letter to its targets, Cc the campaign's copies, from the signer via the campaign;
    the PDF attached when the appeal asks."""
    sender_name = appeals.in_language(appeal, letter.language).sender_name
    sender = _return_address(settings, returns.BOUNCES, delivery) or settings.mail_from_address
    attachments = (letter_attachment(letter, appeal),) if appeal.attach_pdf else ()
    # Answers go to the supporter if they chose to share their address (unless it is
    # forgotten by now: a late retry); otherwise to the campaign's reply address for
    # this letter (never the supporter's address).
    reply_to: Address | None = None
    if letter.share_email and letter.signer_email:
        reply_to = messages.mailbox(letter.signer_name, letter.signer_email)
    elif reply_address := _return_address(settings, returns.REPLIES, delivery):
        reply_to = messages.mailbox(sender_name, reply_address)
    message = messages.build(
        subject=letter.subject,
        body=letter.body,
        from_name=messages.from_display(letter.signer_name, sender_name),
        from_address=sender,
        to=_targets(appeal, delivery.recipients, letter.language),
        cc=[messages.plain(a) for a in delivery.cc],
        reply_to=reply_to,
        message_id=delivery.message_id,
        date=delivery.created_at,
        language=letter.language,
        attachments=attachments,
    )
    if settings.postmark_webhook_auth:
        # Postmark's webhooks name a message by its own id and carry back only the
        # metadata it was sent with: the return token finds the letter.
        message["X-PM-Metadata-outcry"] = returns.token(settings.resolved_secret_key(), delivery.id)
    recipients = (*delivery.recipients, *delivery.cc)
    return Outgoing(message, sender, recipients, delivery.message_id, attachments)


# The e-mails to the supporter, each a template with a subject and a body block.
SUPPORTER_TEMPLATES = {
    Channel.confirmation: "email/confirmation.txt",
    Channel.copy: "email/copy.txt",
    Channel.rejection: "email/rejected.txt",
    Channel.reply_notice: "email/replied.txt",
}


def sample_attachments(
    letter: Letter, appeal: Appeal, *, settings: Settings
) -> tuple[Attachment, ...]:
    """What a test send carries: the letter's PDF if the e-mail to the targets would carry
    it, and the fax each target with a number would get, cover sheet and all."""
    attachments = [letter_attachment(letter, appeal)] if appeal.attach_pdf else []
    for target in appeal.targets:
        if target.fax:
            attachments.append(
                fax_attachment(letter, appeal, target, number=target.fax, settings=settings)
            )
    return tuple(attachments)


def _sample(delivery: Delivery, letter: Letter, appeal: Appeal, settings: Settings) -> Outgoing:
    """An organiser's test send: the target's e-mail as it will go out, addressed only to
    the organiser, with the real To, Cc and fax numbers named in a note above the letter."""
    sender = settings.mail_from_address
    attachments = sample_attachments(letter, appeal, settings=settings)
    to = _targets(appeal, [t.email for t in appeal.targets if t.email], letter.language)
    sender_name = appeals.in_language(appeal, letter.language).sender_name
    from_name = messages.from_display(letter.signer_name, sender_name)
    subject, note = _supporter_text(
        "email/sample.txt",
        letter.language,
        subject=letter.subject,
        organiser=", ".join(delivery.recipients),
        from_line=str(messages.mailbox(from_name, sender)),
        to_line=", ".join(str(a) for a in to),
        cc_line=", ".join(appeal.copies),
        faxes=[f"{t.name} {t.fax}" for t in appeal.targets if t.fax],
    )
    message = messages.build(
        subject=subject,
        body=f"{note}\n{letter.body}",
        from_name=from_name,
        from_address=sender,
        to=[messages.plain(a) for a in delivery.recipients],
        message_id=delivery.message_id,
        date=delivery.created_at,
        language=letter.language,
        attachments=attachments,
    )
    return Outgoing(message, sender, tuple(delivery.recipients), delivery.message_id, attachments)


def _to_supporter(
    delivery: Delivery, letter: Letter, appeal: Appeal, settings: Settings
) -> Outgoing:
    """One of the e-mails to the supporter (SUPPORTER_TEMPLATES), in their language."""
    sender = settings.mail_from_address
    shown = appeals.in_language(appeal, letter.language)
    subject, body = _supporter_text(
        SUPPORTER_TEMPLATES[delivery.channel],
        letter.language,
        appeal_title=shown.title,
        appeal_url=sign_again_url(settings, letter),
        signer_name=letter.signer_name,
        confirm_url=confirm_url(settings, letter),
        letter_url=letter_url(settings, letter),
        subject=letter.subject,
        body=letter.body,
        expires_days=settings.confirmation_days,
        forget_days=settings.forget_after_days,
        reason=letter.rejection_reason,
    )
    message = messages.build(
        subject=subject or shown.title,
        body=body,
        from_name=shown.sender_name,
        from_address=sender,
        to=[messages.mailbox(letter.signer_name, a) for a in delivery.recipients],
        message_id=delivery.message_id,
        date=delivery.created_at,
        language=letter.language,
    )
    return Outgoing(message, sender, tuple(delivery.recipients), delivery.message_id)


def _return_address(settings: Settings, kind: returns.Kind, delivery: Delivery) -> str | None:
    """The delivery's bounce or reply address, when a bounce domain is set."""
    if not settings.bounce_domain:
        return None
    secret = settings.resolved_secret_key()
    return returns.address(kind, secret, delivery.id, settings.bounce_domain)


Composer = Callable[[Delivery, Letter, Appeal, Settings], Outgoing]

# Each channel's message. A letter to a target (or its fax through a gateway) goes out with
# its own bounce address as envelope sender when OUTCRY_BOUNCE_DOMAIN is set; the others
# from OUTCRY_MAIL_FROM. From is the campaign's address either way.
COMPOSERS: dict[Channel, Composer] = {
    Channel.email: _to_targets,
    Channel.fax: _fax,
    Channel.sample: _sample,
    **dict.fromkeys(SUPPORTER_TEMPLATES, _to_supporter),
}


def outgoing(delivery: Delivery, letter: Letter, appeal: Appeal, *, settings: Settings) -> Outgoing:
    """The message and envelope for `delivery`, by its channel's composer (COMPOSERS)."""
    composer = COMPOSERS.get(delivery.channel)
    if composer is None:
        raise ValueError(f"no composer for channel {delivery.channel}")
    return composer(delivery, letter, appeal, settings)
