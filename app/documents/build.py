"""The renderers' dataclasses from loaded rows: pure, no queries, no settings, no clock.

The delivery composer (fax and attached PDFs) and the documents service both use
these, so a letter looks the same whether it is faxed, attached or downloaded.
Nothing here reads the supporter's e-mail address: no PDF ever carries it.
"""

from __future__ import annotations

from datetime import datetime

import phonenumbers

from app.appeals import service as appeals
from app.core.text import country_name, localised_date
from app.documents.data import Addressee, FaxCover, LetterDoc, Signer
from app.models import Appeal, Letter, Target


def fax_display(number: str) -> str:
    """An E.164 number as people read it: "+77279000000" -> "+7 727 900 0000"."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL))


def fax_digits(number: str) -> str:
    """The number in E.164 without its "+", as fax gateways take it; ValueError if not one."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not an international fax number: {number!r}") from exc
    e164 = str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    return e164.removeprefix("+")


def addressee(target: Target, language: str, *, fax: str = "") -> Addressee:
    """A target as the PDFs address it in `language`; a fax number only on the fax itself."""
    shown = appeals.target_text(target, language)
    return Addressee(
        name=shown.name,
        title=shown.title,
        organisation=shown.organisation,
        address=shown.address,
        fax=fax_display(fax) if fax else "",
    )


def signed_on(letter: Letter) -> datetime:
    """When the letter counts as signed: its confirmation, else its creation."""
    return letter.confirmed_at or letter.created_at


def signed_in_body(body: str, name: str) -> bool:
    """True when the letter's text already ends with the signature (its last paragraph
    has the signer's name on a line of its own), as the e-mail templates write it."""
    name = " ".join(name.split())
    paragraphs = [p for p in body.replace("\r\n", "\n").split("\n\n") if p.strip()]
    if not name or not paragraphs:
        return False
    return any(" ".join(line.split()) == name for line in paragraphs[-1].split("\n"))


def signer(letter: Letter) -> Signer:
    """The signature block under the letter: empty when the text ends with it already,
    so the PDF prints exactly the text that was sent, and the name only once."""
    if signed_in_body(letter.body, letter.signer_name):
        return Signer(name="")
    return Signer(
        name=letter.signer_name,
        organisation=letter.signer_organisation,
        country_name=(
            country_name(letter.signer_country, letter.language) if letter.signer_country else ""
        ),
        city=letter.signer_city,
    )


def letter_doc(
    letter: Letter, appeal: Appeal, *, target: Target | None = None, fax: str = ""
) -> LetterDoc:
    """The signed letter, addressed to `target` (default: the appeal's first target) and,
    on a fax, to the number it is faxed to."""
    recipient = target or (appeal.targets[0] if appeal.targets else None)
    language = letter.language
    return LetterDoc(
        sender_name=appeals.in_language(appeal, language).sender_name,
        date=localised_date(signed_on(letter), language),
        recipient=(
            addressee(recipient, language, fax=fax) if recipient is not None else Addressee(name="")
        ),
        subject=letter.subject,
        body=letter.body,
        signer=signer(letter),
        language=letter.language,
        page_size=appeal.page_size,
    )


def fax_cover(
    letter: Letter, appeal: Appeal, target: Target, *, fax: str, contact: str
) -> FaxCover:
    """The cover sheet of a fax to `target` at number `fax`; `contact` is the campaign's,
    never the signer's."""
    language = letter.language
    return FaxCover(
        to_name=appeals.target_text(target, language).name,
        to_fax=fax_display(fax),
        from_name=appeals.in_language(appeal, language).sender_name,
        subject=letter.subject,
        from_contact=contact,
    )
