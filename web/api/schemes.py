"""The scheme library: store a scheme (YAML or JSON), list, read, compare, import from Word."""

from __future__ import annotations

import copy
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Response, current_app, request

from web.api import schemas as s
from web.api.blueprint import bp
from web.api.common import (
    MAX_ID,
    PayloadTooLarge,
    UnsupportedMediaType,
    bad_text,
    decode_cursor,
    encode_cursor,
    iso,
    json_body,
    json_response,
    points,
    query_int,
    query_limit,
    refuse_unknown_parts,
)
from web.api.contract import contract
from web.auth import api_user
from web.db import get_db
from workflow.errors import BadRequest, Forbidden, InvalidValue, SchemeError
from workflow.models import StoredScheme
from workflow.permissions import can_read_all
from workflow.scheme_docx import MAX_DOCX_BYTES, read_docx_draft
from workflow.schemes import (
    MAX_SOURCE_BYTES,
    diff_stored,
    frozen_ids,
    get_stored_scheme,
    line_of,
    list_schemes,
    previous_scheme,
    read_yaml,
    refusal,
    require_admin,
    save_scheme,
)

SID = f"<int(max={MAX_ID}):sid>"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def scheme_line(record: StoredScheme, frozen: bool) -> dict[str, Any]:
    """A stored scheme's line in the library."""
    return {
        "id": record.id,
        "code": record.code,
        "version": record.version,
        "year": record.year,
        "title": record.title,
        "origin": record.origin,
        "is_example": record.is_example,
        "frozen": frozen,
        "total_points": points(_decimal(record.parsed.get("total_points"))),
        "created_by": record.created_by.username if record.created_by is not None else None,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
    }


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _two_places(value: Any) -> Any:
    """A point value as a decimal string with two places ("10.00"); not a number: as it is."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return value
    try:
        number = Decimal(str(value).strip())
        return points(number) if number.is_finite() else value
    except InvalidOperation:  # not a number, or too large to write with two places
        return value


def scheme_view(data: Any) -> Any:
    """A scheme's data as the API shows it: every point (totals, categories, indicators,
    scoring points) a decimal string with two places, as in the assessments' answers.

    The stored text and parsed form are not changed; a draft's unreadable value stays as is.
    """
    if not isinstance(data, dict):
        return data
    view = copy.deepcopy(data)

    def fix(part: Any, *keys: str) -> None:
        for key in keys:
            if isinstance(part, dict) and key in part:
                part[key] = _two_places(part[key])

    fix(view, "total_points", "converted_points")
    for category in _parts(view, "categories"):
        fix(category, "max_points")
        for indicator in _parts(category, "indicators"):
            fix(indicator, "max_points")
            for point in _parts(indicator, "sub_items"):
                fix(point, "max_points")
    return view


def _parts(part: Any, key: str) -> list[Any]:
    found = part.get(key) if isinstance(part, dict) else None
    return found if isinstance(found, list) else []


def _reader() -> Any:
    """The caller, when they may read the library (office staff, auditors, admins)."""
    user = api_user()
    if not can_read_all(user):
        raise Forbidden("无权查看考核方案", code="role_required")
    return user


def refused(exc: InvalidValue, text: str | None) -> Response:
    """The 422 answer: the error and every problem by place (with its YAML line)."""
    problems = exc.detail if isinstance(exc.detail, list) else []
    errors = [
        {
            "path": p["path"],
            "message": p["message"],
            "line": line_of(text, p["path"]) if text and p["path"] else None,
        }
        for p in problems
    ]
    body = {"error": {"code": exc.code, "message": exc.message}, "errors": errors}
    return json_response(body, 422)


def _yaml_text() -> str:
    if request.content_length is not None and request.content_length > MAX_SOURCE_BYTES:
        raise PayloadTooLarge("请求体过大（最多 %(cap)s 字节）", params={"cap": MAX_SOURCE_BYTES})
    raw = request.stream.read(MAX_SOURCE_BYTES + 1)
    if len(raw) > MAX_SOURCE_BYTES:
        raise PayloadTooLarge("请求体过大（最多 %(cap)s 字节）", params={"cap": MAX_SOURCE_BYTES})
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("方案文本须为 UTF-8 编码", code="malformed_yaml") from None
    if bad_text(text):
        raise BadRequest("方案文本含有无效字符", code="malformed_yaml")
    return text.removeprefix("\ufeff")


@bp.post("/schemes")
@contract(
    "schemes",
    body=s.SchemeBody,
    ok={
        201: (s.SchemeSaved, "Stored: a new scheme, or a new version of a frozen one."),
        200: (s.SchemeSaved, "Changed in place (not yet used), or unchanged."),
        422: (s.SchemeRefusal, "Refused: every problem by its place; nothing was saved."),
    },
    errors=(403, 413, 415),
)
def create_scheme() -> Response:
    """Store a scheme sent as YAML (`Content-Type: application/yaml`) or JSON (admin)."""
    user = api_user()
    require_admin(user)
    text: str | None = None
    if request.mimetype in YAML_TYPES:
        text = _yaml_text()
        try:
            data = read_yaml(text)
        except SchemeError as exc:
            return refused(refusal(exc), text)
        source_format = "yaml"
    elif request.mimetype == "application/json" or request.mimetype.endswith("+json"):
        data = json_body()
        source_format = "json"
    else:
        raise UnsupportedMediaType(
            "请以 application/yaml 或 application/json 提交方案", code="unsupported_media_type"
        )
    try:
        saved = save_scheme(
            get_db(),
            data,
            actor=user,
            source=text,
            source_format=source_format,
            origin="api",
        )
    except InvalidValue as exc:
        if exc.code != "scheme_invalid":
            raise
        return refused(exc, text)
    record = saved.record
    body = {
        "id": record.id,
        "code": record.code,
        "version": record.version,
        "year": record.year,
        "title": record.title,
        "status": saved.status,
    }
    return json_response(body, 201 if saved.status in ("created", "versioned") else 200)


@bp.get("/schemes")
@contract("schemes", query=s.Page, ok={200: (s.StoredSchemeList, "The library.")}, errors=(403,))
def list_stored_schemes() -> Response:
    """The scheme library, newest first (office staff, auditors, admins)."""
    _reader()
    limit = query_limit()
    rows = list_schemes(get_db(), limit=limit, before=decode_cursor("scheme"))
    more = len(rows) > limit
    rows = rows[:limit]
    frozen = frozen_ids(get_db(), [r.id for r in rows])
    return json_response(
        {
            "schemes": [scheme_line(r, r.id in frozen) for r in rows],
            "next_cursor": encode_cursor("scheme", rows[-1].id) if more and rows else None,
        }
    )


@bp.get(f"/schemes/{SID}")
@contract("schemes", ok={200: (s.StoredSchemeDetail, "The scheme.")}, errors=(403, 404))
def get_stored(sid: int) -> Response:
    """One stored scheme: its text as given and its parsed form."""
    _reader()
    db = get_db()
    record = get_stored_scheme(db, sid)
    previous = previous_scheme(db, record)
    return json_response(
        {
            **scheme_line(record, bool(frozen_ids(db, [record.id]))),
            "source": record.source,
            "source_format": record.source_format,
            "sha256": record.sha256,
            "scheme": scheme_view(record.parsed),
            "previous_id": previous.id if previous is not None else None,
        }
    )


@bp.get(f"/schemes/{SID}/diff")
@contract(
    "schemes",
    query=s.SchemeDiffQuery,
    ok={200: (s.SchemeDiff, "The changes.")},
    errors=(403, 404),
)
def diff_stored_scheme(sid: int) -> Response:
    """What changed against `against` (default: the version before, else the year before)."""
    _reader()
    db = get_db()
    record = get_stored_scheme(db, sid)
    against = query_int("against", minimum=1)
    old = get_stored_scheme(db, against) if against is not None else previous_scheme(db, record)
    changes = [] if old is None else [c.as_dict() for c in diff_stored(db, old, record)]
    return json_response(
        {"from_id": old.id if old is not None else None, "to_id": record.id, "changes": changes}
    )


@bp.post("/schemes/import-docx")
@contract(
    "schemes",
    form=s.DocxForm,
    ok={201: (s.SchemeDraft, "A draft (not stored): correct it, then POST /schemes.")},
    errors=(403, 413, 415, 422),
)
def import_docx() -> Response:
    """Read a 考核细则 .docx (its 分值构成 table and （N分） marks) into a draft scheme (admin)."""
    user = api_user()
    require_admin(user)
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("请以 multipart/form-data 提交（字段 file）")
    refuse_unknown_parts(s.DocxForm.model_fields)  # as every upload: no field dropped unsaid
    upload = request.files.get("file")
    if upload is None:
        raise BadRequest("缺少文件（字段 file）", code="file_required")
    cap = int(current_app.config.get("MAX_DOCX_BYTES", MAX_DOCX_BYTES))
    data = upload.stream.read(cap + 1)
    if len(data) > cap:
        raise PayloadTooLarge("文件过大（最多 %(cap)s 字节）", params={"cap": cap})
    body = read_docx_draft(data).as_dict()
    return json_response({**body, "scheme": scheme_view(body["scheme"])}, 201)
