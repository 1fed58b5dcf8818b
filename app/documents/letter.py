"""The letter itself: letterhead, date, recipient, subject, body and signature."""

from collections.abc import Callable

from reportlab.lib.units import mm

from app.documents import text
from app.documents.data import Addressee, LetterDoc, Signer
from app.documents.labels import label
from app.documents.layout import BODY, BODY_BOLD, HEADING, Align, Composer, Style

_FIELD_ROW = 11 * mm


def page_label(language: str) -> Callable[[int, int], str]:
    """The "Page N of M" footer in language."""
    return lambda n, total: label(language, "page", n=n, m=total)


def compose_letter(c: Composer, doc: LetterDoc, *, blank: bool = False) -> None:
    """Set a letter on the composer; blank leaves signer fields and date to fill by hand."""
    c.paragraph(text.one_line(doc.sender_name), HEADING)
    c.rule(c.frame.left, c.y - 1 * mm, c.frame.x_end, c.y - 1 * mm)
    c.skip(5 * mm)
    if not blank and doc.date:
        c.paragraph(text.one_line(doc.date), BODY, align=Align.RIGHT)
    c.skip(6 * mm)
    _recipient(c, doc.recipient, doc.language)
    c.skip(8 * mm)
    c.keep(4 * BODY.leading)
    c.paragraph(text.one_line(doc.subject), BODY_BOLD)
    c.skip(5 * mm)
    for paragraph in text.paragraphs(doc.body):
        c.paragraph(paragraph, BODY)
        c.skip(BODY.leading / 2)
    c.skip(6 * mm)
    if blank:
        _blank_signer(c, doc.language)
    else:
        _signer(c, doc.signer)


def _block(c: Composer, lines: list[tuple[str, Style]]) -> None:
    """Set short lines kept together on one page when they fit on one."""
    lines = [(value, style) for value, style in lines if value]
    c.keep(sum(style.leading for _, style in lines))
    for value, style in lines:
        c.paragraph(value, style)


def _recipient(c: Composer, who: Addressee, language: str) -> None:
    fax = text.one_line(who.fax)
    _block(
        c,
        [
            (text.one_line(who.name), BODY_BOLD),
            (text.one_line(who.title), BODY),
            (text.one_line(who.organisation), BODY),
            (text.lines(who.address), BODY),
            (f"{label(language, 'fax')}: {fax}" if fax else "", BODY),
        ],
    )


def _signer(c: Composer, signer: Signer) -> None:
    place = ", ".join(
        p for p in (text.one_line(signer.city), text.one_line(signer.country_name)) if p
    )
    _block(
        c,
        [
            (text.one_line(signer.name), BODY_BOLD),
            (text.one_line(signer.organisation), BODY),
            (place, BODY),
        ],
    )


def _blank_signer(c: Composer, language: str) -> None:
    """Labelled lines for a hand-signed copy: name, union, country, signature, date."""
    keys = ("name", "union", "country", "signature", "date")
    c.keep(len(keys) * _FIELD_ROW)
    left, end = c.frame.left, c.frame.x_end
    for key in keys:
        c.keep(_FIELD_ROW)
        baseline = c.y - _FIELD_ROW + 2 * mm
        caption = label(language, key) + ":"
        c.draw(caption, BODY, left, baseline)
        start = left + max(30 * mm, text.width(caption, BODY.font, BODY.size) + 3 * mm)
        c.rule(start, baseline - 1, end, baseline - 1, weight=0.5)
        c.y -= _FIELD_ROW
