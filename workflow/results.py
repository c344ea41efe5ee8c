"""The results table: every department's total, converted score and rank, computed once.

The API, the portal (progress and publication pages, Excel exports), the export job and the
notices all render this; none of them sums items or ranks on its own. Two queries: the
departments, and the items' figures.

One rule for a rank (`scoring.totals.results`): a department is ranked once every item of it
has its score (scored, or under appeal with the scores appealed against), among the ranked
departments only (competition ranking, ties share: 1, 2, 2, 4). Until then its rank is None
and every face says 评分未完成 (`UNRANKED`; the API's `unranked_reason`, `UNRANKED_REASON`):
its total and converted score are the sum of the items scored so far, not a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from scoring.totals import DepartmentResult, ItemFigure, results
from workflow.models import Assessment, Department, Item
from workflow.states import State

#: What a page, a sheet or a document shows in place of a rank while a department is scored.
UNRANKED: Final = "评分未完成"
#: Why the API's rank is null: the code the notices and publication refuse with for the same.
UNRANKED_REASON: Final = "not_all_scored"


@dataclass(frozen=True)
class ResultsTable:
    """The results, ranked best first then the unranked, with the department rows they name."""

    rows: list[DepartmentResult]
    departments: dict[int, Department]

    def by_department(self) -> dict[int, DepartmentResult]:
        """The results keyed by department id."""
        return {r.department_id: r for r in self.rows}


def assessment_results(session: Session, assessment: Assessment) -> ResultsTable:
    """Totals, converted scores and ranks of every department of the assessment: the ranked
    best first, then those still being scored (no rank) in the departments' order."""
    departments = {
        d.id: d
        for d in session.execute(
            select(Department)
            .where(Department.assessment_id == assessment.id)
            .order_by(Department.position, Department.id)
        ).scalars()
    }
    figures = [
        ItemFigure(department_id=dep_id, is_scored=state == State.SCORED.value, total=total)
        for dep_id, state, total in session.execute(
            select(Item.department_id, Item.state, Item.total).where(
                Item.assessment_id == assessment.id
            )
        ).all()
    ]
    rows = results(
        {d.id: d.name for d in departments.values()},
        figures,
        assessment.total_points,
        assessment.converted_points,
    )
    return ResultsTable(rows, departments)
