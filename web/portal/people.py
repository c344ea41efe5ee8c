"""Import people from an .xlsx staff list (admin): upload, preview with per-row errors, confirm.

The preview changes nothing; the confirmation posts the previewed rows back, and the engine
(`workflow.people_import`) checks them all again and creates every person or none.
"""

from __future__ import annotations

import json
from typing import BinaryIO, cast

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from web.common.exports import xlsx_response
from web.db import discard_on_error, get_db
from web.portal.auth import current_account, roles_required
from workflow import people_import
from workflow.errors import DomainError, InvalidValue
from workflow.states import Role
from workflow.users import generate_password

bp = Blueprint("people", __name__, url_prefix="/admin/users/import")
TEMPLATE = "admin/people_import.html"


@bp.get("/")
@roles_required(Role.ADMIN)
def form() -> ResponseReturnValue:
    """The upload form and the template."""
    return render_template(TEMPLATE, preview=None)


@bp.get("/template.xlsx")
@roles_required(Role.ADMIN)
def template() -> ResponseReturnValue:
    """The staff list template: 用户名, 姓名, 角色, 所属单位, with examples and role names."""
    return xlsx_response(people_import.template_xlsx(), "人员导入模板")


@bp.post("/")
@roles_required(Role.ADMIN)
def upload() -> ResponseReturnValue:
    """Preview an uploaded file, or import previewed rows (all or nothing)."""
    db = get_db()
    if request.form.get("action") == "import":
        try:
            rows = people_import.rows_from_json(json.loads(request.form.get("rows") or "null"))
        except (ValueError, DomainError):
            return render_template(
                TEMPLATE, preview=None, error="导入数据无效，请重新上传文件"
            ), 400
        try:
            with discard_on_error():
                created = people_import.import_people(
                    db, rows, actor=current_account(), password=generate_password
                )
        except DomainError as exc:
            preview = people_import.check_rows(db, rows)
            return render_template(TEMPLATE, preview=preview, error=exc.message), exc.status
        return render_template(TEMPLATE, preview=None, created=created), 201
    file = request.files.get("file")
    if file is None or not file.filename:
        error = InvalidValue("请选择要上传的 .xlsx 文件", code="file_required").message
        return render_template(TEMPLATE, preview=None, error=error), 422
    try:
        rows = people_import.read_sheet(cast(BinaryIO, file.stream))
    except DomainError as exc:
        return render_template(TEMPLATE, preview=None, error=exc.message), exc.status
    preview = people_import.check_rows(db, rows)
    payload = json.dumps([r.as_json() for r in preview.rows], ensure_ascii=False)
    return render_template(TEMPLATE, preview=preview, rows_json=payload)
