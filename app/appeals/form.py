"""The appeal editor's form, both ways: an appeal file's fields as flat form fields, and
the fields a browser sends back as the appeal file AppealIn checks (one schema for
YAML, the API and the page).

Pure functions of their inputs. A form is a flat {name: text} map, names like
`title.ru`, `targets.0.email`, `letter.en.body`; what the browser sent is kept as it
was typed, so a page sent back with errors loses nothing. Rows (targets, organisations)
left blank are ignored, rows ticked "remove" are dropped, and the rows kept are
numbered as AppealIn numbers them, so an error on `targets.1.fax` sits by that row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.appeals.schemas import texts_in
from app.core.text import language

APPEAL_TEXTS = ("title", "summary", "sender_name")
TARGET_TEXTS = ("name", "title", "organisation", "address")
TARGET_FIELDS = ("email", "fax", "language")
SETTINGS = ("goal", "page_size", "max_attempts", "rate_limit")
SWITCHES = ("require_confirmation", "attach_pdf", "moderation")
# Empty rows offered below the filled ones, so a target or union is added without
# JavaScript; "add another" sends the form back with one more.
SPARE_TARGETS = 1
SPARE_ORGANISATIONS = 1
MIN_TARGET_ROWS = 2  # a new appeal offers two targets' rows
MAX_ROWS = 50

Form = dict[str, str]


@dataclass(frozen=True, slots=True)
class Parsed:
    """What the editor's fields say: the appeal file for AppealIn, and the form to show
    again (rows renumbered as in the file, spare rows added)."""

    data: dict[str, Any]
    form: Form
    languages: list[str]  # valid codes as typed, the default first
    targets: int  # rows shown
    organisations: int


def language_list(text: str) -> list[str]:
    """The codes in `en, ru kk` (commas or spaces), as typed."""
    return [code for code in re.split(r"[\s,;]+", text.strip()) if code]


def _codes(typed: list[str]) -> list[str]:
    """The typed codes that are languages, normalised, without repeats."""
    codes: list[str] = []
    for code in typed:
        try:
            normal = language(code)
        except ValueError:
            continue
        if normal not in codes:
            codes.append(normal)
    return codes


def _rows(form: Mapping[str, str], prefix: str) -> list[int]:
    found = {
        int(match.group(1))
        for name in form
        if (match := re.match(rf"{prefix}\.(\d+)\.", name)) and int(match.group(1)) < MAX_ROWS
    }
    return sorted(found)


def _local(value: str) -> str | None:
    """A datetime-local field (taken as UTC) as ISO 8601, or None when empty."""
    value = value.strip()
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC).isoformat()
    except ValueError:
        return value  # AppealIn says why


def parse(
    form: Mapping[str, str], *, add_target: bool = False, add_organisation: bool = False
) -> Parsed:
    """The appeal file the form describes, and the form to show again."""
    typed = language_list(form.get("languages", ""))
    codes = _codes(typed)
    out: Form = {
        name: form.get(name, "")
        for name in ("slug", "status", "languages", "letter_source", "template", "copies")
    }
    out.update({name: form.get(name, "") for name in (*SETTINGS, "opens_at", "closes_at")})
    out.update({name: form.get(name, "") for name in SWITCHES if form.get(name)})
    data: dict[str, Any] = {
        "slug": form.get("slug", "").strip(),
        "status": form.get("status", "") or "draft",
        "languages": typed,
    }
    if codes:
        data["default_language"] = codes[0] if codes[0] in typed else typed[0]

    def texts(prefix: str) -> dict[str, str]:
        given = {}
        for code in codes:
            value = form.get(f"{prefix}.{code}", "")
            out[f"{prefix}.{code}"] = value
            if value.strip():
                given[code] = value
        return given

    for field in APPEAL_TEXTS:
        data[field] = texts(field)
    if form.get("letter_source") == "template":
        data["template"] = form.get("template", "").strip() or None
        for code in codes:  # kept, should they switch back
            for part in ("subject", "body"):
                out[f"letter.{code}.{part}"] = form.get(f"letter.{code}.{part}", "")
    else:
        out["letter_source"] = "inline"
        letter: dict[str, dict[str, str]] = {}
        for code in codes:
            parts = {part: form.get(f"letter.{code}.{part}", "") for part in ("subject", "body")}
            for part, value in parts.items():
                out[f"letter.{code}.{part}"] = value
            if any(v.strip() for v in parts.values()):
                letter[code] = parts
        data["letter"] = letter

    targets: list[dict[str, Any]] = []
    for row in _rows(form, "targets"):
        name = f"targets.{row}"
        if form.get(f"{name}.remove"):
            continue
        fields = [f"{name}.{f}" for f in TARGET_FIELDS] + [
            f"{name}.{f}.{code}" for f in TARGET_TEXTS for code in codes
        ]
        if not any(form.get(f, "").strip() for f in fields if not f.endswith(".language")):
            continue  # a blank row
        n = len(targets)
        target: dict[str, Any] = {}
        for field in TARGET_TEXTS:
            given = {}
            for code in codes:
                value = form.get(f"{name}.{field}.{code}", "")
                out[f"targets.{n}.{field}.{code}"] = value
                if value.strip():
                    given[code] = value
            target[field] = given
        for field in TARGET_FIELDS:
            value = form.get(f"{name}.{field}", "").strip()
            out[f"targets.{n}.{field}"] = value
            if value:
                target[field] = value
        targets.append(target)
    data["targets"] = targets

    organisations: list[dict[str, str]] = []
    for row in _rows(form, "organisations"):
        name = f"organisations.{row}"
        slug, title = form.get(f"{name}.slug", "").strip(), form.get(f"{name}.name", "")
        if form.get(f"{name}.remove") or not (slug or title.strip()):
            continue
        n = len(organisations)
        out[f"organisations.{n}.slug"], out[f"organisations.{n}.name"] = slug, title
        organisations.append({"slug": slug, "name": title})
    data["organisations"] = organisations

    data["copies"] = [line.strip() for line in form.get("copies", "").splitlines() if line.strip()]
    for name in SETTINGS:
        value = form.get(name, "").strip()
        if value:
            data[name] = value
    for name in ("opens_at", "closes_at"):
        data[name] = _local(form.get(name, ""))
    for name in SWITCHES:
        data[name] = bool(form.get(name))
    spare_targets = SPARE_TARGETS + (1 if add_target else 0)
    spare_organisations = SPARE_ORGANISATIONS + (1 if add_organisation else 0)
    return Parsed(
        data=data,
        form=out,
        languages=codes,
        targets=min(MAX_ROWS, max(MIN_TARGET_ROWS, len(targets) + spare_targets)),
        organisations=min(MAX_ROWS, len(organisations) + spare_organisations),
    )


def from_file(data: Mapping[str, Any]) -> Form:
    """The form of an appeal file (as app.appeals.files.as_file gives it)."""
    default = str(data.get("default_language") or data["languages"][0])
    languages = [default, *(code for code in data["languages"] if code != default)]
    form: Form = {
        "slug": str(data["slug"]),
        "status": str(data.get("status", "draft")),
        "languages": ", ".join(languages),
        "copies": "\n".join(data.get("copies", [])),
    }
    for field in APPEAL_TEXTS:
        for code, text in texts_in(data.get(field, ""), default).items():
            form[f"{field}.{code}"] = text
    if data.get("template"):
        form["letter_source"] = "template"
        form["template"] = str(data["template"])
    else:
        form["letter_source"] = "inline"
        for code, parts in (data.get("letter") or {}).items():
            for part in ("subject", "body"):
                form[f"letter.{code}.{part}"] = parts[part]
    for n, target in enumerate(data.get("targets", [])):
        for field in TARGET_TEXTS:
            for code, text in texts_in(target.get(field, ""), default).items():
                form[f"targets.{n}.{field}.{code}"] = text
        for field in TARGET_FIELDS:
            if target.get(field):
                form[f"targets.{n}.{field}"] = str(target[field])
    for n, organisation in enumerate(data.get("organisations", [])):
        form[f"organisations.{n}.slug"] = organisation["slug"]
        form[f"organisations.{n}.name"] = organisation["name"]
    for name in SETTINGS:
        if data.get(name) is not None:
            form[name] = str(data[name])
    for name in ("opens_at", "closes_at"):
        if data.get(name):
            moment = datetime.fromisoformat(str(data[name])).astimezone(UTC)
            form[name] = moment.strftime("%Y-%m-%dT%H:%M")
    for name in SWITCHES:
        if data.get(name):
            form[name] = "on"
    return form


def blank(languages: list[str]) -> Form:
    """The form of a new appeal: a draft in `languages` with an inline letter and the
    defaults of an appeal file."""
    return {
        "status": "draft",
        "languages": ", ".join(languages),
        "letter_source": "inline",
        "require_confirmation": "on",
        "page_size": "A4",
        "max_attempts": "8",
        "rate_limit": "60",
    }


def rows_of(form: Mapping[str, str], prefix: str, spare: int) -> int:
    """How many rows of `prefix` (targets, organisations) to show for a form made by
    from_file or blank: those filled and `spare` empty ones."""
    filled = _rows(form, prefix)
    return min(MAX_ROWS, (filled[-1] + 1 if filled else 0) + spare)


# Errors AppealIn gives the appeal as a whole, and the field each belongs next to.
_WHOLE = (
    ("closes_at must be after", "closes_at"),
    ("default_language", "languages"),
    ("letter has no text", "letter"),
    ("give either template or letter", "letter"),
    ("at least one target", "targets"),
)


def whole_error_field(text: str) -> str:
    """The field an error about the whole appeal sits next to (`body` if none)."""
    return next((field for start, field in _WHOLE if text.startswith(start)), "body")


_SHOWN = re.compile(
    r"^(slug|languages|template|letter|targets|copies|goal|opens_at|closes_at|page_size"
    r"|max_attempts|rate_limit|organisations"
    r"|(title|summary|sender_name)\.[\w-]+|letter\.[\w-]+\.(subject|body)"
    r"|targets\.\d+\.(email|fax|language|(name|title|organisation|address)\.[\w-]+)"
    r"|organisations\.\d+\.(slug|name))$"
)


def place_errors(errors: Mapping[str, str], languages: list[str]) -> dict[str, str]:
    """{form field: error} from {appeal-file field: error}: a text's error goes by its
    default language's field, a letter's by its body, an item of a list by the list;
    what the form has no field for goes on top (`body`)."""
    default = languages[0] if languages else ""
    placed: dict[str, str] = {}
    for key, message in errors.items():
        parts = key.split(".")
        if parts[0] in ("copies", "languages") or key == "default_language":
            name = "languages" if parts[0] != "copies" else "copies"
        elif parts[0] in APPEAL_TEXTS and len(parts) == 1:
            name = f"{key}.{default}"
        elif parts[0] == "targets" and len(parts) == 3 and parts[2] in TARGET_TEXTS:
            name = f"{key}.{default}"
        elif parts[0] == "letter" and len(parts) == 2:
            name = f"{key}.body"
        elif parts[0] in ("targets", "organisations") and len(parts) == 2:
            name = parts[0]
        else:
            name = key
        if not _SHOWN.match(name):
            name = "body"
        placed.setdefault(name, message)
    return placed
