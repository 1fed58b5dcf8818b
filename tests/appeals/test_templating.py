"""The letter sandbox: organisers' templates cannot reach Python, supporters' text is data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.appeals import templating
from app.appeals.templating import LetterSource, LetterTemplateError
from app.core import paths


def render(subject: str, body: str, **changes: object) -> templating.RenderedLetter:
    variables = templating.SAMPLE
    if changes:
        from dataclasses import replace

        variables = replace(variables, **changes)  # type: ignore[arg-type]
    return templating.render(
        LetterSource(subject=subject, body=body), "en", variables, directory=Path("/nonexistent")
    )


def test_variables_render() -> None:
    letter = render("To {{ target.name }}", "{{ signer.name }} of {{ signer.country_name }}")
    assert letter.subject == "To A. Target"
    assert letter.body == "Ada Example of United Kingdom"


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ signer.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{% set x = [] %}{{ x.append(1) }}",
    ],
)
def test_sandbox_refuses_python_internals(body: str) -> None:
    with pytest.raises(LetterTemplateError):
        render("s", body)


def test_undefined_variable_is_an_error() -> None:
    with pytest.raises(LetterTemplateError, match="nickname"):
        render("s", "{{ signer.nickname }}")


def test_a_typo_is_explained_in_an_organisers_words() -> None:
    with pytest.raises(LetterTemplateError) as info:
        render("s", "Dear friends,\n\n{{ signer.nmae }}")
    assert str(info.value) == (
        "letter.en.body, line 3: “signer.nmae” does not exist; "
        "signer has name, organisation, country, country_name, city"
    )
    with pytest.raises(LetterTemplateError) as info:
        render("To {{ traget.name }}", "b")
    assert str(info.value) == (
        "letter.en.subject, line 1: there is no variable “traget”; "
        "a letter can use appeal, target, signer, message, date"
    )
    with pytest.raises(LetterTemplateError, match=r"^letter\.en\.body, line 2: the template "):
        render("s", "ok\n{% if %}")


def test_a_typo_in_a_template_file_names_the_file_and_its_line(tmp_path: Path) -> None:
    folder = tmp_path / "free-them"
    folder.mkdir()
    (folder / "ru.txt.j2").write_text(
        "{% block subject %}Освободите их{% endblock %}\n"
        "{% block body %}Уважаемый {{ target.name }}!\n\n"
        "С уважением,\n{{ signer.nmae }}{% endblock %}\n",
        encoding="utf-8",
    )
    with pytest.raises(LetterTemplateError) as info:
        templating.render(
            LetterSource(template="free-them"), "ru", templating.SAMPLE, directory=tmp_path
        )
    assert str(info.value) == (
        "templates/letters/free-them/ru.txt.j2, line 5: “signer.nmae” does not exist; "
        "signer has name, organisation, country, country_name, city"
    )
    with pytest.raises(LetterTemplateError) as info:
        templating.render(
            LetterSource(template="free-them"), "kk", templating.SAMPLE, directory=tmp_path
        )
    assert str(info.value) == "templates/letters/free-them/kk.txt.j2: there is no such file"


def test_supporter_text_is_never_rendered_as_a_template() -> None:
    message = "{{ 7*7 }}{% raw %}x{% endraw %}{{ signer.__class__ }}"
    letter = render("s", "{{ message }}", message=message)
    assert letter.body == message


def test_subject_is_one_line() -> None:
    letter = render("Free\n\n   them\r\nnow", "b")
    assert letter.subject == "Free them now"


def test_demo_templates_render_in_every_language() -> None:
    for template, languages in (
        ("almaty-coach-factory", ("en", "ru")),
        ("kazakhstan-union-activists", ("en", "ru", "kk")),
    ):
        for language in languages:
            letter = templating.render(
                LetterSource(template=template),
                language,
                templating.SAMPLE,
                directory=paths.letter_templates_dir(),
            )
            assert letter.subject
            assert "Ada Example" in letter.body
            assert "A personal message." in letter.body


# What letters do not need, and what would cost minutes of CPU or gigabytes on every
# signature (issue 11): each is refused, saying why.
REFUSED = {
    "include": ('{% include "almaty-coach-factory/en.txt.j2" %}', "{% include %}"),
    "import": ('{% import "x.j2" as x %}', "{% import %}"),
    "from import": ('{% from "x.j2" import y %}', "import %}"),
    "extends": ('{% extends "almaty-coach-factory/en.txt.j2" %}', "{% extends %}"),
    "macro": ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "{% macro %}"),
    "recursive loop": ("{% for x in [[1]] recursive %}{{ loop(x) }}{% endfor %}", "recursive"),
    "huge range": ("{{ range(10**9)|length }}", "range()"),
    "lipsum": ("{{ lipsum(10**6)|length }}", "lipsum"),
    "string times a billion": ('{{ "x" * 10**9 }}', "longer than"),
    "list times a billion": ("{{ ([1] * 10**9)|length }}", "longer than"),
    "huge power": ("{{ 7 ** (10**7) }}", "too large"),
    "huge product": ("{{ (7 ** 3000) * (7 ** 3000) }}", "too large"),
    "nested loops": (
        "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
        "steps",
    ),
    "doubling": (
        '{% set a = "x" * 60000 %}{% set b = a ~ a %}{% set c = b ~ b %}{{ c|length }}',
        "longer than",
    ),
    "doubling with +": ('{% set a = "x" * 60000 %}{{ (a + a)|length }}', "longer than"),
    "replace blows up": ('{{ "abc"|replace("", "x" * 90000) }}', "longer than"),
    "join blows up": ('{{ range(1000)|join("x" * 1000) }}', "longer than"),
    "str.join blows up": ('{{ ("x" * 1000).join(range(1000)|map("string")) }}', "longer than"),
    "width": ('{{ "%999999999s" % "x" }}', "width"),
    "star width": ('{{ "%*s" % (999999999, "x") }}', "width"),
    "center": ('{{ "x".center(10**9) }}', "str.center()"),
    "center filter": ('{{ "x"|center(10**9) }}', "center"),
    "format": ('{{ "{:>999999999}".format(1) }}', "str.format()"),
    "format filter": ('{{ "%s"|format(1) }}', "format"),
    "namespace": ("{% set ns = namespace(a=1) %}{{ ns.a }}", "namespace"),
    "division by zero": ("{{ 1 / 0 }}", "ZeroDivisionError"),
}


@pytest.mark.parametrize(("body", "why"), REFUSED.values(), ids=REFUSED.keys())
def test_what_letters_do_not_need_is_refused(body: str, why: str) -> None:
    with pytest.raises(LetterTemplateError, match=re.escape(why)):
        render("s", body)


def test_what_letters_do_need_still_works() -> None:
    body = (
        "Dear {{ target.title }} {{ target.name.split()|last }},\n"
        "{% for word in message.split() %}{{ loop.index }}:{{ word|upper }} {% endfor %}\n"
        '{{ [signer.city, signer.country_name]|select|join(", ") }}\n'
        '{{ ("Signed " ~ date)|replace("Signed", "Signed on") }} {{ "%s!" % signer.name }}\n'
        '{% for i in range(3) %}{{ i * 2 }}{% endfor %} {{ signer.name|truncate(6, True, "…", 0) }}'
    )
    letter = render("s", body, message="Free them now")
    assert letter.body == (
        "Dear President Target,\n1:FREE 2:THEM 3:NOW\nLeeds, United Kingdom\n"
        "Signed on 1 May 2026 Ada Example!\n024 Ada E…"
    )


def test_a_missing_template_file_says_so_without_the_servers_path() -> None:
    directory = paths.letter_templates_dir()
    with pytest.raises(LetterTemplateError) as caught:
        templating.render(
            LetterSource(template="nope"), "en", templating.SAMPLE, directory=directory
        )
    assert str(caught.value) == "templates/letters/nope/en.txt.j2: there is no such file"
    assert str(directory) not in str(caught.value)


def test_a_syntax_error_in_a_file_names_no_server_path(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "en.txt.j2").write_text("{% block subject %}x{% endblock %}{% if %}")
    with pytest.raises(LetterTemplateError) as caught:
        templating.render(
            LetterSource(template="broken"), "en", templating.SAMPLE, directory=tmp_path
        )
    assert str(caught.value).startswith(
        "templates/letters/broken/en.txt.j2, line 1: the template cannot be read:"
    )
    assert str(tmp_path) not in str(caught.value)
