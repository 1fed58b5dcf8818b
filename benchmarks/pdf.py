# WeasyPrint (the peer) needs Debian's pango:
#   apt-get install -y libpango-1.0-0 libpangoft2-1.0-0
"""PDF rendering figures: Outcry against WeasyPrint and reportlab's own layout.

    .venv/bin/python benchmarks/pdf.py [--letters 10000]

Prints, from one run:
- the median time for one letter PDF, Outcry vs WeasyPrint rendering the same letter
  from equivalent HTML with the same fonts (each iteration a different signer and
  message; "cold" clears Outcry's per-process caches before every letter);
- a bundle of --letters letters streamed to a file in a child process: wall time and
  the child's own peak RSS;
- the same 1,000 letters as one bundle by Outcry and by reportlab's platypus
  (SimpleDocTemplate), each in a child process: time per letter and peak RSS.
"""

import argparse
import html
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Only the plain dataclasses here: the renderers (reportlab) and WeasyPrint are imported
# in child processes, because on Linux a child's peak RSS starts from its parent's.
from app.documents.data import Addressee, Handover, LetterDoc, Signer

BODY = """Dear President Tokayev,

On October 17, Yerzhan Yelshibaev, the leader of the unemployed movement of Zhanaozen and \
the Mangystau region, was sentenced to five years in a fabricated case. During the trial, \
the victim and witnesses did not recognize him as an attacker and refused claims, however, \
the judge decided to send the famous public figure to jail.

A day earlier, the Al-Farabi district court of Shymkent sent Yerzhan Baltabay, the former \
head of the Decent Work local union, to a pre-trial detention centre. More than two hundred \
workers of the Kezby service company rallied at the Akimat of Zhanaozen demanding an end to \
the persecution of the leaders and activists of their independent trade union.

We, trade unionists from around the world, call on you to release Yerzhan Yelshibaev and \
Yerzhan Baltabay, to end the persecution of independent trade unions, and to respect the \
right of workers to organise, to bargain collectively and to strike, as Kazakhstan has \
undertaken to do under the conventions of the International Labour Organization.

Yours sincerely,"""
TARGET = Addressee(
    "Kassym-Jomart Tokayev",
    "President of the Republic of Kazakhstan",
    "Akorda",
    "Mangilik El 6\nAstana 010000\nKazakhstan",
    "+7 7172 74 56 31",
)
COUNTRIES = ("United Kingdom", "Россия", "Қазақстан", "Deutschland", "France")


def letter(n: int, *, repeat: int = 1) -> LetterDoc:
    """The n-th supporter's letter: same appeal, own name, union, place and message."""
    body = "\n\n".join([BODY] * repeat)
    return LetterDoc(
        sender_name="Kazakhstan Solidarity Campaign",
        date=f"{n % 28 + 1} November 2026",
        recipient=TARGET,
        subject="Stop the persecution of trade unionists in Kazakhstan",
        body=f"{body}\n\nPersonal message {n}: solidarity from our branch, Қазақстан!",
        signer=Signer(f"Supporter {n}", f"Union branch {n % 97}", COUNTRIES[n % 5], f"City {n}"),
        language=("en", "ru", "kk")[n % 3],
    )


def letter_html(doc: LetterDoc, fonts_dir: Path) -> str:
    """The same letter as HTML, laid out alike, for WeasyPrint."""
    e = html.escape
    who, signer = doc.recipient, doc.signer
    paragraphs = "".join(f"<p>{e(p)}</p>" for p in doc.body.split("\n\n"))
    face = fonts_dir.as_uri()
    return f"""<!doctype html><html lang="{e(doc.language)}"><head><meta charset="utf-8">
<style>
@font-face {{ font-family: "PT Serif"; src: url({face}/PT_Serif-Web-Regular.ttf); }}
@font-face {{ font-family: "PT Serif"; font-weight: bold;
  src: url({face}/PT_Serif-Web-Bold.ttf); }}
@page {{ size: A4; margin: 22mm 22mm 32mm 25mm;
  @bottom-right {{ content: "Page " counter(page) " of " counter(pages);
    font: 10pt "PT Serif"; }} }}
body {{ font: 11pt/15pt "PT Serif"; margin: 0; }}
.sender {{ font-weight: bold; font-size: 13pt; border-bottom: 0.75pt solid black;
  margin-bottom: 5mm; }}
.date {{ text-align: right; margin-bottom: 6mm; }}
.block {{ white-space: pre-line; margin-bottom: 8mm; }}
.subject {{ font-weight: bold; margin-bottom: 5mm; }}
p {{ margin: 0 0 7.5pt; }}
.signer {{ white-space: pre-line; margin-top: 6mm; page-break-inside: avoid; }}
</style></head><body>
<div class="sender">{e(doc.sender_name)}</div>
<div class="date">{e(doc.date)}</div>
<div class="block"><b>{e(who.name)}</b>
{e(who.title)}
{e(who.organisation)}
{e(who.address)}
Fax: {e(who.fax)}</div>
<div class="subject">{e(doc.subject)}</div>
{paragraphs}
<div class="signer"><b>{e(signer.name)}</b>
{e(signer.organisation)}
{e(signer.city)}, {e(signer.country_name)}</div>
</body></html>"""


def clear_caches() -> None:
    from app.documents import subsets, text
    from app.documents.writer import pdf_number

    for cached in (text._em_width, text._wrap_cached, subsets._base_run, pdf_number):
        cached.cache_clear()


def median_ms(render: Callable[[int], object], runs: int, warm: int = 3) -> float:
    for n in range(warm):
        render(10**6 + n)
    times = []
    for n in range(runs):
        start = time.perf_counter()
        render(n)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def per_letter() -> None:
    import fontpkg_pt_serif
    import weasyprint  # the peer, installed with the "bench" extra

    from app.documents.pdf import render_letter

    serif = Path(fontpkg_pt_serif.ROOT) / "files"

    def outcry(n: int) -> bytes:
        return render_letter(letter(n))

    def outcry_cold(n: int) -> bytes:
        clear_caches()
        return render_letter(letter(n))

    def weasy(n: int) -> bytes:
        result: bytes = weasyprint.HTML(string=letter_html(letter(n), serif)).write_pdf()
        return result

    sizes = {"Outcry": len(outcry(0)), "WeasyPrint": len(weasy(0))}
    warm = median_ms(outcry, 300)
    cold = median_ms(outcry_cold, 100)
    peer = median_ms(weasy, 30)
    print("one letter PDF (median; A4, ~1 page, a new signer each time)")
    print(f"  Outcry            {warm:8.2f} ms   {sizes['Outcry'] // 1024} KiB")
    print(f"  Outcry, cold      {cold:8.2f} ms   (per-process caches cleared every time)")
    print(f"  WeasyPrint        {peer:8.2f} ms   {sizes['WeasyPrint'] // 1024} KiB")
    print(f"  ratio             {peer / warm:8.1f}x faster ({peer / cold:.1f}x cold)")


def handover(count: int) -> Handover:
    return Handover(
        appeal_title="Free Yerzhan Yelshibaev",
        summary="Letters from trade unionists to the President of Kazakhstan.",
        targets=(TARGET,),
        letter_count=count,
        by_country=tuple((c, count // 5) for c in COUNTRIES),
        by_organisation=tuple((f"Union branch {n}", count // 97) for n in range(97)),
        first_date="1 November 2026",
        last_date="28 November 2026",
        date="29 November 2026",
    )


def letters(count: int, repeat: int = 1) -> Iterator[LetterDoc]:
    return (letter(n, repeat=repeat) for n in range(count))


def child_outcry(count: int, path: str, repeat: int = 1) -> dict[str, float]:
    from app.documents.pdf import write_bundle

    with open(path, "wb") as out:
        pages = write_bundle(out, handover(count), letters(count, repeat))
    return {"pages": pages}


def child_platypus(count: int, path: str) -> dict[str, float]:
    """reportlab's own layout: one SimpleDocTemplate for all the letters."""
    from xml.sax.saxutils import escape

    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer

    from app.documents import fonts

    fonts.registered()
    body = ParagraphStyle("body", fontName=fonts.SERIF, fontSize=11, leading=15)
    bold = ParagraphStyle("bold", parent=body, fontName=fonts.SERIF_BOLD)

    def para(value: str, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape(value).replace("\n", "<br/>"), style)

    story: list[object] = []
    for doc in letters(count):
        who, signer = doc.recipient, doc.signer
        story += [para(doc.sender_name, bold), para(doc.date), Spacer(0, 6 * mm)]
        story += [para(who.name, bold), para(f"{who.title}\n{who.organisation}\n{who.address}")]
        story += [Spacer(0, 8 * mm), para(doc.subject, bold), Spacer(0, 5 * mm)]
        story += [para(p) for p in doc.body.split("\n\n")]
        story += [para(signer.name, bold), para(f"{signer.organisation}\n{signer.city}")]
        story.append(PageBreak())
    template = SimpleDocTemplate(path, pagesize=A4, topMargin=22 * mm, bottomMargin=32 * mm)
    template.build(story)
    return {"pages": template.page}


def run_child(kind: str, count: int) -> dict[str, float]:
    """Run one bundle in a child process; return its wall time, own peak RSS, size."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "bundle.pdf")
        command = [sys.executable, __file__, "--child", kind, str(count), path]
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.PIPE)
        # wait4 gives this child's own rusage; RUSAGE_CHILDREN would report the
        # largest of all children so far, mixing the figures of the runs.
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        assert child.stdout is not None
        result: dict[str, float] = json.loads(child.stdout.read())
        child.stdout.close()
        if status != 0:
            raise SystemExit(f"{kind} bundle failed with status {status}")
        result.update(
            seconds=seconds,
            rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
            size_mb=os.path.getsize(path) / 2**20,
        )
        return result


def bundles(count: int) -> None:
    print(f"bundle of {count} letters (child process, streamed to a file)")
    for kind, what in (("outcry", "short letters"), ("outcry-long", "long letters")):
        big = run_child(kind, count)
        print(
            f"  {what:<18}{big['seconds']:7.2f} s   {big['rss_mb']:4.0f} MB peak RSS   "
            f"{big['pages']:.0f} pages, {big['size_mb']:.1f} MiB   targets (<= 30 s, <= 200 MB) "
            f"{'met' if big['seconds'] <= 30 and big['rss_mb'] <= 200 else 'MISSED'}"
        )
    small = 1000
    ours, theirs = run_child("outcry", small), run_child("platypus", small)
    print(f"bundle of {small} letters, Outcry vs reportlab platypus (one SimpleDocTemplate)")
    for name, figures in (("Outcry", ours), ("platypus", theirs)):
        print(
            f"  {name:<17} {figures['seconds'] / small * 1000:8.2f} ms/letter   "
            f"{figures['rss_mb']:.0f} MB peak RSS"
        )
    print(
        f"  ratio             {theirs['seconds'] / ours['seconds']:8.1f}x faster, "
        f"{theirs['rss_mb'] / ours['rss_mb']:.1f}x less memory"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=10_000)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "COUNT", "PATH"))
    args = parser.parse_args()
    if args.child:
        kind, count, path = args.child
        if kind == "letter":
            per_letter()
        else:
            if kind == "platypus":
                figures = child_platypus(int(count), path)
            else:
                figures = child_outcry(int(count), path, 3 if kind == "outcry-long" else 1)
            print(json.dumps(figures))
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    bundles(args.letters)
    subprocess.run([sys.executable, __file__, "--child", "letter", "0", "-"], check=True)


if __name__ == "__main__":
    main()
