"""Every table, the status enums and their allowed transitions: the data model in one place."""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Enum,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import ClauseElement


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite forgets the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    # Named constraints keep Alembic migrations stable across backends.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def table_of(entity: type[Base]) -> Table:
    """The Core table of a mapped class, for the few statements on the busiest paths that
    skip the ORM (signing writes its rows with plain INSERTs)."""
    table = entity.__table__
    if not isinstance(table, Table):
        raise AssertionError(type(table))
    return table


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as plain strings: adding a status later needs no ALTER TYPE.
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
    )


class AppealStatus(enum.StrEnum):
    draft = "draft"
    open = "open"
    closed = "closed"


class LetterStatus(enum.StrEnum):
    pending_confirmation = "pending_confirmation"
    held = "held"  # confirmed, with a personal message, waiting for a moderator
    queued = "queued"
    sent = "sent"
    failed = "failed"
    expired = "expired"
    rejected = "rejected"  # a moderator declined it: never sent
    withdrawn = "withdrawn"  # the supporter took it back before it was sent
    # An organiser's test send before the appeal opens: not a signature, never counted,
    # and its one delivery goes to the organiser alone.
    sample = "sample"


class DeliveryStatus(enum.StrEnum):
    queued = "queued"
    sending = "sending"
    sent = "sent"
    retrying = "retrying"
    failed = "failed"
    cancelled = "cancelled"  # its letter was withdrawn or erased before it went out
    # A relay took the message, and a delivery status notification (or the relay's
    # webhook) later said a target's server refused it for good.
    bounced = "bounced"


class Channel(enum.StrEnum):
    email = "email"  # the letter to the targets, Cc the campaign
    fax = "fax"  # the letter as a PDF to one target's fax
    copy = "copy"  # the supporter's own copy (copy_to_me)
    confirmation = "confirmation"  # the e-mail asking the supporter to confirm
    rejection = "rejection"  # telling the supporter a moderator declined their letter
    sample = "sample"  # a test send: the target's e-mail, to the organiser's own address
    invitation = "invitation"  # an invitation to an organiser account (no letter)
    reply_notice = "reply_notice"  # telling the supporter that a target answered (notify_replies)


class ReplyKind(enum.StrEnum):
    human = "human"
    auto = "auto"  # an out-of-office, a vacation or other automatic answer (RFC 3834)


# Deliveries the dashboard lists as failures; written out as SQL so queries can repeat
# the partial index's predicate word for word (a bound parameter would not match it).
PROBLEMS = (DeliveryStatus.failed, DeliveryStatus.retrying)
PROBLEMS_SQL = "status IN ({})".format(", ".join(f"'{s.value}'" for s in PROBLEMS))
# The predicates of the letter indexes the privacy passes use (app/letters/privacy.py).
FORGET_SQL = "signer_email IS NOT NULL"
UNCONFIRMED_SQL = "status = 'expired' AND erased_at IS NULL"

# A letter is finished in these: nothing more will be sent (bar an organiser's retry of
# a failed one), and OUTCRY_FORGET_AFTER_DAYS later the supporter's address is erased.
FINISHED = (
    LetterStatus.sent,
    LetterStatus.failed,
    LetterStatus.rejected,
    LetterStatus.expired,
    LetterStatus.withdrawn,
)

LETTER_TRANSITIONS: dict[LetterStatus, frozenset[LetterStatus]] = {
    LetterStatus.pending_confirmation: frozenset(
        {LetterStatus.queued, LetterStatus.held, LetterStatus.expired, LetterStatus.withdrawn}
    ),
    LetterStatus.held: frozenset(
        {LetterStatus.queued, LetterStatus.rejected, LetterStatus.withdrawn}
    ),  # moderation
    LetterStatus.queued: frozenset(
        {LetterStatus.sent, LetterStatus.failed, LetterStatus.withdrawn}
    ),
    # An organiser's retry; or the supporter withdraws what never reached the targets.
    LetterStatus.failed: frozenset({LetterStatus.queued, LetterStatus.withdrawn}),
    LetterStatus.sent: frozenset(),
    LetterStatus.expired: frozenset(),
    LetterStatus.rejected: frozenset(),
    LetterStatus.withdrawn: frozenset(),
    LetterStatus.sample: frozenset(),
}

DELIVERY_TRANSITIONS: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    DeliveryStatus.queued: frozenset({DeliveryStatus.sending, DeliveryStatus.cancelled}),
    # sending -> sending: a new claim after the previous holder's lease ran out.
    # sending -> queued or retrying: a claim given back unsent (its worker stopped), the
    # attempt not counted.
    DeliveryStatus.sending: frozenset(
        {
            DeliveryStatus.queued,
            DeliveryStatus.sending,
            DeliveryStatus.sent,
            DeliveryStatus.retrying,
            DeliveryStatus.failed,
        }
    ),
    DeliveryStatus.retrying: frozenset({DeliveryStatus.sending, DeliveryStatus.cancelled}),
    # An organiser's retry (of a bounce: once the target's address is fixed); a withdrawn
    # or erased letter's delivery that had not gone out is cancelled.
    DeliveryStatus.failed: frozenset({DeliveryStatus.queued, DeliveryStatus.cancelled}),
    DeliveryStatus.sent: frozenset({DeliveryStatus.bounced}),
    DeliveryStatus.bounced: frozenset({DeliveryStatus.queued}),
    DeliveryStatus.cancelled: frozenset(),
}


class Organisation(Base):
    """A union or group taking part; its slug attributes letters (`?org=`)."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# Which organisations take part in which appeal: only they can attribute letters
# (`?org=`), and a union's token or login sees only the appeals it takes part in.
appeal_organisation = Table(
    "appeal_organisation",
    Base.metadata,
    Column("appeal_id", ForeignKey("appeal.id", ondelete="CASCADE")),
    Column("organisation_id", ForeignKey("organisation.id", ondelete="CASCADE"), index=True),
    PrimaryKeyConstraint("appeal_id", "organisation_id"),
)


class Appeal(Base):
    __tablename__ = "appeal"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[AppealStatus] = mapped_column(_enum(AppealStatus), default=AppealStatus.draft)
    languages: Mapped[list[str]] = mapped_column(JSON)
    default_language: Mapped[str] = mapped_column(String(8))
    template: Mapped[str | None] = mapped_column(String(64))
    # Inline letters: {lang: {"subject": …, "body": …}}; used when template is None.
    letter: Mapped[dict[str, dict[str, str]] | None] = mapped_column(JSON)
    sender_name: Mapped[str] = mapped_column(String(200))
    # title, summary and sender_name above are in default_language; the other languages'
    # texts are here: {lang: {"title": …, "summary": …, "sender_name": …}}, each text
    # only where it was given (app/appeals/texts.py reads them, falling back).
    translations: Mapped[dict[str, dict[str, str]]] = mapped_column(JSON, default=dict)
    copies: Mapped[list[str]] = mapped_column(JSON, default=list)
    goal: Mapped[int | None] = mapped_column(Integer)
    opens_at: Mapped[datetime | None]
    closes_at: Mapped[datetime | None]
    require_confirmation: Mapped[bool] = mapped_column(Boolean, default=True)
    attach_pdf: Mapped[bool] = mapped_column(Boolean, default=False)
    moderation: Mapped[bool] = mapped_column(Boolean, default=False)
    page_size: Mapped[str] = mapped_column(String(8), default="A4")
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    rate_limit: Mapped[int] = mapped_column(Integer, default=60)  # per recipient domain a minute
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Drawn anew by triggers whenever the appeal, its targets or its organisations change
    # (migration c3e1f7a2d9b8): a web process checks its copy against it.
    revision: Mapped[int] = mapped_column(
        BigInteger, server_default="0", server_onupdate=FetchedValue()
    )

    targets: Mapped[list[Target]] = relationship(
        back_populates="appeal",
        order_by="Target.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )
    organisations: Mapped[list[Organisation]] = relationship(
        secondary=appeal_organisation, order_by="Organisation.slug", lazy="selectin"
    )


class Target(Base):
    __tablename__ = "target"

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeal.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    fax: Mapped[str | None] = mapped_column(String(20))  # E.164
    address: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str | None] = mapped_column(String(8))
    # As Appeal.translations: {lang: {"name"|"title"|"organisation"|"address": …}}.
    translations: Mapped[dict[str, dict[str, str]]] = mapped_column(JSON, default=dict)

    appeal: Mapped[Appeal] = relationship(back_populates="targets")


class Letter(Base):
    __tablename__ = "letter"
    __table_args__ = (
        # One letter per person per appeal: a second signature is a 409, never a resend.
        # Keyed on the address's HMAC, which outlives the address itself.
        UniqueConstraint("appeal_id", "email_hash", name="uq_letter_appeal_email_hash"),
        # Covering on PostgreSQL, so an appeal's stats (by status, country, organisation,
        # day) are index-only scans instead of a heap fetch per letter (benchmarks/stats.py).
        Index(
            "ix_letter_appeal_status",
            "appeal_id",
            "status",
            postgresql_include=["organisation_id", "signer_country", "confirmed_at", "sent_at"],
        ),
        Index("ix_letter_appeal_created", "appeal_id", "created_at"),
        # The sweeper's two privacy passes find their few letters without a scan: those
        # still holding an address, and never-confirmed ones not yet reduced to a count.
        Index(
            "ix_letter_forget",
            "finished_at",
            postgresql_where=text(FORGET_SQL),
            sqlite_where=text(FORGET_SQL),
        ),
        Index(
            "ix_letter_unconfirmed",
            "finished_at",
            postgresql_where=text(UNCONFIRMED_SQL),
            sqlite_where=text(UNCONFIRMED_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    key: Mapped[str] = mapped_column(String(64))  # the supporter's secret for status and PDF
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeal.id", ondelete="CASCADE"))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL"), index=True
    )
    signer_name: Mapped[str] = mapped_column(String(200))
    # NULL once forgotten or erased; email_hash (HMAC with the secret key) stays, so the
    # same address still cannot sign the appeal twice.
    signer_email: Mapped[str | None] = mapped_column(String(254))
    email_hash: Mapped[str | None] = mapped_column(String(64))
    signer_country: Mapped[str] = mapped_column(String(2))
    signer_city: Mapped[str] = mapped_column(String(100), default="")
    signer_organisation: Mapped[str] = mapped_column(String(200), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(8))
    share_email: Mapped[bool] = mapped_column(Boolean, default=False)
    copy_to_me: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[LetterStatus] = mapped_column(_enum(LetterStatus))
    # The exact text that goes out: rendered once at signing, immutable once confirmed.
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    # A moderator's words to the supporter when declining the letter (may be empty).
    rejection_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Why it waits for a moderator when its own words are not the reason: a flood from
    # one network or mail domain ("network:<tag>", "domain:<domain>"), decided at signing.
    hold_reason: Mapped[str] = mapped_column(String(300), default="", server_default="")
    # When it reached a FINISHED status (the privacy clock), and when the supporter's
    # details were erased (on request, by a purge, or a never-confirmed letter deleted).
    finished_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    # The supporter asked to be told when a target answers their letter.
    notify_replies: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    appeal: Mapped[Appeal] = relationship()
    organisation: Mapped[Organisation | None] = relationship()
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="letter", order_by="Delivery.id", cascade="all, delete-orphan"
    )


class LetterTally(Base):
    """How many letters an appeal has, per organisation and status.

    Kept by database triggers on `letter` (created in the organisers migration: a
    statement trigger on PostgreSQL, row triggers on SQLite), so it is right whichever
    code or SQL changes a letter, and the dashboard and the public counts read a few
    rows instead of counting a million letters on every page view.
    """

    __tablename__ = "letter_tally"

    # No foreign keys: the triggers write here while an appeal's letters are deleted in
    # the same cascade that deletes the appeal.
    appeal_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_key: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0: none
    status: Mapped[LetterStatus] = mapped_column(_enum(LetterStatus), primary_key=True)
    # Each count is spread over shards, one per database connection (PostgreSQL: backend
    # pid % 64), so concurrent signatures never wait on one row's lock: read sum(n).
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default="0")
    n: Mapped[int] = mapped_column(Integer, default=0)


class Delivery(Base):
    __tablename__ = "delivery"
    __table_args__ = (
        Index("ix_delivery_due", "status", "next_attempt_at"),
        Index("ix_delivery_appeal", "appeal_id", "organisation_id", "channel", "status"),
        # The dashboard's latest failures: only failing deliveries, newest first, however
        # many there are (a target refusing everything fails every letter).
        Index(
            "ix_delivery_appeal_problems",
            "appeal_id",
            "next_attempt_at",
            "id",
            postgresql_where=text(PROBLEMS_SQL),
            sqlite_where=text(PROBLEMS_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Every delivery is about a letter, except an invitation to an organiser account.
    letter_id: Mapped[int | None] = mapped_column(
        ForeignKey("letter.id", ondelete="CASCADE"), index=True
    )
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitation.id"))
    # Copied from the letter when the delivery is planned (neither ever changes), so an
    # appeal's or a union's deliveries are counted without joining every letter.
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("appeal.id", ondelete="CASCADE"))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL")
    )
    target_id: Mapped[int | None] = mapped_column(ForeignKey("target.id", ondelete="SET NULL"))
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    recipients: Mapped[list[str]] = mapped_column(JSON)  # To (for fax: the E.164 number)
    cc: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus), default=DeliveryStatus.queued
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Until when the delivery is handed out: to a worker (status sending: the claim's
    # lease) or to the broker (queued/retrying: its id is in a task). The sweeper hands
    # it out again only after that; NULL means just written and enqueued after commit.
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # Recipients (To or Cc) the server has accepted the message for: a later attempt
    # goes only to the others, so nobody gets the same letter twice.
    accepted: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    message_id: Mapped[str] = mapped_column(String(255))
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    letter: Mapped[Letter | None] = relationship(back_populates="deliveries")
    invitation: Mapped[Invitation | None] = relationship()
    target: Mapped[Target | None] = relationship()


class Bounce(Base):
    """What came back for a delivery: a permanent or temporary failure of one recipient,
    with the remote server's words and the report itself for the organiser to read.

    The report is kept without the returned copy of the letter (which may carry the
    supporter's name and address): the letter is in the database already.
    """

    __tablename__ = "bounce"
    __table_args__ = (Index("ix_bounce_appeal", "appeal_id", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The same report handed over twice (an MTA retrying, a mailbox read again) is one row.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("delivery.id", ondelete="CASCADE"), index=True
    )
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeal.id", ondelete="CASCADE"))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL")
    )
    recipient: Mapped[str] = mapped_column(String(254))  # a target's or a copy's, never a signer's
    permanent: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16), default="")  # enhanced code, "5.1.1"
    reply: Mapped[str] = mapped_column(Text, default="")  # the remote server's words
    report: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16))  # lmtp, smtp, imap, ses, postmark, …
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reply(Base):
    """A message from a target, matched to its appeal and letter by the reply address.

    Holds the target's words and the letter it answers, never the supporter's address.
    """

    __tablename__ = "reply"
    __table_args__ = (Index("ix_reply_appeal", "appeal_id", "kind", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeal.id", ondelete="CASCADE"))
    letter_id: Mapped[int | None] = mapped_column(
        ForeignKey("letter.id", ondelete="SET NULL"), index=True
    )
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("delivery.id", ondelete="SET NULL"))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL")
    )
    kind: Mapped[ReplyKind] = mapped_column(_enum(ReplyKind))
    sender: Mapped[str] = mapped_column(String(254), default="")
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboundDropped(Base):
    """Inbound messages thrown away, by reason (a forged or unknown return address, …):
    a counter for /metrics, one row per reason."""

    __tablename__ = "inbound_dropped"

    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class StatusEvent(Base):
    """One row per status change of a letter or delivery: the audit trail and attempt log."""

    __tablename__ = "status_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    # None for the events of a delivery that has no letter (an invitation).
    letter_id: Mapped[int | None] = mapped_column(
        ForeignKey("letter.id", ondelete="CASCADE"), index=True
    )
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("delivery.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Organiser(Base):
    """A person who logs in; organisation None means admin, else scoped to that union."""

    __tablename__ = "organiser"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # CASCADE, never SET NULL: a NULL here means admin, so deleting a union must not
    # turn its organisers into admins.
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation | None] = relationship()


class LoginSession(Base):
    """A browser login: the cookie carries the raw token (signed), this row its SHA-256,
    so logging out (deleting the row) ends the session wherever the cookie went."""

    __tablename__ = "login_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    organiser_id: Mapped[int] = mapped_column(
        ForeignKey("organiser.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    organiser: Mapped[Organiser] = relationship(lazy="joined")


class ApiToken(Base):
    """A bearer token, stored as its SHA-256; organisation None means admin scope."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]

    organisation: Mapped[Organisation | None] = relationship()


class Invitation(Base):
    """An invitation to an organiser account, mailed through the outbox.

    The link's token is derived from `nonce` with the secret key (the sender composes
    the e-mail from it), and only its SHA-256 is kept to look it up: the database alone
    gives no one a working link. Used once (`used_at`), or never after `expires_at`."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    # None: an admin account; else scoped to this union.
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE")
    )
    nonce: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(String(300))
    language: Mapped[str] = mapped_column(String(8))  # of the e-mail and the page
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    organisation: Mapped[Organisation | None] = relationship()


class AuditEvent(Base):
    """One change an organiser made: who, when, what, and what changed field by field.

    Written by the service function that makes the change, in its transaction, so a
    change rolled back leaves no entry. Never a supporter's address or a password."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_appeal", "appeal_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(300))  # an organiser's address, a token, the CLI
    action: Mapped[str] = mapped_column(String(64))  # appeal.edited, letter.approved, …
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("appeal.id", ondelete="SET NULL"))
    # The union the entry concerns (its letter, its account, its token): what a union
    # sees of the log besides the appeals it takes part in.
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL"), index=True
    )
    subject: Mapped[str] = mapped_column(String(300), default="")  # a letter id, an account…
    # {field: [before, after]} for an edit; {name: value} for other details.
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    appeal: Mapped[Appeal | None] = relationship()


class InvalidTransition(Exception):
    """A status change the state machine does not allow."""


def transition(
    session: Session,
    row: Letter | Delivery,
    to: LetterStatus | DeliveryStatus,
    *,
    detail: str = "",
    expect: LetterStatus | DeliveryStatus | None = None,
    where: tuple[Any, ...] = (),
    values: dict[str, Any] | None = None,
) -> bool:
    """Move `row` to status `to` with a conditional UPDATE and record a StatusEvent.

    The UPDATE only matches while the row is still in `expect` (default: its
    current status) and `where` holds, so of two processes racing for the same
    row exactly one wins; the loser gets False and changes nothing.
    """
    table: type[Letter] | type[Delivery] = type(row)
    allowed = LETTER_TRANSITIONS if isinstance(row, Letter) else DELIVERY_TRANSITIONS
    current = expect if expect is not None else row.status
    if to not in allowed[current]:  # type: ignore[index]
        raise InvalidTransition(f"{table.__tablename__} {row.id}: {current} -> {to}")
    result = session.execute(
        update(table)
        .where(table.id == row.id, table.status == current, *where)
        .values(status=to, **(values or {}))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.add(
        StatusEvent(
            letter_id=row.id if isinstance(row, Letter) else row.letter_id,
            delivery_id=row.id if isinstance(row, Delivery) else None,
            from_status=current.value,
            to_status=to.value,
            detail=detail,
        )
    )
    session.flush()
    # Keep the loaded object in step with the row without marking it dirty: a later
    # flush must never write these columns again unconditionally.
    set_committed_value(row, "status", to)
    for name, value in (values or {}).items():
        if isinstance(value, ClauseElement):
            session.expire(row, [name])
        else:
            set_committed_value(row, name, value)
    return True


def transition_many(
    session: Session,
    table: type[Letter] | type[Delivery],
    ids: Collection[int],
    to: LetterStatus | DeliveryStatus,
    *,
    expect: LetterStatus | DeliveryStatus,
    detail: str | Mapping[int, str] = "",
    where: tuple[Any, ...] = (),
    values: dict[str, Any] | None = None,
    skip_locked: bool = False,
) -> list[int]:
    """Move every row of `ids` still in `expect` (and matching `where`) to `to`, recording a
    StatusEvent for each; returns the ids that moved.

    transition() for many rows: the same rules, one UPDATE and one INSERT however many
    rows. `detail` may give each row its own text. With `skip_locked`, rows another
    transaction is changing at this moment are left to it instead of waited for (on
    PostgreSQL), so two workers taking overlapping batches never block or deadlock.
    Objects already loaded are not refreshed.
    """
    allowed = LETTER_TRANSITIONS if table is Letter else DELIVERY_TRANSITIONS
    if to not in allowed[expect]:  # type: ignore[index]
        raise InvalidTransition(f"{table.__tablename__}: {expect} -> {to}")
    if not ids:
        return []
    condition = (table.status == expect, *where)
    if skip_locked:
        free = (
            select(table.id)
            .where(table.id.in_(ids), *condition)
            .order_by(table.id)
            .with_for_update(skip_locked=True)
        )
        chosen = table.id.in_(free.scalar_subquery())
    else:
        chosen = table.id.in_(ids)
    letter_id = Delivery.letter_id if table is Delivery else Letter.id
    rows = session.execute(
        update(table)
        .where(chosen, *condition)
        .values(status=to, **(values or {}))
        .returning(table.id, letter_id)
        .execution_options(synchronize_session=False)
    ).all()
    if not rows:
        return []
    session.execute(
        insert(StatusEvent),
        [
            {
                "letter_id": letter,
                "delivery_id": row_id if table is Delivery else None,
                "from_status": expect.value,
                "to_status": to.value,
                "detail": detail if isinstance(detail, str) else detail.get(row_id, ""),
            }
            for row_id, letter in rows
        ],
    )
    return [row_id for row_id, _ in rows]
