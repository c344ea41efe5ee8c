"""The API's contract from code: declared models → parsing, the OpenAPI document, checks.

- `contract(...)` declares an operation on a view: its tag, its body, form and query models,
  and its answers by status. The OpenAPI 3.1 document is generated from these declarations
  by spectree (`openapi_document`), walking the app's routes; there is no hand-written copy.
- `parse_body(Model)` reads the JSON body with `json_body` (size cap, nesting limit, Decimal
  numbers, NaN refused) and validates it against the model; a refusal is our own error
  (`{"error": {"code", "message"}}`, Chinese, with the codes the API always used), never a
  library's default body.
- `check_response` (active when `API_CHECK_RESPONSES` is set, by default under `TESTING`)
  validates every JSON answer of the API against its operation's schema in the generated
  document, and fails loudly on a status the document does not list, an undeclared field or
  a wrong type.

spectree is used for the document only: the views run unwrapped (our decorator calls the view
itself), so downloads keep streaming and production answers are not re-validated.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, request
from pydantic import BaseModel, ValidationError
from spectree import Response as SpecResponse
from spectree import SpecTree

from web.api.common import json_body
from web.api.schemas import Body, ErrorBody
from workflow.errors import BadRequest
from workflow.messages import N_

TYPE_REFUSED = N_("字段 %(name)s 类型无效")
UNKNOWN_PARAMETER = N_("不支持的查询参数：%(names)s（本接口接受：%(accepted)s），请检查拼写")
#: At most this many unknown names are repeated in the refusal, each cut to `_NAME_SHOWN`.
_NAMES_SHOWN = 10
_NAME_SHOWN = 40
M = TypeVar("M", bound=Body)
F = TypeVar("F", bound=Callable[..., Any])

ERROR_TEXT = {
    400: "Malformed request: bad JSON, unknown field or query parameter, wrong type, bad "
    "parameter or cursor.",
    401: "Not authenticated: missing, bad, expired or revoked token, or a disabled user.",
    403: "Not allowed: role, own department, four-eyes rule.",
    404: "Unknown id, or another department's resource.",
    409: "Stale `version`, or an action the item's state does not allow.",
    413: "Body or file too large.",
    415: "Wrong content type, or a file type that is not accepted.",
    422: "Invalid values: score out of range, missing reason, unknown action or sub-item.",
    429: "Too many attempts; see Retry-After.",
    503: "The database or the file storage is unavailable (or a converter is missing); retry.",
}
#: Answers every operation may give: bad input anywhere (the input layer), an outage.
ALWAYS = (400, 503)
BEARER: dict[str, list[str]] = {"bearer": []}

SPEC = SpecTree(
    "flask",
    mode="strict",
    annotations=False,
    title="放管服 assessment API",
    version="1.0.0",
    description=(
        "JSON API v1 (../shared/API.md). Errors are "
        '`{"error": {"code", "message"}}`; messages in Chinese, English with '
        "`Accept-Language: en`. Scores and totals are decimal strings with two places; "
        "times are ISO 8601 UTC. Generated from the models in `web/api/schemas.py`."
    ),
    validation_error_status=400,
    validation_error_model=ErrorBody,
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
)


@dataclass(frozen=True)
class File:
    """A file answer: its content type and what it is."""

    content_type: str
    description: str


DOCX = File(
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "The .docx file; Content-Disposition carries its name.",
)
ZIP = File("application/zip", "The .zip file; Content-Disposition carries its name.")
TEXT = File("text/plain", "A text report; Content-Disposition carries its name.")
PDF = File("application/pdf", "The PDF rendition; Content-Disposition carries its name.")
XLSX = File(
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "The .xlsx file; Content-Disposition carries its name.",
)
ANY_FILE = File("*/*", "The file's bytes; Content-Disposition carries the name.")
#: A file's answer when `If-None-Match` named its ETag (the recorded SHA-256): no body.
NOT_MODIFIED = (None, "Not modified: `If-None-Match` named this file's ETag; no body.")

#: What the path parameters are (spectree reads their types from the URL converters).
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "aid": {"description": "the assessment's id"},
    "did": {"description": "the department's id"},
    "iid": {"description": "the item's id"},
    "eid": {"description": "the evidence file's id"},
    "rid": {"description": "the routine record's id"},
    "nid": {"description": "the notice version's id"},
    "token_id": {"description": "the token's id"},
    "uid": {"description": "the unit's id"},
    "code": {
        "description": "the code printed on the notice, as typed or copied with its label "
        "(验证码：…); full-width characters, any dashes or spaces, case are forgiven",
        "maxLength": 64,
    },
    "sid": {"description": "the stored scheme's id"},
}

#: operationId → content to put in place of spectree's (files, untyped JSON, HTML).
_FILE_ANSWERS: dict[str, dict[str, dict[str, Any]]] = {}


def contract(
    tag: str,
    *,
    ok: Mapping[int, Any],
    errors: Iterable[int] = (),
    body: type[BaseModel] | None = None,
    form: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    headers: type[BaseModel] | None = None,
    public: bool = False,
) -> Callable[[F], F]:
    """Declare a view's operation: its models and answers (the document is built from this).

    `ok` maps a status to a response model, `(model, description)`, `None` (no body, with
    `(None, description)` for a description), a `File`, or a tuple of `File`s (the answer is
    one of them). `errors` lists the error statuses (each answers `ErrorBody`); 400 and 503
    are always listed, 401 unless `public`.
    """
    codes: dict[str, Any] = {}
    files: dict[str, dict[str, Any]] = {}
    for status, answer in ok.items():
        if isinstance(answer, File):
            answer = (answer,)
        if isinstance(answer, tuple) and answer and all(isinstance(a, File) for a in answer):
            # One file or one of several kinds (a job's result: .zip, .xlsx or .txt).
            codes[f"HTTP_{status}"] = (None, answer[0].description)
            files[str(status)] = {a.content_type: _content_schema(a.content_type) for a in answer}
        else:
            codes[f"HTTP_{status}"] = answer
    statuses = set(errors) | set(ALWAYS) | (set() if public else {401})
    for status in sorted(statuses):
        codes[f"HTTP_{status}"] = (ErrorBody, ERROR_TEXT.get(status, "Refused."))

    def decorate(view: F) -> F:
        operation_id = f"{view.__module__.rsplit('.', 1)[-1]}.{view.__name__}"
        if files:
            _FILE_ANSWERS[operation_id] = files
        documented = SPEC.validate(
            json=body,
            form=form,
            query=query,
            headers=headers,
            resp=SpecResponse(**codes),
            tags=[tag],
            security={} if public else BEARER,
            operation_id=operation_id,
            skip_validation=True,
        )(view)

        @functools.wraps(view)
        def run(*args: Any, **kwargs: Any) -> Any:
            if query is not None:
                refuse_unknown_query(query, public=public)
            return view(*args, **kwargs)  # unwrapped: streaming stays streaming

        run.__wrapped__ = documented  # spectree finds its metadata through this
        return cast(F, run)

    return decorate


def _content_schema(content_type: str) -> dict[str, Any]:
    if content_type == "application/json":
        return {"schema": {"type": "object"}}
    if content_type == "text/html":
        return {"schema": {"type": "string"}}
    return {"schema": {"type": "string", "format": "binary"}}


def refuse_unknown_query(model: type[BaseModel], *, public: bool = False) -> None:
    """Refuse a query parameter the operation's model does not declare (400), naming it.

    A typo (`?stat=submitted` for `state`) would otherwise be ignored and answer the whole
    list. Who asks is checked first, so a caller without a token still gets its 401.
    """
    accepted = [field.alias or name for name, field in model.model_fields.items()]
    unknown = sorted(set(request.args) - set(accepted))
    if not unknown:
        return
    if not public:
        from web.auth import api_user  # the views' own check, cached for the request

        api_user()
    shown = [name[:_NAME_SHOWN] for name in unknown[:_NAMES_SHOWN]]
    raise BadRequest(
        UNKNOWN_PARAMETER,
        code="unknown_parameter",
        params={"names": ", ".join(shown), "accepted": ", ".join(accepted)},
    )


def parse_body(model: type[M], data: dict[str, Any] | None = None) -> M:
    """Validate the JSON body against `model`; refuse it in our error format (400)."""
    if data is None:
        data = json_body()
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise body_error(model, exc) from None


def body_error(model: type[Body], exc: ValidationError) -> BadRequest:
    """Translate pydantic's complaint into our code and Chinese message.

    Unknown fields first (all of them named in one refusal), then the first
    refused field, with the message its model declares.
    """
    problems = exc.errors(include_url=False, include_input=False)
    unknown = sorted(
        {
            str(p["loc"][0])
            for p in problems
            if p["type"] == "extra_forbidden" and len(p["loc"]) == 1
        }
    )
    if unknown:
        return BadRequest(
            "不支持的字段：%(fields)s", code="unknown_field", params={"fields": ", ".join(unknown)}
        )
    first = problems[0]
    loc = first["loc"]
    name = str(loc[0]) if loc else ""
    if len(loc) > 1 and isinstance(loc[1], int):  # inside a list's element
        inner = len(loc) > 2 and first["type"] not in ("missing", "extra_forbidden")
        key = f"{name}[].*" if inner else f"{name}[]"
        if key in model.FIELD_ERRORS:
            code, template = model.FIELD_ERRORS[key]
            return BadRequest(template, code=code, params={"name": name, "n": loc[1]})
    if first["type"] in ("string_too_long", "too_long"):
        return BadRequest("字段 %(name)s 无效", code="invalid_value", params={"name": name})
    code, template = model.FIELD_ERRORS.get(name, ("invalid_type", TYPE_REFUSED))
    return BadRequest(template, code=code, params={"name": name})


# --- the document ------------------------------------------------------------------------
_DOCUMENT: dict[str, Any] | None = None
_WRITING = {"post", "put", "patch", "delete"}
LOST_RACE = "A concurrent change to the same record won (`stale_version`); reload and retry."


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of the app's API routes (needs an app context)."""
    global _DOCUMENT
    if _DOCUMENT is None:
        doc = copy.deepcopy(SPEC.spec)
        for ops in doc["paths"].values():
            for method, op in ops.items():
                if method in _WRITING and "409" not in op["responses"]:
                    # Every change commits at the request boundary, where it can lose a race
                    # on a unique key or a version: that answer is a 409 on any writing call.
                    lost = copy.deepcopy(op["responses"]["400"])
                    op["responses"]["409"] = {**lost, "description": LOST_RACE}
                for status, content in _FILE_ANSWERS.get(op["operationId"], {}).items():
                    op["responses"][status]["content"] = content
                if not op.get("description"):
                    op.pop("description", None)
                for param in op.get("parameters", ()):
                    if param["in"] == "path":
                        _describe_path_parameter(param)
        doc.pop("security", None)
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        _DOCUMENT = doc
    return _DOCUMENT


def _describe_path_parameter(param: dict[str, Any]) -> None:
    extra = dict(PATH_PARAMETERS.get(param["name"], {}))
    param["description"] = extra.pop("description", param.get("description", ""))
    param["schema"].update(extra)
    if param["schema"].get("type") == "integer":
        param["schema"]["minimum"] = 1  # ids start at 1; larger than 32 bits cannot exist


def operation_of(rule_path: str, method: str) -> dict[str, Any] | None:
    """Return the document's operation for a URL rule and method, None when undocumented."""
    path, _ = SPEC.backend.parse_path(rule_path, None)
    found: dict[str, Any] | None = openapi_document()["paths"].get(path, {}).get(method.lower())
    return found


# --- every answer checked against it (tests) ---------------------------------------------
class ContractViolation(AssertionError):
    """An API answer the generated document does not describe."""


_VALIDATORS: dict[tuple[str, str, str], Any] = {}


def _validator(path: str, method: str, status: str, schema: dict[str, Any]) -> Any:
    key = (path, method, status)
    if key not in _VALIDATORS:
        from jsonschema import Draft202012Validator  # a test dependency, loaded only here

        root = {**schema, "components": openapi_document()["components"]}
        _VALIDATORS[key] = Draft202012Validator(root)
    return _VALIDATORS[key]


def check_response(response: Response) -> Response:
    """Fail (raise) when an API answer is not what its operation declares."""
    rule = request.url_rule
    if rule is None or request.method in ("HEAD", "OPTIONS"):
        return response  # no route matched: the router's 404/405, not an operation
    if not rule.endpoint.startswith(("api.", "notices.")):
        return response
    where = f"{request.method} {rule.rule}"
    op = operation_of(rule.rule, request.method)
    if op is None:
        raise ContractViolation(f"{where}: not in the OpenAPI document")
    status = str(response.status_code)
    declared = op["responses"].get(status)
    if declared is None and response.status_code == 500:
        # A bug (a test may provoke one): not documented, but still our error format.
        declared = {"content": {"application/json": {"schema": _ref("ErrorBody")}}}
    if declared is None:
        raise ContractViolation(f"{where}: status {status} is not documented")
    content = declared.get("content") or {}
    if response.status_code == 204 or response.direct_passthrough:
        return response
    if response.mimetype == "application/json":
        media = content.get("application/json")
        if media is None:
            raise ContractViolation(f"{where} → {status}: JSON where the document has none")
        body = response.get_json(silent=True)
        errors = sorted(
            _validator(rule.rule, request.method, status, media.get("schema", {})).iter_errors(
                body
            ),
            key=lambda e: list(e.absolute_path),
        )
        if errors:
            details = "; ".join(
                f"{'/'.join(str(p) for p in e.absolute_path) or '(body)'}: {e.message}"
                for e in errors[:5]
            )
            raise ContractViolation(f"{where} → {status}: {details}")
    elif content and response.mimetype not in content and "*/*" not in content:
        raise ContractViolation(f"{where} → {status}: {response.mimetype} is not documented")
    return response


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def init_contract_checks(app: Flask) -> None:
    """Check every API answer against the document when `API_CHECK_RESPONSES` (tests)."""
    app.config.setdefault("API_CHECK_RESPONSES", app.testing)

    @app.after_request
    def _check(response: Response) -> Response:
        if current_app.config.get("API_CHECK_RESPONSES"):
            return check_response(response)
        return response
