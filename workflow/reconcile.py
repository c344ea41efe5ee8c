"""Reconciliation: replay the audit trail and compare it with the live tables (DESIGN.md §8).

The chain proves the log; this proves the tables follow the log. Every item's events are
replayed in sequence order to rebuild what the operations wrote: state, version, round,
department, total, reviewer/verifier/scorer, submitter and appellant, the department's
contributors (whoever submitted, withdrew, attached or removed a file, appealed), appeal count,
per-point scores and deduction reasons, the evidence rows (id, SHA-256, removed or not,
purpose, scoring point), and the not-involved claims with their rulings. Department totals
and items-scored counts are rebuilt from the replayed items, and each assessment's number of
items from its `assessment_created` event. Every mismatch is named: item, field, live value,
value from the trail.

Each assessment's row (`assessment[<id>].<field>`) is replayed from its events: the settings
`assessment_created` records (code, year, title, the notice's title, the rules' number,
issuer and date, the total and converted maxima, the appeal days, time zone, whether late
self-assessments are refused, the results' 发文字号 and the SHA-256 of the routine rules),
the results settings `assessment_settings_changed` changes (发文字号, 抄送, score hiding), and
the columns its status is derived from (the appeal window, publication, reopening, the 公示
page's audience). Events written before a setting was recorded leave it unchecked (nothing
says what it was) until an event that records it. Each department (`department[<id>]`:
assessment, unit, name, full name, aliases) is replayed from `assessment_created`'s
`department_states` and `department_changed`; an assessment created before those were
recorded has its departments checked only once a change names them.

The records outside the items are replayed whole from the events of their actions and named
`kind[key].field`: accounts (`user[5].roles`: name, roles, unit, enabled, and the fingerprint
of the password hash where the trail records it), API tokens (owner, expiry, revoked, the
fingerprint of the token hash), routine records
(kind, period, title, department, status, outcome, late), each assessment's stage deadlines
and the holiday calendar's overrides. Every such row is made by an operation that records
its event, and has been since the first release (`init`'s admin and the demo's people come
through `create_user`); no data migration creates one. So a live record with no creating
event is a finding ("no trail"), never passed as old. Two data migrations changed such rows
and are replayed: 0012 gave each user their department's unit (older account events name a
department), 0006 made office registrations never late and gave tasks an outcome (older
submissions lack `registered_by`).

The scheme's figures (each indicator's maximum and check points' codes, each scoring point's
maximum and title) are recorded in `assessment_created` with their SHA-256
(`workflow.scheme_figures`), and rebuilt from the live `indicators` and `scoring_points`: a
different fingerprint is named `scheme[<assessment id>].fingerprint`, and each figure that
differs beside it (`scheme[3].point_max_points[1.1]`). Assessments created before the events
recorded the figures (their `assessment_created` has no `figures`) are not checked: no
finding, as nothing in the trail says what their figures were.

Units (`unit[<id>]`: `name`, `full_name`, `unit_status`, `aliases`) are replayed from the
events that record their whole state: a scheme's `assessment_created` lists the units it made
(`unit_states`, since this release), and each `unit_changed` gives its sources' states before
the change (a merge, split or dissolution ends them as its kind says) and its targets' states
after it. A unit the trail does not know — made by migration 0012 or by a scheme before
`unit_states` was recorded, and never changed since — is not checked (no finding); once a
change names it, it is. Lineage changes (`unit_change[<id>]`) are replayed whole from their
`unit_changed` events: kind, date, document number, reason, author, the units on each side.

Issued notices and summaries (`notice[<id>]`) and uploaded letterheads (`notice_base[<id>]`)
are compared with the one event that made each (`workflow.notice_records`, shared with the
public verification): every field, the storage key the recorded SHA-256 gives, the issuer or
uploader (the event's actor), and a notice's snapshot by its SHA-256 and figure by figure
(`notice[7].snapshot[total]`). Rows are never changed after issue, so any difference is an
edit behind the engine; a row no event made, and an event whose row is gone, are findings.

Old events: every payload field the replay reads has been written since the first release,
so an existing chain replays from seq 1 and nothing is skipped. An item event the replay
cannot read (an unknown action, a payload without a field it needs) is reported as a
difference on the field `trail`, never passed over: a trail that cannot be replayed is a
finding, not a pass.

Reads are plain SQL rows in chunks of item ids, so memory stays flat. On PostgreSQL each
chunk is read in one REPEATABLE READ transaction (events and live rows from one snapshot, so
concurrent writes never show as differences), and long trails are reconciled by a pool of
processes, like the chain verification.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from workflow.audit import Verification, fast_time, parallel_conninfo, verify_chain
from workflow.calendar import STAGE_LABELS
from workflow.messages import N_, Phrase, Term
from workflow.notice_records import (
    BASE_ACTION,
    BASE_COLUMNS,
    NOTICE_ACTIONS,
    NOTICE_SELECT,
    PAYLOAD_ERRORS,
    base_record,
    base_record_of_event,
    differing_fields,
    json_value,
    notice_record,
    notice_record_of_event,
)
from workflow.scheme_figures import figure, fingerprint, indicator_figures
from workflow.units import ENDED_AS
from workflow.users import verifier_fingerprint

log = logging.getLogger(__name__)

#: Items per chunk: each chunk is five range queries and one comparison.
CHUNK_ITEMS = 2000
CENTS = Decimal("0.01")

#: Human labels of the fields (the page and the CLI); `score[1.1]` takes the `score` label.
FIELD_LABELS = {
    "item": "事项记录",
    "items": "事项数",
    "trail": "审计记录无法重放",
    "department_id": "所属部门",
    "state": "状态",
    "version": "版本号",
    "round": "提交轮次",
    "total": "事项得分合计",
    "reviewed_by_id": "初审人",
    "verified_by_id": "核实人",
    "scored_by_id": "评分人",
    "submitted_by_id": "提交人",
    "appealed_by_id": "申诉人",
    "contributor_ids": "部门经办人",
    "appeal_count": "申诉次数",
    "submit_due_on": "自评提交截止日",
    "is_submitted_late": "逾期提交",
    "score": "评分项得分",
    "deduction_reason": "评分项扣分原因",
    "evidence": "佐证材料",
    "not_involved": "不涉及声明及认定",
    "department_total": "部门总分",
    "department_items_scored": "部门已评分事项数",
    "assessment": "年度考核",
    "department": "被考核部门",
    "user": "用户账号",
    "routine": "平时考核记录",
    "stage_deadline": "考核阶段截止",
    "calendar_override": "工作日调整",
    "scheme": "考核细则分值",
    "unit": "被考核单位",
    "unit_change": "单位调整记录",
    "token": "API 令牌",
    "notice": "考核结果文件",
    "notice_base": "通知书信头",
}

#: Where a record's difference is (the CLI, the alert of a failed verification): its number
#: (`key`; a stage deadline's: the assessment's); a calendar override is named by its day.
RECORD_PLACES = {
    "assessment": N_("考核 #%(key)s"),
    "department": N_("部门 #%(key)s"),
    "user": N_("用户 #%(key)s"),
    "routine": N_("平时考核记录 #%(key)s"),
    "stage_deadline": N_("考核 #%(key)s"),
    "scheme": N_("考核 #%(key)s"),
    "unit": N_("单位 #%(key)s"),
    "unit_change": N_("单位调整 #%(key)s"),
    "token": N_("API 令牌 #%(key)s"),
    "notice": N_("考核结果文件 #%(key)s"),
    "notice_base": N_("通知书信头 #%(key)s"),
}
ITEM_PLACE = N_("事项 #%(key)s")
#: One difference in a line: where, the field, its label, the live value and the trail's.
DIFFERENCE_LINE = N_("%(where)s %(field)s（%(label)s）：现值 %(live)s，按审计记录应为 %(expected)s")
#: A stage deadline's label: the stage, then the record's (自评提交截止考核阶段截止).
STAGE_RECORD = N_("%(stage)s%(label)s")
#: Layouts of a label's parts, the same in every language (so not in the catalog): a
#: record's field and its code, a field's key in brackets, a snapshot's path.
_RECORD_FIELD = "%(record)s · %(field)s"
_RECORD_FIELD_CODE = "%(record)s · %(field)s %(code)s"
_KEYED = "%(label)s [%(rest)s"
_PATH_STEP = "%(path)s/%(part)s"

# What a claim's ruling looks like in a difference.
_RULING = {None: "pending", True: "upheld", False: "rejected"}


@dataclass(frozen=True)
class Difference:
    """One live value that the trail does not give."""

    item_id: int | None
    field: str
    live: Any
    from_events: Any
    department_id: int | None = None
    assessment_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the API shape."""
        return {
            "item_id": self.item_id,
            "field": self.field,
            "live": self.live,
            "from_events": self.from_events,
            "department_id": self.department_id,
            "assessment_id": self.assessment_id,
        }

    @property
    def label(self) -> str:
        """Return the field's label (Chinese as text; a `Phrase` or a `Term`, translated where
        it is shown), with its scoring point or evidence id; a record's field
        (`user[5].roles`) as the record's label and the field's."""
        base, _, rest = self.field.partition("[")
        label: str = Term(FIELD_LABELS[base]) if base in FIELD_LABELS else self.field
        if base in RECORD_KINDS:
            key, _, sub = rest.partition("].")
            if base == "stage_deadline":
                stage = key.rstrip("]")
                shown_stage = Term(STAGE_LABELS[stage]) if stage in STAGE_LABELS else key
                label = Phrase(STAGE_RECORD, {"stage": shown_stage, "label": label})
            if not sub:
                return label
            name, _, code = sub.partition("[")  # scheme[3].point_max_points[1.1]
            shown = Term(RECORD_FIELD_LABELS[name]) if name in RECORD_FIELD_LABELS else name
            code = code.removesuffix("]")
            if not code:
                return Phrase(_RECORD_FIELD, {"record": label, "field": shown})
            words: str = _snapshot_path(code) if name == "snapshot" else code
            return Phrase(_RECORD_FIELD_CODE, {"record": label, "field": shown, "code": words})
        return Phrase(_KEYED, {"label": label, "rest": rest}) if rest else label

    def describe(self) -> str:
        """Return one line naming the difference (for the CLI; a `Phrase`, so that the alert
        of a failed verification reads it in the reader's language)."""
        base, _, rest = self.field.partition("[")
        key = rest.partition("]")[0]
        where: str
        if self.item_id is not None:
            where = Phrase(ITEM_PLACE, {"key": self.item_id})
        elif base == "calendar_override":
            where = key  # the day
        elif base in RECORD_PLACES:
            number = self.assessment_id if base == "stage_deadline" else key
            where = Phrase(RECORD_PLACES[base], {"key": number})
        elif self.department_id is not None:
            where = Phrase(RECORD_PLACES["department"], {"key": self.department_id})
        else:
            where = Phrase(RECORD_PLACES["assessment"], {"key": self.assessment_id})
        return Phrase(
            DIFFERENCE_LINE,
            {
                "where": where,
                "field": self.field,
                "label": self.label,
                "live": _show(self.live),
                "expected": _show(self.from_events),
            },
        )


def _show(value: Any) -> str:
    """A live or replayed value in a difference's line: nothing (None, an empty list or
    record) is 无, in words, never "None" or "[]"."""
    if value is None or (isinstance(value, (dict, list)) and not value):
        return Term(N_("无"))
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _snapshot_path(path: str) -> str:
    """A snapshot's path in words (`snapshot_path_text`) as a `Phrase`: each label translated
    where it is shown, the codes between them as they are."""
    shown: str = ""
    for n, part in enumerate(path.split("/")):
        word = Term(SNAPSHOT_LABELS[part]) if part in SNAPSHOT_LABELS else part
        shown = word if n == 0 else Phrase(_PATH_STEP, {"path": shown, "part": word})
    return shown


@dataclass(frozen=True)
class Reconciliation:
    """The outcome of a reconciliation."""

    ok: bool
    items: int
    events: int
    differences: list[Difference]

    def as_dict(self, limit: int | None = None) -> dict[str, Any]:
        """Return the API shape; `limit` caps the listed differences (the count stays)."""
        shown = self.differences if limit is None else self.differences[:limit]
        return {
            "ok": self.ok,
            "items": self.items,
            "events": self.events,
            "difference_count": len(self.differences),
            "truncated": len(shown) < len(self.differences),
            "differences": [d.as_dict() for d in shown],
        }


def points(value: Any) -> Decimal | None:
    """Return points as a two-place Decimal (SQLite hands back floats), None as None."""
    if value is None:
        return None
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    return value.quantize(CENTS)


def _text_points(value: Decimal | None) -> str | None:
    if value is None:
        return None
    return format(value + 0, "f")  # + 0 turns -0.00 into 0.00


class _Trail:
    """An item as its events built it."""

    __slots__ = (
        "appeal_count",
        "appealed_by_id",
        "claims",
        "contributor_ids",
        "department_id",
        "evidence",
        "is_submitted_late",
        "reasons",
        "reviewed_by_id",
        "round",
        "scored_by_id",
        "scores",
        "state",
        "submit_due_on",
        "submitted_by_id",
        "total",
        "unreadable",
        "verified_by_id",
        "version",
    )

    def __init__(self) -> None:
        # The row install_scheme writes.
        self.department_id: int | None = None
        self.state = "draft"
        self.version = 1
        self.round = 0
        self.total: Decimal | None = None
        self.reviewed_by_id: int | None = None
        self.verified_by_id: int | None = None
        self.scored_by_id: int | None = None
        self.appeal_count = 0
        self.submitted_by_id: int | None = None
        self.appealed_by_id: int | None = None
        self.contributor_ids: set[int] = set()
        self.submit_due_on: str | None = None
        self.is_submitted_late = False
        self.scores: dict[str, Decimal] = {}
        self.reasons: dict[str, str] = {}
        self.evidence: dict[int, dict[str, Any]] = {}
        self.claims: dict[str, bool | None] = {}
        self.unreadable: str | None = None

    def apply(
        self, seq: int, action: str, actor_id: int | None, dep: int | None, to: Any, p: Any
    ) -> None:
        """Apply one event, as the operation that wrote it changed the rows."""
        if dep is not None:
            self.department_id = dep
        if action in _CONTRIBUTIONS and actor_id is not None:
            self.contributor_ids.add(actor_id)
        if action == "evidence_uploaded":
            self.evidence[int(p["evidence_id"])] = {
                "sha256": p["sha256"],
                "removed": False,
                "purpose": p.get("purpose", "evidence"),
                "sub_item": p.get("sub_item"),
            }
        elif action == "evidence_removed":
            self.evidence[int(p["evidence_id"])]["removed"] = True
        elif action in _TRANSITIONS:
            self.state = to
            self.round = int(p["round"])
            _TRANSITIONS[action](self, actor_id, p)
        else:
            raise KeyError(action)
        if "version" in p:  # every transition; evidence events once they lock the item
            self.version = int(p["version"])


def _submit(t: _Trail, actor_id: int | None, p: Any) -> None:
    t.submitted_by_id = actor_id
    t.reviewed_by_id = None
    t.verified_by_id = None
    t.claims = dict.fromkeys(p["not_involved"])
    if "is_late" in p:  # a first submission judged against 自评提交截止 (the calendar)
        t.is_submitted_late = bool(p["is_late"])
        t.submit_due_on = p["submit_due_on"]


def _review(t: _Trail, actor_id: int | None, p: Any) -> None:
    t.reviewed_by_id = actor_id


def _return(t: _Trail, actor_id: int | None, p: Any) -> None:
    t.reviewed_by_id = None


def _verify(t: _Trail, actor_id: int | None, p: Any) -> None:
    t.verified_by_id = actor_id
    for code, upheld in p["rulings"].items():
        if code in t.claims:
            t.claims[code] = bool(upheld)


def _scores(t: _Trail, p: Any) -> None:
    t.scores = {code: Decimal(v) for code, v in p["scores"].items()}
    t.reasons = {code: r for code, r in p["deductions"].items() if r}
    t.total = Decimal(p["total"])


def _score(t: _Trail, actor_id: int | None, p: Any) -> None:
    t.scored_by_id = actor_id
    _scores(t, p)


def _rescore(t: _Trail, actor_id: int | None, p: Any) -> None:
    _scores(t, p)


def _appeal(t: _Trail, actor_id: int | None, p: Any) -> None:
    t.appeal_count += 1
    t.appealed_by_id = actor_id


def _nothing(t: _Trail, actor_id: int | None, p: Any) -> None:
    return None


#: The department's work on an item: its actor is one of the item's contributors
#: (`workflow.effects.note_contributor`).
_CONTRIBUTIONS = frozenset(
    {"submit", "withdraw", "appeal", "evidence_uploaded", "evidence_removed"}
)


_TRANSITIONS: dict[str, Callable[[_Trail, int | None, Any], None]] = {
    "submit": _submit,
    "withdraw": _return,
    "review": _review,
    "return": _return,
    "verify": _verify,
    "score": _score,
    "rescore": _rescore,
    "appeal": _appeal,
    "reject_appeal": _nothing,
}
#: Every action an item event may carry; anything else on an item is reported.
ITEM_ACTIONS = frozenset({"evidence_uploaded", "evidence_removed", *_TRANSITIONS})


# -- reading -------------------------------------------------------------------------------
Fetch = Callable[[str, tuple[Any, ...]], Iterable[tuple[Any, ...]]]

_EVENTS_SQL = (
    "SELECT item_id, seq, action, actor_id, department_id, to_state, payload FROM audit_events "
    "WHERE item_id >= %s AND item_id <= %s ORDER BY item_id, seq"
)
_ITEMS_SQL = (
    "SELECT id, assessment_id, department_id, state, version, round, total, reviewed_by_id, "
    "verified_by_id, scored_by_id, appeal_count, submit_due_on, is_submitted_late, "
    "submitted_by_id, appealed_by_id, contributor_ids FROM items "
    "WHERE id >= %s AND id <= %s"
)
_SCORES_SQL = (
    "SELECT s.item_id, p.code, s.points, s.deduction_reason FROM scores s "
    "JOIN scoring_points p ON p.id = s.scoring_point_id WHERE s.item_id >= %s AND s.item_id <= %s"
)
_EVIDENCE_SQL = (
    "SELECT e.item_id, e.id, e.sha256, e.removed_at IS NOT NULL, e.purpose, p.code "
    "FROM evidence e LEFT JOIN scoring_points p ON p.id = e.scoring_point_id "
    "WHERE e.item_id >= %s AND e.item_id <= %s"
)
_CLAIMS_SQL = (
    "SELECT c.item_id, p.code, c.is_upheld FROM not_involved_claims c "
    "JOIN scoring_points p ON p.id = c.scoring_point_id "
    "WHERE c.item_id >= %s AND c.item_id <= %s"
)


@dataclass
class _ChunkResult:
    """What one chunk of item ids found; department figures are summed by the caller."""

    items: int = 0
    events: int = 0
    differences: list[Difference] = field(default_factory=list)
    # department id → [live total, live scored, trail total, trail scored]
    departments: dict[int, list[Any]] = field(default_factory=dict)

    def add_department(self, dep: int | None, offset: int, total: Any, scored: bool) -> None:
        if dep is None:
            return
        row = self.departments.setdefault(dep, [Decimal(0), 0, Decimal(0), 0])
        if total is not None:
            row[offset] += total
        row[offset + 1] += int(scored)


def _replay(rows: Iterable[tuple[Any, ...]], result: _ChunkResult) -> dict[int, _Trail]:
    trails: dict[int, _Trail] = {}
    current_id = None
    trail = _Trail()
    loads = json.loads
    for item_id, seq, action, actor_id, dep, to_state, payload in rows:
        result.events += 1
        if item_id != current_id:
            current_id = item_id
            trail = trails[item_id] = _Trail()
        if trail.unreadable is not None:
            continue
        try:
            trail.apply(seq, action, actor_id, dep, to_state, loads(payload))
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            reason = "未知的操作" if action not in ITEM_ACTIONS else f"缺少或无效的内容 {exc}"
            trail.unreadable = f"第 {seq} 号事件（{action}）无法重放：{reason}"
    return trails


def _group(rows: Iterable[tuple[Any, ...]]) -> dict[int, list[tuple[Any, ...]]]:
    out: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(row[1:])
    return out


def _compare(
    out: list[Difference],
    item_id: int,
    dep: int | None,
    name: str,
    live: Any,
    trail: Any,
) -> None:
    if live != trail:
        out.append(Difference(item_id, name, _plain(live), _plain(trail), dep))


def _ids(value: Any) -> Any:
    """A JSON array of ids as a sorted list (SQLite hands JSON back as text); anything else
    as it is, to be named."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return sorted(value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _text_points(value)
    return value


def _reconcile_chunk(fetch: Fetch, low: int, high: int) -> _ChunkResult:
    """Replay and compare the items with low <= id <= high."""
    result = _ChunkResult()
    trails = _replay(fetch(_EVENTS_SQL, (low, high)), result)
    live_items = {row[0]: row for row in fetch(_ITEMS_SQL, (low, high))}
    scores = _group(fetch(_SCORES_SQL, (low, high)))
    evidence = _group(fetch(_EVIDENCE_SQL, (low, high)))
    claims = _group(fetch(_CLAIMS_SQL, (low, high)))
    out = result.differences
    for item_id in sorted(set(trails) | set(live_items)):
        trail = trails.get(item_id) or _Trail()
        live = live_items.get(item_id)
        result.items += 1
        dep = live[2] if live is not None else trail.department_id
        if trail.unreadable is not None:
            out.append(Difference(item_id, "trail", None, trail.unreadable, dep))
            continue
        result.add_department(trail.department_id or dep, 2, trail.total, trail.state == "scored")
        if live is None:
            out.append(Difference(item_id, "item", None, {"state": trail.state}, dep))
            continue
        (_, _, live_dep, state, version, round_, total, reviewed, verified, scored_by,
         appeals, due_on, late, submitted_by, appealed_by, contributors) = live  # fmt: skip
        result.add_department(live_dep, 0, points(total), state == "scored")
        if trail.department_id is not None:
            _compare(out, item_id, dep, "department_id", live_dep, trail.department_id)
        for name, live_value, trail_value in (
            ("state", state, trail.state),
            ("version", version, trail.version),
            ("round", round_, trail.round),
            ("total", points(total), trail.total),
            ("reviewed_by_id", reviewed, trail.reviewed_by_id),
            ("verified_by_id", verified, trail.verified_by_id),
            ("scored_by_id", scored_by, trail.scored_by_id),
            ("appeal_count", appeals, trail.appeal_count),
            ("submitted_by_id", submitted_by, trail.submitted_by_id),
            ("appealed_by_id", appealed_by, trail.appealed_by_id),
            ("contributor_ids", _ids(contributors), sorted(trail.contributor_ids)),
            ("submit_due_on", None if due_on is None else str(due_on), trail.submit_due_on),
            ("is_submitted_late", bool(late), trail.is_submitted_late),
        ):
            _compare(out, item_id, dep, name, live_value, trail_value)
        _compare_scores(out, item_id, dep, scores.get(item_id, []), trail)
        _compare_evidence(out, item_id, dep, evidence.get(item_id, []), trail)
        live_claims = {code: None if v is None else bool(v) for code, v in claims.get(item_id, [])}
        for code in sorted(set(live_claims) | set(trail.claims)):
            _compare(
                out, item_id, dep, f"not_involved[{code}]",
                _RULING[live_claims[code]] if code in live_claims else None,
                _RULING[trail.claims[code]] if code in trail.claims else None,
            )  # fmt: skip
    return result


def _compare_scores(
    out: list[Difference], item_id: int, dep: int | None, rows: list[Any], trail: _Trail
) -> None:
    live_points = {code: points(value) for code, value, _ in rows}
    live_reasons = {code: reason for code, _, reason in rows}
    for code in sorted(set(live_points) | set(trail.scores)):
        live_value, trail_value = live_points.get(code), trail.scores.get(code)
        _compare(out, item_id, dep, f"score[{code}]", live_value, trail_value)
        if code in live_points and code in trail.scores:
            reason = live_reasons[code] or None
            _compare(
                out, item_id, dep, f"deduction_reason[{code}]", reason, trail.reasons.get(code)
            )


def _compare_evidence(
    out: list[Difference], item_id: int, dep: int | None, rows: list[Any], trail: _Trail
) -> None:
    live = {
        int(eid): {"sha256": sha, "removed": bool(removed), "purpose": purpose, "sub_item": code}
        for eid, sha, removed, purpose, code in rows
    }
    for eid in sorted(set(live) | set(trail.evidence)):
        mine, theirs = live.get(eid), trail.evidence.get(eid)
        if mine is None or theirs is None:
            _compare(out, item_id, dep, f"evidence[{eid}]", mine, theirs)
            continue
        for key in ("sha256", "removed", "purpose", "sub_item"):
            _compare(out, item_id, dep, f"evidence[{eid}].{key}", mine[key], theirs[key])


# -- the assessment level -------------------------------------------------------------------
def _item_counts(fetch: Fetch) -> list[Difference]:
    """Each assessment holds departments × indicators items, as its creation recorded."""
    expected: dict[int, int] = {}
    for target_id, payload in fetch(
        "SELECT target_id, payload FROM audit_events WHERE action = %s ORDER BY seq",
        ("assessment_created",),
    ):
        p = json.loads(payload)
        count = p.get("items")
        if count is None:
            count = int(p["departments"]) * int(p["indicators"])
        expected[int(target_id)] = int(count)
    live = {
        int(a): int(n)
        for a, n in fetch("SELECT assessment_id, count(*) FROM items GROUP BY assessment_id", ())
    }
    return [
        Difference(None, "items", live.get(a), expected.get(a), assessment_id=a)
        for a in sorted(set(expected) | set(live))
        if live.get(a) != expected.get(a)
    ]


# -- records outside the items: users, routine records, the calendar ------------------------
#: The fields of a record, `kind[key].name` (a record missing on one side: `kind[key]`).
RECORD_FIELD_LABELS = {
    "trail": "审计记录无法重放",
    "username": "用户名",
    "roles": "角色",
    "is_active": "账号启用",
    "unit_id": "所属单位",
    "kind": "类型",
    "period": "期间",
    "title": "标题",
    "department_id": "所属部门",
    "status": "审核状态",
    "outcome": "完成情况",
    "is_late": "逾期报送",
    "starts_on": "开始日期",
    "due_on": "截止日期",
    "working_days": "工作日数",
    "is_workday": "调整为工作日",
    "reason": "调整原因",
    "fingerprint": "分值指纹（SHA-256）",
    "indicator_max_points": "指标分值",
    "check_points": "核查要点",
    "point_max_points": "评分项分值",
    "point_title": "评分项名称",
    "name": "简称",
    "full_name": "全称",
    "unit_status": "单位状态",
    "aliases": "别名及挂牌机构",
    "change_kind": "调整类型",
    "effective_on": "生效日期",
    "document_no": "调整依据文号",
    "created_by_id": "操作人",
    "from_units": "原单位",
    "to_units": "调整后单位",
    "password": "密码指纹（SHA-256）",
    "user_id": "令牌所属用户",
    "expires_at": "到期时间",
    "revoked": "已吊销",
    "token_sha256": "令牌指纹（SHA-256）",
    "assessment_id": "所属考核",
    "version": "版本",
    "filename": "文件名",
    "sha256": "文件 SHA-256",
    "size": "文件大小（字节）",
    "storage_key": "存储位置",
    "base_sha256": "信头 SHA-256",
    "is_preliminary": "初步结果",
    "verification_code": "验证码",
    "issued_by_id": "印发人",
    "uploaded_by_id": "上传人",
    "snapshot_sha256": "内容快照指纹（SHA-256）",
    "snapshot": "内容快照",
    "code": "考核代码",
    "year": "年度",
    "notice_title": "结果通知书标题",
    "rules_document_no": "考核细则文号",
    "issuer": "发文机关",
    "signed_on": "考核细则成文日期",
    "total_points": "总分值",
    "converted_points": "折合分值",
    "appeal_window_days": "申诉期天数",
    "timezone": "时区",
    "blocks_late_submissions": "逾期不得提交自评",
    "result_document_no": "结果通知书发文字号",
    "notice_cc": "抄送",
    "routine_sha256": "平时考核规则指纹（SHA-256）",
    "published_at": "公示开始时间",
    "appeal_opens_at": "申诉开始时间",
    "appeal_closes_at": "申诉截止时间",
    "reopened_at": "重新开启时间",
    "finalised_at": "结果最终确定时间",
    "reopen_reason": "重新开启理由",
    "publication_page": "公示页面范围",
    "hide_scores_until_published": "公示前向部门隐藏得分",
}
#: The parts of a snapshot's path (`notice[7].snapshot[categories/一/points/1.1/awarded]`);
#: codes and positions stand as they are.
SNAPSHOT_LABELS = {
    "year": "年度",
    "title": "标题",
    "document_no": "发文字号",
    "issuer": "发文机关",
    "issued_on": "成文日期",
    "department": "被考核单位",
    "total": "考核得分",
    "total_max": "总分值",
    "converted": "折合分",
    "converted_max": "折合分值",
    "rank": "排名",
    "tied": "排名并列",
    "department_count": "部门数",
    "categories": "类别",
    "indicators": "指标",
    "points": "评分项",
    "code": "编号",
    "max_points": "分值",
    "awarded": "得分",
    "deduction_reason": "扣分原因",
    "not_involved_upheld": "认定不涉及",
    "is_preliminary": "初步结果",
    "cc": "抄送",
    "version": "版本",
    "verification_code": "验证码",
    "verify_url": "核验网址",
    "category_titles": "类别名称",
    "category_max": "类别分值",
    "rows": "汇总表行",
    "category_points": "各类别得分",
}


def snapshot_path_text(path: str, translate: Callable[[str], str] = str) -> str:
    """A snapshot's path in words: 类别/一/指标/2/评分项/2.1/得分."""
    return "/".join(
        translate(SNAPSHOT_LABELS[part]) if part in SNAPSHOT_LABELS else part
        for part in path.split("/")
    )


#: The records replayed whole, and the fields shown of a record missing on one side.
RECORD_KINDS = {
    "assessment": ("code", "year"),
    "department": ("name", "full_name"),
    "user": ("username",),
    "routine": ("kind", "period", "title"),
    "stage_deadline": ("starts_on", "due_on", "working_days"),
    "calendar_override": ("is_workday", "reason"),
    "scheme": (),
    "unit": ("name", "unit_status"),
    "unit_change": ("change_kind", "effective_on", "document_no"),
    "token": ("user_id", "expires_at"),
    "notice": ("kind", "version", "filename"),
    "notice_base": ("filename", "sha256"),
}
_USER_ACTIONS = ("user_created", "roles_changed", "user_enabled", "user_disabled",
                 "password_changed", "password_reset")  # fmt: skip
#: Disabling an account revokes its live tokens in the same transaction (`set_active`).
_TOKEN_ACTIONS = ("token_issued", "token_revoked", "user_disabled")
_ROUTINE_ACTIONS = ("routine_submitted", "routine_reviewed", "routine_corrected",
                    "routine_withdrawn")  # fmt: skip
_CALENDAR_ACTIONS = ("calendar_override_set", "calendar_override_removed")
#: Routine kinds with an outcome (done, late, missed); migration 0006 gave existing ones one.
_TASK_KINDS = frozenset({"meeting", "inspection", "task"})
_OFFICE_KINDS = frozenset({"meeting", "inspection"})
_REPLAY_ERRORS = PAYLOAD_ERRORS


def _action_events(fetch: Fetch, actions: tuple[str, ...], columns: str) -> Iterable[Any]:
    """The events of these actions in chain order (the index on action, seq reads them)."""
    marks = ", ".join(["%s"] * len(actions))
    return fetch(
        f"SELECT seq, target_id, action, {columns} FROM audit_events "
        f"WHERE action IN ({marks}) ORDER BY seq",
        actions,
    )


def _unreadable(seq: int, action: str, exc: Exception) -> str:
    return f"第 {seq} 号事件（{action}）无法重放：缺少或无效的内容 {exc}"


Place = Callable[[Any], tuple[str, dict[str, Any]]]


def _record_differences(
    kind: str,
    live: Mapping[Any, Mapping[str, Any]],
    trail: Mapping[Any, Mapping[str, Any] | None],
    unreadable: Mapping[Any, str],
    place: Place,
) -> list[Difference]:
    """Compare live records with replayed ones, field by field; a missing one as a whole.

    `trail[key]` is None for a record its events removed. A live record no event made is a
    finding (no trail), as is one the trail made that the table does not hold. `place(key)`
    gives the key shown in the field and the difference's department and assessment.
    """
    shown = RECORD_KINDS[kind]
    out: list[Difference] = []
    for key in sorted(set(live) | set(trail) | set(unreadable), key=str):
        name, where = place(key)
        if key in unreadable:
            out.append(Difference(None, f"{kind}[{name}].trail", None, unreadable[key], **where))
            continue
        mine, theirs = live.get(key), trail.get(key)
        if mine is None or theirs is None:
            if mine is not None or theirs is not None:
                whole = [None if r is None else {f: r[f] for f in shown} for r in (mine, theirs)]
                out.append(Difference(None, f"{kind}[{name}]", whole[0], whole[1], **where))
            continue
        for field_name in differing_fields(mine, theirs):  # a field on one side: against None
            out.append(
                Difference(
                    None, f"{kind}[{name}].{field_name}", mine.get(field_name),
                    theirs.get(field_name), **where,
                )
            )  # fmt: skip
    return out


def _nowhere(key: Any) -> tuple[str, dict[str, Any]]:
    return str(key), {}


def _users(fetch: Fetch) -> list[Difference]:
    """Replay each account: its name, roles, unit, and whether it is enabled.

    Events written before users belonged to units (migration 0012) name a department: the
    unit is the one that migration gave the user, the department's `unit_id`.
    """
    unit_of = {int(d): u for d, u in fetch("SELECT id, unit_id FROM departments", ())}

    def unit(p: Mapping[str, Any]) -> int | None:
        if "unit_id" in p:
            return None if p["unit_id"] is None else int(p["unit_id"])
        return None if p["department_id"] is None else unit_of[int(p["department_id"])]

    trail: dict[int, dict[str, Any]] = {}
    unreadable: dict[int, str] = {}
    for seq, target_id, action, payload in _action_events(fetch, _USER_ACTIONS, "payload"):
        uid = int(target_id)
        if uid in unreadable:
            continue
        try:
            p = json.loads(payload)
            if action == "user_created":
                trail[uid] = {"username": p["username"], "roles": sorted(p["roles"]),
                              "is_active": True, "unit_id": unit(p)}  # fmt: skip
            elif action == "roles_changed":
                trail[uid].update(roles=sorted(p["after"]["roles"]), unit_id=unit(p["after"]))
            elif action in ("password_changed", "password_reset"):
                trail[uid].pop("password", None)  # an older event: the password is unknown
            else:
                trail[uid]["is_active"] = action == "user_enabled"
            if "password_sha256" in p:  # recorded since this release (workflow.users)
                trail[uid]["password"] = p["password_sha256"]
        except _REPLAY_ERRORS as exc:
            unreadable[uid] = _unreadable(seq, action, exc)
    live = {}
    for uid, username, roles, active, unit_id, password_hash in fetch(
        "SELECT id, username, roles, is_active, unit_id, password_hash FROM users", ()
    ):
        if isinstance(roles, str):  # SQLite hands JSON back as text
            roles = json.loads(roles)
        live[int(uid)] = {"username": username, "roles": sorted(roles or []),
                          "is_active": bool(active), "unit_id": unit_id,
                          "password": verifier_fingerprint(password_hash)}  # fmt: skip
    _unknown_to_trail(live, trail, "password")
    return _record_differences("user", live, trail, unreadable, _nowhere)


def _unknown_to_trail(
    live: dict[int, dict[str, Any]], trail: Mapping[int, Mapping[str, Any]], name: str
) -> None:
    """Leave a field out of the live records whose events did not record it (written before
    the release that records it): nothing says what it should be, so it is not compared."""
    for key, record in live.items():
        if key in trail and name not in trail[key]:
            record.pop(name, None)


def _tokens(fetch: Fetch) -> list[Difference]:
    """Replay each API token: whose it is (the `token_issued` event's actor), when it expires,
    whether it was revoked (`token_revoked`, or its user disabled), and (since this release)
    the fingerprint of its stored hash.

    A token row no event made is a finding, as is one given to another user, extended or
    un-revoked in the table: any of them is a way into the API that nobody issued."""
    trail: dict[int, dict[str, Any]] = {}
    unreadable: dict[int, str] = {}
    for seq, target_id, action, payload, actor_id in _action_events(
        fetch, _TOKEN_ACTIONS, "payload, actor_id"
    ):
        tid = int(target_id)
        try:
            p = json.loads(payload)
            if action == "user_disabled":  # the account's target id, not a token's
                for record in trail.values():
                    if record["user_id"] == tid:
                        record["revoked"] = True
                continue
            if action == "token_issued":
                trail[tid] = {"user_id": None if actor_id is None else int(actor_id),
                              "expires_at": fast_time(p["expires_at"].rstrip("Z")),
                              "revoked": False}  # fmt: skip
                if "token_sha256" in p:
                    trail[tid]["token_sha256"] = p["token_sha256"]
            else:
                trail[tid]["revoked"] = True
        except _REPLAY_ERRORS as exc:
            unreadable[tid] = _unreadable(seq, action, exc)
    live: dict[int, dict[str, Any]] = {}
    for tid, user_id, expires_at, revoked_at, token_hash in fetch(
        "SELECT id, user_id, expires_at, revoked_at, token_hash FROM api_tokens", ()
    ):
        live[int(tid)] = {"user_id": int(user_id), "expires_at": fast_time(expires_at),
                          "revoked": revoked_at is not None,
                          "token_sha256": verifier_fingerprint(token_hash)}  # fmt: skip
    _unknown_to_trail(live, trail, "token_sha256")
    return _record_differences("token", live, trail, unreadable, _nowhere)


def _replay_routine(
    record: dict[str, Any] | None, action: str, dep: Any, to_state: Any, p: Any, by: Any
) -> dict[str, Any]:
    """Apply one routine event as `workflow.routine` changed the record (`by`: registered_by)."""
    if action == "routine_submitted":
        kind, late = p["kind"], bool(p["is_late"])
        if "registered_by" in p:
            outcome = p["outcome"]
        else:
            # Written before migration 0006, which made meetings and inspections (and a task
            # registered by someone outside the department: the live `registered_by` keeps
            # that verdict) the office's, never late, and gave each of them an outcome.
            late = late and not (kind in _OFFICE_KINDS or (kind == "task" and by == "office"))
            outcome = ("late" if p["is_late"] else "done") if kind in _TASK_KINDS else None
        return {"kind": kind, "period": p["period"], "title": p["title"],
                "department_id": int(dep), "status": "submitted", "outcome": outcome,
                "is_late": late}  # fmt: skip
    if record is None:
        raise KeyError("routine_submitted")
    if action == "routine_corrected":
        for name in ("period", "title", "outcome"):
            if name in p["changes"]:
                record[name] = p["changes"][name]["to"]
    elif to_state is None:
        raise KeyError("to_state")
    else:  # reviewed or withdrawn
        record["status"] = to_state
    return record


def _routine(fetch: Fetch) -> list[Difference]:
    """Replay each routine record: kind, period, title, department, status, outcome, late."""
    live: dict[int, dict[str, Any]] = {}
    where: dict[int, dict[str, Any]] = {}
    registered_by: dict[int, Any] = {}
    for rid, aid, dep, kind, period, title, status, outcome, late, by in fetch(
        "SELECT id, assessment_id, department_id, kind, period, title, status, outcome, "
        "is_late, registered_by FROM routine_records",
        (),
    ):
        live[rid] = {"kind": kind, "period": period, "title": title, "department_id": dep,
                     "status": status, "outcome": outcome, "is_late": bool(late)}  # fmt: skip
        where[rid] = {"department_id": dep, "assessment_id": aid}
        registered_by[rid] = by
    trail: dict[int, dict[str, Any]] = {}
    unreadable: dict[int, str] = {}
    for seq, target_id, action, dep, to_state, payload in _action_events(
        fetch, _ROUTINE_ACTIONS, "department_id, to_state, payload"
    ):
        rid = int(target_id)
        where.setdefault(rid, {"department_id": dep})
        if rid in unreadable:
            continue
        try:
            p = json.loads(payload)
            trail[rid] = _replay_routine(
                trail.get(rid), action, dep, to_state, p, registered_by.get(rid)
            )
        except _REPLAY_ERRORS as exc:
            unreadable[rid] = _unreadable(seq, action, exc)
    return _record_differences(
        "routine", live, trail, unreadable, lambda rid: (str(rid), where[rid])
    )


def _day(value: Any) -> str | None:
    """A date as the trail writes it (SQLite hands dates back as text)."""
    return None if value is None else str(value)


def _stage_deadlines(fetch: Fetch) -> list[Difference]:
    """Replay each assessment's stage deadlines: a date, or N working days, and the start."""
    trail: dict[tuple[str, str], dict[str, Any]] = {}
    unreadable: dict[tuple[str, str], str] = {}
    for seq, target_id, action, payload in _action_events(
        fetch, ("stage_deadline_set",), "payload"
    ):
        try:
            p = json.loads(payload)
            after = p["after"]
            trail[(str(target_id), str(p["stage"]))] = {
                "starts_on": after["starts_on"], "due_on": after["due_on"],
                "working_days": after["working_days"],
            }  # fmt: skip
        except _REPLAY_ERRORS as exc:
            unreadable[(str(target_id), "?")] = _unreadable(seq, action, exc)
    live = {
        (str(aid), stage): {"starts_on": _day(start), "due_on": _day(due), "working_days": days}
        for aid, stage, start, due, days in fetch(
            "SELECT assessment_id, stage, starts_on, due_on, working_days FROM stage_deadlines",
            (),
        )
    }
    return _record_differences("stage_deadline", live, trail, unreadable, _stage_place)


def _stage_place(key: tuple[str, str]) -> tuple[str, dict[str, Any]]:
    assessment, stage = key
    return stage, {"assessment_id": int(assessment) if assessment.isdecimal() else None}


def _calendar_overrides(fetch: Fetch) -> list[Difference]:
    """Replay the holiday calendar's overrides: each day's working day or day off, and why."""
    trail: dict[str, dict[str, Any] | None] = {}
    unreadable: dict[str, str] = {}
    for seq, target_id, action, comment, payload in _action_events(
        fetch, _CALENDAR_ACTIONS, "comment, payload"
    ):
        day = str(target_id)
        try:
            p = json.loads(payload)
            if action == "calendar_override_set":
                trail[day] = {"is_workday": bool(p["is_workday"]), "reason": comment}
            else:
                trail[day] = None
        except _REPLAY_ERRORS as exc:
            unreadable[day] = _unreadable(seq, action, exc)
    live = {
        _day(day) or "": {"is_workday": bool(workday), "reason": reason}
        for day, workday, reason in fetch(
            "SELECT day, is_workday, reason FROM calendar_overrides", ()
        )
    }
    return _record_differences("calendar_override", live, trail, unreadable, _nowhere)


# -- the assessments and their departments --------------------------------------------------
#: What an assessment's row holds beside the settings `assessment_created` records: no 抄送,
#: none of its publication set, the 公示 page public, scores hidden. Its events set them on.
ASSESSMENT_START: dict[str, Any] = {
    "notice_cc": None,
    "published_at": None,
    "appeal_opens_at": None,
    "appeal_closes_at": None,
    "reopened_at": None,
    "finalised_at": None,
    "reopen_reason": None,
    "publication_page": "public",
    "hide_scores_until_published": True,
}
#: The settings `assessment_created` records: payload key → the field a difference names.
#: `code`, `year` and `document_no` have been recorded since the first release, the others
#: since this one: an older event leaves them unchecked (nothing in the trail says what they
#: were) until an event that records one sets it (`assessment_settings_changed`).
CREATED_SETTINGS = {
    "code": "code",
    "year": "year",
    "title": "title",
    "notice_title": "notice_title",
    "document_no": "rules_document_no",
    "issuer": "issuer",
    "signed_on": "signed_on",
    "total_points": "total_points",
    "converted_points": "converted_points",
    "appeal_window_days": "appeal_window_days",
    "timezone": "timezone",
    "blocks_late_submissions": "blocks_late_submissions",
    "result_document_no": "result_document_no",
    "routine_sha256": "routine_sha256",
}
_ALWAYS_RECORDED = ("code", "year", "document_no")
#: The settings `assessment_settings_changed` changes (its `after`).
CHANGED_SETTINGS = ("result_document_no", "notice_cc", "hide_scores_until_published")
#: A reopen recorded before its event carried the time: the trail only says it is set.
TIME_SET = "set"
PUBLICATION_TIMES = ("published_at", "appeal_opens_at", "appeal_closes_at", "reopened_at",
                      "finalised_at")  # fmt: skip
_ASSESSMENT_ACTIONS = ("assessment_created", "appeal_window_set", "assessment_published",
                       "assessment_reopened", "publication_page_set",
                       "assessment_settings_changed")  # fmt: skip
#: The live columns, in the order of the fields compared (`CREATED_SETTINGS`, then the rest).
_ASSESSMENT_COLUMNS = {
    **{name: name for name in CREATED_SETTINGS.values()},
    "rules_document_no": "document_no",
    "routine_sha256": "CAST(routine_config AS TEXT)",  # JSON text on either database
    **{name: name for name in ASSESSMENT_START},
}
_ASSESSMENT_SQL = f"SELECT id, {', '.join(_ASSESSMENT_COLUMNS.values())} FROM assessments"
_ROUTINE_AT = 1 + list(_ASSESSMENT_COLUMNS).index("routine_sha256")


def _setting(name: str, value: Any) -> Any:
    """An assessment's field as compared, from its row or its events (SQLite hands back
    floats, text dates and integer booleans)."""
    if value is None:
        return None
    if name in ("year", "appeal_window_days"):
        return int(value)
    if name in ("total_points", "converted_points"):
        return figure(value)
    if name in ("blocks_late_submissions", "hide_scores_until_published"):
        return bool(value)
    if name == "signed_on":
        return _day(value)
    return value


def _created_assessment(p: Mapping[str, Any]) -> dict[str, Any]:
    """An assessment as its `assessment_created` recorded it."""
    missing = [key for key in _ALWAYS_RECORDED if key not in p]
    if missing:
        raise KeyError(missing[0])
    record = dict(ASSESSMENT_START)
    for key, name in CREATED_SETTINGS.items():
        if key in p:
            record[name] = _setting(name, p[key])
    return record


def _replay_assessment(state: dict[str, Any], action: str, comment: Any, p: Any) -> None:
    """Apply one assessment event as `workflow.assessments` and the settings changed the row."""
    if action == "appeal_window_set":
        state["appeal_opens_at"], state["appeal_closes_at"] = p["opens_at"], p["closes_at"]
    elif action == "assessment_published":
        state.update(published_at=p["opens_at"], appeal_opens_at=p["opens_at"],
                     appeal_closes_at=p["closes_at"], reopened_at=None, finalised_at=None,
                     reopen_reason=None)  # fmt: skip
    elif action == "assessment_reopened":
        state.update(reopened_at=p.get("reopened_at", TIME_SET), finalised_at=p["finalised_at"],
                     reopen_reason=comment)  # fmt: skip
    elif action == "publication_page_set":
        state["publication_page"] = p["to"]
    else:  # assessment_settings_changed: the settings it changed, as they are after it
        after = p["after"]
        for name in CHANGED_SETTINGS:
            if name in after:
                state[name] = _setting(name, after[name])


def _assessments(fetch: Fetch) -> list[Difference]:
    """Replay each assessment's row from its events: the settings its `assessment_created`
    recorded (code, year, titles, the rules' number, issuer, date and figures, the appeal
    days, time zone, late-submission blocking, the results' 发文字号, the routine rules'
    SHA-256), the results settings (发文字号, 抄送, score hiding), and the columns its status is
    derived from (publication, appeal window, reopening, the 公示 page's audience).

    Every assessment is made by `install_scheme` or `create_assessment` with its event, since
    the first release: a row no event made, or an event on an assessment never made, is a
    finding. Its status is derived from the times, so a time edited in the table would lock
    results early or reopen an appeal window; a number or 抄送 edited would be printed on
    every notice issued from then on."""
    trail: dict[int, dict[str, Any]] = {}
    unreadable: dict[int, str] = {}
    for seq, target_id, action, comment, payload in _action_events(
        fetch, _ASSESSMENT_ACTIONS, "comment, payload"
    ):
        aid = int(target_id)
        if aid in unreadable:
            continue
        try:
            p = json.loads(payload)
            if action == "assessment_created":
                trail[aid] = _created_assessment(p)
            elif aid not in trail:
                unreadable[aid] = f"第 {seq} 号事件（{action}）无法重放：考核 #{aid} 没有创建记录"
            else:
                _replay_assessment(trail[aid], action, comment, p)
        except _REPLAY_ERRORS as exc:
            unreadable[aid] = _unreadable(seq, action, exc)
    live: dict[int, dict[str, Any]] = {}
    for row in fetch(_ASSESSMENT_SQL, ()):
        record = {name: _setting(name, value) for name, value in zip(_ASSESSMENT_COLUMNS, row[1:],
                                                                      strict=True)}  # fmt: skip
        rules = row[_ROUTINE_AT]
        record["routine_sha256"] = fingerprint((rules and json_value(rules)) or {})
        for name in PUBLICATION_TIMES:
            if record[name] is not None:
                record[name] = fast_time(record[name])
        live[int(row[0])] = record
    for aid, record in trail.items():  # a reopening recorded before its time was: only set
        if record["reopened_at"] == TIME_SET and live.get(aid, {}).get("reopened_at"):
            live[aid]["reopened_at"] = TIME_SET
    for name in CREATED_SETTINGS.values():
        _unknown_to_trail(live, trail, name)
    return _record_differences("assessment", live, trail, unreadable, _assessment_place)


def _assessment_place(aid: Any) -> tuple[str, dict[str, Any]]:
    return str(aid), {"assessment_id": aid}


def _department_record(state: Mapping[str, Any]) -> dict[str, Any]:
    """A department's names as `department_state` / `department_changed` record them."""
    return {
        "name": state["name"],
        "full_name": state["full_name"],
        "aliases": _alias_text((a["alias"], a["kind"]) for a in state["aliases"]),
    }


def _departments(fetch: Fetch) -> list[Difference]:
    """Replay each department (an assessment's appearance of a unit): its assessment, its
    unit (whose members act for it), name, full name (the addressee of its notice) and
    aliases. `assessment_created` lists the departments it made (`department_states`, since
    this release), each `department_changed` gives one's names after the change. An
    assessment whose creation listed them is checked whole (a department row no event made is
    a finding); one made before is not, except the departments a change names since."""
    trail: dict[Any, dict[str, Any]] = {}
    unreadable: dict[Any, str] = {}
    listed: set[int] = set()  # the assessments whose creation listed their departments
    for seq, target_id, action, payload in _action_events(
        fetch, ("assessment_created", "department_changed"), "payload"
    ):
        key: Any = int(target_id) if action == "department_changed" else f"#{seq}"
        try:
            p = json.loads(payload)
            if action == "department_changed":
                trail.setdefault(key, {}).update(_department_record(p["after"]))
            elif "department_states" in p:
                for state in p["department_states"]:
                    trail[int(state["id"])] = {"assessment_id": int(target_id),
                                               "unit_id": int(state["unit_id"]),
                                               **_department_record(state)}  # fmt: skip
                listed.add(int(target_id))
        except _REPLAY_ERRORS as exc:
            unreadable[key] = _unreadable(seq, action, exc)
    if not trail and not unreadable:
        return []
    aliases: dict[int, list[tuple[str, str]]] = {}
    for did, alias, kind in fetch("SELECT department_id, alias, kind FROM department_aliases", ()):
        aliases.setdefault(int(did), []).append((alias, kind))
    live: dict[Any, dict[str, Any]] = {}
    home: dict[Any, int] = {}  # each department's assessment, as the table says
    for did, aid, unit_id, name, full_name in fetch(
        "SELECT id, assessment_id, unit_id, name, full_name FROM departments", ()
    ):
        if int(did) in trail or int(did) in unreadable or int(aid) in listed:
            home[int(did)] = int(aid)
            live[int(did)] = {"assessment_id": int(aid), "unit_id": unit_id, "name": name,
                              "full_name": full_name,
                              "aliases": _alias_text(aliases.get(int(did), []))}  # fmt: skip
    for name in ("assessment_id", "unit_id"):  # a department only a change named
        _unknown_to_trail(live, trail, name)

    def place(key: Any) -> tuple[str, dict[str, Any]]:
        if not isinstance(key, int):
            return str(key), {}
        aid = home.get(key, trail.get(key, {}).get("assessment_id"))
        return str(key), {"department_id": key, "assessment_id": aid}

    return _record_differences("department", live, trail, unreadable, place)


def _flat_figures(figures: Mapping[str, Any]) -> dict[str, Any]:
    """The figures as `field[code]` → value: what a difference names."""
    out: dict[str, Any] = {}
    for code, ind in figures.items():
        out[f"indicator_max_points[{code}]"] = ind["max_points"]
        out[f"check_points[{code}]"] = ind["check_points"]
        for point, sub in ind["sub_items"].items():
            out[f"point_max_points[{point}]"] = sub["max_points"]
            out[f"point_title[{point}]"] = sub["title"]
    return out


def _schemes(fetch: Fetch) -> list[Difference]:
    """Rebuild each assessment's scheme figures from the live rules and compare them with
    those its `assessment_created` recorded (when it recorded them): the fingerprint, and
    each figure that differs (an indicator or a point on one side only: its maximum)."""
    trail: dict[int, tuple[dict[str, Any], str]] = {}
    unreadable: dict[int, str] = {}
    for seq, target_id, action, payload in _action_events(
        fetch, ("assessment_created",), "payload"
    ):
        aid = int(target_id)
        try:
            p = json.loads(payload)
            if "figures" in p:
                trail[aid] = (p["figures"], str(p["figures_sha256"]))
        except _REPLAY_ERRORS as exc:
            unreadable[aid] = _unreadable(seq, action, exc)
    if not trail and not unreadable:
        return []
    points_of: dict[tuple[int, str], list[tuple[str, Any, str]]] = {}
    for aid, code, point, most, title in fetch(
        "SELECT i.assessment_id, i.code, p.code, p.max_points, p.title FROM scoring_points p "
        "JOIN indicators i ON i.id = p.indicator_id",
        (),
    ):
        points_of.setdefault((int(aid), code), []).append((point, most, title))
    live: dict[int, dict[str, Any]] = {}
    for aid, code, most, checks in fetch(
        "SELECT assessment_id, code, max_points, check_points FROM indicators", ()
    ):
        if isinstance(checks, str):  # SQLite hands JSON back as text
            checks = json.loads(checks)
        live.setdefault(int(aid), {})[code] = indicator_figures(
            most, [c["code"] for c in checks or []], points_of.get((int(aid), code), [])
        )
    out: list[Difference] = []
    for aid in sorted(set(trail) | set(unreadable)):
        where = {"assessment_id": aid}
        if aid in unreadable:
            out.append(Difference(None, f"scheme[{aid}].trail", None, unreadable[aid], **where))
            continue
        figures, recorded = trail[aid]
        mine = live.get(aid, {})
        if fingerprint(mine) == recorded:
            continue
        out.append(
            Difference(None, f"scheme[{aid}].fingerprint", fingerprint(mine), recorded, **where)
        )
        try:
            theirs = _flat_figures(figures)
        except _REPLAY_ERRORS as exc:
            out.append(Difference(None, f"scheme[{aid}].trail", None, str(exc), **where))
            continue
        ours = _flat_figures(mine)
        for name in sorted(set(ours) | set(theirs)):
            if ours.get(name) != theirs.get(name):
                out.append(
                    Difference(
                        None, f"scheme[{aid}].{name}", ours.get(name), theirs.get(name), **where
                    )
                )
    return out


#: How a unit's other names read in a difference: 交通运输局（别名）、路政大队（挂牌机构）.
_ALIAS_KINDS = {"alias": "别名", "office": "挂牌机构"}


def _alias_text(aliases: Iterable[tuple[str, str]]) -> str:
    return "、".join(f"{a}（{_ALIAS_KINDS.get(k, k)}）" for a, k in sorted(aliases))


def _unit_record(state: Mapping[str, Any]) -> dict[str, Any]:
    """A unit as `workflow.units.unit_state` recorded it, as a difference compares it."""
    return {
        "name": state["name"],
        "full_name": state["full_name"],
        "unit_status": state["status"],
        "aliases": _alias_text((a["alias"], a["kind"]) for a in state["aliases"]),
    }


def _units(fetch: Fetch) -> list[Difference]:
    """Replay the units the trail knows: made by a scheme (`assessment_created`'s
    `unit_states`), or named by a lineage change (`unit_changed`: its `from` ends them as the
    kind says, its `to` are their states after it). Units the trail does not know (made by
    migration 0012, or by a scheme before `unit_states` was recorded, and never changed
    since) are not checked."""
    trail: dict[Any, dict[str, Any]] = {}
    unreadable: dict[Any, str] = {}  # by the event's number: which unit it names is unknown
    for seq, _target, action, payload in _action_events(
        fetch, ("assessment_created", "unit_changed"), "payload"
    ):
        try:
            p = json.loads(payload)
            if action == "assessment_created":
                states = p.get("unit_states", [])
            else:
                ended = ENDED_AS.get(p["kind"])
                states = [{**s, "status": ended or s["status"]} for s in p["from"]] + p["to"]
            for state in states:
                trail[int(state["id"])] = _unit_record(state)
        except _REPLAY_ERRORS as exc:
            unreadable[f"#{seq}"] = _unreadable(seq, action, exc)
    if not trail and not unreadable:
        return []
    names: dict[int, tuple[str, str]] = {}
    current: set[int] = set()
    for uid, name, full_name, open_ended in fetch(
        "SELECT unit_id, name, full_name, valid_to IS NULL FROM unit_names ORDER BY id", ()
    ):
        if open_ended or int(uid) not in current:  # the one without an end, else the last
            names[int(uid)] = (name, full_name)
        if open_ended:
            current.add(int(uid))
    aliases: dict[int, list[tuple[str, str]]] = {}
    for uid, alias, kind in fetch("SELECT unit_id, alias, kind FROM unit_aliases", ()):
        aliases.setdefault(int(uid), []).append((alias, kind))
    live: dict[Any, dict[str, Any]] = {}
    for uid, status in fetch("SELECT id, status FROM units", ()):
        if int(uid) in trail:
            name, full_name = names.get(int(uid), (None, None))
            live[int(uid)] = {"name": name, "full_name": full_name, "unit_status": status,
                              "aliases": _alias_text(aliases.get(int(uid), []))}  # fmt: skip
    return _record_differences("unit", live, trail, unreadable, _nowhere)


def _unit_changes(fetch: Fetch) -> list[Difference]:
    """Replay each lineage change (`unit_changed`): its kind, date, document number, reason,
    who made it, and the units on each side. Every change is made by the engine with its event,
    so a change row no event made, or one the trail made that is gone, is a finding: a forged
    merger would otherwise carry one unit's history over to another across the years."""
    trail: dict[int, dict[str, Any]] = {}
    unreadable: dict[int, str] = {}
    for seq, target_id, action, payload, actor_id in _action_events(
        fetch, ("unit_changed",), "payload, actor_id"
    ):
        try:
            p = json.loads(payload)
            trail[int(target_id)] = {
                "change_kind": p["kind"],
                "effective_on": str(p["effective_on"]),
                "document_no": p["document_no"],
                "reason": p["reason"],
                "created_by_id": None if actor_id is None else int(actor_id),
                "from_units": sorted(int(s["id"]) for s in p["from"]),
                "to_units": sorted(int(s["id"]) for s in p["to"]),
            }
        except _REPLAY_ERRORS as exc:
            unreadable[int(target_id)] = _unreadable(seq, action, exc)
    sides: dict[int, dict[str, list[int]]] = {}
    for change_id, unit_id, role in fetch(
        "SELECT change_id, unit_id, role FROM unit_change_units ORDER BY unit_id", ()
    ):
        sides.setdefault(int(change_id), {}).setdefault(str(role), []).append(int(unit_id))
    live: dict[int, dict[str, Any]] = {}
    for cid, kind, effective_on, document_no, reason, created_by_id in fetch(
        "SELECT id, kind, effective_on, document_no, reason, created_by_id FROM unit_changes", ()
    ):
        side = sides.get(int(cid), {})
        live[int(cid)] = {"change_kind": kind, "effective_on": _day(effective_on),
                          "document_no": document_no, "reason": reason,
                          "created_by_id": created_by_id, "from_units": side.get("from", []),
                          "to_units": side.get("to", [])}  # fmt: skip
    return _record_differences("unit_change", live, trail, unreadable, _nowhere)


def _notices(fetch: Fetch) -> list[Difference]:
    """Compare each issued notice and summary with its `notice_issued` / `summary_issued`:
    every field, the storage key its SHA-256 gives, the issuer, and the snapshot's figures
    (`workflow.notice_records`). A row no event issued, an issued one the table lacks and an
    id issued twice (SQLite reuses the id of a deleted last row) are findings."""
    trail: dict[int, dict[str, Any]] = {}
    unreadable: dict[int, str] = {}
    where: dict[int, dict[str, Any]] = {}
    for seq, target_id, action, actor_id, dep, payload in _action_events(
        fetch, NOTICE_ACTIONS, "actor_id, department_id, payload"
    ):
        nid = int(target_id)
        where.setdefault(nid, {"department_id": dep})
        if nid in trail:
            unreadable[nid] = f"第 {seq} 号事件（{action}）再次印发已由此前事件印发的文件 #{nid}"
            continue
        try:
            p = json.loads(payload)
            trail[nid] = notice_record_of_event(actor_id, dep, p)[1]
            where[nid] = {"department_id": dep, "assessment_id": trail[nid]["assessment_id"]}
        except PAYLOAD_ERRORS as exc:
            unreadable[nid] = _unreadable(seq, action, exc)
    live: dict[int, dict[str, Any]] = {}
    for row in fetch(f"SELECT {NOTICE_SELECT} FROM notices", ()):
        nid, record = notice_record(row, as_text=True)
        live[nid] = record
        if nid not in trail:
            where[nid] = {"department_id": record["department_id"],
                          "assessment_id": record["assessment_id"]}  # fmt: skip
    return _record_differences(
        "notice", live, trail, unreadable, lambda nid: (str(nid), where[nid])
    )


def _notice_bases(fetch: Fetch) -> list[Difference]:
    """Compare each uploaded letterhead with its `notice_base_uploaded`: assessment, file
    name, SHA-256, size, the storage key the SHA-256 gives, and who uploaded it."""
    trail: dict[Any, dict[str, Any]] = {}
    unreadable: dict[Any, str] = {}
    where: dict[Any, dict[str, Any]] = {}
    for seq, _target, action, actor_id, payload in _action_events(
        fetch, (BASE_ACTION,), "actor_id, payload"
    ):
        try:
            bid, record = base_record_of_event(actor_id, json.loads(payload))
            trail[bid] = record
            where[bid] = {"assessment_id": record["assessment_id"]}
        except PAYLOAD_ERRORS as exc:  # which letterhead it names is unknown: by the event
            unreadable[f"#{seq}"] = _unreadable(seq, action, exc)
            where[f"#{seq}"] = {}
    live: dict[Any, dict[str, Any]] = {}
    for row in fetch(f"SELECT {', '.join(BASE_COLUMNS)} FROM notice_bases", ()):
        bid, record = base_record(row)
        live[bid] = record
        where.setdefault(bid, {"assessment_id": record["assessment_id"]})
    return _record_differences(
        "notice_base", live, trail, unreadable, lambda bid: (str(bid), where[bid])
    )


def _assessment_level(fetch: Fetch) -> list[Difference]:
    """The differences outside the items: each assessment's number of items, publication,
    scheme figures and stage deadlines, the accounts, the routine records, the holiday
    calendar, and the issued notices and letterheads."""
    return (
        _item_counts(fetch)
        + _schemes(fetch)
        + _units(fetch)
        + _unit_changes(fetch)
        + _assessments(fetch)
        + _departments(fetch)
        + _stage_deadlines(fetch)
        + _users(fetch)
        + _tokens(fetch)
        + _routine(fetch)
        + _calendar_overrides(fetch)
        + _notices(fetch)
        + _notice_bases(fetch)
    )


def _bounds(fetch: Fetch) -> tuple[int, int] | None:
    row = next(
        iter(
            fetch(
                "SELECT min(lo), max(hi) FROM (SELECT min(id) AS lo, max(id) AS hi FROM items "
                "UNION ALL SELECT min(item_id), max(item_id) FROM audit_events) AS b",
                (),
            )
        )
    )
    if row[0] is None:
        return None
    return int(row[0]), int(row[1])


def _chunks(low: int, high: int) -> list[tuple[int, int]]:
    return [(lo, min(high, lo + CHUNK_ITEMS - 1)) for lo in range(low, high + 1, CHUNK_ITEMS)]


def _combine(parts: Iterable[_ChunkResult], extra: list[Difference]) -> Reconciliation:
    items = events = 0
    differences: list[Difference] = []
    departments: dict[int, list[Any]] = {}
    for part in parts:
        items += part.items
        events += part.events
        differences.extend(part.differences)
        for dep, figures in part.departments.items():
            row = departments.setdefault(dep, [Decimal(0), 0, Decimal(0), 0])
            for n in range(4):
                row[n] += figures[n]
    for dep in sorted(departments):
        live_total, live_scored, trail_total, trail_scored = departments[dep]
        if points(live_total) != points(trail_total):
            differences.append(
                Difference(
                    None,
                    "department_total",
                    _text_points(points(live_total)),
                    _text_points(points(trail_total)),
                    dep,
                )
            )
        if live_scored != trail_scored:
            differences.append(
                Difference(None, "department_items_scored", live_scored, trail_scored, dep)
            )
    differences.extend(extra)
    return Reconciliation(not differences, items, events, differences)


# -- the two paths --------------------------------------------------------------------------
def _connection_fetch(conn: Connection) -> Fetch:
    qmark = conn.dialect.paramstyle == "qmark"

    def fetch(sql: str, params: tuple[Any, ...]) -> Iterable[tuple[Any, ...]]:
        if qmark:
            sql = sql.replace("%s", "?")
        return [tuple(row) for row in conn.exec_driver_sql(sql, params)]

    return fetch


def _reconcile_sequential(session: Session) -> Reconciliation:
    """Reconcile in this process, chunk by chunk (PostgreSQL: one REPEATABLE READ snapshot)."""
    if session.connection().dialect.name == "postgresql":
        with session.connection().engine.connect() as own:
            conn = own.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                return _reconcile_on(_connection_fetch(conn))
    return _reconcile_on(_connection_fetch(session.connection()))


def _reconcile_on(fetch: Fetch) -> Reconciliation:
    bounds = _bounds(fetch)
    chunks = _chunks(*bounds) if bounds is not None else []
    parts = (_reconcile_chunk(fetch, lo, hi) for lo, hi in chunks)
    extra = _assessment_level(fetch)
    return _combine(list(parts), extra)


_WORKER: dict[str, Any] = {}


def _worker_connect(conninfo: str) -> None:
    """Open the worker process's own connection (a pool initializer)."""
    import psycopg

    _WORKER["conn"] = psycopg.connect(
        conninfo, autocommit=False, prepare_threshold=None
    )  # one connection per worker, reused by its chunks
    _WORKER["conn"].isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    _WORKER["conn"].read_only = True


def _worker_chunk(low: int, high: int) -> _ChunkResult:
    """Reconcile one chunk in a worker process: one snapshot per chunk."""
    conn = _WORKER["conn"]

    def fetch(sql: str, params: tuple[Any, ...]) -> Iterable[tuple[Any, ...]]:
        return conn.execute(sql, params).fetchall()

    try:
        return _reconcile_chunk(fetch, low, high)
    finally:
        conn.rollback()


def _reconcile_parallel(session: Session) -> Reconciliation | None:
    """Reconcile chunks of item ids in os.cpu_count() worker processes (PostgreSQL)."""
    target = parallel_conninfo(session)
    if target is None:
        return None
    conninfo, _ = target
    with session.connection().engine.connect() as own:
        conn = own.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            fetch = _connection_fetch(conn)
            bounds = _bounds(fetch)
            extra = _assessment_level(fetch)
    if bounds is None:
        return _combine([], extra)
    chunks = _chunks(*bounds)
    workers = os.cpu_count() or 2
    context = multiprocessing.get_context("spawn")  # forked children would share our socket
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_worker_connect, initargs=(conninfo,)
    ) as pool:
        parts = list(pool.map(_worker_chunk, *zip(*chunks, strict=True)))
    return _combine(parts, extra)


def reconcile(session: Session) -> Reconciliation:
    """Replay the audit trail and compare it with the live rows; name every difference.

    Long trails on PostgreSQL are reconciled by a pool of processes (same result).
    """
    outcome: Reconciliation | None = None
    try:
        outcome = _reconcile_parallel(session)
    except Exception:  # the sequential pass gives the same answer, slower
        log.warning("parallel reconciliation failed; reconciling sequentially", exc_info=True)
    if outcome is None:
        outcome = _reconcile_sequential(session)
    return outcome


def iter_descriptions(result: Reconciliation) -> Iterator[str]:
    """Yield one line per difference (for the CLI)."""
    for difference in result.differences:
        yield difference.describe()


#: The API and the page list at most this many differences (the count is always whole).
SHOWN_DIFFERENCES = 1000


@dataclass(frozen=True)
class AuditCheck:
    """The chain verification and the reconciliation, as `audit verify` reports them."""

    chain: Verification
    tables: Reconciliation

    @property
    def ok(self) -> bool:
        """Tell whether the chain holds and the live rows follow it."""
        return self.chain.ok and self.tables.ok

    def as_dict(self, limit: int | None = SHOWN_DIFFERENCES) -> dict[str, Any]:
        """Return the API shape: the chain's fields, `ok` for both, `reconciliation`."""
        out = self.chain.as_dict()
        out["chain_ok"] = self.chain.ok
        out["ok"] = self.ok
        out["reconciliation"] = self.tables.as_dict(limit)
        return out


def check_audit(session: Session, checkpoint: Mapping[str, Any] | None = None) -> AuditCheck:
    """Verify the chain, then reconcile the live rows with it."""
    return AuditCheck(verify_chain(session, checkpoint), reconcile(session))
