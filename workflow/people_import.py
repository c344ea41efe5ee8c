"""Import people from the office's staff list (.xlsx): preview with per-row errors, then all or
nothing.

The sheet's first row names the columns (the template, `template_xlsx`): 用户名, 姓名, 角色
(Chinese role names or codes, separated by 、 or commas), 所属单位 (a unit's current name, an
alias or office, or a former name; required for 部门填报员). Every row is checked before
anything is written: a malformed user name, a user name already taken or given twice in the
file, an unknown role, an unknown or dissolved unit, a person without a name (named by its
cell: 第 3 行“姓名”（B3）). A file whose header or read cells hold formulas without results
(written by a script, never saved by Excel or WPS) is refused, never read as empty cells.
Only a file without any error is imported, in one transaction; each user is created through
`workflow.users.create_user` (audited) with a one-time password that must be changed at
first sign-in.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from openpyxl.utils import get_column_letter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflow.db import serialise, translate_conflicts
from workflow.errors import Forbidden, InvalidValue
from workflow.messages import N_, Np_, Phrase, Term
from workflow.models import Unit, User
from workflow.spreadsheets import uncalculated_formulas
from workflow.states import ROLE_LABELS, Role
from workflow.units import UNIT_NAMES_LOCK, clean_name, find_unit, lineages
from workflow.users import USERNAME_RE, create_user

MAX_ROWS = 2000
#: A counted refusal (`Np_`: 1 row, 3 rows in English).
ROWS_WITH_ERRORS = Np_("有 %(n)s 行存在错误，未导入任何人员")
MAX_BYTES = 5 * 1024 * 1024
HEADERS = ("用户名", "姓名", "角色", "所属单位")
#: Where the template puts each column (a file may order them otherwise: its own are read).
TEMPLATE_COLUMNS = dict(zip(HEADERS, "ABCD", strict=True))
_COLUMN_LETTERS = re.compile(r"[A-Z]{1,3}")
_ROLE_BY_NAME: dict[str, str] = {
    **{label: role.value for role, label in ROLE_LABELS.items()},
    **{role.value: role.value for role in Role},
}
_SPLIT = re.compile(r"[、,，;；/\s]+")
#: What a 角色 cell may say, for the message that refuses anything else.
_ROLE_NAMES = "、".join(ROLE_LABELS.values())
_ROLE_CODES = ", ".join(role.value for role in Role)


@dataclass
class Row:
    """One person of the sheet, with what is wrong with it."""

    line: int
    username: str
    display_name: str
    roles: list[str]
    unit_name: str
    unit_id: int | None = None
    errors: list[Phrase] = field(default_factory=list)
    #: Each column's letter in the file (a refusal names the cell: 第 3 行“姓名”（B3）).
    columns: dict[str, str] = field(default_factory=lambda: dict(TEMPLATE_COLUMNS))

    def cell(self, header: str) -> str:
        """The row's cell of a column, as a spreadsheet names it: B3."""
        return f"{self.columns.get(header, TEMPLATE_COLUMNS[header])}{self.line}"

    def as_json(self) -> dict[str, Any]:
        """What the preview shows and the confirmation posts back."""
        return {
            "line": self.line,
            "username": self.username,
            "display_name": self.display_name,
            "roles": self.roles,
            "unit": self.unit_name,
            "errors": self.errors,
            "columns": self.columns,
        }


@dataclass
class Preview:
    """The rows and whether the file can be imported as it is."""

    rows: list[Row]

    @property
    def ok(self) -> bool:
        """No row has an error (and there is at least one row)."""
        return bool(self.rows) and not any(r.errors for r in self.rows)

    @property
    def error_count(self) -> int:
        """Rows with at least one error."""
        return sum(1 for r in self.rows if r.errors)


def template_xlsx() -> bytes:
    """The file the portal offers: the headers, two example rows, the role names."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "人员"
    sheet.append(list(HEADERS))
    sheet.append(["zhang.san", "张三", "部门填报员", "交通局"])
    sheet.append(["li.si", "李四", "初审员、核实员", ""])
    for column, width in zip("ABCD", (18, 12, 24, 24), strict=True):
        sheet.column_dimensions[column].width = width
    roles = book.create_sheet("角色说明")
    roles.append(["角色", "说明"])
    for role, label in ROLE_LABELS.items():
        roles.append([label, role.value])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _refuse_uncalculated(cells: list[tuple[int, int]], header: list[str]) -> None:
    """Refuse a file whose header row, or a cell of a column the import reads, is a formula
    the file holds no result for (`uncalculated_formulas`): read for its value it would be
    empty, a name or a role silently missing. Name the first such cell and say how many."""
    read = {n: h for n, h in enumerate(header, start=1) if h in HEADERS}
    found = [(row, column) for row, column in cells if row == 1 or column in read]
    if not found:
        return
    row, column = found[0]
    cell = f"{get_column_letter(column)}{row}"
    where = (
        Phrase(N_("标题行（%(cell)s）"), {"cell": cell})
        if row == 1
        else Phrase(
            N_("第 %(line)s 行“%(column)s”（%(cell)s）"),
            {"line": row, "column": Term(read[column]), "cell": cell},
        )
    )
    if len(found) == 1:
        raise InvalidValue(
            "%(where)s是公式，文件中没有计算结果：请在 Excel 或 WPS 中打开并保存后再导入",
            code="formula_without_value",
            params={"where": where},
        )
    raise InvalidValue(
        "%(where)s等 %(n)s 个单元格是公式，文件中没有计算结果："
        "请在 Excel 或 WPS 中打开并保存后再导入",
        code="formula_without_value",
        params={"where": where, "n": len(found)},
    )


def read_sheet(stream: BinaryIO) -> list[Row]:
    """Read the first sheet's rows (after the header row); refuse what is not such a file."""
    from openpyxl import load_workbook

    data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise InvalidValue(
            "文件过大（最多 %(mb)s MB）", code="file_too_large", params={"mb": MAX_BYTES >> 20}
        )
    try:
        uncalculated = uncalculated_formulas(data)
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a file that is not .xlsx
        raise InvalidValue("无法读取该文件，请上传 .xlsx 格式的人员名单", code="bad_xlsx") from None
    try:
        sheet = book.worksheets[0]
        lines = sheet.iter_rows(values_only=True)
        header = [_cell(v) for v in next(lines, ())]
        _refuse_uncalculated(uncalculated, header)
        missing = [h for h in HEADERS if h not in header]
        if missing:
            raise InvalidValue(
                "表头缺少列：%(columns)s（请使用模板）",
                code="bad_header",
                params={"columns": "、".join(missing)},
            )
        index = {h: header.index(h) for h in HEADERS}
        columns = {h: get_column_letter(i + 1) for h, i in index.items()}
        rows: list[Row] = []
        for number, values in enumerate(lines, start=2):
            cells = [_cell(v) for v in values]
            if not any(cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise InvalidValue(
                    "一次最多导入 %(max)s 人", code="too_many_rows", params={"max": MAX_ROWS}
                )

            def get(name: str, cells: list[str] = cells) -> str:
                i = index[name]
                return cells[i] if i < len(cells) else ""

            rows.append(
                Row(
                    line=number,
                    username=get("用户名"),
                    display_name=get("姓名"),
                    roles=[r for r in _SPLIT.split(get("角色")) if r],
                    unit_name=get("所属单位"),
                    columns=columns,
                )
            )
    finally:
        book.close()
    if not rows:
        raise InvalidValue(
            "文件中没有人员：请在标题行下逐行填写用户名、姓名、角色和所属单位", code="no_people"
        )
    return rows


def _current_successors(session: Session, unit: Unit) -> list[Unit]:
    """The units in use now that an ended unit became (through later merges and splits)."""
    graph = lineages(session)
    found: list[Unit] = []
    todo, done = list(graph[unit.id].successors) if unit.id in graph else [], {unit.id}
    while todo:
        uid = todo.pop(0)
        if uid in done:
            continue
        done.add(uid)
        successor = session.get(Unit, uid)
        if successor is not None and successor.status == "active":
            found.append(successor)
        todo.extend(graph[uid].successors if uid in graph else [])
    return found


def _ended_unit(session: Session, name: str, unit: Unit) -> Phrase:
    """The refusal of a unit no longer in use, naming the units that carry it on."""
    successors = _current_successors(session, unit)
    if not successors:
        return Phrase(N_("单位“%(unit)s”已撤销，请填写现单位"), {"unit": name})
    return Phrase(
        N_("单位“%(unit)s”已合并或拆分，请填写现单位：%(successors)s"),
        {"unit": name, "successors": "、".join(u.name for u in successors)},
    )


def check_rows(session: Session, rows: list[Row]) -> Preview:
    """Name every problem of every row; change nothing."""
    # Names that differ only in case are one name (as `create_user` holds).
    names = [r.username.lower() for r in rows]
    taken = set(
        session.scalars(
            select(func.lower(User.username)).where(func.lower(User.username).in_(names))
        )
    )
    seen: dict[str, int] = {}
    units: dict[str, Unit | None] = {}
    for row in rows:
        row.errors = []
        if not row.username:
            row.errors.append(Phrase(N_("缺少用户名")))
        elif not USERNAME_RE.match(row.username):
            row.errors.append(
                Phrase(
                    N_("用户名“%(name)s”只能包含字母、数字、点、下划线和连字符（2–64 位）"),
                    {"name": row.username},
                )
            )
        elif row.username.lower() in taken:
            row.errors.append(Phrase(N_("用户名“%(name)s”已存在"), {"name": row.username}))
        elif row.username.lower() in seen:
            row.errors.append(
                Phrase(
                    N_("用户名“%(name)s”与第 %(line)s 行重复"),
                    {"name": row.username, "line": seen[row.username.lower()]},
                )
            )
        else:
            seen[row.username.lower()] = row.line
        if not clean_name(row.display_name):  # blank, or nothing but invisible characters
            row.errors.append(
                Phrase(
                    N_("第 %(line)s 行“%(column)s”（%(cell)s）为空：请填写此人的姓名"),
                    {"line": row.line, "column": Term("姓名"), "cell": row.cell("姓名")},
                )
            )
        elif len(row.display_name) > 100:
            row.errors.append(Phrase(N_("姓名过长（最多 100 字）")))
        codes = []
        for name in row.roles:
            code = _ROLE_BY_NAME.get(name)
            if code is None:
                row.errors.append(
                    Phrase(
                        N_("未知的角色：%(role)s（可填：%(roles)s，或代码 %(codes)s）"),
                        {"role": name, "roles": _ROLE_NAMES, "codes": _ROLE_CODES},
                    )
                )
            else:
                codes.append(code)
        if not row.roles:
            row.errors.append(
                Phrase(
                    N_("缺少角色（可填：%(roles)s，或代码 %(codes)s）"),
                    {"roles": _ROLE_NAMES, "codes": _ROLE_CODES},
                )
            )
        row.roles = sorted(set(codes)) if len(codes) == len(row.roles) else row.roles
        row.unit_id = None
        if row.unit_name:
            if row.unit_name not in units:
                units[row.unit_name] = find_unit(session, row.unit_name)
            unit = units[row.unit_name]
            if unit is None:
                row.errors.append(
                    Phrase(
                        N_("未知的单位：%(unit)s（请填写现单位的名称、别名或曾用名）"),
                        {"unit": row.unit_name},
                    )
                )
            elif unit.status != "active":
                row.errors.append(_ended_unit(session, row.unit_name, unit))
            else:
                row.unit_id = unit.id
        elif Role.DEPARTMENT.value in codes:
            row.errors.append(Phrase(N_("部门填报员须填写所属单位")))
    return Preview(rows)


def rows_from_json(data: Any) -> list[Row]:
    """The rows a confirmation posts back (checked again before anything is written)."""
    if not isinstance(data, list) or len(data) > MAX_ROWS:
        raise InvalidValue("导入数据无效，请重新上传文件", code="bad_import")
    rows = []
    for n, item in enumerate(data, start=2):
        if not isinstance(item, dict):
            raise InvalidValue("导入数据无效，请重新上传文件", code="bad_import")
        roles = item.get("roles")
        columns = item.get("columns")
        rows.append(
            Row(
                line=int(item["line"]) if isinstance(item.get("line"), int) else n,
                username=str(item.get("username") or "").strip(),
                display_name=str(item.get("display_name") or "").strip(),
                roles=[str(r) for r in roles] if isinstance(roles, list) else [],
                unit_name=str(item.get("unit") or "").strip(),
                columns={
                    header: letter
                    for header, letter in (columns.items() if isinstance(columns, dict) else [])
                    if header in HEADERS
                    and isinstance(letter, str)
                    and _COLUMN_LETTERS.fullmatch(letter)
                }
                or dict(TEMPLATE_COLUMNS),
            )
        )
    return rows


def _recheck_units(session: Session, preview: Preview) -> None:
    """Under the unit-names lock, look again whether the rows' units are active: a
    dissolution, merge or split in flight commits first and its unit is refused (the row's
    error, as in the preview); one that comes later waits for the import."""
    serialise(session, UNIT_NAMES_LOCK)
    ids = {r.unit_id for r in preview.rows if r.unit_id is not None}
    if not ids:
        return
    ended = {
        unit.id: unit
        for unit in session.scalars(select(Unit).where(Unit.id.in_(ids), Unit.status != "active"))
    }
    for row in preview.rows:
        if row.unit_id in ended:
            row.errors.append(_ended_unit(session, row.unit_name, ended[row.unit_id]))


def import_people(
    session: Session, rows: list[Row], *, actor: User, password: Any
) -> list[tuple[User, str]]:
    """Create every person, or none: checked again here; returns (user, one-time password).

    `password` is a callable giving a fresh one-time password per person.
    """
    if not actor.has_role(Role.ADMIN):
        raise Forbidden("只有管理员可以导入人员", code="admin_required")
    preview = check_rows(session, rows)
    if preview.ok:
        _recheck_units(session, preview)
    if not preview.ok:
        raise InvalidValue(
            ROWS_WITH_ERRORS, code="import_has_errors",
            params={"n": preview.error_count},
        )  # fmt: skip
    created = []
    for row in preview.rows:
        unit = session.get(Unit, row.unit_id) if row.unit_id is not None else None
        secret = password()
        with translate_conflicts():  # a name taken by another import meanwhile: 409, none made
            user = create_user(
                session,
                row.username,
                row.roles,
                unit=unit,
                password=secret,
                display_name=row.display_name,
                actor=actor,
                must_change_password=True,
            )
        created.append((user, secret))
    return created
