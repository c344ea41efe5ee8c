"""The engine's side of `seen` (workflow/fingerprints.py): two admins saving the results
notice's settings from one page at once save once, the other is told; the appeal window
(no portal form: only the engine and a hand-made post set it before publication) refuses a
stale window; nothing is written or audited on a refusal."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.factories import World, at_once
from workflow.assessments import appeal_window_seen, set_appeal_window
from workflow.db import make_sessionmaker
from workflow.errors import Conflict, DomainError
from workflow.models import Assessment, AuditEvent, User
from workflow.notices import result_settings_seen, set_result_settings


def _events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_two_admins_saving_the_settings_from_one_page_at_once_save_once(
    engine: Engine, session: Session, world: World
) -> None:
    seen = result_settings_seen(world.assessment)
    aid, admin_id, factory = world.assessment.id, world.admin.id, make_sessionmaker(engine)
    session.commit()
    outcomes: list[str] = []

    def save(number: str) -> None:
        with factory() as s:
            assessment, admin = s.get_one(Assessment, aid), s.get_one(User, admin_id)
            try:
                set_result_settings(s, assessment, actor=admin, document_no=number, seen=seen)
                s.commit()
                outcomes.append(number)
            except DomainError as exc:
                s.rollback()
                outcomes.append(exc.code)

    before = _events(session)
    at_once(lambda: save("蛟市职转办〔2019〕1号"), lambda: save("蛟市职转办〔2019〕2号"))
    saved = [o for o in outcomes if o != "changed_since_opened"]
    assert len(saved) == 1 and len(outcomes) == 2, outcomes
    session.expire_all()
    assert session.get_one(Assessment, aid).result_document_no == saved[0]
    assert _events(session) == before + 1  # the saved one only


def test_a_stale_appeal_window_is_refused_and_the_other_kept(
    session: Session, world: World
) -> None:
    a, admin = world.assessment, world.admin
    opens = dt.datetime(2030, 1, 1, 1, tzinfo=dt.UTC)
    seen = appeal_window_seen(a)
    set_appeal_window(session, a, opens, opens + dt.timedelta(days=7), actor=admin, seen=seen)
    before = _events(session)
    try:
        set_appeal_window(session, a, opens, opens + dt.timedelta(days=3), actor=admin, seen=seen)
    except Conflict as exc:
        assert exc.code == "changed_since_opened"
    else:
        raise AssertionError("a stale window was saved")
    assert a.appeal_closes_at == opens + dt.timedelta(days=7) and _events(session) == before
    # Without `seen` (the engine's other callers) a window is set as before.
    set_appeal_window(session, a, opens, opens + dt.timedelta(days=3), actor=admin)
    assert a.appeal_closes_at == opens + dt.timedelta(days=3)
