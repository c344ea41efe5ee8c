"""考核方案 (admin): the scheme library in the portal.

List, upload a YAML file (every problem shown by its place and line, nothing saved while one
remains), import a draft from the office's Word 考核细则 (the document's text beside the draft
form), copy a scheme and edit it in a form (sums checked as one types by
`static/js/scheme-form.js`, and again by the engine), compare with the previous version or
year. Every save goes through `workflow.schemes.save_scheme` (audited); views never commit.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from werkzeug.datastructures import MultiDict

from scoring.routine import KIND_LABELS
from web.common.labels import N_, SCHEME_ORIGINS
from web.db import discard_on_error, get_db
from web.portal.auth import current_account, roles_required
from web.portal.forms import form_seen
from workflow.errors import Conflict, DomainError, InvalidValue, SchemeError
from workflow.models import StoredScheme
from workflow.scheme_docx import MAX_DOCX_BYTES, read_docx_draft
from workflow.schemes import (
    MAX_SOURCE_BYTES,
    diff_stored,
    frozen_ids,
    get_stored_scheme,
    latest_version,
    line_of,
    list_schemes,
    previous_scheme,
    read_yaml,
    refusal,
    save_scheme,
    scheme_seen,
)
from workflow.states import Role

bp = Blueprint("schemes", __name__, url_prefix="/admin/schemes")

STATUS_MESSAGES = {
    "created": N_("方案已保存（第 %(version)s 版）"),
    "updated": N_("方案已修改（第 %(version)s 版，尚未启用）"),
    "versioned": N_("原方案已启用、不能修改，已存为第 %(version)s 版"),
    "unchanged": N_("方案没有变化，未保存新内容"),
}
CHANGE_KINDS = {
    "added": N_("新增"),
    "removed": N_("删除"),
    "reweighted": N_("调整分值"),
    "retitled": N_("修改名称"),
}
CHANGE_LEVELS = {
    "total": N_("总分"),
    "category": N_("类别"),
    "indicator": N_("指标"),
    "point": N_("评分项"),
}
TOTAL_NAMES = {"total_points": N_("总分"), "converted_points": N_("折合分值")}
#: What a scoring point feeds on (`routine`), in words.
POINT_ROUTINES = {
    "": N_("不取平时考核记录"),
    "monthly_info": KIND_LABELS["monthly_info"],
    "quarterly_case": KIND_LABELS["quarterly_case"],
    "meeting": KIND_LABELS["meeting"],
    "inspection": KIND_LABELS["inspection"],
    "task": KIND_LABELS["task"],
    "adhoc": N_("临时性工作（会议、督查、任务）"),
}
FORMULAS = {
    "share_of_periods": N_("按达标期数比例"),
    "share_completed": N_("按完成任务比例"),
    "share_accepted": N_("按采纳记录比例"),
}
PERIODS = {"month": N_("每月"), "quarter": N_("每季度")}
QUOTA_KINDS = ("monthly_info", "quarterly_case")
#: Rows of suggestion rules the form reads at most (a scheme has a handful).
MAX_SUGGESTIONS = 200
#: Words for the parts of a place (`categories[0].indicators[1].max_points`).
PLACE_WORDS = {
    "categories": N_("类别"),
    "indicators": N_("指标"),
    "sub_items": N_("评分项"),
    "max_points": N_("分值"),
    "title": N_("名称"),
    "code": N_("编码"),
    "year": N_("年度"),
    "document_no": N_("发文字号"),
    "issuer": N_("发文机关"),
    "signed_on": N_("成文日期"),
    "printed_on": N_("印发日期"),
    "total_points": N_("总分"),
    "converted_points": N_("折合分值"),
    "appeal_window_days": N_("申诉期天数"),
    "evidence_basis": N_("考核依据"),
    "routine": N_("平时考核"),
    "quotas": N_("配额"),
    "suggestion": N_("建议分规则"),
    "minimum": N_("最少篇数"),
    "counting_starts": N_("计数起始"),
    "counting_ends": N_("计数截止"),
    "departments": N_("部门"),
    "notice_title": N_("结果通知标题"),
    "formula": N_("公式"),
    "kind": N_("类型"),
    "kinds": N_("类型"),
    "late_deduction": N_("逾期扣分"),
    "timezone": N_("时区"),
    "check_points": N_("核查要点"),
    "method": N_("核查方式"),
    "text": N_("内容"),
}
#: The keys the form edits; every other key of a scheme is carried over unchanged.
FORM_KEYS = (
    "code", "year", "title", "notice_title", "document_no", "issuer", "issuer_short",
    "signed_on", "printed_on", "total_points", "converted_points", "appeal_window_days",
    "not_involved_rule", "categories", "routine",
)  # fmt: skip
TOP_FIELDS = (
    ("code", N_("方案编码")),
    ("year", N_("年度")),
    ("title", N_("细则名称")),
    ("document_no", N_("细则发文字号")),
    ("issuer", N_("发文机关")),
    ("issuer_short", N_("发文机关简称")),
    ("signed_on", N_("成文日期")),
    ("printed_on", N_("印发日期")),
    ("notice_title", N_("结果通知标题")),
    ("appeal_window_days", N_("申诉期天数")),
    ("not_involved_rule", N_("不涉及事项的规则")),
)


def place_label(path: str) -> str:
    """A place in words: `categories[1].indicators[0].max_points` → 类别 2 · 指标 1 · 分值."""
    parts = []
    for m in re.finditer(r'([A-Za-z_]+)|\[(\d+)\]|\["([^"]*)"\]', path):
        name, index, key = m.groups()
        if name is not None:
            parts.append(gettext(PLACE_WORDS[name]) if name in PLACE_WORDS else name)
        elif index is not None:
            parts[-1:] = [f"{parts[-1]} {int(index) + 1}" if parts else str(int(index) + 1)]
        else:
            parts.append(key)
    return " · ".join(parts) if parts else path


def field_of(path: str) -> str:
    """The form field of a place: `categories[1].indicators[0].max_points` → `c1.i0.max_points`."""
    out = path.replace("categories[", "c[").replace(".indicators[", ".i[")
    out = out.replace(".sub_items[", ".p[")
    out = re.sub(r"\[(\d+)\]", r"\1", out)
    out = re.sub(r"\.check_points\d*(\..*)?$", ".check_points", out)
    out = re.sub(r"^routine\.quotas\.(\w+)\.", r"q.\1.", out)
    return out


# -- reading the form -----------------------------------------------------------------------

ROW = re.compile(r"^c(\d+)(?:\.i(\d+)(?:\.p(\d+))?)?\.(\w+)$")


def _number(text: str) -> int | str:
    """An integer field: digits become an int, anything else stays text (refused by place)."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdecimal() and len(text) < 10 else text


def form_to_scheme(form: MultiDict[str, str]) -> dict[str, Any]:
    """Build the scheme data from the editor's fields (empty rows are dropped)."""
    try:
        rest = json.loads(form.get("rest", "") or "{}")
    except ValueError:
        rest = {}
    if not isinstance(rest, dict):
        rest = {}
    data: dict[str, Any] = {k: v for k, v in rest.items() if k not in FORM_KEYS}
    for key, _label in TOP_FIELDS:
        value = form.get(key, "").strip()
        if value:
            data[key] = _number(value) if key in ("year", "appeal_window_days") else value
    for key in ("total_points", "converted_points"):
        if form.get(key, "").strip():
            data[key] = form[key].strip()
    rows: dict[tuple[int, ...], dict[str, str]] = {}
    for name in form:
        m = ROW.match(name)
        if m is None:
            continue
        row_key = tuple(int(g) for g in m.groups()[:3] if g is not None)
        rows.setdefault(row_key, {})[str(m.group(4))] = form.get(name, "").strip()

    def filled(values: dict[str, str]) -> bool:
        return any(values.get(k) for k in ("code", "title", "max_points"))

    def part(values: dict[str, str], *extra: str) -> dict[str, Any]:
        out: dict[str, Any] = {k: values.get(k, "") for k in ("code", "title", "max_points")}
        for k in extra:
            if values.get(k):
                out[k] = values[k]
        return out

    categories = []
    for ckey in sorted(k for k in rows if len(k) == 1):
        if not filled(rows[ckey]):
            continue
        category = part(rows[ckey])
        category["indicators"] = []
        for ikey in sorted(k for k in rows if len(k) == 2 and k[0] == ckey[0]):
            if not filled(rows[ikey]):
                continue
            indicator = part(rows[ikey], "evidence_basis")
            checks = check_points_of(rows[ikey].get("check_points", ""))
            if checks:
                indicator["check_points"] = checks
            indicator["sub_items"] = [
                part(rows[pkey], "routine")
                for pkey in sorted(k for k in rows if len(k) == 3 and k[:2] == ikey)
                if filled(rows[pkey])
            ]
            category["indicators"].append(indicator)
        categories.append(category)
    data["categories"] = categories
    routine = _routine_of(form, rest.get("routine"))
    if routine:
        data["routine"] = routine
    return data


CHECK_LINE = re.compile(r"^\s*(实地考核|平时考核)\s*[：:]\s*(.*)$")


def check_points_of(text: str) -> list[dict[str, str]]:
    """核查要点, one a line: 「实地考核：是否成立工作领导小组」 (a line without a method is kept
    with none, so the engine names its place)."""
    points = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = CHECK_LINE.match(line)
        if m:
            points.append({"text": m.group(2).strip(), "method": m.group(1)})
        else:
            points.append({"text": line.strip(), "method": ""})
    return points


def check_points_text(points: Any) -> str:
    """The editor's text of an indicator's 核查要点."""
    lines = []
    for point in points if isinstance(points, list) else []:
        if isinstance(point, dict):
            lines.append(f"{point.get('method', '')}：{point.get('text', '')}")
    return "\n".join(lines)


def _routine_of(form: MultiDict[str, str], carried: Any) -> dict[str, Any]:
    routine: dict[str, Any] = {}
    if isinstance(carried, dict) and "due_working_days" in carried:
        routine["due_working_days"] = carried["due_working_days"]
    for key in ("counting_starts", "counting_ends"):
        if form.get(key, "").strip():
            routine[key] = form[key].strip()
    quotas: dict[str, Any] = {}
    for kind in QUOTA_KINDS:
        minimum = form.get(f"q.{kind}.minimum", "").strip()
        if not minimum:
            continue
        quota: dict[str, Any] = {
            "period": form.get(f"q.{kind}.period", "month"),
            "minimum": _number(minimum),
        }
        due = form.get(f"q.{kind}.due_working_days", "").strip()
        if due:
            quota["due_working_days"] = _number(due)
        quotas[kind] = quota
    if quotas:
        routine["quotas"] = quotas
    suggestion: dict[str, Any] = {}
    count = form.get("suggestions", "")
    rows = min(int(count), MAX_SUGGESTIONS) if count.isdecimal() and len(count) <= 4 else 0
    for n in range(rows):
        code = form.get(f"s{n}.code", "").strip()
        if not code:
            continue
        rule: dict[str, Any] = {"formula": form.get(f"s{n}.formula", "share_of_periods")}
        kinds = [k for k in form.getlist(f"s{n}.kinds") if k]
        if rule["formula"] == "share_of_periods" or len(kinds) == 1:
            if kinds:
                rule["kind"] = kinds[0]
        elif kinds:
            rule["kinds"] = kinds
        late = form.get(f"s{n}.late_deduction", "").strip()
        if late:
            rule["late_deduction"] = late
        suggestion[code] = rule
    if suggestion:
        routine["suggestion"] = suggestion
    return routine


# -- the form's view of a scheme ------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def editor_rows(data: dict[str, Any]) -> dict[str, Any]:
    """The editor's values from scheme data, with one spare row at every level."""
    blank_point = {"code": "", "title": "", "max_points": "", "routine": ""}
    categories = []
    for c in [*list(data.get("categories") or []), {}]:
        c = c if isinstance(c, dict) else {}
        indicators = []
        for i in [*list(c.get("indicators") or []), {}]:
            i = i if isinstance(i, dict) else {}
            points = [
                {k: _text(p.get(k)) for k in blank_point} if isinstance(p, dict) else blank_point
                for p in (i.get("sub_items") or [])
            ] + [dict(blank_point)]
            indicators.append(
                {
                    **{k: _text(i.get(k)) for k in ("code", "title", "max_points")},
                    "evidence_basis": _text(i.get("evidence_basis")),
                    "check_points": check_points_text(i.get("check_points")),
                    "points": points,
                }
            )
        categories.append(
            {
                **{k: _text(c.get(k)) for k in ("code", "title", "max_points")},
                "indicators": indicators,
            }
        )
    found = data.get("routine")
    routine: dict[str, Any] = found if isinstance(found, dict) else {}
    suggestions = []
    for code, rule in dict(routine.get("suggestion") or {}).items():
        rule = rule if isinstance(rule, dict) else {}
        kinds = rule.get("kinds") or ([rule["kind"]] if rule.get("kind") else [])
        suggestions.append(
            {
                "code": code,
                "formula": _text(rule.get("formula") or "share_of_periods"),
                "kinds": list(kinds),
                "late_deduction": _text(rule.get("late_deduction")),
            }
        )
    suggestions.append(
        {"code": "", "formula": "share_of_periods", "kinds": [], "late_deduction": ""}
    )
    quotas = dict(routine.get("quotas") or {})
    return {
        "top": {k: _text(data.get(k)) for k, _ in TOP_FIELDS},
        "total_points": _text(data.get("total_points")),
        "converted_points": _text(data.get("converted_points")),
        "categories": categories,
        "counting_starts": _text(routine.get("counting_starts")),
        "counting_ends": _text(routine.get("counting_ends")),
        "quotas": {
            kind: {
                "period": _text((quotas.get(kind) or {}).get("period") or "month"),
                "minimum": _text((quotas.get(kind) or {}).get("minimum")),
                "due_working_days": _text((quotas.get(kind) or {}).get("due_working_days")),
            }
            for kind in QUOTA_KINDS
        },
        "suggestions": suggestions,
        "departments": [
            d.get("full_name") or d.get("name")
            for d in data.get("departments") or []
            if isinstance(d, dict)
        ],
        "rest": json.dumps(
            {k: v for k, v in data.items() if k not in FORM_KEYS or k == "routine"},
            ensure_ascii=False,
        ),
    }


def next_year_copy(data: dict[str, Any]) -> dict[str, Any]:
    """A copy for the next year: year + 1 in code, title and dates; no document number yet."""
    year = data.get("year")
    if not isinstance(year, int):
        return dict(data)
    old, new = str(year), str(year + 1)
    copy = json.loads(json.dumps(data, ensure_ascii=False).replace(old, new))
    copy["document_no"] = ""
    return copy


# -- pages ----------------------------------------------------------------------------------


def _lines(records: list[StoredScheme]) -> list[dict[str, Any]]:
    frozen = frozen_ids(get_db(), [r.id for r in records])
    return [{"record": r, "frozen": r.id in frozen} for r in records]


def _render_list(**context: Any) -> str:
    records = list_schemes(get_db(), limit=500)[:500]
    return render_template(
        "schemes/list.html",
        schemes=_lines(records),
        origins=SCHEME_ORIGINS,
        max_source=MAX_SOURCE_BYTES,
        **context,
    )


@bp.get("/")
@roles_required(Role.ADMIN)
def index() -> ResponseReturnValue:
    """The library, newest first, with the upload and Word import forms."""
    return _render_list()


def _problems(exc: SchemeError | InvalidValue, text: str | None) -> list[dict[str, Any]]:
    raw: list[dict[str, str]] = (
        exc.errors
        if isinstance(exc, SchemeError)
        else (exc.detail if isinstance(exc.detail, list) else [])
    )
    return [
        {
            "path": p["path"],
            "place": place_label(p["path"])
            if p["path"] and not p["path"].startswith("第 ")
            else p["path"],
            "field": field_of(p["path"]),
            "message": p["message"],
            "line": line_of(text, p["path"]) if text and p["path"] else None,
        }
        for p in raw
    ]


def _render_upload(text: str, problems: list[dict[str, Any]], status: int) -> ResponseReturnValue:
    bad_lines = {p["line"] for p in problems if p["line"]}
    numbered = [(n, line, n in bad_lines) for n, line in enumerate(text.splitlines(), 1)]
    return (
        render_template("schemes/upload.html", text=text, problems=problems, numbered=numbered),
        status,
    )


@bp.post("/upload")
@roles_required(Role.ADMIN)
def upload() -> ResponseReturnValue:
    """Store an uploaded (or pasted) YAML scheme; errors by place and line, nothing saved."""
    upload_file = request.files.get("file")
    if upload_file is not None and upload_file.filename:
        raw = upload_file.stream.read(MAX_SOURCE_BYTES + 1)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = ""
            problems = [{"path": "", "place": "", "field": "", "line": None,
                         "message": gettext("方案文本须为 UTF-8 编码")}]  # fmt: skip
            return _render_upload(text, problems, 422)
    else:
        text = request.form.get("source", "")
    text = text.replace("\r\n", "\n")
    if not text.strip():
        flash(gettext("请选择方案文件或粘贴方案文本"), "error")
        return redirect(url_for("schemes.index"), code=303)
    try:
        data = read_yaml(text)
        with discard_on_error():
            saved = save_scheme(
                get_db(),
                data,
                actor=current_account(),
                source=text,
                origin="portal",
                name=upload_file.filename
                if upload_file is not None and upload_file.filename
                else "",
            )
    except SchemeError as exc:
        return _render_upload(text, _problems(refusal(exc), text), 422)
    except InvalidValue as exc:
        if exc.code != "scheme_invalid":
            raise
        return _render_upload(text, _problems(exc, text), 422)
    return _saved(saved.record, saved.status)


def _saved(record: StoredScheme, status: str) -> ResponseReturnValue:
    flash(gettext(STATUS_MESSAGES[status], version=record.version), "success")
    return redirect(url_for("schemes.detail", scheme_id=record.id), code=303)


def _render_form(
    data: dict[str, Any],
    *,
    problems: list[dict[str, Any]] | None = None,
    document: list[str] | None = None,
    warnings: list[dict[str, str]] | None = None,
    source: StoredScheme | None = None,
    status: int = 200,
    replaces: int | None = None,
    seen: str | None = None,
    error: str | None = None,
    current: StoredScheme | None = None,
) -> ResponseReturnValue:
    problems = problems or []
    by_field: dict[str, list[str]] = {}
    for p in problems:
        by_field.setdefault(p["field"], []).append(p["message"])
    return (
        render_template(
            "schemes/form.html",
            f=editor_rows(data),
            problems=problems,
            by_field=by_field,
            document=document,
            warnings=warnings or [],
            source=source,
            replaces=replaces,
            seen=seen,
            error=error,
            current=current,
            top_fields=TOP_FIELDS,
            point_routines=POINT_ROUTINES,
            formulas=FORMULAS,
            periods=PERIODS,
            quota_kinds=QUOTA_KINDS,
            kind_labels=KIND_LABELS,
        ),
        status,
    )


@bp.get("/<int:scheme_id>/edit")
@roles_required(Role.ADMIN)
def edit(scheme_id: int) -> ResponseReturnValue:
    """The form editor, filled from a stored scheme (`?copy=next`: as next year's copy)."""
    record = get_stored_scheme(get_db(), scheme_id)
    data = dict(record.parsed)
    if request.args.get("copy") == "next":  # a new scheme: it must not overwrite one
        return _render_form(next_year_copy(data), source=record, replaces=None)
    return _render_form(data, source=record, replaces=record.version, seen=scheme_seen(record))


@bp.post("/form")
@roles_required(Role.ADMIN)
def save_form() -> ResponseReturnValue:
    """Store the edited scheme (sums checked again here); errors shown at their fields."""
    data = form_to_scheme(request.form)
    document = request.form.getlist("document") or None  # the Word text, one field a paragraph
    # The version the editor was opened on; none: a new scheme (a copy, an import, a blank).
    raw = request.form.get("replaces", "")
    replaces = int(raw) if raw.isascii() and raw.isdecimal() and len(raw) < 9 else None
    seen = form_seen(request.form) if replaces is not None else None
    try:
        with discard_on_error():
            saved = save_scheme(
                get_db(), data, actor=current_account(),
                origin="docx" if document else "form", replaces=replaces, seen=seen,
            )  # fmt: skip
    except InvalidValue as exc:
        if exc.code != "scheme_invalid":
            raise
        return _render_form(
            data, problems=_problems(exc, None), document=document, status=422,
            replaces=replaces, seen=seen,
        )  # fmt: skip
    except Conflict as exc:
        code = data.get("code")
        latest = latest_version(get_db(), code) if isinstance(code, str) else None
        if exc.code == "changed_since_opened" and latest is not None:
            # Another admin saved this version since: what was typed stays in the form, now
            # standing on their version (a second save overwrites it knowingly).
            return _render_form(
                data, document=document, status=409, replaces=latest.version,
                seen=scheme_seen(latest), error=exc.message, current=latest,
            )  # fmt: skip
        return _render_form(
            data,
            problems=[{"path": "code", "place": place_label("code"), "field": field_of("code"),
                       "message": exc.message, "line": None}],
            document=document, status=409, replaces=replaces, seen=seen,
        )  # fmt: skip
    return _saved(saved.record, saved.status)


@bp.post("/import-docx")
@roles_required(Role.ADMIN)
def import_docx() -> ResponseReturnValue:
    """Read a 考核细则 .docx into the form, beside the document's text; nothing is stored."""
    upload_file = request.files.get("file")
    if upload_file is None or not upload_file.filename:
        flash(gettext("请选择 Word 文档（.docx）"), "error")
        return redirect(url_for("schemes.index"), code=303)
    data = upload_file.stream.read(MAX_DOCX_BYTES + 1)
    try:
        if len(data) > MAX_DOCX_BYTES:
            raise InvalidValue("文件过大（最多 %(cap)s 字节）", code="file_too_large",
                               params={"cap": MAX_DOCX_BYTES})  # fmt: skip
        draft = read_docx_draft(data)
    except DomainError as exc:
        return _render_list(error=exc.message), exc.status
    problems = [
        {**p, "place": place_label(p["path"]), "field": field_of(p["path"])} for p in draft.errors
    ]
    return _render_form(
        draft.scheme, problems=problems, document=draft.paragraphs, warnings=draft.warnings
    )


@bp.get("/<int:scheme_id>")
@roles_required(Role.ADMIN)
def detail(scheme_id: int) -> ResponseReturnValue:
    """One stored scheme: its parts, routine rules, units, text, and what to do with it."""
    db = get_db()
    record = get_stored_scheme(db, scheme_id)
    previous = previous_scheme(db, record)
    return render_template(
        "schemes/detail.html",
        record=record,
        s=record.parsed,
        frozen=bool(frozen_ids(db, [record.id])),
        previous=previous,
        origins=SCHEME_ORIGINS,
        point_routines=POINT_ROUTINES,
        formulas=FORMULAS,
        kind_labels=KIND_LABELS,
    )


@bp.get("/<int:scheme_id>/source.yaml")
@roles_required(Role.ADMIN)
def source(scheme_id: int) -> ResponseReturnValue:
    """The scheme's text as stored (YAML or JSON), as a download."""
    record = get_stored_scheme(get_db(), scheme_id)
    ext = "json" if record.source_format == "json" else "yaml"
    mimetype = "application/json" if ext == "json" else "application/yaml"
    response = Response(record.source, mimetype=mimetype)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=scheme-{record.id}-v{record.version}.{ext}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/<int:scheme_id>/diff")
@roles_required(Role.ADMIN)
def diff(scheme_id: int) -> ResponseReturnValue:
    """Points added, removed and re-weighted against the previous version or year."""
    db = get_db()
    record = get_stored_scheme(db, scheme_id)
    against = request.args.get("against", "")
    if against:
        if not against.isdecimal() or len(against) > 9:
            abort(400)
        old: StoredScheme | None = get_stored_scheme(db, int(against))
    else:
        old = previous_scheme(db, record)
    changes = diff_stored(db, old, record) if old is not None else []
    others = [r for r in list_schemes(db, limit=500) if r.id != record.id]
    return render_template(
        "schemes/diff.html",
        record=record,
        old=old,
        changes=changes,
        others=others,
        kinds=CHANGE_KINDS,
        levels=CHANGE_LEVELS,
        totals=TOTAL_NAMES,
        counts={
            k: sum(1 for c in changes if c.kind == k and c.level == "point") for k in CHANGE_KINDS
        },
    )
