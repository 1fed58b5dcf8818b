"""Supporter text is data: markup, exploits and junk come out as text and never raise."""

import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from app.documents import text
from app.documents.pdf import (
    Addressee,
    FaxCover,
    Handover,
    SignatureSheet,
    Signer,
    render_blank_letter,
    render_fax,
    render_letter,
    render_signature_sheet,
    write_bundle,
)
from tests.documents.helpers import all_text, make_letter, squash

CANARY = "{canary}"
# The published proof of concept for CVE-2023-33733 (reportlab's <font color> eval),
# with its command pointed at a file the test can look for.
CVE_2023_33733 = (
    "<para><font color=\"[[[getattr(pow, Word('__globals__'))['os'].system('touch "
    + CANARY
    + "') for Word in [ orgTypeFun( 'Word', (str,), { 'mutated': 1, 'startswith': lambda "
    "self, x: 1 == 0, '__eq__': lambda self, x: self.mutate() and self.mutated < 0 and "
    "str(self) == x, 'mutate': lambda self: { setattr(self, 'mutated', self.mutated - 1) "
    "}, '__hash__': lambda self: hash(str(self)), }, ) ] ] for orgTypeFun in "
    "[type(type(1))] for none in [[].append(1)]]] and 'red'\">\n exploit\n</font></para>"
)
HOSTILE = {
    "cve-2023-33733": CVE_2023_33733,
    "reportlab-markup": (
        '<font color="red" size="40">big red</font> <b>bold</b> <para>para</para> '
        '<img src="/etc/passwd" width="100" height="100"/> <a href="javascript:x()">a</a> '
        "<br/> <seq id='x'/> &amp; &lt; &#x41; &nbsp; &unknown;"
    ),
    "html": "<script>alert('x')</script><h1>Hi</h1><!-- comment --> \"quoted\" 'single'",
    "pdf-syntax": "(unbalanced ) \\ ) endstream endobj %%EOF trailer << /JS (x) >>",
    "format-strings": "{n} {m} {0} %s %d %(name)s {__class__}",
    "long-word": "A" * 500,
    "long-url": "https://example.org/" + "x" * 480,
    "cyrillic-long-word": "Ж" * 5000,
    "rtl": "مرحبا بالعالم שלום עולם Solidarity",
    "bidi-override": "\u202eevil\u202c text \u200fmark",
    "zero-width": "Sol\u200bidar\u200city\u200d \ufeffunion\u2060",
    "emoji": "✊🏽 Solidarity ❤️ 👩‍👩‍👧 forever",
    "controls": "".join(chr(c) for c in range(32)) + "\x7f\x85\x9b text after controls",
    "lone-surrogate": "bad \ud800 surrogate",
    "odd-newlines": "one\r\ntwo\rthree\u2028four\u2029five\x0b\x0csix",
    "whitespace-only": "   \n\n \t ",
    "empty": "",
    "fifty-thousand": "Solidarity forever, the union makes us strong! " * 1064,
}


def visible(value: str) -> str:
    """What a reader can expect to find: all of the cleaned text. Characters PT Serif
    lacks are drawn from a fallback face, those no face has as a mark like [U+1F600]."""
    return squash(text.clean(value))


def extracted(data: bytes) -> str:
    # Page footers land inside text that runs across a page break; take them out.
    return re.sub(r"Page\d+of\d+", "", squash(all_text(data)).replace("\x00", ""))


def letter_with(value: str) -> bytes:
    who = Signer(name=value, organisation=value, country_name=value, city=value)
    target = Addressee(value, value, value, value, value)
    return render_letter(
        make_letter(subject=value, body=value, signer=who, recipient=target, sender_name=value)
    )


def blank_with(value: str) -> bytes:
    return render_blank_letter(make_letter(subject=value, body=value))


def fax_with(value: str) -> bytes:
    cover = FaxCover(value, value, value, value, value)
    return render_fax(make_letter(body=value, signer=Signer(value)), cover)


def sheet_with(value: str) -> bytes:
    return render_signature_sheet(SignatureSheet(value, value, (value, value)), pages=2)


def bundle_with(value: str) -> bytes:
    handover = Handover(
        appeal_title=value,
        summary=value,
        targets=(Addressee(value, value, value, value, value),),
        letter_count=2,
        by_country=((value, 1), ("Kazakhstan", 1)),
        by_organisation=((value, 2),),
        first_date=value,
        last_date=value,
        date=value,
    )
    out = io.BytesIO()
    write_bundle(out, handover, [make_letter(body=value), make_letter(signer=Signer(value))])
    return out.getvalue()


RENDERERS: dict[str, Callable[[str], bytes]] = {
    "letter": letter_with,
    "blank": blank_with,
    "fax": fax_with,
    "sheet": sheet_with,
    "bundle": bundle_with,
}


@pytest.mark.parametrize("kind", RENDERERS)
@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_text_is_printed_as_text(case: str, kind: str, tmp_path: Path) -> None:
    canary = tmp_path / "exploited"
    value = HOSTILE[case].replace(CANARY, str(canary))

    data = RENDERERS[kind](value)

    found = extracted(data)
    if case == "rtl":
        # Drawn in the order typed (Outcry does no bidi reordering yet) and read back by
        # pypdf as right-to-left runs: each word is there, one way round or the other.
        for word in text.clean(value).split():
            assert word in found or word[::-1] in found, word
    else:
        assert visible(value) in found
    assert not canary.exists()


def test_cve_payload_is_there_to_read_and_ran_nothing(tmp_path: Path) -> None:
    canary = tmp_path / "exploited"
    payload = CVE_2023_33733.replace(CANARY, str(canary))

    found = extracted(letter_with(payload))

    assert squash("<font color=\"[[[getattr(pow, Word('__globals__'))['os'].system(") in found
    assert squash(f"touch {canary}") in found
    assert not canary.exists()


def test_markup_is_not_interpreted() -> None:
    found = all_text(render_letter(make_letter(body='<b>bold</b> <font color="red">x</font>')))

    assert '<b>bold</b> <font color="red">x</font>' in found


def test_controls_are_stripped_but_lines_and_tabs_kept() -> None:
    assert text.clean("a\x00b\x1bc\td\ne\x7ff") == "abc d\nef"


def test_fifty_thousand_characters_flow_over_many_pages() -> None:
    data = render_letter(make_letter(body=HOSTILE["fifty-thousand"]))

    assert len(all_text(data)) > 50_000
    assert all_text(data).count("Page ") >= 10
