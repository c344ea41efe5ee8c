"""The results table: every department's total, converted score and rank, computed once.

The API, the portal (publication page, Excel export) and the notices all render this; none
of them sums items on its own. Two queries: the departments, and the items' figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from scoring.totals import DepartmentResult, ItemFigure, results
from workflow.models import Assessment, Department, Item
from workflow.states import State


@dataclass(frozen=True)
class ResultsTable:
    """The results, best first, with the department rows they name."""

    rows: list[DepartmentResult]
    departments: dict[int, Department]

    def by_department(self) -> dict[int, DepartmentResult]:
        """The results keyed by department id."""
        return {r.department_id: r for r in self.rows}


def assessment_results(session: Session, assessment: Assessment) -> ResultsTable:
    """Totals, converted scores and ranks of every department of the assessment, best first."""
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
