"""Appeals: create or update by slug, look up, count, and decide whether one takes signatures."""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Engine, Row, bindparam, case, func, select
from sqlalchemy.orm import Session, class_mapper, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from app.appeals import files, templating, texts
from app.appeals.schemas import (
    AppealIn,
    AppealRead,
    OrganisationIn,
    Phase,
    TargetRead,
    Texts,
    texts_in,
)

# Re-exported: other domains read an appeal's texts through this service.
from app.appeals.texts import AppealText as AppealText
from app.appeals.texts import in_language as in_language
from app.appeals.texts import target_text as target_text
from app.audit import service as audit
from app.core.errors import AppealNotFound, Conflict, InvalidInput
from app.models import (
    Appeal,
    AppealStatus,
    LetterStatus,
    LetterTally,
    Organisation,
    Target,
    table_of,
)

# Letters released for delivery: on their way, delivered, or failed. These are what a
# union hands over in a bundle; a letter still held by a moderator is not (yet).
RELEASED = (LetterStatus.queued, LetterStatus.sent, LetterStatus.failed)
# Letters that a supporter has confirmed: they count as signed. A held letter is a
# confirmed signature waiting for a moderator, so it counts from the moment it is
# confirmed (a moderated appeal said "1 letter signed" with 3 confirmed); a rejected
# one stops counting, since the supporter is asked to sign again.
SIGNED = (*RELEASED, LetterStatus.held)


def offered_language(appeal: Appeal, requested: str | None) -> str:
    """The language a letter or PDF of `appeal` is written in: `requested`, or the
    appeal's default when none is asked for; InvalidInput naming `language` (422) for
    one the appeal does not offer."""
    if not requested:
        return appeal.default_language
    if requested not in appeal.languages:
        raise InvalidInput(
            {"language": f"must be one of {', '.join(appeal.languages)}"},
            codes={"language": "language_offered"},
        )
    return requested


def letter_source(appeal: Appeal | AppealIn, language: str) -> templating.LetterSource:
    """Where the appeal's letter in `language` comes from."""
    if appeal.template:
        return templating.LetterSource(template=appeal.template)
    letter = appeal.letter or {}
    text = letter.get(language)
    if text is None:
        return templating.LetterSource()
    if isinstance(text, dict):
        return templating.LetterSource(subject=text["subject"], body=text["body"])
    return templating.LetterSource(subject=text.subject, body=text.body)


def sample_vars(data: AppealIn, language: str) -> templating.LetterVars:
    """The example signer with the appeal's own texts in `language`, as its letter there
    will see them: a template is checked against what it will really be given."""
    default = data.default_language or data.languages[0]

    def pick(value: Texts) -> str:
        by_language = texts_in(value, default)
        return by_language.get(language) or by_language.get(default, "")

    first = data.targets[0]
    return templating.LetterVars(
        appeal=templating.AppealVars(
            title=pick(data.title), slug=data.slug, sender_name=pick(data.sender_name)
        ),
        target=templating.TargetVars(
            name=pick(first.name), title=pick(first.title), organisation=pick(first.organisation)
        ),
        signer=templating.SAMPLE.signer,
        message=templating.SAMPLE.message,
        date=templating.SAMPLE.date,
    )


def letter_errors(data: AppealIn, *, directory: Path) -> dict[str, templating.LetterTemplateError]:
    """{field: error} for each language whose letter does not render with sample data
    (`template`, or `letter.<language>` for an inline letter)."""
    errors: dict[str, templating.LetterTemplateError] = {}
    for language in data.languages:
        field = "template" if data.template else f"letter.{language}"
        try:
            templating.render(
                letter_source(data, language),
                language,
                sample_vars(data, language),
                directory=directory,
            )
        except templating.LetterTemplateError as exc:
            errors.setdefault(field, exc)  # names the file or part, and its language
    return errors


def check_letters(data: AppealIn, *, directory: Path) -> None:
    """Render every language's letter with sample data; InvalidInput names what fails."""
    errors = letter_errors(data, directory=directory)
    if errors:
        raise InvalidInput({field: str(exc) for field, exc in errors.items()})


def save_appeal(
    session: Session, *, data: AppealIn, directory: Path, by: str
) -> tuple[Appeal, bool]:
    """Create the appeal or update the one with this slug; returns (appeal, created). Flushes.
    InvalidInput names a text no reader could be shown, or a letter that does not render.
    The audit log gets what changed, field by field, as done `by` this organiser."""
    problems = texts.check(data)
    if problems:
        raise InvalidInput(problems, codes=texts.codes(problems))
    check_letters(data, directory=directory)
    default = data.default_language or data.languages[0]
    appeal = session.scalar(select(Appeal).where(Appeal.slug == data.slug))
    created = appeal is None
    before = {} if appeal is None else files.as_file(appeal)
    if appeal is None:
        appeal = Appeal(slug=data.slug)
        session.add(appeal)
    _apply(appeal, data, default)
    appeal.organisations = _organisations(session, data.organisations)
    session.flush()
    changes = audit.diff(before, files.as_file(appeal))
    if created or changes:
        audit.record(
            session,
            by=by,
            action="appeal.created" if created else "appeal.edited",
            appeal_id=appeal.id,
            subject=appeal.slug,
            changes=changes,
        )
    return appeal, created


# The status changes an organiser may make: open a draft, close an open appeal, reopen.
STATUS_CHANGES: dict[AppealStatus, frozenset[AppealStatus]] = {
    AppealStatus.draft: frozenset({AppealStatus.open}),
    AppealStatus.open: frozenset({AppealStatus.closed}),
    AppealStatus.closed: frozenset({AppealStatus.open}),
}


class StatusNotAllowed(Conflict):
    code = "status_not_allowed"
    default_detail = "The appeal cannot move to that status from the one it has."


def set_status(session: Session, *, appeal: Appeal, status: AppealStatus, by: str) -> None:
    """Open, close or reopen the appeal and log it; StatusNotAllowed for any other move.
    Letters already confirmed go out whatever the status: closing only stops new ones."""
    if status not in STATUS_CHANGES[appeal.status]:
        raise StatusNotAllowed()
    before = appeal.status
    appeal.status = status
    session.flush()
    audit.record(
        session,
        by=by,
        action="appeal.status",
        appeal_id=appeal.id,
        subject=appeal.slug,
        changes={"status": [before.value, status.value]},
    )


def _apply(appeal: Appeal, data: AppealIn, default: str) -> None:
    """Set the appeal's fields and targets (not its organisations) from `data`."""
    exclude = {"slug", "targets", "letter", "organisations", *texts.APPEAL_TEXTS}
    for name, value in data.model_dump(exclude=exclude).items():
        setattr(appeal, name, value)
    texts.store(appeal, {f: getattr(data, f) for f in texts.APPEAL_TEXTS}, default)
    appeal.letter = (
        {lang: text.model_dump() for lang, text in data.letter.items()} if data.letter else None
    )
    # Targets are updated in place by position so deliveries keep pointing at them.
    existing = list(appeal.targets)
    for position, target_in in enumerate(data.targets):
        target = existing[position] if position < len(existing) else Target()
        for name, value in target_in.model_dump(exclude=set(texts.TARGET_TEXTS)).items():
            setattr(target, name, value)
        texts.store(target, {f: getattr(target_in, f) for f in texts.TARGET_TEXTS}, default)
        target.position = position
        if position >= len(existing):
            appeal.targets.append(target)
    for extra in existing[len(data.targets) :]:
        appeal.targets.remove(extra)


def unsaved_appeal(data: AppealIn) -> Appeal:
    """The appeal `data` describes, in memory only and never added to a session: what
    the editor previews before anything is saved."""
    appeal = Appeal(slug=data.slug, targets=[], organisations=[])
    _apply(appeal, data, data.default_language or data.languages[0])
    return appeal


def _organisations(session: Session, wanted: list[OrganisationIn]) -> list[Organisation]:
    """The organisations named in an appeal, created if new and renamed if their name changed."""
    if not wanted:
        return []
    slugs = [o.slug for o in wanted]
    found = {
        o.slug: o for o in session.scalars(select(Organisation).where(Organisation.slug.in_(slugs)))
    }
    result = []
    for item in wanted:
        organisation = found.get(item.slug)
        if organisation is None:
            organisation = Organisation(slug=item.slug, name=item.name)
            session.add(organisation)
        else:
            organisation.name = item.name
        result.append(organisation)
    return result


# One round trip for the appeal, its targets and organisations (every signature needs
# all three), instead of one for each. Built once: a statement made afresh on every call
# had its cache key worked out again each time (issue 10).
_FIND_APPEAL = (
    select(Appeal)
    .where(Appeal.slug == bindparam("slug"))
    .options(joinedload(Appeal.targets), joinedload(Appeal.organisations))
)


def find_appeal(session: Session, slug: str) -> Appeal | None:
    return session.scalars(_FIND_APPEAL, {"slug": slug}).unique().one_or_none()


def get_appeal(session: Session, slug: str) -> Appeal:
    """The appeal with this slug, drafts too (for organisers), or AppealNotFound. A
    supporter's request takes published_appeal()."""
    appeal = find_appeal(session, slug)
    if appeal is None:
        raise AppealNotFound()
    return appeal


_APPEAL = table_of(Appeal)
# What published_copy() checks a copy against. A caller may join more onto it, so that
# one round trip brings what it needs besides (letters.service: an earlier letter).
REVISION = select(_APPEAL.c.id, _APPEAL.c.revision, _APPEAL.c.status).where(
    _APPEAL.c.slug == bindparam("slug")
)
# This process's copies of published appeals, by engine (database) and slug: loaded with their
# targets and organisations, never attached to a session, never changed. At most this many.
_COPIES: dict[tuple[Engine, str], Appeal] = {}
COPIES_KEPT = 256


def published_appeal(session: Session, slug: str, *, seen: Row[Any] | None = None) -> Appeal:
    """The published appeal with this slug (AppealNotFound for none or a draft), for a
    supporter's request: what signing and the public pages read of it. The object
    returned is the session's own, as if loaded: published_copy()'s copy, merged into
    the session without loading it.

    `seen`: as for published_copy()."""
    return attached(session, published_copy(session, slug, seen=seen))


def attached(session: Session, copy: Appeal) -> Appeal:
    """The session's own object for published_copy()'s `copy`, as if loaded, without
    loading it."""
    appeal = session.merge(copy, load=False)
    # merge() hands the session's object the copy's very lists and dicts: its own ones
    # (a few microseconds), so nothing done to them in place can reach the copy.
    _own_values(appeal, _APPEAL_JSON)
    for target in appeal.targets:
        _own_values(target, _TARGET_JSON)
    return appeal


def published_copy(session: Session, slug: str, *, seen: Row[Any] | None = None) -> Appeal:
    """This process's copy of the published appeal with this slug (AppealNotFound for none
    or a draft), as current as the database: read it, never change it, and never put it,
    or anything pointing at it, in a session. published_appeal() gives a session's own.

    Loading an appeal with its targets and organisations was the largest single piece of
    a signature's own work (issue 10). This looks up one row's id, revision and status,
    and when the process's copy has that revision, reads nothing more (the triggers of
    migration c3e1f7a2d9b8 draw a new revision whenever the appeal, a target of it or an
    organisation in it changes, whoever writes).

    `seen`: the row of REVISION (id, revision, status, and maybe more columns) for this
    slug that the caller read in this session, joined with what it needed besides;
    published_copy() then reads nothing more for a copy it has."""
    row = seen if seen is not None else session.execute(REVISION, {"slug": slug}).first()
    if row is None or row.status is AppealStatus.draft:
        raise AppealNotFound()
    key = (session.get_bind().engine, slug)
    copy = _COPIES.get(key)
    if copy is None or copy.id != row.id or copy.revision != row.revision:
        copy = _load_copy(session, slug)
        if copy.status is AppealStatus.draft:  # unpublished a moment ago
            raise AppealNotFound()
        if len(_COPIES) >= COPIES_KEPT:
            _COPIES.clear()
        _COPIES[key] = copy
    return copy


def _json_attributes(entity: type[Appeal] | type[Target]) -> tuple[str, ...]:
    return tuple(
        a.key for a in class_mapper(entity).column_attrs if isinstance(a.columns[0].type, JSON)
    )


_APPEAL_JSON, _TARGET_JSON = _json_attributes(Appeal), _json_attributes(Target)


def _own_values(obj: Appeal | Target, keys: tuple[str, ...]) -> None:
    for key in keys:
        set_committed_value(obj, key, deepcopy(getattr(obj, key)))


def _load_copy(session: Session, slug: str) -> Appeal:
    """The appeal with its targets and organisations, read in the session's transaction
    by a session of its own, and left attached to none."""
    with Session(bind=session.connection()) as own:
        appeal = find_appeal(own, slug)
        if appeal is None:  # deleted a moment ago
            raise AppealNotFound()
        own.expunge_all()
    return appeal


def list_appeals(session: Session, *, include_drafts: bool = False) -> list[Appeal]:
    """Appeals, newest first; drafts only when asked."""
    query = select(Appeal).order_by(Appeal.created_at.desc(), Appeal.id.desc())
    if not include_drafts:
        query = query.where(Appeal.status != AppealStatus.draft)
    return list(session.scalars(query))


@dataclass(frozen=True, slots=True)
class Counts:
    signed: int = 0
    sent: int = 0


def counts(session: Session, appeal_ids: list[int]) -> dict[int, Counts]:
    """Confirmed (signed) and sent letters per appeal, from the trigger-kept tally: a few
    rows per appeal, however many letters (public pages call this on every view)."""
    if not appeal_ids:
        return {}
    rows = session.execute(
        select(
            LetterTally.appeal_id,
            func.sum(case((LetterTally.status.in_(SIGNED), LetterTally.n), else_=0)),
            func.sum(case((LetterTally.status == LetterStatus.sent, LetterTally.n), else_=0)),
        )
        .where(LetterTally.appeal_id.in_(appeal_ids))
        .group_by(LetterTally.appeal_id)
    )
    result = {appeal_id: Counts() for appeal_id in appeal_ids}
    for appeal_id, signed, sent in rows:
        result[appeal_id] = Counts(signed=int(signed or 0), sent=int(sent or 0))
    return result


def accepting(appeal: Appeal, now: datetime) -> bool:
    """True while the appeal is open and inside its opens_at/closes_at window."""
    return phase(appeal, now) == "open"


def phase(appeal: Appeal, now: datetime) -> Phase:
    """Where the appeal stands: a draft, scheduled (open, before opens_at), open, or closed
    (closed by hand, or past closes_at)."""
    if appeal.status is AppealStatus.draft:
        return "draft"
    if appeal.status is AppealStatus.closed:
        return "closed"
    if appeal.closes_at is not None and now >= appeal.closes_at:
        return "closed"
    if appeal.opens_at is not None and now < appeal.opens_at:
        return "scheduled"
    return "open"


def to_read(
    appeal: Appeal, counted: Counts, *, base_url: str, now: datetime, language: str | None = None
) -> AppealRead:
    """The public view of an appeal, its texts in `language` (default: the appeal's)."""
    shown = in_language(appeal, language or appeal.default_language)
    return AppealRead(
        slug=appeal.slug,
        title=shown.title,
        summary=shown.summary,
        language=shown.language,
        untranslated=list(shown.untranslated),
        status=appeal.status,
        phase=phase(appeal, now),
        accepting=accepting(appeal, now),
        languages=appeal.languages,
        default_language=appeal.default_language,
        targets=[
            TargetRead(name=t.name, title=t.title, organisation=t.organisation)
            for t in shown.targets
        ],
        goal=appeal.goal,
        opens_at=appeal.opens_at,
        closes_at=appeal.closes_at,
        signed=counted.signed,
        sent=counted.sent,
        url=f"{base_url}/a/{appeal.slug}",
    )
