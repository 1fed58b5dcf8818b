"""The letter itself: letterhead, date, recipient, subject, body and signature.

A letter keeps its closing ("Yours sincerely,", "С уважением,") on the same page as
the signature under it: a name alone at the top of page 2 reads as a forgery, and a
union handing letters over cannot staple a signature to nothing. A letter that runs
onto a second page only by its last lines is set again with tighter spacing, so a
one-page text stays a one-page letter, fax and blank form.
"""

from collections.abc import Callable
from dataclasses import dataclass

from reportlab.lib.units import mm

from app.documents import text
from app.documents.data import Addressee, LetterDoc, Signer
from app.documents.labels import label
from app.documents.layout import BODY, BODY_BOLD, HEADING, Align, Composer, Style, frame_for
from app.documents.writer import PdfWriter


@dataclass(frozen=True, slots=True)
class _Spacing:
    body: Style
    bold: Style
    space: float  # share of the usual space between the letter's parts
    field_row: float  # height of a line to write on in the blank letter


_USUAL = _Spacing(BODY, BODY_BOLD, 1.0, 11 * mm)
# For a letter that spills onto a page only by its last lines: what it takes to keep
# a one-page text on one page, still readable and still wide enough to write on by fax.
_TIGHT = _Spacing(
    Style(BODY.font, BODY.size, BODY.size * 1.27),
    Style(BODY_BOLD.font, BODY_BOLD.size, BODY_BOLD.size * 1.27),
    0.5,
    9 * mm,
)
# The blank letter's lines to fill in by hand: (left, right) pairs per row.
_BLANK_ROWS = (("name", "union"), ("country", "date"), ("signature", None))
# The last lines of the paragraph above the signature that go with it to a new page.
_CLOSING_LINES = 2


def page_label(language: str) -> Callable[[int, int], str]:
    """The "Page N of M" footer in language."""
    return lambda n, total: label(language, "page", n=n, m=total)


def lay_out_letter(writer: PdfWriter, doc: LetterDoc, *, blank: bool = False) -> Composer:
    """The letter set on a composer (not yet written): with the usual spacing, or with
    tighter spacing when that saves a page."""
    c = Composer(writer, frame_for(doc.page_size))
    compose_letter(c, doc, blank=blank)
    if c.page_count > 1:
        tight = Composer(writer, frame_for(doc.page_size))
        compose_letter(tight, doc, blank=blank, tight=True)
        if tight.page_count < c.page_count:
            return tight
    return c


def compose_letter(
    c: Composer, doc: LetterDoc, *, blank: bool = False, tight: bool = False
) -> None:
    """Set a letter on the composer; blank leaves signer fields and date to fill by hand;
    tight sets it closer (see _TIGHT)."""
    s = _TIGHT if tight else _USUAL
    c.paragraph(text.one_line(doc.sender_name), HEADING)
    c.rule(c.frame.left, c.y - 1 * mm, c.frame.x_end, c.y - 1 * mm)
    c.skip(5 * mm * s.space)
    if not blank and doc.date:
        c.paragraph(text.one_line(doc.date), s.body, align=Align.RIGHT)
    c.skip(6 * mm * s.space)
    _recipient(c, doc.recipient, doc.language, s)
    c.skip(8 * mm * s.space)
    c.keep(4 * s.body.leading)
    c.paragraph(text.one_line(doc.subject), s.bold)
    c.skip(5 * mm * s.space)
    gap = s.body.leading / 2 * s.space
    paragraphs = text.paragraphs(doc.body)
    # The text ends with its own signature (name, union, town) unless a block is set under it.
    signed_in_text = not blank and not doc.signer.name and len(paragraphs) > 1
    signature = _wrap(c, paragraphs.pop(), s.body) if signed_in_text else ()
    closing = paragraphs.pop() if paragraphs else ""
    for paragraph in paragraphs:
        c.paragraph(paragraph, s.body)
        c.skip(gap)
    if blank:
        after, below = 6 * mm * s.space, len(_BLANK_ROWS) * s.field_row
    elif signature:
        after, below = gap, len(signature) * s.body.leading
    else:
        after, below = 6 * mm * s.space, _height(c, _signer_lines(doc.signer, s))
    _closing(c, closing, after + below, s.body)
    c.skip(after)
    if blank:
        _blank_signer(c, doc.language, s)
    elif signature:
        for line in signature:
            c.line(line, s.body)
    else:
        for value, style in _signer_lines(doc.signer, s):
            c.paragraph(value, style)


def _wrap(c: Composer, value: str, style: Style) -> tuple[str, ...]:
    return text.wrap(value, style.font, style.size, c.frame.inner) if value else ()


def _closing(c: Composer, paragraph: str, below: float, style: Style) -> None:
    """Set the paragraph above the signature, its last lines kept with what comes below."""
    lines = _wrap(c, paragraph, style)
    head, tail = lines[:-_CLOSING_LINES], lines[-_CLOSING_LINES:]
    if len(head) > 1:
        c.keep(2 * style.leading)
    for line in head:
        c.line(line, style)
    # One test for the whole group: if it does not fit, all of it starts the next page.
    c.keep(len(tail) * style.leading + below)
    for line in tail:
        c.line(line, style)


def _height(c: Composer, lines: list[tuple[str, Style]]) -> float:
    """How much height these paragraphs take, wrapped to the text width."""
    return sum(
        len(text.wrap(value, style.font, style.size, c.frame.inner)) * style.leading
        for value, style in lines
        if value
    )


def _block(c: Composer, lines: list[tuple[str, Style]]) -> None:
    """Set short lines kept together on one page when they fit on one."""
    lines = [(value, style) for value, style in lines if value]
    c.keep(_height(c, lines))
    for value, style in lines:
        c.paragraph(value, style)


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def address_lines(who: Addressee) -> str:
    """The postal address without lines that repeat the name, title or organisation
    printed just above it (an organiser often writes the company into both)."""
    above = [value for value in (who.name, who.title, who.organisation) if value.strip()]
    kept = [
        line
        for line in text.lines(who.address).split("\n")
        if not any(_same(line, value) for value in above)
    ]
    return "\n".join(kept)


def _recipient(c: Composer, who: Addressee, language: str, s: _Spacing) -> None:
    fax = text.one_line(who.fax)
    _block(
        c,
        [
            (text.one_line(who.name), s.bold),
            (text.one_line(who.title), s.body),
            (text.one_line(who.organisation), s.body),
            (address_lines(who), s.body),
            (f"{label(language, 'fax')}: {fax}" if fax else "", s.body),
        ],
    )


def _signer_lines(signer: Signer, s: _Spacing) -> list[tuple[str, Style]]:
    place = ", ".join(
        p for p in (text.one_line(signer.city), text.one_line(signer.country_name)) if p
    )
    lines = [
        (text.one_line(signer.name), s.bold),
        (text.one_line(signer.organisation), s.body),
        (place, s.body),
    ]
    return [(value, style) for value, style in lines if value]


def _blank_signer(c: Composer, language: str, s: _Spacing) -> None:
    """Labelled lines for a hand-signed copy: name and union, country and date, signature."""
    row = s.field_row
    c.keep(len(_BLANK_ROWS) * row)
    half = (c.frame.inner - 8 * mm) / 2
    for left_key, right_key in _BLANK_ROWS:
        c.keep(row)
        baseline = c.y - row + 2 * mm
        _field(
            c,
            left_key,
            c.frame.left,
            c.frame.left + half if right_key else c.frame.x_end,
            baseline,
            language,
            s.body,
        )
        if right_key:
            _field(c, right_key, c.frame.x_end - half, c.frame.x_end, baseline, language, s.body)
        c.y -= row


def _field(
    c: Composer, key: str, left: float, end: float, baseline: float, language: str, style: Style
) -> None:
    """A caption and a line to write on, from left to end."""
    caption = label(language, key) + ":"
    c.draw(caption, style, left, baseline)
    start = left + text.width(caption, style.font, style.size) + 2 * mm
    c.rule(start, baseline - 1, end, baseline - 1, weight=0.5)
