"""The JSON API's bodies as declared models (pydantic v2): one description of each shape.

Request bodies (`Body` subclasses) are what the views parse: `web.api.contract.parse_body`
validates the JSON that `json_body` read (size cap, nesting, Decimal numbers) against them and
answers a refusal in our own error format. Response bodies (`Out` subclasses) are what the views
return; the OpenAPI document is generated from both (`web.api.contract`), and every JSON answer
in the test suite is checked against it, so a field the models do not declare fails a test.

Every model forbids undeclared fields (`additionalProperties: false` in the document), except
a scheme's own keys (`SchemeBody`, `SchemeView`: the points declared, the rest passed through).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from web.api.common import DEFAULT_LIMIT, MAX_LIMIT
from workflow.machine import ACTIONS
from workflow.messages import N_
from workflow.states import State

MAX_ID = 2**31 - 1
MAX_SEQ = 2**63 - 1

ROUTINE_KINDS = ("monthly_info", "quarterly_case", "meeting", "inspection", "task")
STAGE_NAMES = ("submit", "review", "verify", "score", "publication", "appeal")
ASSESSMENT_STATUSES = ("open", "published", "appeals_pending", "final", "reopened")

# --- field types -------------------------------------------------------------------------
#: Points and totals: a decimal string with two places ("87.50").
Points = Annotated[str, Field(pattern=r"^-?[0-9]+\.[0-9]{2}$", examples=["87.50"])]
#: A time, ISO 8601 UTC.
Time = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
#: A calendar day, YYYY-MM-DD.
Day = Annotated[str, WithJsonSchema({"type": "string", "format": "date"})]
Sha256 = Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
Cursor = Annotated[str | None, Field(description="give it as `cursor` for the next page")]
StateName = Annotated[str, Field(json_schema_extra={"enum": [s.value for s in State]})]
ActionName = Annotated[str, Field(json_schema_extra={"enum": list(ACTIONS)})]
RoutineKind = Annotated[str, Field(json_schema_extra={"enum": list(ROUTINE_KINDS)})]
AssessmentStatusName = Annotated[str, Field(json_schema_extra={"enum": list(ASSESSMENT_STATUSES)})]
NoticeKind = Annotated[str, Field(json_schema_extra={"enum": ["notice", "summary"]})]
#: A score in a request: a JSON number or a decimal string (never a boolean).
ScoreValue = Annotated[
    int | Decimal | str,
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^[0-9.]+$"}]}),
]
Binary = Annotated[bytes, WithJsonSchema({"type": "string", "format": "binary"})]


def _optional(schema: dict[str, Any]) -> WithJsonSchema:
    """The schema of an optional query or form field (absent, never null on the wire)."""
    return WithJsonSchema(schema)


class Out(BaseModel):
    """A response body: every field is present (null where it says so), nothing else is."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class Body(BaseModel):
    """A JSON request body: strict types (no "5" for 5, no true for 1), no unknown fields.

    `FIELD_ERRORS` names the error code and Chinese message template (`%(name)s` is the field)
    of a refused field (default: `invalid_type`, "字段 X 类型无效"); a value over a length limit
    is `invalid_value`. In a list of objects, `"name[]"` is an element of the wrong shape and
    `"name[].*"` a wrong value inside one (`%(n)s` is its index).
    """

    model_config = ConfigDict(extra="forbid", strict=True)
    FIELD_ERRORS: ClassVar[dict[str, tuple[str, str]]] = {}


def _absent_not_null(schema: dict[str, Any]) -> None:
    """Drop `"default": null` of optional parameters: they are absent, never null."""
    for prop in schema.get("properties", {}).values():
        if prop.get("default", 0) is None:
            del prop["default"]


class Query(BaseModel):
    """Query parameters or headers, for the document only: views read them with `query_int`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_absent_not_null)


class Form(BaseModel):
    """A multipart form, for the document only: the views read it with `form_text` & co."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_absent_not_null)


# --- errors ------------------------------------------------------------------------------
class ErrorDetail(Out):
    """What went wrong: a stable code and a message for a person (Chinese, or English)."""

    code: str
    message: str


class ErrorBody(Out):
    """Every refusal: `{"error": {"code", "message"}}`."""

    error: ErrorDetail


# --- request bodies ----------------------------------------------------------------------
class CheckAnswerBody(Body):
    """The verifier's answer to one check point (核查要点)."""

    answer: Annotated[str, Field(json_schema_extra={"enum": ["yes", "no", "na"]})]
    note: str | None = None


class TransitionBody(Body):
    """A workflow action on an item (POST /items/{iid}/transitions)."""

    FIELD_ERRORS: ClassVar[dict[str, tuple[str, str]]] = {
        "action": ("invalid_type", N_("缺少或无效的 action（文本）")),
        "version": ("version_required", N_("缺少或无效的 version（整数）")),
        "comment": ("invalid_type", N_("comment 须为文本")),
        "scores": ("invalid_type", N_("scores 须为 评分项 → 数字或数字文本 的对象")),
        "deductions": ("invalid_type", N_("deductions 须为 评分项 → 文本 的对象")),
        "not_involved": ("invalid_type", N_("not_involved 须为评分项编号的数组")),
        "rulings": ("invalid_type", N_("rulings 须为 评分项 → true/false 的对象")),
        "change_note": ("invalid_type", N_("change_note 须为文本")),
        "checks": ("invalid_type", N_("checks 须为 核查要点编码 → {answer, note} 的对象")),
    }

    action: Annotated[ActionName, Field(min_length=1, description="an unknown one is a 422")]
    version: Annotated[int, Field(description="the item's `version` as last read (else 409)")]
    comment: Annotated[
        str | None,
        Field(
            description="the reason, read by the department: required at `return`, `withdraw`, "
            "`appeal`, `reject_appeal` (422 `reason_required`) and `rescore` (the 复核说明, "
            "422 `rescore_reason_required`); optional otherwise"
        ),
    ] = None
    scores: Annotated[
        dict[str, ScoreValue] | None,
        Field(description='scoring-point code → points (`{"1.1": 5, "1.2": "4.5"}`)'),
    ] = None
    deductions: Annotated[
        dict[str, str | None] | None,
        Field(
            description="code → the reason: required for every point below its maximum (and "
            "where a routine point's score differs from its suggestion); given at the maximum "
            "it is kept as the point's note; refused for a code not in the indicator or "
            "an upheld not-involved point"
        ),
    ] = None
    not_involved: Annotated[
        list[str] | None,
        Field(description="codes the department claims do not concern it (each needs a proof)"),
    ] = None
    rulings: Annotated[
        dict[str, bool] | None,
        Field(description="a claimed code → upheld (`true`) or not, at `verify`"),
    ] = None
    change_note: Annotated[
        str | None,
        Field(
            description="修改说明 at `submit`: required when resubmitting a returned item "
            "(422 `change_note_required`), optional after a withdraw, refused on a first "
            "submission and on other actions"
        ),
    ] = None
    checks: Annotated[
        dict[str, CheckAnswerBody] | None,
        Field(
            description="at `verify`: every check point (核查要点) of the indicator, by code, "
            "answered `yes` (是), `no` (否) or `na` (不适用) with a note (required with `no`: "
            "422 `check_note_required`); a missing one is a 422 `check_required` naming it"
        ),
    ] = None


class BulkItem(Body):
    """One item of a bulk action, with the version the caller last read."""

    id: Annotated[int, Field(ge=1, le=MAX_ID)]
    version: Annotated[int, Field(ge=0, le=MAX_ID)]


class BulkBody(Body):
    """Review, verify or return up to 500 items (POST /bulk-transitions).

    Another action, no items, more than 500 or one item twice are the engine's 422s.
    """

    FIELD_ERRORS: ClassVar[dict[str, tuple[str, str]]] = {
        "action": ("invalid_type", N_("缺少或无效的 action（文本）")),
        "items": ("invalid_type", N_("items 须为对象的数组，每个对象含 id 和 version")),
        "items[]": ("invalid_type", N_("items[%(n)s] 须为只含 id 和 version 的对象")),
        "items[].*": ("invalid_type", N_("items[%(n)s] 的 id 和 version 须为范围内的整数")),
        "comment": ("invalid_type", N_("comment 须为文本")),
        "dry_run": ("invalid_type", N_("dry_run 须为 true 或 false")),
        "all_checks_yes": ("invalid_type", N_("all_checks_yes 须为 true 或 false")),
    }

    action: Annotated[
        str, Field(min_length=1, json_schema_extra={"enum": ["review", "verify", "return"]})
    ]
    items: Annotated[list[BulkItem], Field(json_schema_extra={"maxItems": 500})]
    comment: str | None = None
    dry_run: bool = False
    all_checks_yes: Annotated[
        bool,
        Field(
            description="verify only: every check point (核查要点) of each item is 是; without "
            "it an item whose indicator has check points is refused `check_required`"
        ),
    ] = False


class TokenRequest(Body):
    """Sign in with a username and password (POST /tokens)."""

    FIELD_ERRORS: ClassVar[dict[str, tuple[str, str]]] = {
        name: ("invalid_type", N_("缺少或无效的字段 %(name)s（文本）"))
        for name in ("username", "password", "name")
    }

    username: Annotated[str, Field(min_length=1, max_length=200)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    name: Annotated[str | None, Field(max_length=100, description="a label for the token")] = None


class SettingsBody(Body):
    """The results notice's own 发文字号, its 抄送, and score hiding (PATCH …/settings)."""

    FIELD_ERRORS: ClassVar[dict[str, tuple[str, str]]] = {
        "result_document_no": ("invalid_type", N_("result_document_no 须为文本")),
        "notice_cc": ("invalid_type", N_("notice_cc 须为文本")),
        "hide_scores_until_published": (
            "invalid_type",
            N_("hide_scores_until_published 须为 true 或 false"),
        ),
        "seen": ("invalid_type", N_("seen 须为文本")),
    }

    result_document_no: Annotated[
        str | None, Field(description="1–100 characters, not the rules' own number (else 422)")
    ] = None
    notice_cc: Annotated[str | None, Field(description="at most 500 characters (else 422)")] = None
    hide_scores_until_published: bool | None = None
    seen: Annotated[
        str | None,
        Field(
            max_length=64,
            description="the assessment's `settings_seen` as read: when the settings changed "
            "since, 409 `changed_since_opened` and nothing changes (omitted: last write wins)",
        ),
    ] = None


class RoutineReviewBody(Body):
    """Accept or reject a routine record; a rejection needs a reason (else 422)."""

    FIELD_ERRORS: ClassVar[dict[str, tuple[str, str]]] = {
        "status": ("bad_status", N_("status 须为 accepted 或 rejected")),
        "reason": ("invalid_type", N_("reason 必须是文本")),
        "expected_status": ("bad_status", N_("expected_status 无效")),
    }

    status: Annotated[str, Field(json_schema_extra={"enum": ["accepted", "rejected"]})]
    reason: Annotated[str | None, Field(max_length=5000)] = None
    #: The status the client saw: a record changed since (another reviewer) is a 409.
    expected_status: Annotated[
        str | None,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "enum": ["submitted", "accepted", "rejected", "withdrawn"]},
                    {"type": "null"},
                ]
            }
        ),
    ] = None


class RoutineCorrectBody(Body):
    """Correct a record the office registered, with a reason (else 422)."""

    FIELD_ERRORS: ClassVar[dict[str, tuple[str, str]]] = {
        name: ("invalid_type", N_("%(name)s 必须是文本"))
        for name in ("reason", "period", "title", "note", "outcome")
    }

    reason: str | None = None
    period: Annotated[str | None, Field(examples=["2018-08", "2018-Q3"])] = None
    title: str | None = None
    note: str | None = None
    outcome: Annotated[
        str | None, Field(json_schema_extra={"enum": ["done", "late", "missed", None]})
    ] = None


class ReasonBody(Body):
    """A reason (withdrawing a record, reopening an assessment); a missing one is a 422."""

    FIELD_ERRORS: ClassVar[dict[str, tuple[str, str]]] = {
        "reason": ("invalid_type", N_("reason 必须是文本")),
    }

    reason: str | None = None


class PublishBody(Body):
    """Start publication (公示) for `days` (1–60, else 422): calendar days, or with
    `working_days` Chinese working days (holidays and 调休 counted as the stage calendar)."""

    FIELD_ERRORS: ClassVar[dict[str, tuple[str, str]]] = {
        "days": ("invalid_type", N_("days 须为整数")),
        "working_days": ("invalid_type", N_("working_days 须为 true 或 false")),
    }

    #: Required: a missing `days` is the same 400 as one of another type (the range is the
    #: engine's 422, `bad_days`).
    days: Annotated[int, Field(json_schema_extra={"minimum": 1, "maximum": 60})]
    #: Count `days` in working days: the window closes on the `days`-th working day after
    #: today, at the time it opened (422 `calendar_unknown_year` when that year's holiday
    #: arrangement is not known yet).
    working_days: bool = False


class NoticeRequest(Body):
    """Issue a department's notice; `preliminary` gives the 初步结果 without rank."""

    FIELD_ERRORS: ClassVar[dict[str, tuple[str, str]]] = {
        "preliminary": ("invalid_type", N_("preliminary 须为 true 或 false")),
    }

    preliminary: bool = False


class EmptyBody(Body):
    """No fields (a body, when sent, must be an empty JSON object)."""


# --- query parameters and forms (document only) ------------------------------------------
#: No `maximum`: a larger limit is served as 500 (`query_limit`), not refused, so the
#: document must not call it invalid.
LIMIT = Annotated[
    int,
    Field(
        ge=1,
        default=DEFAULT_LIMIT,
        description=f"page size: default {DEFAULT_LIMIT}, at least 1; a larger value than "
        f"{MAX_LIMIT} is served as {MAX_LIMIT} (capped at {MAX_LIMIT}, not refused)",
    ),
]
CURSOR = Annotated[
    str | None,
    _optional({"type": "string", "description": "the `next_cursor` of the previous page"}),
]


class Page(Query):
    """A page of a list."""

    limit: LIMIT = DEFAULT_LIMIT
    cursor: CURSOR = None


class ItemFilter(Page):
    """The item list's filters."""

    department: Annotated[
        int | None,
        _optional({"type": "integer", "minimum": 0, "maximum": MAX_ID, "description": "id"}),
    ] = None
    state: Annotated[
        str | None,
        _optional({"type": "string", "enum": [s.value for s in State], "description": "state"}),
    ] = None
    indicator: Annotated[
        str | None,
        _optional({"type": "string", "maxLength": 16, "description": "a code, e.g. `3`"}),
    ] = None
    failed_checks: Annotated[
        str | None,
        _optional(
            {
                "type": "string",
                "enum": ["0", "1", "true", "false"],
                "description": "`1` keeps the items whose verification answered a check point "
                "`no` (`failed_checks` not empty), the portal's 只看有“否”",
            }
        ),
    ] = None


class EventFilter(Page):
    """The audit log's filters."""

    after_seq: Annotated[
        int | None,
        _optional({"type": "integer", "minimum": 0, "maximum": MAX_SEQ, "description": "after"}),
    ] = None
    actor: Annotated[str | None, _optional({"type": "string", "maxLength": 64})] = None
    action: Annotated[str | None, _optional({"type": "string", "maxLength": 48})] = None


class EventExportFilter(Query):
    """The audit log export's filters (not paged: the whole log, up to Excel's row limit)."""

    after_seq: Annotated[
        int | None,
        _optional({"type": "integer", "minimum": 0, "maximum": MAX_SEQ, "description": "after"}),
    ] = None
    actor: Annotated[str | None, _optional({"type": "string", "maxLength": 64})] = None
    action: Annotated[str | None, _optional({"type": "string", "maxLength": 48})] = None


class TransitionHeaders(Query):
    """The optional Idempotency-Key of a transition."""

    idempotency_key: Annotated[
        str | None,
        Field(alias="Idempotency-Key"),
        _optional(
            {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "pattern": "^[!-~][ -~]*$",
                "description": "a retry with the same key is not applied twice; the same key "
                "with another body is a 422",
            }
        ),
    ] = None


class BulkHeaders(Query):
    """The optional Idempotency-Key of a bulk action."""

    idempotency_key: Annotated[
        str | None,
        Field(alias="Idempotency-Key"),
        _optional(
            {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "pattern": "^[!-~][ -~]*$",
                "description": "a retry with the same key answers the stored report (a run "
                "that died half way is resumed) and applies no item twice, with "
                "`Idempotent-Replayed: true`; the same key with another body is a 422",
            }
        ),
    ] = None


class ConditionalHeaders(Query):
    """A download's optional `If-None-Match`: the ETag (the file's SHA-256) the caller holds."""

    if_none_match: Annotated[
        str | None,
        Field(alias="If-None-Match"),
        _optional(
            {
                "type": "string",
                "description": "an ETag of this file (or `*`): the answer is a 304 without "
                "a body when it is the file's",
            }
        ),
    ] = None


class EvidenceForm(Form):
    """An evidence upload (multipart)."""

    file: Binary
    sub_item: Annotated[str | None, _optional({"type": "string", "maxLength": 16})] = None
    note: Annotated[str | None, _optional({"type": "string", "maxLength": 4000})] = None
    purpose: Annotated[
        str | None,
        _optional(
            {
                "type": "string",
                "enum": ["evidence", "not_involved_proof", "appeal"],
                "default": "evidence",
            }
        ),
    ] = None


class RoutineForm(Form):
    """A routine record (multipart); `department` (an id) for office staff only."""

    kind: Annotated[str, WithJsonSchema({"type": "string", "enum": list(ROUTINE_KINDS)})]
    period: Annotated[str, WithJsonSchema({"type": "string", "examples": ["2018-08"]})]
    title: Annotated[str, WithJsonSchema({"type": "string", "maxLength": 300})]
    note: Annotated[str | None, _optional({"type": "string", "maxLength": 2000})] = None
    outcome: Annotated[
        str | None, _optional({"type": "string", "enum": ["done", "late", "missed"]})
    ] = None
    department: Annotated[str | None, _optional({"type": "string", "pattern": "^[0-9]{1,10}$"})] = (
        None
    )
    file: Annotated[bytes | None, _optional({"type": "string", "format": "binary"})] = None


# --- response bodies ---------------------------------------------------------------------
class DepartmentRef(Out):
    id: int
    name: str
    full_name: str


class OwnDepartment(DepartmentRef):
    assessment_id: int


class IndicatorRef(Out):
    id: int
    code: str
    title: str
    max_points: Points


class Me(Out):
    """Who a user is."""

    id: int
    username: str
    display_name: str
    roles: list[str]
    department: OwnDepartment | None


class TokenCreated(Out):
    """A new token (shown once) and its user."""

    token: str
    token_id: int
    expires_at: Time
    user: Me


class Token(Out):
    """A token's metadata (never the token itself)."""

    id: int
    name: str
    created_at: Time
    expires_at: Time
    revoked_at: Time | None


class TokenList(Out):
    tokens: list[Token]
    next_cursor: Cursor


class Assessment(Out):
    """An assessment (one year's rules and results)."""

    id: int
    code: str
    year: int
    title: str
    document_no: str
    issuer: str
    total_points: Points
    converted_points: Points
    appeal_opens_at: Time | None
    appeal_closes_at: Time | None
    published_at: Time | None
    finalised_at: Time | None
    result_document_no: str | None
    notice_cc: str | None
    hide_scores_until_published: bool
    #: The fingerprint of the three settings as they are now: sent back as `seen` in
    #: PATCH …/settings, a change by someone else in between is a 409.
    settings_seen: str


class AssessmentList(Out):
    assessments: list[Assessment]
    next_cursor: Cursor


class AssessmentStatus(Assessment):
    """An assessment with where it stands (publication, appeals, final, reopened)."""

    status: AssessmentStatusName
    reopened_at: Time | None
    reopen_reason: str | None


class SchemeSubItem(Out):
    code: str
    title: str
    max_points: Points


class CheckPoint(Out):
    """A check point (核查要点) of the indicator, from the scheme."""

    code: str
    text: str
    method: Annotated[str, Field(json_schema_extra={"enum": ["实地考核", "平时考核"]})]


class SchemeIndicator(IndicatorRef):
    evidence_basis: str
    check_points: Annotated[
        list[CheckPoint], Field(description="核查要点 the verifier answers at `verify`")
    ]
    sub_items: list[SchemeSubItem]


class SchemeCategory(Out):
    code: str
    title: str
    max_points: Points
    indicators: list[SchemeIndicator]


class SchemeDepartment(DepartmentRef):
    aliases: list[str]


class Scheme(Assessment):
    """An assessment's scheme: categories, indicators, sub-items, departments."""

    categories: list[SchemeCategory]
    departments: list[SchemeDepartment]


class ItemSummary(Out):
    """An item's line in a list."""

    id: int
    assessment_id: int
    department: DepartmentRef
    indicator: IndicatorRef
    state: StateName
    version: int
    round: int
    total: Points | None
    updated_at: Time
    is_submitted_late: bool
    submit_due_on: Day | None
    failed_checks: Annotated[
        list[str] | None,
        Field(
            description="the check points (核查要点) the item's verification answered 否 "
            '(`"no"`), in the scheme\'s order: what the scorer deducts for; `[]` when none, '
            "null before a verification with check points"
        ),
    ]


class ItemList(Out):
    items: list[ItemSummary]
    next_cursor: Cursor


class SubItem(Out):
    code: str
    title: str
    max_points: Points
    score: Points | None
    deduction_reason: Annotated[
        str | None,
        Field(
            description="the scorer's reason: below the maximum why points were deducted; at "
            "the maximum the note given with it, if any (shown as 说明)"
        ),
    ]
    not_involved: bool
    not_involved_upheld: bool | None


class Evidence(Out):
    """An evidence file's record."""

    id: int
    item_id: int
    filename: str
    size: int
    sha256: Sha256
    content_type: str
    sub_item: str | None
    purpose: Annotated[
        str, Field(json_schema_extra={"enum": ["evidence", "not_involved_proof", "appeal"]})
    ]
    note: str | None
    uploaded_at: Time
    uploaded_by: str | None


class RoundChanges(Out):
    """The latest resubmission against the previous submission: for the reviewer."""

    round: Annotated[int, Field(description="the resubmitted round")]
    previous_round: int
    change_note: Annotated[str | None, Field(description="the department's 修改说明")]
    ended_by: Annotated[
        str | None,
        Field(
            description="what ended the previous round",
            json_schema_extra={"enum": ["return", "withdraw", None]},
        ),
    ]
    ended_reason: Annotated[str | None, Field(description="the return's or withdraw's reason")]
    added: Annotated[list[Evidence], Field(description="files at this round, not the last")]
    removed: Annotated[list[Evidence], Field(description="files at the last round, not this")]


class CheckResult(CheckPoint):
    """A check point as the verifier answered it."""

    answer: Annotated[str, Field(json_schema_extra={"enum": ["yes", "no", "na"]})]
    note: str | None


class RoutineDriftCause(Out):
    """A record kind and period that moved a sub-item's suggestion after its score."""

    kind: RoutineKind
    period: Annotated[str, Field(description="the period: `2018-03` or `2018-Q3`")]
    change: Annotated[
        str,
        Field(
            description=(
                "`record_changed`: a record of the period was reviewed, corrected or "
                "withdrawn after the score; `period_ended`: the period was not yet due at "
                "the score (still running, or within the working days a due rule gives after "
                "it) and has come due since, short of its quota"
            ),
            json_schema_extra={"enum": ["record_changed", "period_ended"]},
        ),
    ]


class RoutineDriftPoint(Out):
    """A routine-fed sub-item whose suggested score changed since it was scored."""

    code: str
    suggested_then: Annotated[
        Points, Field(description="the suggestion recorded with the latest score or rescore")
    ]
    suggested_now: Annotated[Points, Field(description="the suggestion the records give now")]
    score: Annotated[Points | None, Field(description="the score given")]
    causes: Annotated[
        list[RoutineDriftCause],
        Field(description="which record kinds and periods moved it (empty: none found)"),
    ]


class RoutineDrift(Out):
    """The routine records behind a scored item changed after its latest score."""

    action: Annotated[
        str,
        Field(
            description="the event the suggestions were recorded with",
            json_schema_extra={"enum": ["score", "rescore"]},
        ),
    ]
    scored_at: Time
    remedy: Annotated[
        str,
        Field(
            description=(
                "what allows a rescore: `rescore` (appealed, or the results reopened: now), "
                "`appeal` (the department may appeal during the 公示), `after_publication` "
                "(not yet published), `reopen` (an admin must reopen the final results)"
            ),
            json_schema_extra={"enum": ["rescore", "appeal", "after_publication", "reopen"]},
        ),
    ]
    points: list[RoutineDriftPoint]


class Item(ItemSummary):
    """An item with sub-items, evidence and the caller's allowed actions."""

    sub_items: list[SubItem]
    evidence: list[Evidence]
    return_reason: str | None
    appeal_reason: str | None
    appeal_count: int
    allowed_actions: list[ActionName]
    round_changes: Annotated[
        RoundChanges | None,
        Field(description="null until the item is submitted a second time"),
    ]
    check_points: Annotated[
        list[CheckPoint], Field(description="the indicator's checklist, answered at `verify`")
    ]
    checks: Annotated[
        list[CheckResult] | None,
        Field(description="the verifier's answers since the latest submission (null before)"),
    ]
    scores_hidden: Annotated[
        bool, Field(description="true: a department before publication; scores are null")
    ]
    routine_drift: Annotated[
        RoutineDrift | None,
        Field(
            description=(
                "a scored routine-fed item whose suggested scores changed since its latest "
                "score or rescore; null otherwise, and while scores are hidden"
            )
        ),
    ]


class EventTarget(Out):
    type: str
    id: str


class Event(Out):
    """An audit event."""

    seq: int
    at: Time
    actor: str
    actor_id: int | None
    action: str
    target: EventTarget
    item_id: int | None
    department_id: int | None
    from_state: str | None
    to_state: str | None
    comment: str | None
    payload: Any
    prev_hash: str
    hash: str


class History(Out):
    events: list[Event]
    next_cursor: Cursor


class EventList(Out):
    events: list[Event]
    next_cursor: Cursor
    next_after_seq: int | None


class ChainHead(Out):
    seq: int
    hash: str


class Difference(Out):
    item_id: int | None
    field: str
    live: Annotated[Any, Field(description="the live value (any JSON value)")]
    from_events: Annotated[Any, Field(description="the value the trail gives")]
    department_id: int | None
    assessment_id: int | None


class Reconciliation(Out):
    ok: bool
    items: int
    events: int
    difference_count: int
    truncated: bool
    differences: list[Difference]


class Verification(Out):
    """The chain's verdict and the tables' reconciliation with it."""

    ok: bool
    events: int
    head: ChainHead
    first_bad_seq: int | None
    problem: str | None
    chain_ok: bool
    reconciliation: Reconciliation


#: A rank, null while the department is still being scored (`unranked_reason` says so).
Rank = Annotated[
    int | None,
    Field(
        description="among the departments whose items all have their score (scored, or "
        "under appeal), ties sharing (1, 2, 2, 4); null while any item of the department "
        "waits for its score"
    ),
]
#: Why a rank is null: `not_all_scored`, the department's items are not all scored yet.
UnrankedReason = Annotated[
    Literal["not_all_scored"] | None,
    Field(
        description="`not_all_scored` when `rank` is null: the department is still being "
        "scored, its `total` and `converted` are the sum of the items scored so far, not a "
        "result; null when ranked"
    ),
]


class ResultRow(Out):
    """One department's line: the ranked best first, then those still being scored."""

    department: DepartmentRef
    total: Points
    converted: Points
    rank: Rank
    unranked_reason: UnrankedReason
    complete: bool
    items_scored: int
    items_total: int


class Results(Out):
    assessment_id: int
    results: list[ResultRow]


class RoutineFile(Out):
    id: int
    filename: str
    size: int
    sha256: str
    content_type: str


class RoutineRecord(Out):
    """A routine record (平时考核)."""

    id: int
    assessment_id: int
    department_id: int
    kind: RoutineKind
    kind_label: str
    period: str
    title: str
    note: str | None
    due_at: Time
    submitted_at: Time
    is_late: bool
    status: Annotated[
        str, Field(json_schema_extra={"enum": ["submitted", "accepted", "rejected", "withdrawn"]})
    ]
    reason: str | None
    reviewed_at: Time | None
    outcome: Annotated[
        str | None, Field(json_schema_extra={"enum": ["done", "late", "missed", None]})
    ]
    registered_by: Annotated[str, Field(json_schema_extra={"enum": ["department", "office"]})]
    files: list[RoutineFile]


class PeriodCount(Out):
    period: str
    accepted: int
    late: int
    rejected: int
    pending: int
    minimum: int
    met: bool


class Suggested(Out):
    points: Points
    max_points: Points
    breakdown: dict[str, Any]


class RoutineOverview(Out):
    """A department's records, counts per period against the quota, suggested scores."""

    records: list[RoutineRecord]
    counts: dict[str, list[PeriodCount]]
    suggested: dict[str, Suggested]


class Stage(Out):
    name: Annotated[str, Field(json_schema_extra={"enum": list(STAGE_NAMES)})]
    label: str
    starts_on: Day | None
    due_on: Day | None
    working_days: int | None
    #: What `working_days` counts from: the stage's start (`start`, no earlier deadline) or
    #: the previous deadline (`previous`); null for a date.
    counts_from: Literal["start", "previous"] | None
    working_days_left: int | None
    overdue: bool
    pending: int | None
    is_running: bool
    problem: str | None
    entered_year: int | None
    #: The fingerprint of the stage's deadline as it is now (null for 公示 and the appeal
    #: window, which publishing sets): sent back as `seen` when setting it.
    seen: str | None


class CalendarWarning(Out):
    """Something about an accepted deadline to know: `deadline_not_workday` (a day off)."""

    stage: Annotated[str, Field(json_schema_extra={"enum": list(STAGE_NAMES)})]
    code: str
    message: str


class StageCalendar(Out):
    """The stage calendar; `warnings` names accepted deadlines that fall on a day off."""

    assessment_id: int
    today: Day
    status: AssessmentStatusName
    stages: list[Stage]
    warnings: list[CalendarWarning]


class BulkResult(Out):
    """One item's outcome; `message` is for a person, the versions are for scripts."""

    item_id: int
    status: Annotated[str, Field(json_schema_extra={"enum": ["ok", "refused", "conflict"]})]
    code: str | None
    message: str | None
    current_version: Annotated[
        int | None,
        Field(description="`stale_version`: the item's version when it was found changed"),
    ]
    requested_version: Annotated[
        int | None, Field(description="`stale_version`: the version given for the item")
    ]


class BulkCounts(Out):
    ok: int
    refused: int
    conflict: int


class BulkReport(Out):
    """One result per item, in the order given, and the counts."""

    action: str
    dry_run: bool
    results: list[BulkResult]
    counts: BulkCounts


class NoticeVersion(Out):
    """One issued version of a notice or summary."""

    id: int
    kind: NoticeKind
    assessment_id: int
    department_id: int | None
    version: int
    filename: str
    sha256: str
    size: int
    issued_at: Time
    issued_by: str
    total: Annotated[Points | None, Field(description="null for the summary table")]
    converted: Annotated[Points | None, Field(description="null for the summary table")]
    rank: Annotated[
        int | None, Field(description="null for a 初步结果 (no rank) and the summary table")
    ]
    url: str


class NoticeWarning(Out):
    """Something about an issued version to check: `number_year_not_issue_year` (the year in
    the 发文字号 is not the year of the 成文日期)."""

    code: str
    message: str


class NoticeIssued(NoticeVersion):
    """An issued version with its verification code; `new` when it was issued now;
    `warnings` what to check on it (issued all the same)."""

    verification_code: str
    verify_url: str | None
    new: bool
    warnings: list[NoticeWarning]


class NoticeList(Out):
    notices: list[NoticeVersion]
    next_cursor: Cursor


class NoticeCheck(Out):
    """What a printed notice says, and whether it is the version in force."""

    document_no: str
    #: The assessment's year (the notice's title says it; its 发文字号 is often the next year).
    year: int
    #: `notice` (one department's) or `summary` (the table of all departments).
    kind: NoticeKind
    #: The department of a notice; for a summary its scope, 全部被考核部门.
    unit: str
    total: Points | None
    converted: Points | None
    #: The rank the notice prints, among `department_count` departments; `tied` when it says
    #: 并列. Null for a preliminary notice (it names no rank) and for the summary.
    rank: int | None
    tied: bool
    department_count: int | None
    preliminary: bool
    version: int
    issued_at: Time
    sha256: str
    current: bool
    #: The current version against the results now: same, changed (to be issued again),
    #: unsettled (under appeal); null for a replaced version.
    standing: Literal["same", "changed", "unsettled"] | None


# --- notifications -------------------------------------------------------------------------
NOTIFICATION_KINDS = (
    "item_returned",
    "queue_waiting",
    "deadline_near",
    "overdue",
    "item_scored",
    "appeal_filed",
    "results_published",
    "appeal_decided",
    "routine_rejected",
    "audit_alert",
    "notice_outdated",
    "routine_basis_changed",
    "calendar_needed",
)
CHANNEL_NAMES = ("inbox", "email", "webhook")
NotificationKind = Annotated[str, Field(json_schema_extra={"enum": list(NOTIFICATION_KINDS)})]
ChannelName = Annotated[str, Field(json_schema_extra={"enum": list(CHANNEL_NAMES)})]


class InboxFilter(Page):
    """The inbox's filter: `unread=1` keeps the unread messages."""

    unread: Annotated[
        str | None, _optional({"type": "string", "enum": ["0", "1", "true", "false"]})
    ] = None


class NotificationOut(Out):
    """One message of the inbox (站内消息)."""

    id: int
    kind: NotificationKind
    kind_label: str
    title: str
    body: str
    link: str | None
    assessment_id: int | None
    item_id: int | None
    created_at: Time
    read_at: Time | None


class Inbox(Out):
    """A page of the inbox, newest first, and the unread count."""

    notifications: list[NotificationOut]
    unread: int
    next_cursor: Cursor


class MarkedRead(Out):
    """How many messages were marked read."""

    marked: int
    unread: int


class PreferencesOut(Out):
    """Where each kind of notification goes, and the addresses."""

    email: str | None
    webhook_url: str | None
    channels: dict[str, list[ChannelName]]
    digest: bool
    remind_days: int
    kinds: dict[str, str]


class PreferencesBody(Body):
    """Fields to change (absent ones keep their value; null clears an address)."""

    email: Annotated[str | None, Field(max_length=254)] = None
    webhook_url: Annotated[str | None, Field(max_length=500)] = None
    channels: dict[str, list[str]] | None = None
    digest: bool | None = None
    remind_days: int | None = None
    #: Read-only (the names GET shows): accepted and ignored, so GET's answer can be sent back.
    kinds: dict[str, str] | None = None


# --- the scheme library ------------------------------------------------------------------
SCHEME_SAVE_STATUSES = ("created", "updated", "versioned", "unchanged")
SCHEME_CHANGE_KINDS = ("added", "removed", "reweighted", "retitled")
SCHEME_CHANGE_LEVELS = ("total", "category", "indicator", "point")


class SchemeBody(BaseModel):
    """A scheme as JSON: the keys of a scheme file (`schemes/jiaohe-2018.yaml`).

    The same body may be sent as YAML (`Content-Type: application/yaml`). The engine checks
    it (`workflow/schemes.py`): every problem is named by its place in a 422 answer.
    """

    model_config = ConfigDict(extra="allow")

    code: str
    year: int
    title: str
    document_no: str
    issuer: str
    signed_on: Annotated[str, WithJsonSchema({"type": "string", "format": "date"})]
    total_points: ScoreValue
    converted_points: ScoreValue
    departments: list[dict[str, Any]]
    categories: list[dict[str, Any]]


class SchemeSaved(Out):
    """A stored scheme: `status` says whether it is new, changed in place, a new version of a
    frozen one, or unchanged."""

    id: int
    code: str
    version: int
    year: int
    title: str
    status: Annotated[str, Field(json_schema_extra={"enum": list(SCHEME_SAVE_STATUSES)})]


class SchemeProblem(Out):
    """A problem of a scheme, by its place (`categories[0].indicators[1].max_points`).

    `line` is the line of the YAML text where that place is written, when known.
    """

    path: str
    message: str
    line: int | None


class SchemeRefusal(Out):
    """A scheme refused: the usual error and every problem by place; nothing was saved."""

    error: ErrorDetail
    errors: list[SchemeProblem]


class StoredSchemeLine(Out):
    """A stored scheme's line in the library."""

    id: int
    code: str
    version: int
    year: int
    title: str
    origin: str
    is_example: bool
    frozen: bool
    total_points: Points
    created_by: str | None
    created_at: Time
    updated_at: Time


class StoredSchemeList(Out):
    schemes: list[StoredSchemeLine]
    next_cursor: Cursor


class _SchemePart(BaseModel):
    """A part of a scheme's parsed form: its points declared, its other keys as stored."""

    model_config = ConfigDict(extra="allow")


class SchemePointView(_SchemePart):
    max_points: Points


class SchemeIndicatorView(_SchemePart):
    max_points: Points
    sub_items: list[SchemePointView]


class SchemeCategoryView(_SchemePart):
    max_points: Points
    indicators: list[SchemeIndicatorView]


class SchemeView(_SchemePart):
    """A scheme's parsed form, every point as a decimal string with two places ("10.00");
    the other keys as the scheme file has them (`routine`, `departments`, …)."""

    total_points: Points
    converted_points: Points
    categories: list[SchemeCategoryView]


class StoredSchemeDetail(StoredSchemeLine):
    """A stored scheme with its text as given and its parsed form (points with two places)."""

    source: str
    source_format: str
    sha256: Sha256
    scheme: SchemeView
    previous_id: int | None


class SchemeChange(Out):
    """One difference: a part added, removed, re-weighted (maximum) or retitled."""

    kind: Annotated[str, Field(json_schema_extra={"enum": list(SCHEME_CHANGE_KINDS)})]
    level: Annotated[str, Field(json_schema_extra={"enum": list(SCHEME_CHANGE_LEVELS)})]
    code: str
    title: str
    before: Points | None
    after: Points | None
    old_title: str | None


class SchemeDiff(Out):
    """What changed from one stored scheme (`from_id`, null when none) to another."""

    from_id: int | None
    to_id: int
    changes: list[SchemeChange]


class SchemeDiffQuery(Query):
    """Compare with this stored scheme (default: the version before, else the year before)."""

    against: Annotated[
        int | None,
        _optional({"type": "integer", "minimum": 1, "maximum": MAX_ID, "description": "id"}),
    ] = None


class DocxForm(Form):
    """A Word document (.docx) upload (multipart)."""

    file: Binary


class DraftWarning(Out):
    """What the Word import could not read, with where (`categories[1]`, `表格第 3 行`)."""

    path: str
    message: str


class SchemeDraft(Out):
    """A draft scheme read from a Word document: not stored until sent to `POST /schemes`.

    `scheme` is the draft (points as decimal strings with two places where they are numbers),
    `yaml` the same as YAML text, `errors` the
    problems `POST /schemes` would name today (the sums the draft breaks), `warnings` what
    could not be read, `paragraphs` the document's text for reading it side by side.
    """

    scheme: dict[str, Any]
    yaml: str
    warnings: list[DraftWarning]
    errors: list[SchemeProblem]
    paragraphs: list[str]


# --- calendar writes -----------------------------------------------------------------------
class StageDeadlineBody(Body):
    """A stage's deadline: a date (`due_on`), or N working days after the previous stage."""

    starts_on: Day | None = None
    due_on: Day | None = None
    working_days: int | None = None
    seen: Annotated[
        str | None,
        Field(
            max_length=64,
            description="the stage's `seen` as read: when its deadline changed since, 409 "
            "`changed_since_opened` and nothing changes (omitted: last write wins)",
        ),
    ] = None


class OverrideBody(Body):
    """A day declared a holiday (`is_workday: false`) or a working day, with the reason."""

    day: Day
    is_workday: bool
    reason: Annotated[str, Field(max_length=500)]
    seen: Annotated[
        str | None,
        Field(
            max_length=64,
            description="the list's `seen` as read: when the day has an entry and the "
            "overrides changed since, 409 `changed_since_opened` and nothing changes (a day "
            "without an entry is added whatever changed; omitted: last write wins)",
        ),
    ] = None


class OverrideOut(Out):
    """A working-day override."""

    id: int
    day: Day
    is_workday: bool
    reason: str
    #: The fingerprint of this entry as it is now: sent back as `seen` when removing it.
    seen: str


class Overrides(Out):
    """The working-day overrides, by day, a page at a time."""

    overrides: list[OverrideOut]
    next_cursor: Cursor
    #: The fingerprint of every override as they are now (all pages): sent back as `seen`
    #: when adding or replacing an entry.
    seen: str


class OverrideDeleteQuery(Query):
    """The entry's `seen` as read: when it was replaced since, 409 `changed_since_opened`."""

    seen: Annotated[str | None, _optional({"type": "string", "maxLength": 64})] = None


class ArrangementBody(Body):
    """A year's holiday arrangement as the State Council's notice prints it, pasted whole.

    With `dry_run` nothing is entered: the answer says what entering would do, and its
    `fingerprint`, given back as `seen`, makes the entry refuse (409 `arrangement_changed`)
    when the overrides changed in between."""

    text: Annotated[str, Field(max_length=5000)]
    dry_run: bool = False
    seen: Annotated[str, Field(max_length=64)] | None = None


class ArrangedDayOut(Out):
    """A day of the arrangement and what entering it does: `add`, `replace` (the office's
    opposite entry), `entered` (already), `unneeded` (the calendar says so without one)."""

    day: Day
    is_workday: bool
    holiday: str
    action: Literal["add", "replace", "entered", "unneeded"]


class ArrangementOut(Out):
    """What a pasted arrangement enters (or would enter, with `dry_run`)."""

    year: int
    source: str
    days: list[ArrangedDayOut]
    fingerprint: str
    dry_run: bool
    entered: int
    #: The office's entries of that year on days the notice does not name: kept.
    kept: list[OverrideOut]


# --- background jobs (web/api/jobs.py, workflow/jobs.py) -----------------------------------
JobKind = Literal["notices", "archives", "export", "audit_verify"]
JobStatus = Literal["queued", "running", "done", "failed"]


class JobRequest(Body):
    """Start a job: `notices` and `archives` of every department of an assessment, an
    `export` of a table (`results`, `matrix` of an assessment; `audit`), `audit_verify`."""

    FIELD_ERRORS: ClassVar[dict[str, tuple[str, str]]] = {
        "kind": ("unknown_kind", N_("kind 须为 notices、archives、export 或 audit_verify")),
        "assessment_id": ("invalid_type", N_("assessment_id 须为整数")),
        "table": ("invalid_value", N_("导出的表格须为 results、matrix 或 audit")),
        "preliminary": ("invalid_type", N_("preliminary 须为 true 或 false")),
        "force": ("invalid_type", N_("force 须为 true 或 false")),
    }

    kind: JobKind
    assessment_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    table: Literal["results", "matrix", "audit"] | None = None
    preliminary: bool | None = None
    force: bool | None = None


class JobFilter(Page):
    """A page of jobs."""


class JobAccepted(Out):
    """The job is queued; follow it at `url`. `existing`: the same request's job was still
    queued or running, and this is that job (no second run)."""

    id: int
    status: JobStatus
    url: str
    existing: bool


class JobProgress(Out):
    """Steps done of the total (null while unknown), and whole percent."""

    done: int
    total: int | None
    percent: int


class JobOut(Out):
    """A background job: its state, progress, and its file once done (or the error)."""

    id: int
    kind: JobKind
    kind_label: str
    params: dict[str, Any]
    status: JobStatus
    status_label: str
    progress: JobProgress
    message: str | None
    attempt: int
    filename: str | None
    size: int | None
    sha256: str | None
    download_url: str | None
    error_code: str | None
    error: str | None
    created_by: str | None
    created_at: Time
    started_at: Time | None
    finished_at: Time | None


class JobList(Out):
    """The newest jobs the user may see (all for admins), newest first."""

    jobs: list[JobOut]
    next_cursor: Cursor


# --- units (被考核单位) and their lineage ---------------------------------------------------
UNIT_STATUSES = ("active", "merged", "split", "dissolved")
CHANGE_KINDS = ("create", "rename", "merge", "split", "dissolve")
UnitStatusName = Annotated[str, Field(json_schema_extra={"enum": list(UNIT_STATUSES)})]
ChangeKindName = Annotated[str, Field(json_schema_extra={"enum": list(CHANGE_KINDS)})]


class NewUnitBody(Body):
    """A unit a change leads to (a rename: the new name)."""

    name: Annotated[str | None, Field(max_length=100)] = None
    full_name: Annotated[str | None, Field(max_length=200)] = None
    aliases: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list)
    offices: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list)


class UnitChangeBody(Body):
    """A lineage change; its values (kind, units, date, document, reason) are checked by the
    engine (422)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    FIELD_ERRORS: ClassVar[dict[str, tuple[str, str]]] = {
        "from": ("invalid_type", N_("from 须为单位编号（整数）的列表")),
        "from[]": ("invalid_type", N_("from 须为单位编号（整数）的列表")),
        "to": ("invalid_type", N_("to 须为新单位对象的列表")),
        "to[]": ("invalid_type", N_("to 须为新单位对象的列表")),
        "to[].*": ("invalid_type", N_("to 的第 %(n)s 项字段类型无效")),
    }

    kind: Annotated[str, Field(max_length=16, json_schema_extra={"enum": list(CHANGE_KINDS)})]
    effective_on: Annotated[str, Field(max_length=10, description="YYYY-MM-DD")]
    document_no: Annotated[str | None, Field(max_length=100)] = None
    reason: Annotated[str | None, Field(max_length=2000)] = None
    from_: Annotated[list[int], Field(alias="from")] = Field(default_factory=list)
    to: list[NewUnitBody] = Field(default_factory=list)


class UnitRef(Out):
    id: int
    name: str


class UnitNamePeriod(Out):
    """A name the unit bore; `from`/`to` null when open (to: until before that day)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    full_name: str
    from_: Annotated[Day | None, Field(alias="from")]
    to: Day | None


class Unit(Out):
    """A unit across years: names over time, aliases, offices, lineage."""

    id: int
    name: str
    full_name: str
    status: UnitStatusName
    names: list[UnitNamePeriod]
    aliases: list[str]
    offices: list[str]
    predecessors: list[UnitRef]
    successors: list[UnitRef]


class UnitList(Out):
    units: list[Unit]
    next_cursor: Cursor


class UnitChange(Out):
    """A lineage change as recorded."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: int
    kind: ChangeKindName
    effective_on: Day
    document_no: str
    reason: str
    from_: Annotated[list[UnitRef], Field(alias="from")]
    to: list[UnitRef]
    created_at: Time


class IndicatorYear(Out):
    code: str
    title: str
    max_points: Points
    score: Points | None


class UnitYear(Out):
    """The unit's (or, with `via`, a predecessor's) result in one assessment."""

    year: int
    assessment_id: int
    department_id: int
    name: str
    total: Points
    converted: Points
    rank: Rank
    unranked_reason: UnrankedReason
    complete: bool
    via: UnitRef | None
    indicators: list[IndicatorYear]


class UnitHistory(Out):
    unit: UnitRef
    years: list[UnitYear]


# --- a new assessment year -------------------------------------------------------------------
class AssessmentCreateBody(Body):
    """A new year: the stored scheme, the year, the results notice's own 发文字号, the issuer,
    and the units (omitted or null: the lineage's proposal). Values are checked by the engine."""

    FIELD_ERRORS: ClassVar[dict[str, tuple[str, str]]] = {
        "scheme_id": ("invalid_type", N_("scheme_id 须为整数")),
        "year": ("invalid_type", N_("year 须为整数")),
        "units": ("invalid_type", N_("units 须为单位编号（整数）的列表")),
        "units[]": ("invalid_type", N_("units 须为单位编号（整数）的列表")),
    }

    scheme_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    year: int
    result_document_no: Annotated[str | None, Field(max_length=100)] = None
    issuer: Annotated[str | None, Field(max_length=200)] = None
    #: Stage deadlines as dates (submit, review, verify, score); more in the calendar later.
    deadlines: dict[str, Day] | None = None
    units: list[int] | None = None


class CreatedDepartment(DepartmentRef):
    unit_id: int


class CreatedItem(Out):
    id: int
    department_id: int
    indicator_code: str
    state: StateName


class AssessmentCreated(Assessment):
    """The new assessment with its departments (one per mapped unit) and items."""

    scheme_id: int | None
    departments: list[CreatedDepartment]
    items: list[CreatedItem]
