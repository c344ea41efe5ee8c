"""What a command may carry, one frozen model per kind of action, parsed before any lock.

A payload model turns the client's raw mapping (JSON body, form, CLI options) into typed
values or refuses it: a wrong type is a 400 (`invalid_type`), a wrong value a 422. The
engine checks the payload once, here; the guards then judge it against the item.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from workflow.errors import BadRequest, InvalidValue

MAX_COMMENT = 5000
MAX_NOTE = 2000


#: Points as people write them: digits with an optional decimal part ("8", "7.5", ".5").
POINTS_TEXT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def parse_points(value: Any, code: str) -> Decimal:
    """Accept a JSON number or decimal string as points; refuse anything else (422).

    Text is plain decimal notation: full-width digits and point (typed with a Chinese input
    method) read as their ASCII forms, but an exponent ("1e1"), digit separators ("1_0") or a
    plus sign are refused rather than read as a number nobody typed; so is a decimal comma
    ("1,5", "1，5"), with a message of its own. A value with a minus sign
    is refused even when it is zero ("-0", "-0.00"), so that no negative zero reaches the
    scores, the audit payload or a notice.
    """
    if isinstance(value, bool) or value is None:
        raise InvalidValue(
            "评分项 %(code)s 的得分无效", code="invalid_score", params={"code": code}
        )
    text = unicodedata.normalize("NFKC", value).strip() if isinstance(value, str) else str(value)
    if isinstance(value, str) and "," in text:  # "1,5" meant 1.5: said so, never read as 15
        raise InvalidValue(
            "评分项 %(code)s 的得分“%(value)s”含逗号：小数点请用“.”，如 1.5",
            code="invalid_score",
            params={"code": code, "value": value.strip()},
        )
    if isinstance(value, str) and not POINTS_TEXT.fullmatch(text):
        raise InvalidValue(
            "评分项 %(code)s 的得分须为数字，如 8 或 7.5",
            code="invalid_score",
            params={"code": code},
        )
    try:
        points = Decimal(text)
    except (InvalidOperation, ValueError) as exc:
        raise InvalidValue(
            "评分项 %(code)s 的得分不是数字", code="invalid_score", params={"code": code}
        ) from exc
    if not points.is_finite():
        raise InvalidValue(
            "评分项 %(code)s 的得分不是有限数", code="invalid_score", params={"code": code}
        )
    if points.is_signed():  # "-0" too: a minus sign on a score is a slip, never silently 0
        raise InvalidValue(
            "评分项 %(code)s 的得分不能为负数（不能带负号，包括 -0）",
            code="score_out_of_range",
            params={"code": code},
        )
    return points


def clean_text(value: Any, what: str, limit: int = MAX_COMMENT) -> str | None:
    """Strip a text field; None or empty is None; too long is a 422, not text a 400."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest("%(what)s必须是文本", code="invalid_type", params={"what": what})
    text = value.strip()
    if len(text) > limit:
        raise InvalidValue(
            "%(what)s过长（最多 %(max)s 字）", code="too_long", params={"what": what, "max": limit}
        )
    return text or None


def _mapping(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, Mapping):
        raise BadRequest("%(name)s 须为对象", code="invalid_type", params={"name": name})
    return value


@dataclass(frozen=True)
class Payload:
    """The comment every action may carry (a reason where the action needs one)."""

    comment: str | None = None
    #: Fields of the raw body this model reads (the rest is the transport's business).
    fields: ClassVar[tuple[str, ...]] = ("comment",)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Payload:
        """Build the payload from a raw mapping (see the module's docstring)."""
        _no_claims_here(raw)
        _no_checks_here(raw)
        _no_scores_here(raw)
        _no_rulings_here(raw)
        return cls(comment=clean_text(raw.get("comment"), "说明"))

    def audited(self) -> dict[str, Any]:
        """What of the payload the request hash covers (idempotency)."""
        return {"comment": self.comment}


def _no_claims_here(raw: Mapping[str, Any]) -> None:
    if raw.get("not_involved"):
        raise InvalidValue("只有提交时可以声明不涉及", code="not_involved_on_submit_only")
    if raw.get("change_note"):
        raise InvalidValue("只有提交时可以填写修改说明", code="change_note_on_submit_only")


def _no_checks_here(raw: Mapping[str, Any]) -> None:
    if raw.get("checks"):
        raise InvalidValue("只有核实时可以回答核查要点", code="checks_on_verify_only")


def _no_scores_here(raw: Mapping[str, Any]) -> None:
    # A score sent with another action would be dropped with a 200: the client would think
    # it saved (found by an API walk).
    if raw.get("scores") or raw.get("deductions"):
        raise InvalidValue(
            "只有评分和复核改分时可以填写得分和扣分原因", code="scores_on_score_only"
        )


def _no_rulings_here(raw: Mapping[str, Any]) -> None:
    if raw.get("rulings"):
        raise InvalidValue("只有核实时可以认定不涉及声明", code="rulings_on_verify_only")


@dataclass(frozen=True)
class SubmitPayload(Payload):
    """Submit: the scoring points the department declares not involved (不涉及), and the
    修改说明 (what was changed since the return) that a resubmission after a return needs."""

    not_involved: tuple[str, ...] = ()
    change_note: str | None = None
    fields: ClassVar[tuple[str, ...]] = ("comment", "not_involved", "change_note")

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> SubmitPayload:
        """Build the payload from a raw mapping."""
        _no_checks_here(raw)
        _no_scores_here(raw)
        _no_rulings_here(raw)
        codes = raw.get("not_involved") or ()
        if isinstance(codes, str | bytes) or not isinstance(codes, Iterable):
            raise BadRequest("not_involved 须为评分项编号的数组", code="invalid_type")
        return cls(
            comment=clean_text(raw.get("comment"), "说明"),
            not_involved=tuple(sorted({str(c) for c in codes})),
            change_note=clean_text(raw.get("change_note"), "修改说明"),
        )

    def audited(self) -> dict[str, Any]:
        """What of the payload the request hash covers."""
        audited: dict[str, Any] = {
            "comment": self.comment,
            "not_involved": list(self.not_involved),
        }
        if self.change_note is not None:  # absent as before: older keys keep their hash
            audited["change_note"] = self.change_note
        return audited


#: The verifier's answers to a check point (核查要点): 是, 否, 不适用.
CHECK_ANSWERS = ("yes", "no", "na")


@dataclass(frozen=True)
class CheckAnswer:
    """One check point's answer and the verifier's note (required with 否)."""

    answer: str
    note: str | None = None


def _check_answers(raw: Mapping[str, Any]) -> dict[str, CheckAnswer]:
    answers: dict[str, CheckAnswer] = {}
    for code, value in _mapping(raw, "checks").items():
        if not isinstance(value, Mapping):
            raise BadRequest(
                "核查要点 %(code)s 的回答须为对象（answer、note）",
                code="invalid_type",
                params={"code": code},
            )
        answer = value.get("answer")
        if answer not in CHECK_ANSWERS:
            raise InvalidValue(
                "核查要点 %(code)s 的回答须为 yes（是）、no（否）或 na（不适用）",
                code="bad_check_answer",
                params={"code": code},
            )
        note = clean_text(value.get("note"), "核查备注", MAX_NOTE)
        if answer == "no" and note is None:  # the scorer deducts for it: say what is wrong
            raise InvalidValue(
                "核查要点 %(code)s 答“否”时，请在备注中说明存在的问题",
                code="check_note_required",
                params={"code": code},
            )
        answers[str(code)] = CheckAnswer(str(answer), note)
    return answers


@dataclass(frozen=True)
class VerifyPayload(Payload):
    """Verify: a ruling (upheld or not) on each not-involved claim, and an answer to each of
    the indicator's check points (核查要点) with a note (required with 否)."""

    rulings: Mapping[str, bool] = field(default_factory=dict)
    checks: Mapping[str, CheckAnswer] = field(default_factory=dict)
    fields: ClassVar[tuple[str, ...]] = ("comment", "rulings", "checks")

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> VerifyPayload:
        """Build the payload from a raw mapping."""
        _no_claims_here(raw)
        _no_scores_here(raw)
        rulings: dict[str, bool] = {}
        for code, value in _mapping(raw, "rulings").items():
            if not isinstance(value, bool):
                raise BadRequest(
                    "评分项 %(code)s 的认定必须是 true 或 false",
                    code="invalid_type",
                    params={"code": code},
                )
            rulings[str(code)] = value
        return cls(
            comment=clean_text(raw.get("comment"), "说明"),
            rulings=rulings,
            checks=_check_answers(raw),
        )

    def audited(self) -> dict[str, Any]:
        """What of the payload the request hash covers."""
        audited: dict[str, Any] = {"comment": self.comment, "rulings": dict(self.rulings)}
        if self.checks:  # absent as before: older keys keep their hash
            audited["checks"] = {k: [v.answer, v.note] for k, v in self.checks.items()}
        return audited


@dataclass(frozen=True)
class ScorePayload(Payload):
    """Score and rescore: points per scoring point, and a reason where points are deducted."""

    scores: Mapping[str, Decimal] = field(default_factory=dict)
    deductions: Mapping[str, str] = field(default_factory=dict)
    fields: ClassVar[tuple[str, ...]] = ("comment", "scores", "deductions")

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ScorePayload:
        """Build the payload from a raw mapping."""
        _no_claims_here(raw)
        _no_checks_here(raw)
        _no_rulings_here(raw)
        scores = {str(k): parse_points(v, str(k)) for k, v in _mapping(raw, "scores").items()}
        deductions = {
            str(k): clean_text(v, "扣分原因") or "" for k, v in _mapping(raw, "deductions").items()
        }
        return cls(
            comment=clean_text(raw.get("comment"), "说明"), scores=scores, deductions=deductions
        )

    def audited(self) -> dict[str, Any]:
        """What of the payload the request hash covers."""
        return {
            "comment": self.comment,
            "scores": {k: str(v) for k, v in self.scores.items()},
            "deductions": dict(self.deductions),
        }


@dataclass(frozen=True)
class StoredObject:
    """One file already streamed into the object store (see storage.ingest)."""

    key: str
    filename: str
    size: int
    sha256: str
    content_type: str


@dataclass(frozen=True)
class AttachPayload(Payload):
    """Attach evidence: the stored files, the scoring point, the purpose and a note."""

    files: tuple[StoredObject, ...] = ()
    sub_item: str | None = None
    purpose: str = "evidence"
    note: str | None = None
    fields: ClassVar[tuple[str, ...]] = ("files", "sub_item", "purpose", "note")

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> AttachPayload:
        """Build the payload from a raw mapping (files are StoredObjects from ingest)."""
        files = tuple(raw.get("files") or ())
        if not all(isinstance(f, StoredObject) for f in files):
            raise BadRequest("files 须为已存储的文件", code="invalid_type")
        return cls(
            files=files,
            sub_item=clean_text(raw.get("sub_item"), "评分项", 16),
            purpose=str(raw.get("purpose") or "evidence"),
            note=clean_text(raw.get("note"), "备注", MAX_NOTE),
        )

    def audited(self) -> dict[str, Any]:
        """What of the payload the request hash covers."""
        return {"files": [f.sha256 for f in self.files], "sub_item": self.sub_item}


@dataclass(frozen=True)
class RemovePayload(Payload):
    """Remove evidence: which evidence row."""

    evidence_id: int = 0
    fields: ClassVar[tuple[str, ...]] = ("evidence_id",)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> RemovePayload:
        """Build the payload from a raw mapping."""
        value = raw.get("evidence_id")
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest("evidence_id 须为整数", code="invalid_type")
        return cls(evidence_id=value)

    def audited(self) -> dict[str, Any]:
        """What of the payload the request hash covers."""
        return {"evidence_id": self.evidence_id}
