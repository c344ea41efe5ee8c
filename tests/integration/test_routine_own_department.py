"""Issue 11, finding 6: office staff do not record routine records for their own department."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World
from workflow.errors import Forbidden
from workflow.models import AuditEvent, RoutineRecord
from workflow.routine import submit_routine


@pytest.mark.parametrize("kind", ["meeting", "inspection", "task"])
def test_office_staff_record_no_routine_record_for_their_own_department(
    session: Session, world: World, tmp_path: Path, kind: str
) -> None:
    w = world
    store = LocalStore(tmp_path / "objects")
    fields = {
        "kind": kind,
        "period": "2018-09",
        "title": "推进会",
        "stream": None,
        "filename": None,
    }
    with pytest.raises(Forbidden) as refused:
        submit_routine(
            session, store, w.assessment, w.reviewer_in_a, department_id=w.dep_a.id,
            max_size=1024, **fields,  # type: ignore[arg-type]
        )  # fmt: skip
    assert refused.value.code == "own_department"
    assert "本部门" in refused.value.message
    session.rollback()
    assert session.scalar(select(func.count()).select_from(RoutineRecord)) == 0
    assert not session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "routine_submitted")
    )
    # Another department is theirs to record, as for items.
    record = submit_routine(
        session, store, w.assessment, w.reviewer_in_a, department_id=w.dep_b.id,
        max_size=1024, **fields,  # type: ignore[arg-type]
    )  # fmt: skip
    assert record.department_id == w.dep_b.id
