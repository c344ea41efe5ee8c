"""The OpenAPI 3.1 document of the JSON API v1, written by hand to match the views."""

from __future__ import annotations

from typing import Any

from workflow.machine import ACTIONS
from workflow.states import State

MAX_ID = 2**31 - 1
MAX_SEQ = 2**63 - 1

_ERROR_TEXT = {
    400: "Malformed request: bad JSON, unknown field, wrong type, bad parameter or cursor.",
    401: "Not authenticated: missing, bad, expired or revoked token, or a disabled user.",
    403: "Not allowed: role, own department, four-eyes rule.",
    404: "Unknown id, or another department's resource.",
    409: "Stale `version`, or an action the item's state does not allow.",
    413: "Body or file too large.",
    415: "Wrong content type, or a file type that is not accepted.",
    422: "Invalid values: score out of range, missing reason, unknown action or sub-item.",
    429: "Too many failed login attempts; see Retry-After.",
    503: "File storage is unavailable; retry later.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
    }


STAGE_NAMES = ("submit", "review", "verify", "score", "publication", "appeal")
ROUTINE_KINDS = ("monthly_info", "quarterly_case", "meeting", "inspection", "task")
STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}
POINTS = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$", "examples": ["87.50"]}
NSTR = _nullable(STR)
NTIME = _nullable(TIME)
NPOINTS = _nullable(POINTS)
CURSOR = _nullable(STR)

SCHEMAS: dict[str, Any] = {
    "RoutineRecord": _obj(
        {
            "id": INT,
            "assessment_id": INT,
            "department_id": INT,
            "kind": {"type": "string", "enum": list(ROUTINE_KINDS)},
            "kind_label": STR,
            "period": STR,
            "title": STR,
            "note": NSTR,
            "due_at": TIME,
            "submitted_at": TIME,
            "is_late": BOOL,
            "status": {
                "type": "string",
                "enum": ["submitted", "accepted", "rejected", "withdrawn"],
            },
            "reason": NSTR,
            "reviewed_at": NTIME,
            "outcome": {"type": ["string", "null"], "enum": ["done", "late", "missed", None]},
            "registered_by": {"type": "string", "enum": ["department", "office"]},
            "files": {
                "type": "array",
                "items": _obj(
                    {"id": INT, "filename": STR, "size": INT, "sha256": STR, "content_type": STR}
                ),
            },
        }
    ),
    "RoutineOverview": _obj(
        {
            "records": {"type": "array", "items": {"$ref": "#/components/schemas/RoutineRecord"}},
            "counts": {
                "type": "object",
                "additionalProperties": {
                    "type": "array",
                    "items": _obj(
                        {
                            "period": STR,
                            "accepted": INT,
                            "late": INT,
                            "rejected": INT,
                            "pending": INT,
                            "minimum": INT,
                            "met": BOOL,
                        }
                    ),
                },
            },
            "suggested": {
                "type": "object",
                "additionalProperties": _obj(
                    {"points": POINTS, "max_points": POINTS, "breakdown": {"type": "object"}}
                ),
            },
        }
    ),
    "AssessmentStatus": {
        "allOf": [
            {"$ref": "#/components/schemas/Assessment"},
            _obj(
                {
                    "status": {
                        "type": "string",
                        "enum": ["open", "published", "appeals_pending", "final", "reopened"],
                    },
                    "reopened_at": NTIME,
                    "reopen_reason": NSTR,
                }
            ),
        ]
    },
    "StageCalendar": _obj(
        {
            "assessment_id": INT,
            "today": {"type": "string", "format": "date"},
            "status": {
                "type": "string",
                "enum": ["open", "published", "appeals_pending", "final", "reopened"],
            },
            "stages": {
                "type": "array",
                "items": _obj(
                    {
                        "name": {
                            "type": "string",
                            "enum": [
                                "submit",
                                "review",
                                "verify",
                                "score",
                                "publication",
                                "appeal",
                            ],
                        },
                        "label": STR,
                        "starts_on": _nullable({"type": "string", "format": "date"}),
                        "due_on": _nullable({"type": "string", "format": "date"}),
                        "working_days": _nullable(INT),
                        "working_days_left": _nullable(INT),
                        "overdue": BOOL,
                        "pending": _nullable(INT),
                        "is_running": BOOL,
                        "problem": NSTR,
                    }
                ),
            },
        }
    ),
    "NoticeVersion": _obj(
        {
            "id": INT,
            "kind": {"type": "string", "enum": ["notice", "summary"]},
            "assessment_id": INT,
            "department_id": _nullable(INT),
            "version": INT,
            "filename": STR,
            "sha256": STR,
            "size": INT,
            "issued_at": TIME,
            "issued_by": STR,
            "total": {},
            "converted": {},
            "rank": {},
            "url": STR,
        }
    ),
    "NoticeIssued": {
        "allOf": [
            _ref("NoticeVersion"),
            _obj({"verification_code": STR, "verify_url": NSTR, "new": BOOL}),
        ]
    },
    "NoticeCheck": _obj(
        {
            "document_no": STR,
            "kind": {"type": "string", "enum": ["notice", "summary"]},
            "unit": STR,
            "total": NPOINTS,
            "converted": NPOINTS,
            "preliminary": BOOL,
            "version": INT,
            "issued_at": TIME,
            "sha256": STR,
            "current": BOOL,
        }
    ),
    "NoticeList": _obj(
        {
            "notices": {"type": "array", "items": {"$ref": "#/components/schemas/NoticeVersion"}},
            "next_cursor": CURSOR,
        }
    ),
    "Error": _obj(
        {"error": _obj({"code": STR, "message": STR})},
    ),
    "DepartmentRef": _obj({"id": INT, "name": STR, "full_name": STR}),
    "IndicatorRef": _obj({"id": INT, "code": STR, "title": STR, "max_points": POINTS}),
    "Me": _obj(
        {
            "id": INT,
            "username": STR,
            "display_name": STR,
            "roles": {"type": "array", "items": STR},
            "department": _nullable(
                _obj({"id": INT, "name": STR, "full_name": STR, "assessment_id": INT})
            ),
        }
    ),
    "TokenCreated": _obj({"token": STR, "token_id": INT, "expires_at": TIME, "user": _ref("Me")}),
    "Token": _obj(
        {"id": INT, "name": STR, "created_at": TIME, "expires_at": TIME, "revoked_at": NTIME}
    ),
    "TokenList": _obj({"tokens": {"type": "array", "items": _ref("Token")}, "next_cursor": CURSOR}),
    "Assessment": _obj(
        {
            "id": INT,
            "code": STR,
            "year": INT,
            "title": STR,
            "document_no": STR,
            "issuer": STR,
            "total_points": POINTS,
            "converted_points": POINTS,
            "appeal_opens_at": NTIME,
            "appeal_closes_at": NTIME,
            "published_at": NTIME,
            "finalised_at": NTIME,
            "result_document_no": NSTR,
            "notice_cc": NSTR,
            "hide_scores_until_published": BOOL,
        }
    ),
    "AssessmentList": _obj(
        {"assessments": {"type": "array", "items": _ref("Assessment")}, "next_cursor": CURSOR}
    ),
    "SchemeSubItem": _obj({"code": STR, "title": STR, "max_points": POINTS}),
    "Scheme": {
        "allOf": [
            _ref("Assessment"),
            _obj(
                {
                    "categories": {
                        "type": "array",
                        "items": _obj(
                            {
                                "code": STR,
                                "title": STR,
                                "max_points": POINTS,
                                "indicators": {
                                    "type": "array",
                                    "items": {
                                        "allOf": [
                                            _ref("IndicatorRef"),
                                            _obj(
                                                {
                                                    "evidence_basis": STR,
                                                    "sub_items": {
                                                        "type": "array",
                                                        "items": _ref("SchemeSubItem"),
                                                    },
                                                }
                                            ),
                                        ]
                                    },
                                },
                            }
                        ),
                    },
                    "departments": {
                        "type": "array",
                        "items": _obj(
                            {
                                "id": INT,
                                "name": STR,
                                "full_name": STR,
                                "aliases": {"type": "array", "items": STR},
                            }
                        ),
                    },
                }
            ),
        ]
    },
    "ItemSummary": _obj(
        {
            "id": INT,
            "assessment_id": INT,
            "department": _ref("DepartmentRef"),
            "indicator": _ref("IndicatorRef"),
            "state": {"type": "string", "enum": [s.value for s in State]},
            "version": INT,
            "round": INT,
            "total": NPOINTS,
            "updated_at": TIME,
            "is_submitted_late": BOOL,
            "submit_due_on": _nullable({"type": "string", "format": "date"}),
        }
    ),
    "ItemList": _obj(
        {"items": {"type": "array", "items": _ref("ItemSummary")}, "next_cursor": CURSOR}
    ),
    "SubItem": _obj(
        {
            "code": STR,
            "title": STR,
            "max_points": POINTS,
            "score": NPOINTS,
            "deduction_reason": NSTR,
            "not_involved": BOOL,
            "not_involved_upheld": _nullable(BOOL),
        }
    ),
    "Evidence": _obj(
        {
            "id": INT,
            "item_id": INT,
            "filename": STR,
            "size": INT,
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "content_type": STR,
            "sub_item": NSTR,
            "purpose": {"type": "string", "enum": ["evidence", "not_involved_proof", "appeal"]},
            "note": NSTR,
            "uploaded_at": TIME,
            "uploaded_by": NSTR,
        }
    ),
    "Item": {
        "allOf": [
            _ref("ItemSummary"),
            _obj(
                {
                    "sub_items": {"type": "array", "items": _ref("SubItem")},
                    "evidence": {"type": "array", "items": _ref("Evidence")},
                    "return_reason": NSTR,
                    "appeal_reason": NSTR,
                    "appeal_count": INT,
                    "allowed_actions": {
                        "type": "array",
                        "items": {"type": "string", "enum": list(ACTIONS)},
                    },
                }
            ),
        ]
    },
    "Transition": {
        "type": "object",
        "additionalProperties": False,
        "required": ["action", "version"],
        "properties": {
            "action": {"type": "string", "enum": list(ACTIONS)},
            "version": {"type": "integer", "minimum": 1},
            "comment": NSTR,
            "scores": {
                "type": "object",
                "additionalProperties": {
                    "anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^[0-9.]+$"}]
                },
            },
            "deductions": {"type": "object", "additionalProperties": NSTR},
            "not_involved": {"type": "array", "items": STR},
            "rulings": {"type": "object", "additionalProperties": BOOL},
        },
    },
    "BulkTransition": {
        "type": "object",
        "additionalProperties": False,
        "required": ["action", "items"],
        "properties": {
            "action": {"type": "string", "enum": ["review", "verify", "return"]},
            "items": {
                "type": "array",
                "maxItems": 500,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id", "version"],
                    "properties": {
                        "id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                        "version": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                    },
                },
            },
            "comment": NSTR,
            "dry_run": BOOL,
        },
    },
    "BulkReport": _obj(
        {
            "action": STR,
            "dry_run": BOOL,
            "results": {
                "type": "array",
                "items": _obj(
                    {
                        "item_id": INT,
                        "status": {"type": "string", "enum": ["ok", "refused", "conflict"]},
                        "code": NSTR,
                        "message": NSTR,
                    }
                ),
            },
            "counts": _obj({"ok": INT, "refused": INT, "conflict": INT}),
        }
    ),
    "Event": _obj(
        {
            "seq": INT,
            "at": TIME,
            "actor": STR,
            "actor_id": _nullable(INT),
            "action": STR,
            "target": _obj({"type": STR, "id": STR}),
            "item_id": _nullable(INT),
            "department_id": _nullable(INT),
            "from_state": NSTR,
            "to_state": NSTR,
            "comment": NSTR,
            "payload": {},
            "prev_hash": STR,
            "hash": STR,
        }
    ),
    "History": _obj({"events": {"type": "array", "items": _ref("Event")}, "next_cursor": CURSOR}),
    "EventList": _obj(
        {
            "events": {"type": "array", "items": _ref("Event")},
            "next_cursor": CURSOR,
            "next_after_seq": _nullable(INT),
        }
    ),
    "Verification": _obj(
        {
            "ok": BOOL,
            "events": INT,
            "head": _obj({"seq": INT, "hash": STR}),
            "first_bad_seq": _nullable(INT),
            "problem": NSTR,
            "chain_ok": BOOL,
            "reconciliation": _obj(
                {
                    "ok": BOOL,
                    "items": INT,
                    "events": INT,
                    "difference_count": INT,
                    "truncated": BOOL,
                    "differences": {
                        "type": "array",
                        "items": _obj(
                            {
                                "item_id": _nullable(INT),
                                "field": STR,
                                "live": {"description": "the live value (any JSON value)"},
                                "from_events": {"description": "the value the trail gives"},
                                "department_id": _nullable(INT),
                                "assessment_id": _nullable(INT),
                            }
                        ),
                    },
                }
            ),
        }
    ),
    "Results": _obj(
        {
            "assessment_id": INT,
            "results": {
                "type": "array",
                "items": _obj(
                    {
                        "department": _ref("DepartmentRef"),
                        "total": POINTS,
                        "converted": POINTS,
                        "rank": INT,
                        "complete": BOOL,
                        "items_scored": INT,
                        "items_total": INT,
                    }
                ),
            },
        }
    ),
}


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(c): {
            "description": _ERROR_TEXT[c],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        for c in codes
    }


def _ok(status: int, schema: str, description: str) -> dict[str, Any]:
    return {
        str(status): {
            "description": description,
            "content": {"application/json": {"schema": _ref(schema)}},
        }
    }


def _no_content(description: str) -> dict[str, Any]:
    return {"204": {"description": description}}


def _path_id(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"the {what}'s id",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


PAGE = [
    _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
        "page size (default 50, capped at 500)",
    ),
    _query("cursor", {"type": "string"}, "the `next_cursor` of the previous page (opaque)"),
]
AUTH: list[dict[str, list[str]]] = [{"bearer": []}]
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
DOCX_OK = {
    "200": {
        "description": "The .docx file; Content-Disposition carries its name.",
        "content": {DOCX: {"schema": {"type": "string", "format": "binary"}}},
    }
}
PDF_OK = {
    "200": {
        "description": "The PDF rendition; Content-Disposition carries its name.",
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    }
}
XLSX_OK = {
    "200": {
        "description": "The .xlsx file; Content-Disposition carries its name.",
        "content": {
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": {"type": "string", "format": "binary"}
            }
        },
    }
}
JSON_BODY = ("application/json",)


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    tag: str,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    public: bool = False,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    op["security"] = [] if public else AUTH
    return op


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def build_openapi() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of every endpoint this blueprint serves."""
    aid, iid, eid = (
        _path_id("aid", "assessment"),
        _path_id("iid", "item"),
        _path_id("eid", "evidence"),
    )
    did, rid, nid = (
        _path_id("did", "department"),
        _path_id("rid", "routine record"),
        _path_id("nid", "notice"),
    )
    paths: dict[str, Any] = {
        "/api/v1/tokens": {
            "post": _op(
                "Issue a bearer token for a username and password",
                {
                    **_ok(201, "TokenCreated", "The token (shown once) and the user."),
                    **_errors(400, 401, 403, 413, 415, 429),
                },
                tag="tokens",
                public=True,
                body=_json_body(
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["username", "password"],
                        "properties": {
                            "username": {"type": "string", "minLength": 1, "maxLength": 200},
                            "password": {"type": "string", "minLength": 1, "maxLength": 1024},
                            "name": {
                                "type": "string",
                                "maxLength": 100,
                                "description": "a label for the token",
                            },
                        },
                    }
                ),
            ),
            "get": _op(
                "List the caller's own tokens (metadata only)",
                {**_ok(200, "TokenList", "The tokens, oldest first."), **_errors(400, 401)},
                tag="tokens",
                parameters=PAGE,
            ),
        },
        "/api/v1/tokens/{token_id}": {
            "delete": _op(
                "Revoke a token (its owner, or an admin)",
                {**_no_content("Revoked."), **_errors(401, 404)},
                tag="tokens",
                parameters=[_path_id("token_id", "token")],
            ),
        },
        "/api/v1/me": {
            "get": _op(
                "Who the token belongs to",
                {**_ok(200, "Me", "The caller."), **_errors(401)},
                tag="tokens",
            ),
        },
        "/api/v1/assessments": {
            "get": _op(
                "List the assessments, newest first",
                {**_ok(200, "AssessmentList", "The assessments."), **_errors(400, 401)},
                tag="assessments",
                parameters=PAGE,
            ),
        },
        "/api/v1/assessments/{aid}": {
            "get": _op(
                "The scheme of an assessment: categories, indicators, sub-items, departments",
                {**_ok(200, "Scheme", "The scheme."), **_errors(401, 404)},
                tag="assessments",
                parameters=[aid],
            ),
        },
        "/api/v1/assessments/{aid}/settings": {
            "patch": _op(
                "Set the results notice's own 发文字号, its 抄送 and whether departments see "
                "scores before publication (admin; audited)",
                {
                    **_ok(200, "Assessment", "The assessment with its settings."),
                    **_errors(400, 401, 403, 404, 413, 415, 422),
                },
                tag="assessments",
                parameters=[aid],
                body=_json_body(
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "result_document_no": {"type": "string", "maxLength": 100},
                            "notice_cc": {"type": "string", "maxLength": 500},
                            "hide_scores_until_published": BOOL,
                        },
                    }
                ),
            ),
        },
        "/api/v1/assessments/{aid}/items": {
            "get": _op(
                "List items (staff: all; a department user: their own department's)",
                {**_ok(200, "ItemList", "Items in id order."), **_errors(400, 401, 404)},
                tag="items",
                parameters=[
                    aid,
                    _query(
                        "department",
                        {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                        "a department id",
                    ),
                    _query(
                        "state",
                        {"type": "string", "enum": [s.value for s in State]},
                        "an item state",
                    ),
                    _query(
                        "indicator",
                        {"type": "string", "maxLength": 16},
                        "an indicator code, e.g. `3`",
                    ),
                    *PAGE,
                ],
            ),
        },
        "/api/v1/assessments/{aid}/results": {
            "get": _op(
                "Totals, converted scores and ranks per department (staff, auditors)",
                {**_ok(200, "Results", "Best first."), **_errors(401, 403, 404)},
                tag="assessments",
                parameters=[aid],
            ),
        },
        "/api/v1/items/{iid}": {
            "get": _op(
                "One item with sub-items, evidence, total and the caller's allowed actions",
                {**_ok(200, "Item", "The item."), **_errors(401, 404)},
                tag="items",
                parameters=[iid],
            ),
        },
        "/api/v1/items/{iid}/evidence": {
            "post": _op(
                "Upload an evidence file (the item's department, in draft or returned)",
                {
                    **_ok(201, "Evidence", "Stored and recorded."),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 422, 503),
                },
                tag="evidence",
                parameters=[iid],
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "sub_item": {"type": "string", "maxLength": 16},
                                    "note": {"type": "string", "maxLength": 2000},
                                    "purpose": {
                                        "type": "string",
                                        "enum": ["evidence", "not_involved_proof", "appeal"],
                                        "default": "evidence",
                                    },
                                },
                            }
                        }
                    },
                },
            ),
        },
        "/api/v1/evidence/{eid}": {
            "delete": _op(
                "Remove an evidence file (marked removed and audited; the object is kept)",
                {**_no_content("Removed."), **_errors(401, 403, 404, 409)},
                tag="evidence",
                parameters=[eid],
            ),
        },
        "/api/v1/evidence/{eid}/content": {
            "get": _op(
                "Download an evidence file as an attachment with its original name",
                {
                    "200": {
                        "description": "The file's bytes; Content-Disposition carries the name.",
                        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **_errors(401, 404, 503),
                },
                tag="evidence",
                parameters=[eid],
            ),
        },
        "/api/v1/items/{iid}/transitions": {
            "post": _op(
                "Apply a workflow action (submit, review, return, verify, score, appeal, "
                "rescore, reject_appeal)",
                {
                    **_ok(200, "Item", "The item after the action."),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 422),
                },
                tag="items",
                parameters=[
                    iid,
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "a retry with the same key is not applied twice; the same "
                        "key with another body is a 422",
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 200,
                            "pattern": "^[!-~][ -~]*$",
                        },
                    },
                ],
                body=_json_body(_ref("Transition")),
            ),
        },
        "/api/v1/bulk-transitions": {
            "post": _op(
                "Preview (dry_run) or apply review, verify or return on up to 500 items, "
                "each in its own transaction and audit event; one result per item (reviewer, "
                "verifier)",
                {
                    **_ok(200, "BulkReport", "One result per item, in the order given."),
                    **_errors(400, 401, 403, 413, 415, 422),
                },
                tag="items",
                parameters=[
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "a retry with the same key answers the stored report and "
                        "applies no item twice; the same key with another body is a 422",
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 200,
                            "pattern": "^[!-~][ -~]*$",
                        },
                    },
                ],
                body=_json_body(_ref("BulkTransition")),
            ),
        },
        "/api/v1/items/{iid}/history": {
            "get": _op(
                "The item's audit events, oldest first",
                {**_ok(200, "History", "Events."), **_errors(400, 401, 404)},
                tag="items",
                parameters=[iid, *PAGE],
            ),
        },
        "/api/v1/audit/events": {
            "get": _op(
                "Audit events in sequence order (auditor, admin)",
                {**_ok(200, "EventList", "Events."), **_errors(400, 401, 403)},
                tag="audit",
                parameters=[
                    _query(
                        "after_seq",
                        {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
                        "only events after this sequence number",
                    ),
                    _query("actor", {"type": "string", "maxLength": 64}, "a username"),
                    _query("action", {"type": "string", "maxLength": 48}, "an action name"),
                    *PAGE,
                ],
            ),
        },
        "/api/v1/audit/verify": {
            "get": _op(
                "Verify the hash chain and reconcile the tables with it (auditor, admin)",
                {**_ok(200, "Verification", "The outcome."), **_errors(401, 403)},
                tag="audit",
            ),
        },
        "/api/v1/assessments/{aid}/routine": {
            "post": _op(
                "Record a routine submission (department: its own reports; office: meetings, "
                "inspections, tasks for any department)",
                {
                    **_ok(201, "RoutineRecord", "Recorded."),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 422, 503),
                },
                tag="routine",
                parameters=[aid],
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["kind", "period", "title"],
                                "properties": {
                                    "kind": {"type": "string", "enum": list(ROUTINE_KINDS)},
                                    "period": {"type": "string", "examples": ["2018-08"]},
                                    "title": {"type": "string", "maxLength": 300},
                                    "note": {"type": "string", "maxLength": 2000},
                                    "outcome": {
                                        "type": "string",
                                        "enum": ["done", "late", "missed"],
                                    },
                                    "department": {"type": "string", "pattern": "^[0-9]{1,10}$"},
                                    "file": {"type": "string", "format": "binary"},
                                },
                            }
                        }
                    },
                },
            ),
        },
        "/api/v1/assessments/{aid}/departments/{did}/routine": {
            "get": _op(
                "A department's routine records, counts per period against the quota and "
                "suggested scores (9.1, 9.2, 10.1)",
                {**_ok(200, "RoutineOverview", "The overview."), **_errors(401, 404)},
                tag="routine",
                parameters=[aid, did],
            ),
        },
        "/api/v1/routine/{rid}": {
            "get": _op(
                "One routine record",
                {**_ok(200, "RoutineRecord", "The record."), **_errors(401, 404)},
                tag="routine",
                parameters=[rid],
            ),
        },
        "/api/v1/routine/{rid}/review": {
            "post": _op(
                "Accept or reject a routine record (reviewer, admin); a rejection needs a reason",
                {
                    **_ok(200, "RoutineRecord", "The record."),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 422),
                },
                tag="routine",
                parameters=[rid],
                body=_json_body(
                    {
                        "type": "object",
                        "required": ["status"],
                        "additionalProperties": False,
                        "properties": {
                            "status": {"type": "string", "enum": ["accepted", "rejected"]},
                            "reason": {"type": ["string", "null"], "maxLength": 5000},
                        },
                    }
                ),
            ),
        },
        "/api/v1/assessments/{aid}/calendar": {
            "get": _op(
                "The stage calendar (any user): 自评提交, 初审, 核实, 评分 deadlines, 公示 and the "
                "appeal window, with Chinese working days left and overdue stages",
                {**_ok(200, "StageCalendar", "The calendar."), **_errors(401, 404)},
                tag="assessments",
                parameters=[aid],
            ),
        },
        "/api/v1/routine/{rid}/correct": {
            "post": _op(
                "Correct a record the office registered (reviewer, admin), with a reason",
                {
                    **_ok(200, "RoutineRecord", "The corrected record."),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 422),
                },
                tag="routine",
                parameters=[rid],
                body=_json_body(
                    {
                        "type": "object",
                        "required": ["reason"],
                        "additionalProperties": False,
                        "properties": {
                            "reason": {"type": "string", "maxLength": 2000},
                            "period": {"type": ["string", "null"], "maxLength": 10},
                            "title": {"type": ["string", "null"], "maxLength": 300},
                            "note": {"type": ["string", "null"], "maxLength": 2000},
                            "outcome": {
                                "type": ["string", "null"],
                                "enum": ["done", "late", "missed", None],
                            },
                        },
                    }
                ),
            ),
        },
        "/api/v1/routine/{rid}/withdraw": {
            "post": _op(
                "Withdraw a record the office registered (kept, no longer counted), with a reason",
                {
                    **_ok(200, "RoutineRecord", "The withdrawn record."),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 422),
                },
                tag="routine",
                parameters=[rid],
                body=_json_body(
                    {
                        "type": "object",
                        "required": ["reason"],
                        "additionalProperties": False,
                        "properties": {"reason": {"type": "string", "maxLength": 2000}},
                    }
                ),
            ),
        },
        "/api/v1/assessments/{aid}/publish": {
            "post": _op(
                "Publish the results (公示) for `days`; appeals open (admin; 409 until every "
                "item is scored)",
                {
                    **_ok(200, "AssessmentStatus", "Published."),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 422),
                },
                tag="assessments",
                parameters=[aid],
                body=_json_body(
                    {
                        "type": "object",
                        "required": ["days"],
                        "additionalProperties": False,
                        "properties": {"days": {"type": "integer", "minimum": 1, "maximum": 60}},
                    }
                ),
            ),
        },
        "/api/v1/assessments/{aid}/reopen": {
            "post": _op(
                "Reopen finalised results for correction, with a reason (admin; audited)",
                {
                    **_ok(200, "AssessmentStatus", "Reopened."),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 422),
                },
                tag="assessments",
                parameters=[aid],
                body=_json_body(
                    {
                        "type": "object",
                        "required": ["reason"],
                        "additionalProperties": False,
                        "properties": {"reason": {"type": "string", "minLength": 1}},
                    }
                ),
            ),
        },
        "/api/v1/assessments/{aid}/departments/{did}/notice.docx": {
            "get": _op(
                "The latest issued Word notice of a department (staff, auditors; the department "
                "for its own once scores are shown to it); 404 when none was issued; never issues",
                {**DOCX_OK, **_errors(401, 404, 503)},
                tag="notices",
                parameters=[aid, did],
            ),
        },
        "/api/v1/assessments/{aid}/summary.docx": {
            "get": _op(
                "The latest issued Word summary table (staff, auditors); 404 when none",
                {**DOCX_OK, **_errors(401, 403, 404, 503)},
                tag="notices",
                parameters=[aid],
            ),
        },
        "/api/v1/assessments/{aid}/summary": {
            "post": _op(
                "Issue the summary table (scorer, admin); provisional ranks before publication",
                {
                    **_ok(201, "NoticeIssued", "A new version."),
                    **_ok(200, "NoticeIssued", "Nothing changed: the version in force."),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 503),
                },
                tag="notices",
                parameters=[aid],
            ),
        },
        "/api/v1/notices/{nid}": {
            "get": _op(
                "One issued version of a notice or summary, exactly as issued",
                {**DOCX_OK, **_errors(401, 403, 404, 503)},
                tag="notices",
                parameters=[nid],
            ),
        },
        "/api/v1/notices/{nid}.pdf": {
            "get": _op(
                "One issued version rendered to PDF by LibreOffice (503 when not installed)",
                {**PDF_OK, **_errors(401, 404, 503)},
                tag="notices",
                parameters=[nid],
            ),
        },
        "/api/v1/assessments/{aid}/departments/{did}/notices": {
            "get": _op(
                "The issued versions of a department's notice, oldest first",
                {**_ok(200, "NoticeList", "Versions."), **_errors(400, 401, 404)},
                tag="notices",
                parameters=[aid, did, *PAGE],
            ),
            "post": _op(
                "Issue a department's notice (scorer, admin): 201 a new version, 200 when the "
                "figures are unchanged; 409 without the results' own number, while any item is "
                "not scored, or for a ranked notice before publication",
                {
                    **_ok(201, "NoticeIssued", "A new version."),
                    **_ok(200, "NoticeIssued", "Nothing changed: the version in force."),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 503),
                },
                tag="notices",
                parameters=[aid, did],
                body=_json_body(
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"preliminary": BOOL},
                    }
                ),
            ),
        },
        "/api/v1/assessments/{aid}/results.xlsx": {
            "get": _op(
                "The results as Excel: Chinese headers, ranks (暂定 before publication)",
                {**XLSX_OK, **_errors(401, 403, 404)},
                tag="exports",
                parameters=[aid],
            ),
        },
        "/api/v1/assessments/{aid}/matrix.xlsx": {
            "get": _op(
                "The progress matrix (departments × indicators) as Excel",
                {**XLSX_OK, **_errors(401, 403, 404)},
                tag="exports",
                parameters=[aid],
            ),
        },
        "/api/v1/audit/events.xlsx": {
            "get": _op(
                "The audit log as Excel (auditor, admin): Chinese labels, Asia/Shanghai times",
                {**XLSX_OK, **_errors(400, 401, 403)},
                tag="exports",
                parameters=[
                    _query("after_seq", {"type": "integer", "minimum": 0}, "events after"),
                    _query("actor", {"type": "string", "maxLength": 64}, "by this actor"),
                    _query("action", {"type": "string", "maxLength": 48}, "this action"),
                ],
            ),
        },
        "/api/v1/verify/{code}": {
            "get": _op(
                "Check an issued notice by its verification code (anyone; rate-limited)",
                {**_ok(200, "NoticeCheck", "The document."), **_errors(404, 429)},
                tag="notices",
                public=True,
                parameters=[
                    {
                        "name": "code",
                        "in": "path",
                        "required": True,
                        "description": "the code printed on the notice",
                        "schema": {"type": "string", "maxLength": 40},
                    }
                ],
            ),
        },
        "/api/v1/openapi.json": {
            "get": _op(
                "This document",
                {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
                tag="meta",
                public=True,
            ),
        },
        "/api/v1/docs": {
            "get": _op(
                "This document for people (HTML)",
                {"200": {"description": "HTML", "content": {"text/html": {}}}},
                tag="meta",
                public=True,
            ),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "放管服 assessment API",
            "version": "1.0.0",
            "description": "JSON API v1 (../shared/API.md). Errors are "
            '`{"error": {"code", "message"}}`; messages in Chinese, English with '
            "`Accept-Language: en`. Scores and totals are decimal strings with two places; "
            "times are ISO 8601 UTC.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
