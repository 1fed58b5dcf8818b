"""Reading Outcry's PDFs back the way a person would: as text and as pictures."""

import io
import re
import subprocess
from pathlib import Path

from PIL import Image
from pypdf import PdfReader
from pypdf.generic import ContentStream

from app.documents.pdf import Addressee, LetterDoc, Signer

KAZAKH = "ӘҒҚҢӨҰҮҺІ әғқңөұүһі"
APPEAL = (
    "On October 17, Yerzhan Yelshibaev, the leader of the unemployed movement of "
    "Zhanaozen and the Mangystau region, was sentenced to five years in a fabricated "
    "case. During the trial, the victim and witnesses did not recognize him as an "
    "attacker and refused claims, however, the judge decided to send the famous public "
    "figure to jail. All representatives of trade unions and social movements consider "
    "the verdict to be political violence designed to intimidate local residents and "
    "oil workers."
)


def make_letter(**overrides: object) -> LetterDoc:
    """A realistic signed letter; any field can be replaced."""
    fields: dict[str, object] = {
        "sender_name": "Kazakhstan Solidarity Campaign",
        "date": "23 November 2026",
        "recipient": Addressee(
            name="Kassym-Jomart Tokayev",
            title="President of the Republic of Kazakhstan",
            organisation="Akorda",
            address="Mangilik El 6\nAstana 010000\nKazakhstan",
            fax="+7 7172 74 56 31",
        ),
        "subject": "Stop the persecution of trade unionists in Kazakhstan",
        "body": (
            "Dear President Tokayev,\n\n"
            "We call on you to release Yerzhan Yelshibaev and to end the persecution "
            "of independent trade unions.\n\n"
            "Yours sincerely,"
        ),
        "signer": Signer(
            name="Maria Okonkwo",
            organisation="Unite the Union",
            country_name="United Kingdom",
            city="Leeds",
        ),
    }
    fields.update(overrides)
    return LetterDoc(**fields)  # type: ignore[arg-type]


def long_body(paragraphs: int = 12) -> str:
    """An appeal long enough to need more than one page."""
    return "\n\n".join(f"{n}. {APPEAL}" for n in range(1, paragraphs + 1))


def reader(data: bytes) -> PdfReader:
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    return PdfReader(io.BytesIO(data), strict=True)


def page_texts(data: bytes) -> list[str]:
    return [page.extract_text() for page in reader(data).pages]


def all_text(data: bytes) -> str:
    return "\n".join(page_texts(data))


def squash(value: str) -> str:
    """Text without any whitespace: line breaks fall where the layout chose."""
    return "".join(value.split())


def operations(data: bytes) -> list[tuple[list[object], bytes]]:
    """Every content-stream operation of every page, as (operands, operator)."""
    pdf = reader(data)
    ops: list[tuple[list[object], bytes]] = []
    for page in pdf.pages:
        ops.extend(ContentStream(page.get_contents(), pdf).operations)
    return ops


def render_png(data: bytes, folder: Path, name: str) -> list[Path]:
    """Render each page with pdftoppm -r 50, as a person would look at it."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"{name}.pdf"
    source.write_bytes(data)
    subprocess.run(
        ["pdftoppm", "-r", "50", "-png", str(source), str(folder / name)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    pattern = re.compile(rf"{re.escape(name)}-\d+\.png")
    return sorted(p for p in folder.iterdir() if pattern.fullmatch(p.name))


def ink(png: Path) -> float:
    """Share of the page's pixels that are clearly not white."""
    with Image.open(png) as image:
        grey = image.convert("L")
        histogram = grey.histogram()
    return sum(histogram[:200]) / (grey.width * grey.height)


def colours(png: Path) -> set[tuple[int, ...]]:
    """The distinct RGB colours in the picture."""
    with Image.open(png) as image:
        found = image.convert("RGB").getcolors(maxcolors=1 << 24)
    return {tuple(colour) for _, colour in found or [] if isinstance(colour, tuple)}
