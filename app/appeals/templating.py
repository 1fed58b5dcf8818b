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
    UndefinedError,
)

from app.appeals import sandbox


class LetterTemplateError(ValueError):
    """A template that cannot be loaded or rendered; the message says why.

    For a page to say it in its reader's language, the parts of the message are kept
    too: `where` (the file, or `letter.<lang>.<part>`), `line`, and `kind` with its
    `params` ("no_attribute": variable, name, offered; "undefined": name, offered;
    "syntax": message; "" for a message with no parts)."""

    def __init__(
        self,
        message: str,
        *,
        where: str = "",
        line: int | None = None,
        kind: str = "",
        params: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.where = where
        self.line = line
        self.kind = kind
        self.params = params or {}


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


# The variables a letter sees, and what each of them has: named in errors, so an
# organiser who typed {{ signer.nmae }} reads what they could have written.
VARIABLES: dict[str, tuple[str, ...]] = {
    "appeal": ("title", "slug", "sender_name"),
    "target": ("name", "title", "organisation"),
    "signer": ("name", "organisation", "country", "country_name", "city"),
    "message": (),
    "date": (),
}
_OF_CLASS = {"AppealVars": "appeal", "TargetVars": "target", "SignerVars": "signer"}
_NO_ATTRIBUTE = re.compile(
    r"^'(?:[\w.]+\.)?(?P<cls>\w+) object' has no attribute '(?P<name>[^']*)'$"
)
_UNDEFINED = re.compile(r"^'(?P<name>[^']*)' is undefined$")


def _template_file(source: LetterSource, language: str) -> str:
    return f"templates/letters/{source.template}/{language}.txt.j2"


def _line(exc: Exception, filename: str | None) -> int | None:
    """The template line an error happened on: a syntax error knows it; a runtime error's
    traceback has a frame for the template (Jinja gives it the template's file name)."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.lineno
    line = None
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name == "<template>" or (filename and name == filename):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _rewritten(template: Template) -> Exception:
    """The error being handled, its traceback rewritten by Jinja to the template's lines
    (a block rendered on its own is not rewritten: its frames have Python's lines)."""
    try:
        template.environment.handle_exception()
    except Exception as exc:
        return exc
    raise AssertionError("handle_exception() always raises")


def _what(exc: Exception) -> tuple[str, str, dict[str, str]]:
    """The error in an organiser's words (which variable, and what it offers instead),
    with its kind and parts for a translation (see LetterTemplateError)."""
    text = str(exc)
    if isinstance(exc, UndefinedError):
        match = _NO_ATTRIBUTE.match(text)
        if match and match["cls"] in _OF_CLASS:
            variable = _OF_CLASS[match["cls"]]
            offered = ", ".join(VARIABLES[variable])
            params = {"variable": variable, "name": match["name"], "offered": offered}
            english = f"“{variable}.{match['name']}” does not exist; {variable} has {offered}"
            return english, "no_attribute", params
        match = _UNDEFINED.match(text)
        if match:
            offered = ", ".join(VARIABLES)
            english = f"there is no variable “{match['name']}”; a letter can use {offered}"
            return english, "undefined", {"name": match["name"], "offered": offered}
        return f"a variable that does not exist: {text}", "", {}
    if isinstance(exc, sandbox.LetterBudgetExceeded | sandbox.RefusedTemplate):
        return text, "", {}
    if isinstance(exc, TemplateSyntaxError):
        # exc.message, not str(exc): a file's syntax error names its path on the server.
        message = exc.message or "syntax error"
        return f"the template cannot be read: {message}", "syntax", {"message": message}
    if isinstance(exc, TemplateNotFound):
        return "there is no such file", "not_found", {}
    return f"{type(exc).__name__}: {text}", "", {}


def _explain(exc: Exception, where: str, filename: str | None = None) -> LetterTemplateError:
    """A LetterTemplateError naming the file (or inline part), the line and the cause."""
    line = _line(exc, filename)
    place = f"{where}, line {line}" if line else where
    english, kind, params = _what(exc)
    return LetterTemplateError(
        f"{place}: {english}", where=where, line=line, kind=kind, params=params
    )


def _load(source: LetterSource, language: str, directory: Path) -> tuple[Template, Template]:
    """(subject template, body template); raises LetterTemplateError."""
    if source.template is not None:
        where = _template_file(source, language)
        try:
            env = _file_environment(str(directory))
            template = env.get_template(f"{source.template}/{language}.txt.j2")
        except TemplateError as exc:
            raise _explain(exc, where) from exc
        missing = {"subject", "body"} - set(template.blocks)
        if missing:
            raise LetterTemplateError(f"{where}: block(s) {', '.join(sorted(missing))} missing")
        return template, template
    if source.subject is None or source.body is None:
        raise LetterTemplateError("no letter text")
    parts = []
    for part, text in (("subject", source.subject), ("body", source.body)):
        try:
            parts.append(_inline(text))
        except TemplateError as exc:
            raise _explain(exc, f"letter.{language}.{part}") from exc
    return parts[0], parts[1]


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
    rendered, where = {}, {}
    for part, template in (("subject", subject_t), ("body", body_t)):
        where[part] = (
            _template_file(source, language)
            if source.template is not None
            else f"letter.{language}.{part}"
        )
        try:
            rendered[part] = _block(template, part, context)
        except Exception as exc:
            # Whatever an organiser's template does wrong (1/0, int("x"), a loop too
            # long) is that template's fault, said as such, never a server error.
            raise _explain(_rewritten(template), where[part], template.filename) from exc
    subject = " ".join(rendered["subject"].split())
    body = _tidy_body(rendered["body"])
    if not subject:
        raise LetterTemplateError(f"{where['subject']}: the subject is empty")
    if not body:
        raise LetterTemplateError(f"{where['body']}: the body is empty")
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
