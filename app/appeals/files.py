"""An appeal as the YAML file `outcry appeal import` takes, both ways.

as_file() gives back exactly what an import of it would store (texts per language as
they were given, the inline letter or the template's name, the organisations taking
part), so a file downloaded from the dashboard and imported again gives the same
appeal. The same mapping is what the audit log compares, field by field, on an edit.
"""

from __future__ import annotations

from typing import Any

import yaml

from app.appeals import texts
from app.core.errors import InvalidInput
from app.models import Appeal


def as_file(appeal: Appeal) -> dict[str, Any]:
    """The appeal's fields in the order an appeal file gives them; defaults included, so
    the file says everything the appeal does."""
    own = texts.as_input(appeal)
    data: dict[str, Any] = {
        "slug": appeal.slug,
        "title": own["title"],
        "summary": own["summary"],
        "status": appeal.status.value,
        "languages": list(appeal.languages),
        "default_language": appeal.default_language,
    }
    if appeal.template:
        data["template"] = appeal.template
    else:
        data["letter"] = {
            lang: {"subject": text["subject"], "body": text["body"]}
            for lang, text in (appeal.letter or {}).items()
        }
    data["sender_name"] = own["sender_name"]
    data["targets"] = [_target(t, appeal.default_language) for t in appeal.targets]
    data["copies"] = list(appeal.copies)
    if appeal.goal is not None:
        data["goal"] = appeal.goal
    for name in ("opens_at", "closes_at"):
        moment = getattr(appeal, name)
        if moment is not None:
            data[name] = moment.isoformat()
    data.update(
        require_confirmation=appeal.require_confirmation,
        attach_pdf=appeal.attach_pdf,
        moderation=appeal.moderation,
        page_size=appeal.page_size,
        max_attempts=appeal.max_attempts,
        rate_limit=appeal.rate_limit,
        # By slug, as the database gives them back, whatever order they were given in.
        organisations=[
            {"slug": o.slug, "name": o.name}
            for o in sorted(appeal.organisations, key=lambda o: o.slug)
        ],
    )
    return data


def _target(target: Any, default_language: str) -> dict[str, Any]:
    own = texts.target_as_input(target, default_language)
    item: dict[str, Any] = {"name": own["name"]}
    for field in ("title", "organisation"):
        if own[field]:
            item[field] = own[field]
    for field in ("email", "fax"):
        if getattr(target, field):
            item[field] = getattr(target, field)
    if own["address"]:
        item["address"] = own["address"]
    if target.language:
        item["language"] = target.language
    return item


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Letters and addresses as the block text an organiser would type, not one long
    # line of \n escapes (the emitter picks another style where a block cannot be).
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def to_yaml(appeal: Appeal) -> str:
    """The appeal file of `appeal`, UTF-8 text."""
    return yaml.dump(
        as_file(appeal), Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100
    )


def read(text: str | bytes) -> dict[str, Any]:
    """The fields of an appeal file, for AppealIn to check (as `outcry appeal import` and
    the dashboard's upload both do); InvalidInput naming `file` when it is not YAML, or
    not a mapping of fields."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput({"file": f"is not YAML: {exc}"}, codes={"file": "yaml"}) from exc
    if not isinstance(raw, dict):
        raise InvalidInput(
            {"file": "must be a mapping of appeal fields (slug: …, title: …)"},
            codes={"file": "yaml"},
        )
    return raw
