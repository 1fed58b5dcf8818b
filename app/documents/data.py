"""What the renderers take: plain frozen data, built by the caller from the database.

Every string is printed as it is (after cleaning); dates arrive already formatted
in the document's language, so the renderers need no clock and no locale.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Addressee:
    """A target of the appeal."""

    name: str
    title: str = ""
    organisation: str = ""
    address: str = ""  # multi-line postal address
    fax: str = ""  # display form, e.g. "+7 727 277 98 91"


@dataclass(frozen=True, slots=True)
class Signer:
    name: str
    organisation: str = ""  # the signer's union
    country_name: str = ""  # already localised
    city: str = ""


@dataclass(frozen=True, slots=True)
class LetterDoc:
    sender_name: str  # the campaign, e.g. "Kazakhstan Solidarity Campaign"
    date: str  # localised, e.g. "23 ноября 2026 г."
    recipient: Addressee
    subject: str
    body: str  # plain text, paragraphs separated by blank lines
    signer: Signer
    language: str = "en"  # picks the printed labels, see labels.py
    page_size: str = "A4"  # "A4" or "letter"


@dataclass(frozen=True, slots=True)
class FaxCover:
    to_name: str
    to_fax: str
    from_name: str
    subject: str
    from_contact: str = ""  # e.g. a reply address or the campaign's web address


@dataclass(frozen=True, slots=True)
class SignatureSheet:
    title: str
    summary: str
    recipient_lines: tuple[str, ...] = ()  # one line per target, printed after "To"
    language: str = "en"
    page_size: str = "A4"


@dataclass(frozen=True, slots=True)
class Handover:
    """First page(s) of a union's bundle, handed in with the letters at an embassy."""

    appeal_title: str
    summary: str
    targets: tuple[Addressee, ...]
    letter_count: int
    by_country: tuple[tuple[str, int], ...]  # (localised country name, n), sorted by caller
    by_organisation: tuple[tuple[str, int], ...]
    first_date: str  # the date range of the letters, localised
    last_date: str
    date: str  # today's date, localised
    language: str = "en"
    page_size: str = "A4"
