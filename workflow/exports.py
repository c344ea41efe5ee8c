"""The office's tables as spreadsheets: results, progress matrix, users (Chinese headers).

Each function returns `(headers, rows)` for `workflow.spreadsheets.xlsx_bytes`. Scores are
numbers, so the office can sum and sort them; the department's id is kept last under a Chinese
header (部门编号) to match a row to its department when a sheet is read back, and the users'
role codes last in theirs. A department still being scored has no rank: its rank cell says
评分未完成 (text after the numbers when the column is sorted), the results' 评分完成 column
says 否 and their caption counts such departments and says what their figures are
(`workflow.results`). No Flask here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from scoring.totals import DepartmentResult, ItemFigure, results
from workflow.models import (
    Assessment,
    Category,
    Department,
    Indicator,
    Item,
    Unit,
    User,
)
from workflow.notices import publication_started
from workflow.permissions import unit_names
from workflow.results import UNRANKED, ResultsTable, assessment_results
from workflow.spreadsheets import xlsx_bytes
from workflow.states import ROLE_LABELS, STATE_LABELS, Role, State

Table = tuple[list[str], list[Sequence[Any]]]
ROLE_VALUES = frozenset(r.value for r in Role)


def _departments(session: Session, assessment: Assessment) -> list[Department]:
    return list(
        session.execute(
            select(Department)
            .where(Department.assessment_id == assessment.id)
            .order_by(Department.position, Department.id)
        ).scalars()
    )


def _rank_header(assessment: Assessment) -> str:
    return "名次" if publication_started(assessment) else "暂定名次"


def _rank_cell(result: DepartmentResult) -> int | str:
    """The rank, or 评分未完成 while the department is being scored (never a partial sum's)."""
    return result.rank if result.rank is not None else UNRANKED


def results_caption(assessment: Assessment, unranked: int = 0) -> str:
    """The results sheet's title line, saying whether the figures are published or provisional
    and how many departments are still being scored (unranked, their figures partial)."""
    state = "已公示" if publication_started(assessment) else "暂定，未公示"
    caption = f"{assessment.title} 考核结果（{state}）"
    if unranked:
        caption += f"；{unranked} 个部门{UNRANKED}：不排名，其总分、折合分为已评分事项之和"
    return caption


def results_xlsx(session: Session, assessment: Assessment) -> bytes:
    """The results as the one-sheet .xlsx every download of them is (the portal's, the API's
    and the export job's): the table under its caption."""
    found = assessment_results(session, assessment)
    headers, rows = _results_rows(assessment, found)
    unranked = sum(1 for r in found.rows if r.rank is None)
    return xlsx_bytes(
        "考核结果", headers, rows, caption=results_caption(assessment, unranked=unranked)
    )


def results_table(session: Session, assessment: Assessment) -> Table:
    """Return every department's total, converted score and rank: the ranked best first, then
    the departments still being scored, their rank cell 评分未完成 and 评分完成 否."""
    return _results_rows(assessment, assessment_results(session, assessment))


def _results_rows(assessment: Assessment, found: ResultsTable) -> Table:
    departments, table = found.departments, found.rows
    headers = [
        _rank_header(assessment),
        "部门",
        "部门全称",
        f"总分（满分{assessment.total_points.normalize():f}）",
        f"折合分（满分{assessment.converted_points.normalize():f}）",
        "已评分事项",
        "事项总数",
        "评分完成",
        "部门编号",
    ]
    rows: list[Sequence[Any]] = [
        (
            _rank_cell(r),
            departments[r.department_id].name,
            departments[r.department_id].full_name,
            r.total,
            r.converted,
            r.items_scored,
            r.items_total,
            r.is_complete,
            r.department_id,
        )
        for r in table
    ]
    return headers, rows


def matrix_table(session: Session, assessment: Assessment) -> Table:
    """Return departments × indicators: per indicator its points (a number, blank until given)
    and its state in words, then the department's totals."""
    departments = _departments(session, assessment)
    indicators = list(
        session.execute(
            select(Indicator)
            .join(Category, Category.id == Indicator.category_id)
            .where(Indicator.assessment_id == assessment.id)
            .order_by(Category.position, Indicator.position, Indicator.id)
        ).scalars()
    )
    items = session.execute(
        select(Item.department_id, Item.indicator_id, Item.state, Item.total).where(
            Item.assessment_id == assessment.id
        )
    ).all()
    cells = {(row.department_id, row.indicator_id): row for row in items}
    ranked = {
        r.department_id: r
        for r in results(
            {d.id: d.name for d in departments},
            [ItemFigure(row.department_id, row.state == State.SCORED.value, row.total)
             for row in items],
            assessment.total_points,
            assessment.converted_points,
        )
    }  # fmt: skip
    headers = ["部门"]
    for i in indicators:  # the score, a number to sum and sort by, then the state in words
        headers += [f"{i.code}.{i.title}（{i.max_points.normalize():f}分）", f"{i.code} 状态"]
    headers += ["总分", "折合分", _rank_header(assessment), "已评分事项", "事项总数", "部门编号"]
    rows: list[Sequence[Any]] = []
    for d in departments:
        line: list[Any] = [d.name]
        for i in indicators:
            cell = cells.get((d.id, i.id))
            if cell is None:
                line += [None, ""]
                continue
            line += [cell.total, STATE_LABELS.get(State(cell.state), cell.state)]
        r = ranked[d.id]
        line += [r.total, r.converted, _rank_cell(r), r.items_scored, r.items_total, d.id]
        rows.append(line)
    return headers, rows


#: A unit whose users have no department to lead to (split or dissolved: an admin re-points
#: them; merged since the newest year: until the next), as the portal says it.
_ENDED = {"merged": "已合并", "split": "已拆分", "dissolved": "已撤销"}


def _unit_text(user: User) -> str:
    """The user's unit now, and the account's own unit when merged into it; a split or
    dissolved unit says so (as the portal's users list)."""
    now, own = unit_names(user)
    if own:
        return f"{now}（原{own}）"
    ended = _ENDED.get(user.unit.status) if user.unit is not None else None
    return f"{now}（{ended}）" if ended else now


def users_table(session: Session) -> Table:
    """Return every user: name, roles in Chinese, department, status, creation time."""
    users = session.execute(
        select(User).options(joinedload(User.unit).selectinload(Unit.names)).order_by(User.username)
    ).scalars()
    headers = [
        "用户名",
        "姓名",
        "角色",
        "所属部门",
        "状态",
        "须修改密码",
        "创建时间（北京时间）",
        "停用时间（北京时间）",
        "角色代码",  # the stable codes, for scripts and the API (`roles`)
    ]
    rows: list[Sequence[Any]] = []
    for u in users:
        labels = "、".join(ROLE_LABELS[Role(r)] if r in ROLE_VALUES else r for r in u.roles)
        rows.append(
            (
                u.username,
                u.display_name,
                labels,
                _unit_text(u),
                "启用" if u.is_active else "停用",
                "是" if u.must_change_password else "否",
                u.created_at,
                u.disabled_at,
                ",".join(u.roles),
            )
        )
    return headers, rows
