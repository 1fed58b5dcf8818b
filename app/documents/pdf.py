"""Outcry's PDFs: pure functions from the dataclasses in data.py to PDF bytes.

No database, settings or clock in here; supporter text is cleaned and drawn as
literal strings (see text.py), never parsed as reportlab markup.
"""

import io

from app.documents import text
from app.documents.bundle import iter_bundle, write_bundle
from app.documents.data import (
    Addressee,
    FaxCover,
    Handover,
    LetterDoc,
    SignatureSheet,
    Signer,
)
from app.documents.layout import FORM, Composer, frame_for
from app.documents.letter import lay_out_letter, page_label
from app.documents.sheets import compose_cover, compose_signature_sheet
from app.documents.writer import PdfWriter

__all__ = [
    "Addressee",
    "FaxCover",
    "Handover",
    "LetterDoc",
    "SignatureSheet",
    "Signer",
    "iter_bundle",
    "render_blank_letter",
    "render_fax",
    "render_letter",
    "render_signature_sheet",
    "write_bundle",
]


def render_letter(doc: LetterDoc) -> bytes:
    """The signed letter as a PDF."""
    return _letter(doc, blank=False)


def render_blank_letter(doc: LetterDoc) -> bytes:
    """The letter to sign by hand: blank lines for name, union, country, signature, date."""
    return _letter(doc, blank=True)


def _letter(doc: LetterDoc, *, blank: bool) -> bytes:
    out = io.BytesIO()
    writer = PdfWriter(out, title=text.one_line(doc.subject), language=doc.language)
    lay_out_letter(writer, doc, blank=blank).write(page_label(doc.language))
    writer.close()
    return out.getvalue()


def render_fax(doc: LetterDoc, cover: FaxCover) -> bytes:
    """A cover sheet stating the total page count, then the letter, ready to fax."""
    out = io.BytesIO()
    writer = PdfWriter(out, title=text.one_line(doc.subject), language=doc.language)
    frame = frame_for(doc.page_size)
    letter_pages = lay_out_letter(writer, doc).finish(page_label(doc.language))
    front = Composer(writer, frame)
    compose_cover(front, cover, date=doc.date, pages=1 + len(letter_pages), language=doc.language)
    front.write(None)
    for content in letter_pages:
        writer.add_page(frame.width, frame.height, content)
    writer.close()
    return out.getvalue()


def render_signature_sheet(sheet: SignatureSheet, *, pages: int = 1) -> bytes:
    """The appeal and numbered rows to sign (No., name, union, country, signature)."""
    if pages < 1:
        raise ValueError(f"a signature sheet needs at least one page of rows, not {pages}")
    out = io.BytesIO()
    writer = PdfWriter(out, title=text.one_line(sheet.title), language=sheet.language)
    c = Composer(writer, frame_for(sheet.page_size), footer=FORM)
    compose_signature_sheet(c, sheet, pages=pages)
    c.write(page_label(sheet.language))
    writer.close()
    return out.getvalue()
