"""Letter text from Jinja2 templates, rendered in a sandbox: a pure function of its inputs.

Organisers write templates; supporters only ever supply *data*. The sandbox keeps a
careless or hostile template from reaching Python internals, StrictUndefined turns a
typo into an error at import time instead of a letter with a hole in it, and the
supporter's message is passed as a value, so `{{ … }}` in it stays literal text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
)

from app.appeals import sandbox


class LetterTemplateError(ValueError):
    """A template that cannot be loaded or rendered; the message says why."""


@dataclass(frozen=True, slots=True)
class AppealVars:
    title: str
    slug: str
    sender_name: str


@dataclass(frozen=True, slots=True)
class TargetVars:
    name: str
    title: str
    organisation: str


@dataclass(frozen=True, slots=True)
class SignerVars:
    name: str
    organisation: str
    country: str
    country_name: str
    city: str


@dataclass(frozen=True, slots=True)
class LetterVars:
    appeal: AppealVars
    target: TargetVars
    signer: SignerVars
    message: str
    date: str


@dataclass(frozen=True, slots=True)
class RenderedLetter:
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class LetterSource:
    """Where a letter's text comes from: a template file, or inline subject and body."""

    template: str | None = None  # templates/letters/<template>/<language>.txt.j2
    subject: str | None = None
    body: str | None = None


SUBJECT_MAX = 300


def _environment(directory: Path | None) -> sandbox.LetterSandbox:
    return sandbox.LetterSandbox(
        loader=FileSystemLoader(str(directory)) if directory else None,
        undefined=StrictUndefined,
        autoescape=False,  # plain text: escaping belongs to HTML and PDF renderers
        keep_trailing_newline=False,
        auto_reload=False,
    )


@lru_cache(maxsize=8)
def _file_environment(directory: str) -> sandbox.LetterSandbox:
    return _environment(Path(directory))


_INLINE = _environment(None)


@lru_cache(maxsize=256)
def _inline(source: str) -> Template:
    return _INLINE.from_string(source)


def _why(exc: Exception) -> str:
    """Why a template failed, without the server's paths (a syntax error in a file names
    the file by its full path)."""
    if isinstance(exc, TemplateNotFound):
        return f"no template {exc.name}"
    if isinstance(exc, TemplateSyntaxError):
        return f"TemplateSyntaxError: {exc.message} (line {exc.lineno})"
    if isinstance(exc, sandbox.LetterBudgetExceeded | sandbox.RefusedTemplate):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _load(source: LetterSource, language: str, directory: Path) -> tuple[Template, Template]:
    """(subject template, body template); raises LetterTemplateError."""
    try:
        if source.template is not None:
            env = _file_environment(str(directory))
            template = env.get_template(f"{source.template}/{language}.txt.j2")
            missing = {"subject", "body"} - set(template.blocks)
            if missing:
                raise LetterTemplateError(f"block(s) {', '.join(sorted(missing))} missing")
            return template, template
        if source.subject is None or source.body is None:
            raise LetterTemplateError("no letter text")
        return _inline(source.subject), _inline(source.body)
    except TemplateError as exc:
        raise LetterTemplateError(_why(exc)) from exc


def _block(template: Template, name: str, context: dict[str, object]) -> str:
    """One block of a template file, or the whole of an inline template, within the
    sandbox's budget of steps and characters."""
    if name in template.blocks:
        block = template.blocks[name]
        return sandbox.render(lambda: block(template.new_context(context)))
    return sandbox.render(lambda: template.root_render_func(template.new_context(context)))


def _tidy_body(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def render(
    source: LetterSource, language: str, variables: LetterVars, *, directory: Path
) -> RenderedLetter:
    """Render a letter's subject and body; raises LetterTemplateError naming the cause."""
    subject_t, body_t = _load(source, language, directory)
    context: dict[str, object] = {
        "appeal": variables.appeal,
        "target": variables.target,
        "signer": variables.signer,
        "message": variables.message,
        "date": variables.date,
    }
    try:
        subject = " ".join(_block(subject_t, "subject", context).split())
        body = _tidy_body(_block(body_t, "body", context))
    except Exception as exc:
        # Whatever an organiser's template does wrong (1/0, int("x"), a loop too long)
        # is that template's fault, said as such, never a server error.
        raise LetterTemplateError(_why(exc)) from exc
    if not subject:
        raise LetterTemplateError("the subject is empty")
    if not body:
        raise LetterTemplateError("the body is empty")
    return RenderedLetter(subject=subject[:SUBJECT_MAX], body=body)


SAMPLE = LetterVars(
    appeal=AppealVars(title="Sample appeal", slug="sample", sender_name="Sample campaign"),
    target=TargetVars(name="A. Target", title="President", organisation="Sample Ltd"),
    signer=SignerVars(
        name="Ada Example",
        organisation="Example Union",
        country="GB",
        country_name="United Kingdom",
        city="Leeds",
    ),
    message="A personal message.",
    date="1 May 2026",
)
