"""One-off pages: the fax cover sheet and the signature sheet for a meeting."""

from itertools import pairwise

from reportlab.lib.units import mm

from app.documents import text
from app.documents.data import FaxCover, SignatureSheet
from app.documents.labels import label
from app.documents.layout import (
    FAX_TITLE,
    FORM,
    FORM_BODY,
    FORM_BOLD,
    FORM_TITLE,
    LABEL,
    VALUE,
    Composer,
    Style,
)

# A cover sheet is one page whatever it is given, so each value gets a few lines at most.
_COVER_FIELDS = (("to", 3), ("fax_number", 1), ("from", 3), ("contact", 2), ("date", 1))
_COVER_SUBJECT_LINES = 6
_ROW = 10 * mm
_MIN_ROWS = 4
# Column shares of the signature table: No., name, union, country, signature.
_COLUMNS = (
    ("number", 0.07),
    ("name", 0.28),
    ("union", 0.24),
    ("country", 0.16),
    ("signature", 0.25),
)


def clipped(value: str, style: Style, limit: float, most: int) -> list[str]:
    """value wrapped to limit, at most `most` lines, the last ending in … when cut."""
    lines = list(text.wrap(value, style.font, style.size, limit))
    if len(lines) > most:
        lines = lines[:most]
        lines[-1] = text.fit(lines[-1] + " …", style.font, style.size, limit)
    return lines


def compose_cover(c: Composer, cover: FaxCover, *, date: str, pages: int, language: str) -> None:
    """Set a one-page fax cover sheet stating the fax's total page count."""
    c.line(label(language, "fax"), FAX_TITLE)
    c.rule(c.frame.left, c.y, c.frame.x_end, c.y, weight=2)
    c.skip(8 * mm)
    values = {
        "to": cover.to_name,
        "fax_number": cover.to_fax,
        "from": cover.from_name,
        "contact": cover.from_contact,
        "date": date,
    }
    keys = [key for key, _ in _COVER_FIELDS] + ["pages", "subject"]
    captions = {key: label(language, key) + ":" for key in keys}
    column = max(text.width(v, LABEL.font, LABEL.size) for v in captions.values()) + 6 * mm
    limit = c.frame.inner - column
    for key, most in _COVER_FIELDS:
        lines = clipped(text.one_line(values[key]), VALUE, limit, most)
        if lines != [""]:
            _field(c, captions[key], lines, column)
    _field(c, captions["pages"], [label(language, "pages_value", n=pages)], column)
    c.skip(4 * mm)
    c.rule(c.frame.left, c.y, c.frame.x_end, c.y)
    c.skip(6 * mm)
    subject = clipped(text.one_line(cover.subject), VALUE, limit, _COVER_SUBJECT_LINES)
    _field(c, captions["subject"], subject, column)


def _field(c: Composer, caption: str, lines: list[str], column: float) -> None:
    c.draw(caption, LABEL, c.frame.left, c.y - LABEL.size)
    for line in lines:
        c.line(line, VALUE, indent=column)
    c.skip(3 * mm)


def compose_signature_sheet(c: Composer, sheet: SignatureSheet, *, pages: int) -> None:
    """Set the appeal, then numbered rows to sign until `pages` pages carry rows."""
    language = sheet.language
    c.paragraph(text.one_line(sheet.title), FORM_TITLE)
    c.skip(3 * mm)
    for paragraph in text.paragraphs(sheet.summary):
        c.paragraph(paragraph, FORM_BODY)
        c.skip(FORM_BODY.leading / 3)
    recipients = [text.one_line(line) for line in sheet.recipient_lines]
    if any(recipients):
        c.skip(2 * mm)
        c.line(label(language, "to") + ":", FORM_BOLD)
        for line in recipients:
            c.paragraph(line, FORM, indent=4 * mm)
    c.skip(5 * mm)
    running = text.fit(
        f"{text.one_line(sheet.title)} {label(language, 'continued')}",
        FORM.font,
        FORM.size,
        c.frame.inner,
    )
    number = 0
    for page in range(max(1, pages)):
        if page or c.room < _MIN_ROWS * _ROW + 2 * FORM_BOLD.leading:
            c.new_page()
            c.line(running, FORM)
            c.skip(2 * mm)
        number = _table(c, language, number)


def _table(c: Composer, language: str, number: int) -> int:
    """Fill the rest of the page with rows numbered after `number`; return the last."""
    frame = c.frame
    edges = [frame.left]
    for _, share in _COLUMNS:
        edges.append(edges[-1] + share * frame.inner)
    heads = [
        text.wrap(label(language, key), FORM_BOLD.font, FORM_BOLD.size, right - left - 2 * mm)
        for (key, _), (left, right) in zip(_COLUMNS, pairwise(edges), strict=True)
    ]
    top = c.y
    for lines, x in zip(heads, edges, strict=False):
        for i, line in enumerate(lines):
            baseline = top - 1.5 * mm - FORM_BOLD.size - i * FORM_BOLD.leading
            c.draw(line, FORM_BOLD, x + 1 * mm, baseline)
    c.y -= max(len(lines) for lines in heads) * FORM_BOLD.leading + 3 * mm
    head_bottom = c.y
    while c.room >= _ROW:
        number += 1
        c.draw(str(number), FORM, edges[0] + 1 * mm, c.y - _ROW + 3 * mm)
        c.y -= _ROW
        c.rule(frame.left, c.y, frame.x_end, c.y, weight=0.5)
    for x in edges:
        c.rule(x, top, x, c.y, weight=0.5)
    c.rule(frame.left, top, frame.x_end, top)
    c.rule(frame.left, head_bottom, frame.x_end, head_bottom)
    return number
