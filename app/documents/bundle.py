"""A union's bundle: the hand-over page, then every letter, written as it is laid out.

The hand-over page states how many pages the bundle has, which is known only once
every letter is laid out. So the letters are written first, as they are read, and the
hand-over page last, listed first in the page tree: the bundle still opens on it and
still streams in bounded memory, and the count it prints is the one a reader finds.
"""

import io
from collections.abc import Callable, Iterable, Iterator

from reportlab.lib.units import mm

from app.documents import text
from app.documents.data import Addressee, Handover, LetterDoc
from app.documents.labels import label
from app.documents.layout import (
    BODY,
    BODY_BOLD,
    HEADING,
    NOTE,
    TITLE,
    Align,
    Composer,
    frame_for,
)
from app.documents.letter import address_lines, lay_out_letter, page_label
from app.documents.writer import PdfWriter, Sink

_COUNT_COLUMN = 25 * mm


def write_bundle(out: Sink, handover: Handover, letters: Iterable[LetterDoc]) -> int:
    """Write the hand-over page and each letter from a new page to out; return pages."""
    writer = _writer(out, handover)
    for _ in _sections(writer, handover, letters):
        pass
    return writer.close()


def iter_bundle(
    handover: Handover, letters: Iterable[LetterDoc], *, chunk_size: int = 1 << 16
) -> Iterator[bytes]:
    """The bundle as chunks of bytes, produced while letters are read (for streaming)."""
    buffer = io.BytesIO()
    writer = _writer(buffer, handover)
    for _ in _sections(writer, handover, letters):
        if buffer.tell() >= chunk_size:
            yield _drain(buffer)
    writer.close()
    yield _drain(buffer)


def _drain(buffer: io.BytesIO) -> bytes:
    data = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return data


def _writer(out: Sink, handover: Handover) -> PdfWriter:
    return PdfWriter(out, title=text.one_line(handover.appeal_title), language=handover.language)


def _sections(
    writer: PdfWriter, handover: Handover, letters: Iterable[LetterDoc]
) -> Iterator[None]:
    letter_pages = 0
    for doc in letters:
        letter_pages += lay_out_letter(writer, doc).write(page_label(doc.language))
        yield
    frame = frame_for(handover.page_size)
    for position, content in enumerate(_handover_pages(writer, handover, letter_pages)):
        writer.add_page(frame.width, frame.height, content, position=position)
    yield


def _handover_pages(writer: PdfWriter, handover: Handover, letter_pages: int) -> list[bytes]:
    """The hand-over page(s), numbered and counted as pages of the whole bundle."""
    own = 1
    while True:
        c = Composer(writer, frame_for(handover.page_size))
        total = own + letter_pages
        compose_handover(c, handover, total_pages=total)
        pages = c.finish(_of_bundle(handover.language, total))
        # Its own length hardly depends on the count it prints; settle it in a pass or two.
        if len(pages) == own or own > 3:
            return pages
        own = len(pages)


def _of_bundle(language: str, total: int) -> Callable[[int, int], str]:
    """ "Page N of M" where M counts the whole bundle, not the section."""
    label_of = page_label(language)
    return lambda n, _section: label_of(n, total)


def compose_handover(c: Composer, handover: Handover, *, total_pages: int) -> None:
    """Set the hand-over page: the appeal, its targets, and what the bundle holds."""
    language = handover.language
    date = text.fit(text.one_line(handover.date), BODY.font, BODY.size, c.frame.inner / 2)
    c.draw(date, BODY, c.frame.left, c.y - HEADING.size, align=Align.RIGHT, width=c.frame.inner)
    c.line(label(language, "handover"), HEADING)
    c.skip(4 * mm)
    c.paragraph(text.one_line(handover.appeal_title), TITLE)
    c.skip(3 * mm)
    for paragraph in text.paragraphs(handover.summary):
        c.paragraph(paragraph, BODY)
        c.skip(BODY.leading / 3)
    if handover.targets:
        _heading(c, label(language, "addressed_to"))
        for target in handover.targets:
            _target(c, target)
    _heading(c, label(language, "letter_count") + f": {handover.letter_count}")
    c.paragraph(f"{label(language, 'bundle_pages')}: {total_pages}", BODY)
    first, last = text.one_line(handover.first_date), text.one_line(handover.last_date)
    if first and last and first != last:
        c.paragraph(label(language, "dates", first=first, last=last), BODY)
    elif first or last:
        c.paragraph(label(language, "one_date", date=first or last), BODY)
    _counts(c, label(language, "by_country"), handover.by_country)
    _counts(c, label(language, "by_union"), handover.by_organisation)


def _heading(c: Composer, value: str) -> None:
    c.skip(5 * mm)
    c.keep(HEADING.leading + 2 * BODY.leading)
    c.paragraph(value, HEADING)
    c.skip(1 * mm)


def _target(c: Composer, who: Addressee) -> None:
    lines = [
        (text.one_line(who.name), BODY_BOLD),
        (text.one_line(who.title), BODY),
        (text.one_line(who.organisation), BODY),
        (address_lines(who), NOTE),
    ]
    c.keep(sum(style.leading for value, style in lines if value))
    for value, style in lines:
        if value:
            c.paragraph(value, style)
    c.skip(2 * mm)


def _counts(c: Composer, title: str, rows: tuple[tuple[str, int], ...]) -> None:
    """A two-column list: name on the left (wrapped), its count right-aligned."""
    if not rows:
        return
    _heading(c, title)
    limit = c.frame.inner - _COUNT_COLUMN
    for name, count in rows:
        lines = text.wrap(text.one_line(name) or "—", BODY.font, BODY.size, limit)
        c.keep(len(lines) * BODY.leading if len(lines) < 4 else 2 * BODY.leading)
        c.draw(
            str(count), BODY, c.frame.left, c.y - BODY.size, align=Align.RIGHT, width=c.frame.inner
        )
        for line in lines:
            c.line(line, BODY)
