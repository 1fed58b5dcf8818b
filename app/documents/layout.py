"""Pages, styles and a composer that sets lines of text down a run of pages.

A composer lays out one *section* (a letter, a cover sheet, a hand-over page): it
keeps that section's pages until finish(), which stamps "Page N of M" on each, so
page numbers count within the section even inside a bundle of thousands.
Everything is black on white with no colour operators at all, and no text is
smaller than 10 pt, so the same pages go by fax.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.units import mm

from app.documents import fonts, text
from app.documents.writer import PdfWriter, pdf_number


class Align(Enum):
    LEFT = "left"
    RIGHT = "right"


@dataclass(frozen=True, slots=True)
class Style:
    font: str
    size: float
    leading: float


# Letters and everything bundled with them are set in PT Serif alone, so a letter
# embeds two faces; the forms (signature sheet) use PT Sans, which reads better small.
BODY = Style(fonts.SERIF, 11, 15)
BODY_BOLD = Style(fonts.SERIF_BOLD, 11, 15)
HEADING = Style(fonts.SERIF_BOLD, 13, 17)
TITLE = Style(fonts.SERIF_BOLD, 16, 20)
FOOTER = Style(fonts.SERIF, 10, 13)
NOTE = Style(fonts.SERIF, 10, 13)
LABEL = Style(fonts.SERIF_BOLD, 12, 16)
VALUE = Style(fonts.SERIF, 12, 16)
FAX_TITLE = Style(fonts.SERIF_BOLD, 36, 42)
FORM = Style(fonts.SANS, 10, 13)
FORM_BOLD = Style(fonts.SANS_BOLD, 10, 13)
FORM_BODY = Style(fonts.SANS, 11, 15)
FORM_TITLE = Style(fonts.SANS_BOLD, 16, 20)


@dataclass(frozen=True, slots=True)
class Frame:
    """A page and the area text may use: margins stay over 20 mm so a fax keeps them."""

    width: float
    height: float
    left: float = 25 * mm
    right: float = 22 * mm
    top: float = 22 * mm
    bottom: float = 32 * mm
    footer: float = 22 * mm  # baseline of the page number

    @property
    def inner(self) -> float:
        """Width of the text area."""
        return self.width - self.left - self.right

    @property
    def x_end(self) -> float:
        """Where the text area ends on the right."""
        return self.width - self.right


def frame_for(page_size: str) -> Frame:
    """The page for "A4" (default) or "letter" (US Letter)."""
    width, height = LETTER if page_size.strip().lower() in ("letter", "us-letter") else A4
    return Frame(float(width), float(height))


class Composer:
    """Sets text down the pages of one section; finish() returns the page streams."""

    def __init__(self, writer: PdfWriter, frame: Frame, *, footer: Style = FOOTER) -> None:
        self.writer = writer
        self.frame = frame
        self.footer = footer
        self._pages: list[list[bytes]] = []
        self.y = 0.0
        self.new_page()

    @property
    def room(self) -> float:
        """Height left above the bottom margin on the current page."""
        return self.y - self.frame.bottom

    @property
    def page_count(self) -> int:
        """Pages this section has so far."""
        return len(self._pages)

    @property
    def at_top(self) -> bool:
        """True when nothing has been set on the current page yet."""
        return self.y >= self.frame.height - self.frame.top

    def new_page(self) -> None:
        """Start a new page and put the cursor at its top margin."""
        self._pages.append([])
        self.y = self.frame.height - self.frame.top

    def skip(self, height: float) -> None:
        """Leave vertical space; space that runs off the page is not carried over."""
        # Stop at the margin rather than open a page: the next line opens one if it
        # comes, and a section that ends here gets no empty last page.
        self.y = max(self.y - height, self.frame.bottom)

    def keep(self, height: float) -> None:
        """Start a new page unless height still fits on this one."""
        if self.room < height and not self.at_top:
            self.new_page()

    def paragraph(
        self,
        value: str,
        style: Style,
        *,
        indent: float = 0.0,
        width: float | None = None,
        align: Align = Align.LEFT,
    ) -> None:
        """Wrap value (newlines are line breaks) and set it line by line."""
        limit = (width if width is not None else self.frame.inner - indent) or 1.0
        lines = text.wrap(value, style.font, style.size, limit)
        if len(lines) > 1:
            # Never leave a paragraph's first line alone at the foot of a page.
            self.keep(2 * style.leading)
        for line in lines:
            self.line(line, style, indent=indent, width=limit, align=align)

    def line(
        self,
        value: str,
        style: Style,
        *,
        indent: float = 0.0,
        width: float | None = None,
        align: Align = Align.LEFT,
    ) -> None:
        """Set one line that already fits, moving to a new page first if it does not."""
        if self.room < style.leading:
            self.new_page()
        x = self.frame.left + indent
        limit = width if width is not None else self.frame.inner - indent
        self.draw(value, style, x, self.y - style.size, align=align, width=limit)
        self.y -= style.leading

    def draw(
        self,
        value: str,
        style: Style,
        x: float,
        baseline: float,
        *,
        align: Align = Align.LEFT,
        width: float = 0.0,
    ) -> None:
        """Draw one line of text at a fixed place, without moving the cursor."""
        if not value:
            return
        if align is Align.RIGHT:
            x += width - text.width(value, style.font, style.size)
        run = self.writer.show(value, style.font, style.size)
        self._pages[-1].append(
            b"BT 1 0 0 1 %s %s Tm %s ET\n" % (pdf_number(x), pdf_number(baseline), run)
        )

    def rule(self, x1: float, y1: float, x2: float, y2: float, weight: float = 0.75) -> None:
        """A black line from (x1, y1) to (x2, y2)."""
        self._pages[-1].append(
            b"%s w %s %s m %s %s l S\n"
            % (pdf_number(weight), pdf_number(x1), pdf_number(y1), pdf_number(x2), pdf_number(y2))
        )

    def finish(self, page_label: Callable[[int, int], str] | None) -> list[bytes]:
        """The section's page streams, each numbered by page_label(n, total) if given."""
        total = len(self._pages)
        pages = []
        for n, ops in enumerate(self._pages, start=1):
            if page_label is not None:
                self._footer(ops, page_label(n, total))
            pages.append(b"".join(ops))
        self._pages = []
        return pages

    def _footer(self, ops: list[bytes], value: str) -> None:
        style = self.footer
        frame = self.frame
        value = text.fit(value, style.font, style.size, frame.inner)
        x = frame.x_end - text.width(value, style.font, style.size)
        run = self.writer.show(value, style.font, style.size)
        ops.append(b"BT 1 0 0 1 %s %s Tm %s ET\n" % (pdf_number(x), pdf_number(frame.footer), run))

    def write(self, page_label: Callable[[int, int], str] | None) -> int:
        """Finish the section and write its pages; return how many were written."""
        pages = self.finish(page_label)
        for content in pages:
            self.writer.add_page(self.frame.width, self.frame.height, content)
        return len(pages)
