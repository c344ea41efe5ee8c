"""Shared pieces of the JSON API: body parsing, query parameters, cursors, serialisers."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from flask import Response, current_app, jsonify, request

from web.common.ids import MAX_ID
from workflow.actions import MAX_IDEMPOTENCY_KEY
from workflow.audit import format_time, payload_of
from workflow.errors import BadRequest, DomainError
from workflow.models import AuditEvent, Department, Evidence, Indicator, User
from workflow.permissions import current_department

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_JSON_DEPTH = 32
#: Ids are 32-bit in the schema; anything larger cannot exist (a 404, not a database error).
MAX_SEQ = 2**63 - 1
TWO_PLACES = Decimal("0.01")


class PayloadTooLarge(DomainError):
    """A JSON body above the API's cap."""

    status = 413
    code = "request_too_large"


class UnsupportedMediaType(DomainError):
    """A body that is not of the content type the endpoint takes."""

    status = 415
    code = "unsupported_media_type"


def json_response(body: Any, status: int = 200) -> Response:
    """Return a JSON response with the given status."""
    response = jsonify(body)
    response.status_code = status
    return response


def bad_text(text: str) -> bool:
    """Tell whether a string cannot be stored: a NUL or a lone surrogate."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_structure(value: Any, limit: int) -> None:
    """Refuse nesting deeper than `limit` and unstorable strings (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if bad_text(node):
                raise BadRequest("JSON 中含有无效字符", code="malformed_json")
            continue
        if isinstance(node, dict):
            children: list[Any] = [*node.keys(), *node.values()]
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            raise BadRequest("JSON 嵌套过深", code="malformed_json")
        stack.extend((child, depth + 1) for child in children)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_int(literal: str) -> int | Decimal:
    """Keep the JSON integer `-0` as Decimal("-0"): the engine sees its sign and refuses it."""
    return Decimal(literal) if literal == "-0" else int(literal)


def json_body() -> dict[str, Any]:
    """Parse the request body as a JSON object, numbers with a fraction as Decimal.

    Refuse a non-JSON content type (415), a body above the cap (413), malformed or non-UTF-8
    JSON, NaN/Infinity, a top level that is not an object, and deep nesting (400).
    """
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise UnsupportedMediaType("请求体须为 JSON（Content-Type: application/json）")
    cap = int(current_app.config.get("API_MAX_JSON_BYTES", 1024 * 1024))
    if request.content_length is not None and request.content_length > cap:
        raise PayloadTooLarge("请求体过大（最多 %(cap)s 字节）", params={"cap": cap})
    raw = request.stream.read(cap + 1)
    if len(raw) > cap:
        raise PayloadTooLarge("请求体过大（最多 %(cap)s 字节）", params={"cap": cap})
    try:
        text = raw.decode("utf-8")
        data = json.loads(
            text, parse_float=Decimal, parse_int=_parse_int, parse_constant=_reject_constant
        )
    except RecursionError as exc:
        raise BadRequest("JSON 嵌套过深", code="malformed_json") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("请求体不是有效的 JSON", code="malformed_json") from exc
    if not isinstance(data, dict):
        raise BadRequest("请求体须为 JSON 对象", code="malformed_json")
    _check_structure(data, MAX_JSON_DEPTH)
    return data


def refuse_unknown_parts(declared: Iterable[str]) -> None:
    """Refuse a multipart field the form does not declare, as a JSON body's (400), and a
    second `file` part (one file per request: the others would be dropped unsaid)."""
    unknown = sorted((set(request.form) | set(request.files)) - set(declared))
    if unknown:
        raise BadRequest(
            "不支持的字段：%(fields)s", code="unknown_field", params={"fields": ", ".join(unknown)}
        )
    if len(request.files.getlist("file")) > 1:
        raise BadRequest("每次请求只能上传一个文件（字段 file）", code="one_file_only")


def form_text(name: str, max_length: int) -> str | None:
    """Return a multipart form field, None when absent or empty; 400 when too long or unstorable."""
    value = request.form.get(name)
    if value is None or value == "":
        return None
    if len(value) > max_length or bad_text(value):
        raise BadRequest("字段 %(name)s 无效", code="invalid_value", params={"name": name})
    return value


def query_int(name: str, *, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """Return an integer query parameter, None when absent; 400 when not an integer in range."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdecimal() or len(raw) > 19:
        raise BadRequest("参数 %(name)s 须为整数", code="invalid_parameter", params={"name": name})
    value = int(raw)
    if value < minimum or value > maximum:
        raise BadRequest(
            "参数 %(name)s 超出范围（%(min)s–%(max)s）",
            code="invalid_parameter",
            params={"name": name, "min": minimum, "max": maximum},
        )
    return value


def query_str(name: str, *, max_length: int = 200) -> str | None:
    """Return a text query parameter, None when absent; 400 when too long or unstorable."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_length or bad_text(raw):
        raise BadRequest("参数 %(name)s 无效", code="invalid_parameter", params={"name": name})
    return raw


def query_flag(name: str) -> bool:
    """Return a yes/no query parameter: `1`/`true` yes, absent, empty, `0`/`false` no; 400
    otherwise."""
    raw = request.args.get(name)
    if raw in (None, "", "0", "false"):
        return False
    if raw in ("1", "true"):
        return True
    raise BadRequest(
        "参数 %(name)s 须为 1/0 或 true/false", code="invalid_parameter", params={"name": name}
    )


def query_limit() -> int:
    """Return `limit`: default 50, at least 1, capped at 500 (however many digits it has).

    A refusal names the rule a script can act on (1 up, 500 at most served), not the
    internal bound of other integer parameters."""
    raw = request.args.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    digits = raw.lstrip("0") if raw.isascii() and raw.isdecimal() else ""
    if not digits:
        raise BadRequest(
            "参数 limit 须为不小于 1 的整数（超过 %(max)s 按 %(max)s 计）",
            code="invalid_parameter",
            params={"max": MAX_LIMIT},
        )
    return MAX_LIMIT if len(digits) > 4 else min(int(digits), MAX_LIMIT)


def encode_cursor(kind: str, after: int) -> str:
    """Return an opaque cursor naming the last key of a page."""
    return base64.urlsafe_b64encode(f"{kind}:{after}".encode()).decode().rstrip("=")


def decode_cursor(kind: str) -> int | None:
    """Return the key after which the page starts, from `?cursor=`; 400 when it is not ours."""
    raw = request.args.get("cursor")
    if raw is None or raw == "":
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
        prefix, _, number = text.partition(":")
        if prefix != kind or not number.isdecimal() or len(number) > 19 or int(number) > MAX_SEQ:
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest("cursor 无效", code="invalid_cursor") from exc


def points(value: Decimal | None) -> str | None:
    """Format points as a decimal string with two places ("87.50")."""
    if value is None:
        return None
    return format(Decimal(value).quantize(TWO_PLACES), "f")


def iso(value: dt.datetime | None) -> str | None:
    """Format a time as ISO 8601 UTC."""
    return format_time(value) if value is not None else None


def department_ref(dep: Department | None) -> dict[str, Any] | None:
    """Return the short form of a department."""
    if dep is None:
        return None
    return {"id": dep.id, "name": dep.name, "full_name": dep.full_name}


def indicator_ref(ind: Indicator) -> dict[str, Any]:
    """Return the short form of an indicator."""
    return {
        "id": ind.id,
        "code": ind.code,
        "title": ind.title,
        "max_points": points(ind.max_points),
    }


def user_body(user: User) -> dict[str, Any]:
    """Return who a user is: the body of GET /me (their department in the newest assessment
    that has one for them, and their unit)."""
    dep = current_department(user)
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "roles": sorted(user.roles),
        "department": None
        if dep is None
        else {**(department_ref(dep) or {}), "assessment_id": dep.assessment_id},
    }


def evidence_body(row: Evidence, sub_item: str | None, uploader: str | None) -> dict[str, Any]:
    """Return an evidence row as the API shows it."""
    return {
        "id": row.id,
        "item_id": row.item_id,
        "filename": row.filename,
        "size": row.size,
        "sha256": row.sha256,
        "content_type": row.content_type,
        "sub_item": sub_item,
        "purpose": row.purpose,
        "note": row.note,
        "uploaded_at": iso(row.uploaded_at),
        "uploaded_by": uploader,
    }


def event_body(event: AuditEvent) -> dict[str, Any]:
    """Return an audit event as the API shows it."""
    return {
        "seq": event.seq,
        "at": iso(event.at),
        "actor": event.actor,
        "actor_id": event.actor_id,
        "action": event.action,
        "target": {"type": event.target_type, "id": event.target_id},
        "item_id": event.item_id,
        "department_id": event.department_id,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "comment": event.comment,
        "payload": payload_of(event),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def idempotency_key() -> str | None:
    """Return the request's Idempotency-Key header (None when absent); 400 when malformed."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        raise BadRequest(
            "Idempotency-Key 无效（1–200 个可打印 ASCII 字符）", code="bad_idempotency_key"
        )
    return key
