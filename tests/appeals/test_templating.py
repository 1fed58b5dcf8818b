"""The letter sandbox: organisers' templates cannot reach Python, supporters' text is data."""

from __future__ import annotations

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
