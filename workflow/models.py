"""SQLAlchemy 2 typed mappings of the engine's tables."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from workflow.states import Role, State

POINTS = Numeric(7, 2)


def utcnow() -> dt.datetime:
    """Return the current time in UTC, timezone-aware."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC times")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime, Decimal: POINTS}


class Assessment(Base):
    """One year's assessment under one scheme."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    title: Mapped[str] = mapped_column(String(200))
    notice_title: Mapped[str] = mapped_column(String(200))
    document_no: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(String(200))
    signed_on: Mapped[dt.date] = mapped_column(Date)
    total_points: Mapped[Decimal]
    converted_points: Mapped[Decimal]
    appeal_window_days: Mapped[int] = mapped_column(Integer, default=7)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    routine_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    appeal_opens_at: Mapped[dt.datetime | None]
    appeal_closes_at: Mapped[dt.datetime | None]
    published_at: Mapped[dt.datetime | None]
    finalised_at: Mapped[dt.datetime | None]
    reopened_at: Mapped[dt.datetime | None]
    reopen_reason: Mapped[str | None] = mapped_column(Text)
    # The scheme's `deadlines.block_late_submissions`: refuse a first submission after 自评提交截止.
    blocks_late_submissions: Mapped[bool] = mapped_column(Boolean, default=False)
    # The results notice's own 发文字号 (never the rules' number); None until the admin sets it.
    result_document_no: Mapped[str | None] = mapped_column(String(100))
    notice_cc: Mapped[str | None] = mapped_column(String(500))  # 抄送 of the 版记
    # Departments see no score before publication (公示) starts, unless turned off.
    hide_scores_until_published: Mapped[bool] = mapped_column(Boolean, default=True)
    # Who may read the 公示 page while publication runs: "public" or "signed_in".
    publication_page: Mapped[str] = mapped_column(
        String(16), default="public", server_default="public"
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The stored scheme (`schemes` row) the assessment was made from; it is frozen from then on.
    scheme_id: Mapped[int | None] = mapped_column(ForeignKey("schemes.id"), index=True)

    departments: Mapped[list[Department]] = relationship(
        back_populates="assessment", order_by="Department.position"
    )
    categories: Mapped[list[Category]] = relationship(
        back_populates="assessment", order_by="Category.position"
    )


class StoredScheme(Base):
    """A scheme in the library: one version of a year's rules, as written and as parsed.

    `source` is the text as given (YAML or JSON, or YAML written from a form or a Word draft);
    `parsed` the validated scheme as JSON (points as decimal strings), from which
    `workflow.schemes.load_scheme` builds the engine's `Scheme`. A version used by an
    assessment is frozen (`frozen_at`): an edit then makes version N+1 of the same code.
    """

    __tablename__ = "schemes"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    year: Mapped[int] = mapped_column(Integer, index=True)
    title: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text)
    source_format: Mapped[str] = mapped_column(String(16), default="yaml")
    parsed: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    # How it came in: api, portal, form, docx, shipped, cli.
    origin: Mapped[str] = mapped_column(String(16), default="api")
    is_example: Mapped[bool] = mapped_column(Boolean, default=False)
    # No foreign key (as audit events' actor_id): users → departments → assessments → schemes
    # would close a cycle of foreign keys.
    created_by_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    frozen_at: Mapped[dt.datetime | None]

    created_by: Mapped[User | None] = relationship(
        primaryjoin="foreign(StoredScheme.created_by_id) == User.id", viewonly=True
    )


class Unit(Base):
    """An assessed unit (被考核单位) that outlives assessments: stable id, names over time.

    `status` is `active`, or how it ended: `merged`, `split` or `dissolved`. Each assessment's
    department row is that year's appearance of a unit (`Department.unit_id`).
    """

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    names: Mapped[list[UnitName]] = relationship(
        back_populates="unit", cascade="all, delete-orphan", order_by="UnitName.id"
    )
    aliases: Mapped[list[UnitAlias]] = relationship(
        back_populates="unit", cascade="all, delete-orphan", order_by="UnitAlias.id"
    )

    @property
    def current(self) -> UnitName:
        """The name in force (the one without an end), else the last one."""
        for n in reversed(self.names):
            if n.valid_to is None:
                return n
        return self.names[-1]

    @property
    def name(self) -> str:
        """The unit's current short name."""
        return self.current.name

    @property
    def full_name(self) -> str:
        """The unit's current full name."""
        return self.current.full_name


class UnitName(Base):
    """A name a unit bore from `valid_from` until before `valid_to` (None: open)."""

    __tablename__ = "unit_names"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    full_name: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)

    unit: Mapped[Unit] = relationship(back_populates="names")


class UnitAlias(Base):
    """Another name of a unit (`alias`) or a parenthesised office included in it (`office`)."""

    __tablename__ = "unit_aliases"
    __table_args__ = (UniqueConstraint("unit_id", "alias"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    alias: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default="alias")

    unit: Mapped[Unit] = relationship(back_populates="aliases")


class UnitChange(Base):
    """One lineage change: create, rename, merge, split or dissolve, with its document."""

    __tablename__ = "unit_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    effective_on: Mapped[dt.date] = mapped_column(Date)
    document_no: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    links: Mapped[list[UnitChangeLink]] = relationship(
        back_populates="change", cascade="all, delete-orphan", order_by="UnitChangeLink.id"
    )

    @property
    def from_ids(self) -> list[int]:
        """The units the change started from."""
        return [link.unit_id for link in self.links if link.role == "from"]

    @property
    def to_ids(self) -> list[int]:
        """The units the change led to."""
        return [link.unit_id for link in self.links if link.role == "to"]


class UnitChangeLink(Base):
    """A unit on one side (`from` or `to`) of a lineage change."""

    __tablename__ = "unit_change_units"
    __table_args__ = (UniqueConstraint("change_id", "unit_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("unit_changes.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    role: Mapped[str] = mapped_column(String(8))

    change: Mapped[UnitChange] = relationship(back_populates="links")


class Department(Base):
    """One assessment's appearance of a unit: its name, aliases and offices that year."""

    __tablename__ = "departments"
    __table_args__ = (
        UniqueConstraint("assessment_id", "name"),
        UniqueConstraint("assessment_id", "unit_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    full_name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)

    assessment: Mapped[Assessment] = relationship(back_populates="departments")
    unit: Mapped[Unit] = relationship()
    aliases: Mapped[list[DepartmentAlias]] = relationship(
        back_populates="department", cascade="all, delete-orphan", order_by="DepartmentAlias.id"
    )


class DepartmentAlias(Base):
    """Another name of a department (`alias`) or a parenthesised office of it (`office`)."""

    __tablename__ = "department_aliases"
    __table_args__ = (UniqueConstraint("department_id", "alias"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    alias: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default="alias")

    department: Mapped[Department] = relationship(back_populates="aliases")


class Category(Base):
    """A category of indicators with its points."""

    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("assessment_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id"), index=True)
    code: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    max_points: Mapped[Decimal]
    position: Mapped[int] = mapped_column(Integer, default=0)

    assessment: Mapped[Assessment] = relationship(back_populates="categories")
    indicators: Mapped[list[Indicator]] = relationship(
        back_populates="category", order_by="Indicator.position"
    )


class Indicator(Base):
    """An indicator: what a department × indicator item is assessed on."""

    __tablename__ = "indicators"
    __table_args__ = (UniqueConstraint("assessment_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    code: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(300))
    max_points: Mapped[Decimal]
    evidence_basis: Mapped[str] = mapped_column(String(300), default="")
    # 核查要点 from the scheme: [{"code", "text", "method"}], answered by the verifier.
    check_points: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)

    category: Mapped[Category] = relationship(back_populates="indicators")
    scoring_points: Mapped[list[ScoringPoint]] = relationship(
        back_populates="indicator", order_by="ScoringPoint.position"
    )


class ScoringPoint(Base):
    """A scoring point (sub-item) with its maximum."""

    __tablename__ = "scoring_points"
    __table_args__ = (UniqueConstraint("indicator_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicators.id"), index=True)
    code: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(300))
    max_points: Mapped[Decimal]
    routine: Mapped[str | None] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer, default=0)

    indicator: Mapped[Indicator] = relationship(back_populates="scoring_points")


class User(Base):
    """A person who signs in: department staff, office staff, auditors, admins."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The unit the user belongs to; their department in an assessment is that unit's
    # appearance there (or its successor's): `workflow.permissions.department_for`.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped on logout-everywhere, disable and password reset: sessions carry it and die with it.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[dt.datetime | None]

    unit: Mapped[Unit | None] = relationship()

    def has_role(self, *roles: Role | str) -> bool:
        """Tell whether the user holds any of the given roles."""
        return any(str(r) in self.roles for r in roles)

    @property
    def label(self) -> str:
        """Return the name to show people."""
        return self.display_name or self.username


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()


class Item(Base):
    """One department × indicator item: the unit the workflow moves."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("department_id", "indicator_id"),
        # Reviewer queues: state within an assessment, keyset on id.
        Index("ix_items_queue", "assessment_id", "state", "id"),
        Index("ix_items_queue_dept", "assessment_id", "department_id", "state", "id"),
        Index("ix_items_queue_ind", "assessment_id", "indicator_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicators.id"))
    state: Mapped[str] = mapped_column(String(16), default=State.DRAFT.value)
    version: Mapped[int] = mapped_column(Integer, default=1)
    round: Mapped[int] = mapped_column(Integer, default=0)
    submitted_at: Mapped[dt.datetime | None]
    # Who submitted (the latest round) and who appealed: never the office user who judges it,
    # even after a role change made a department's member a reviewer, verifier or scorer.
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Fixed at the first submission from the stage calendar: the deadline and whether it was missed.
    submit_due_on: Mapped[dt.date | None] = mapped_column(Date)
    is_submitted_late: Mapped[bool] = mapped_column(Boolean, default=False)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    scored_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    scored_at: Mapped[dt.datetime | None]
    return_reason: Mapped[str | None] = mapped_column(Text)
    appeal_count: Mapped[int] = mapped_column(Integer, default=0)
    appeal_reason: Mapped[str | None] = mapped_column(Text)
    appealed_at: Mapped[dt.datetime | None]
    appealed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Everyone who did the department's work on the item, in any round: submitted, withdrew,
    # attached or removed a file, appealed (user ids, ascending). The office's guard refuses
    # them all (`own_submission`), not only the latest submitter and the appellant: read with
    # the item's row, written in the same UPDATE as the change that adds one.
    contributor_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    total: Mapped[Decimal | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it as-is

    department: Mapped[Department] = relationship()
    indicator: Mapped[Indicator] = relationship()
    assessment: Mapped[Assessment] = relationship()
    scores: Mapped[list[Score]] = relationship(back_populates="item", cascade="all")
    claims: Mapped[list[NotInvolvedClaim]] = relationship(back_populates="item", cascade="all")
    evidence: Mapped[list[Evidence]] = relationship(
        back_populates="item", order_by="Evidence.id", cascade="all"
    )
    #: The indicator's scoring points in scheme order (read-only: the pipeline loads them
    #: with the item in one query).
    scoring_points: Mapped[list[ScoringPoint]] = relationship(
        primaryjoin="Item.indicator_id == foreign(ScoringPoint.indicator_id)",
        order_by="ScoringPoint.position",
        viewonly=True,
    )


class Score(Base):
    """The points awarded on one scoring point of an item."""

    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("item_id", "scoring_point_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    scoring_point_id: Mapped[int] = mapped_column(ForeignKey("scoring_points.id"))
    points: Mapped[Decimal]
    deduction_reason: Mapped[str | None] = mapped_column(Text)
    scored_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    scored_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    item: Mapped[Item] = relationship(back_populates="scores")
    scoring_point: Mapped[ScoringPoint] = relationship()


class NotInvolvedClaim(Base):
    """A department's claim that a scoring point does not concern it, and the office's ruling."""

    __tablename__ = "not_involved_claims"
    __table_args__ = (UniqueConstraint("item_id", "scoring_point_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    scoring_point_id: Mapped[int] = mapped_column(ForeignKey("scoring_points.id"))
    claimed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    claimed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    is_upheld: Mapped[bool | None] = mapped_column(Boolean)
    ruled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ruled_at: Mapped[dt.datetime | None]

    item: Mapped[Item] = relationship(back_populates="claims")
    scoring_point: Mapped[ScoringPoint] = relationship()


class Evidence(Base):
    """An evidence file attached to an item; removal marks the row and keeps the object."""

    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_item", "item_id", "removed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    scoring_point_id: Mapped[int | None] = mapped_column(ForeignKey("scoring_points.id"))
    purpose: Mapped[str] = mapped_column(String(32), default="evidence")
    filename: Mapped[str] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(100))
    storage_key: Mapped[str] = mapped_column(String(200), index=True)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[dt.datetime | None]
    removed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    item: Mapped[Item] = relationship(back_populates="evidence")
    scoring_point: Mapped[ScoringPoint | None] = relationship()
    uploaded_by: Mapped[User] = relationship(foreign_keys=[uploaded_by_id])


#: The events of `ix_audit_notice_target` (`workflow.notice_records.NOTICE_TARGET`).
NOTICE_EVENTS = "target_type = 'notice'"


class AuditEvent(Base):
    """One link of the append-only, hash-chained audit trail."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_item_seq", "item_id", "seq"),
        Index("ix_audit_actor_seq", "actor_id", "seq"),
        Index("ix_audit_action_seq", "action", "seq"),
        Index("ix_audit_department_seq", "department_id", "seq"),
        # The public verification reads a notice's issuing event on every check: a partial
        # index holds only the notices' events, so no other append pays for it.
        Index(
            "ix_audit_notice_target",
            "target_id",
            postgresql_where=text(NOTICE_EVENTS),
            sqlite_where=text(NOTICE_EVENTS),
        ),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime]
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[int | None] = mapped_column(Integer)
    department_id: Mapped[int | None] = mapped_column(Integer)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    # Canonical JSON as text, so the hash is recomputed from exactly the stored bytes.
    payload: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class ChainHead(Base):
    """The single row that names the chain's last event; locked to keep appends linear."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class IdempotencyRecord(Base):
    """A transition request already applied under a client's Idempotency-Key."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    result_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BulkRun(Base):
    """A bulk action (review, verify, return) applied under a client's Idempotency-Key.

    Kept apart from `idempotency_keys`, which holds single-item requests: a bulk key and a
    single-item key of the same user never meet. Each item's outcome is a `BulkRunItem`; the
    run's report is those rows, so a retry with the key answers the same report.
    """

    __tablename__ = "bulk_runs"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text)
    item_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]


class BulkRunItem(Base):
    """One item's outcome in a bulk run, written in the same transaction as its transition.

    The unique (run, item) pair makes a retried or concurrent run apply an item at most once.
    `item_id` has no foreign key: an unknown id is reported (refused), not stored as a link.
    """

    __tablename__ = "bulk_run_items"
    __table_args__ = (UniqueConstraint("run_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("bulk_runs.id"))
    item_id: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)  # the template (workflow/messages.py)
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int | None] = mapped_column(Integer)


class Notice(Base):
    """One issued version of a department's score notice or of the summary table.

    Rows are never changed: issuing again adds version N+1 and earlier versions stay
    downloadable. `snapshot` holds the figures the file was rendered from.
    """

    __tablename__ = "notices"
    __table_args__ = (
        # One row per version of a subject; PostgreSQL and SQLite treat NULL departments
        # (the summary) as distinct, so issuing also locks the assessment row.
        Index(
            "ix_notices_subject", "assessment_id", "kind", "department_id", "version", unique=True
        ),
        Index("ix_notices_verification_code", "verification_code", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    kind: Mapped[str] = mapped_column(String(16))  # "notice" or "summary" (department NULL)
    version: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    base_sha256: Mapped[str | None] = mapped_column(String(64))  # NULL: the shipped base
    filename: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(200), index=True)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # NULL: the CLI
    issued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Printed on the document and behind its QR code; random, so it cannot be guessed.
    verification_code: Mapped[str | None] = mapped_column(String(32))
    is_preliminary: Mapped[bool] = mapped_column(Boolean, default=False)  # 初步结果, no rank

    assessment: Mapped[Assessment] = relationship()
    department: Mapped[Department | None] = relationship()
    issued_by: Mapped[User | None] = relationship()


class NoticeBase(Base):
    """An uploaded letterhead .docx used as the base of notices; the latest row wins."""

    __tablename__ = "notice_bases"

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id"), index=True)
    filename: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(200), index=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # NULL: the CLI
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RoutineRecord(Base):
    """A routine (平时考核) record: a monthly report, a quarterly case, a meeting, …"""

    __tablename__ = "routine_records"
    __table_args__ = (
        Index("ix_routine_dept_kind_period", "assessment_id", "department_id", "kind", "period"),
        Index("ix_routine_status", "assessment_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    kind: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[dt.datetime]
    submitted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    is_late: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="submitted")  # … or withdrawn
    reason: Mapped[str | None] = mapped_column(Text)
    # Tasks (meeting, inspection, task): done / late / missed; NULL for reports.
    outcome: Mapped[str | None] = mapped_column(String(16))
    # "department" (its own report) or "office" (registered by the office; correctable).
    registered_by: Mapped[str] = mapped_column(
        String(16), default="department", server_default="department"
    )
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[dt.datetime | None]

    department: Mapped[Department] = relationship()
    files: Mapped[list[RoutineFile]] = relationship(
        back_populates="record", order_by="RoutineFile.id", cascade="all"
    )


class RoutineFile(Base):
    """A file attached to a routine record (stored like evidence, content-addressed)."""

    __tablename__ = "routine_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("routine_records.id"), index=True)
    filename: Mapped[str] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(100))
    storage_key: Mapped[str] = mapped_column(String(200), index=True)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    record: Mapped[RoutineRecord] = relationship(back_populates="files")


class StageDeadline(Base):
    """One stage of an assessment's calendar: 自评提交, 初审, 核实 or 评分 and its deadline.

    The deadline is a date, or `working_days` Chinese working days after the previous stage's
    deadline (the stage's own start for the first stage). 公示 and the appeal window are the
    assessment's publication fields, not rows here.
    """

    __tablename__ = "stage_deadlines"
    __table_args__ = (UniqueConstraint("assessment_id", "stage"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id"), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    starts_on: Mapped[dt.date | None] = mapped_column(Date)
    due_on: Mapped[dt.date | None] = mapped_column(Date)
    working_days: Mapped[int | None] = mapped_column(Integer)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CalendarOverride(Base):
    """An admin's correction of the holiday calendar: a day off or a working day, with why."""

    __tablename__ = "calendar_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, unique=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """One message to one person (站内消息), and the record its e-mail/webhook copies come from.

    Written by the engine in the same transaction as the change that causes it. `dedup_key`
    makes a scheduled reminder idempotent: running the reminders twice on one day adds nothing.
    """

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_unread", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    # Title and body as their msgids and parameters (`workflow.messages.stored`), shown in
    # the reader's language; None: shown as written (written before 0013, or plain text).
    title_i18n: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    body_i18n: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    link: Mapped[str | None] = mapped_column(String(300))
    assessment_id: Mapped[int | None] = mapped_column(ForeignKey("assessments.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # Shown in the inbox (the user's preferences may send a kind by e-mail only).
    in_inbox: Mapped[bool] = mapped_column(Boolean, default=True)
    # For a user who takes a daily digest: when this message went out in one.
    digest_pending: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    read_at: Mapped[dt.datetime | None]


class NotificationPreference(Base):
    """Where a person's notifications go; no row means the defaults (notify.DEFAULTS)."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254))
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    # kind → the channels ("inbox", "email", "webhook") it goes to; a missing kind: defaults.
    channels: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    # Remind this many working days before a deadline.
    remind_days: Mapped[int] = mapped_column(Integer, default=3)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """An e-mail or webhook message waiting for (or past) delivery by the worker.

    Delivery is at least once: a worker leases a row (`leased_until`), sends, then records
    the attempt; a worker killed between the two leaves the lease to expire and the message is
    sent again. E-mails carry a stable Message-ID and webhooks an `X-Notification-Id`, so a
    receiver can drop the rare duplicate.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    leased_until: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]


class DeliveryAttempt(Base):
    """One try at delivering an outbox message, successful or not."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)


class Job(Base):
    """A piece of background work (workflow/jobs.py): requested, claimed, run, downloaded.

    `status` goes queued → running → done | failed. A claim is one conditional UPDATE (only a
    queued row is taken), so the same job enqueued twice runs once. `attempt` numbers the
    claims: progress and the finish are written only by the claim that holds the row, and a
    running row whose `heartbeat_at` is older than the lease is given back to the queue (or
    failed after the last attempt). The result file is an object of the evidence store,
    referenced by `storage_key` (so `storage gc` keeps it and `storage verify` checks it).
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_enqueued", "status", "enqueued_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)  # what it is doing, or what it did
    # The same as its msgid and parameters (`workflow.messages.stored`), shown in the
    # reader's language; None: shown as written (plain text, or written before 0013).
    message_i18n: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    storage_key: Mapped[str | None] = mapped_column(String(1024))
    filename: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)  # Chinese, for people
    error_i18n: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # as `message_i18n`

    created_by: Mapped[User | None] = relationship()
