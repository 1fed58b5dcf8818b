"""Write and read the audit log.

record() is called by the service function that makes a change, inside its transaction
(it only adds a row: the caller's flush and commit carry it), so a change that is rolled
back leaves no entry. Entries name letters by their public id and accounts by their
organisers' addresses: never a supporter's address, never a password.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.orm import Session, joinedload

from app.models import AuditEvent, appeal_organisation

# What the command line is called in the log (`outcry appeal import`, `token create`…).
COMMAND_LINE = "command line"
# Entries about an appeal as a whole: a union sees these for the appeals it takes part in.
APPEAL_ACTIONS = ("appeal.created", "appeal.edited", "appeal.status", "appeal.purged")
PAGE_SIZE = 50


def record(
    session: Session,
    *,
    by: str,
    action: str,
    appeal_id: int | None = None,
    organisation_id: int | None = None,
    subject: str = "",
    changes: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Add one entry to the log in the caller's transaction (written with its next flush)."""
    event = AuditEvent(
        actor=by[:300],
        action=action,
        appeal_id=appeal_id,
        organisation_id=organisation_id,
        subject=subject[:300],
        changes=dict(changes or {}),
    )
    session.add(event)
    return event


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{field: [before, after]} of what differs; lists of mappings (targets,
    organisations) are compared item by item as `targets.0.email`."""
    changed: dict[str, list[Any]] = {}
    for key in dict.fromkeys([*before, *after]):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, list) and isinstance(new, list) and _records(old) and _records(new):
            for n in range(max(len(old), len(new))):
                a = old[n] if n < len(old) else {}
                b = new[n] if n < len(new) else {}
                for name, change in diff(a, b).items():
                    changed[f"{key}.{n}.{name}"] = change
        else:
            changed[key] = [old, new]
    return changed


def _records(value: list[Any]) -> bool:
    return all(isinstance(v, dict) for v in value)


@dataclass(frozen=True, slots=True)
class Page:
    events: list[AuditEvent]
    page: int
    pages: int
    total: int


def visible_to(organisation_id: int | None) -> Any:
    """The entries an organisation's organisers may read (None: an admin, every entry).

    A union reads (a) what was done to the appeals it takes part in as a whole (created,
    edited, opened or closed, purged) and (b) what concerns its own organisation: its
    letters approved, rejected or retried, its accounts and its tokens. Not what was
    done to another union's letters, nor to admins' accounts and tokens."""
    if organisation_id is None:
        return true()
    taking_part = select(appeal_organisation.c.appeal_id).where(
        appeal_organisation.c.organisation_id == organisation_id
    )
    return or_(
        AuditEvent.organisation_id == organisation_id,
        and_(AuditEvent.action.in_(APPEAL_ACTIONS), AuditEvent.appeal_id.in_(taking_part)),
    )


def read(
    session: Session,
    *,
    organisation_id: int | None,
    appeal_id: int | None = None,
    page: int = 1,
    size: int = PAGE_SIZE,
) -> Page:
    """One page of the entries `organisation_id` may read (see visible_to), newest first;
    only those about `appeal_id` when given."""
    conditions = [visible_to(organisation_id)]
    if appeal_id is not None:
        conditions.append(AuditEvent.appeal_id == appeal_id)
    total = session.scalar(select(func.count()).select_from(AuditEvent).where(*conditions)) or 0
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    events = session.scalars(
        select(AuditEvent)
        .where(*conditions)
        .options(joinedload(AuditEvent.appeal))
        .order_by(AuditEvent.id.desc())
        .limit(size)
        .offset((page - 1) * size)
    ).all()
    return Page(events=list(events), page=page, pages=pages, total=total)
