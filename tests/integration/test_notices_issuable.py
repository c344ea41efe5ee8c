"""When a notice or the summary may be issued, on every configured database.

Found by an exploratory walk: a 初步结果 issued during publication replaced the ranked notice
the department held; a ranked summary went out while a department was under appeal (its own
notice refused); the notices job for a year with nothing scored issued a summary of 0.00s.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World
from tests.integration.test_notices import (
    RESULT_NO,
    mark_others_scored,
    notice_events,
    score_department,
    start_publication,
)
from web.app import create_app
from web.tasks import runners_for
from workflow import actions, jobs
from workflow.db import make_sessionmaker
from workflow.errors import Conflict
from workflow.models import Item, Job, Notice
from workflow.notices import (
    NOTICE,
    SUMMARY,
    issue_for_all_departments,
    issue_notice,
    issue_summary,
    latest_notice,
    verify_notice,
)


@pytest.fixture
def world(world: World, session: Session) -> World:
    """The shared world, with the results notice's own number set."""
    world.assessment.result_document_no = RESULT_NO
    session.commit()
    return world


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Flask:
    return create_app(
        {
            "DATABASE_URL": db_url,
            "INSTANCE_DIR": str(tmp_path),
            "TESTING": True,
            "STORAGE": {
                "STORAGE_BACKEND": "local",
                "STORAGE_LOCAL_ROOT": str(tmp_path / "objects"),
            },
        }
    )


def test_no_preliminary_result_once_published(
    session: Session, store: LocalStore, world: World, engine: Engine
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a)
    mark_others_scored(session, w, w.dep_a)
    issue_notice(session, store, w.assessment, w.dep_a, w.scorer, preliminary=True)
    start_publication(session, w.assessment)
    final = issue_notice(session, store, w.assessment, w.dep_a, w.scorer).notice
    session.commit()
    for attempt in (
        lambda: issue_notice(session, store, w.assessment, w.dep_a, w.scorer, preliminary=True),
        lambda: issue_summary(session, store, w.assessment, w.scorer, preliminary=True),
        lambda: issue_for_all_departments(
            make_sessionmaker(engine), store, w.assessment.id, w.scorer.id, preliminary=True
        ),
    ):
        with pytest.raises(Conflict) as err:
            attempt()
        assert err.value.code == "preliminary_after_publication" and "已公示" in err.value.message
        session.rollback()
    assert latest_notice(session, w.assessment, NOTICE, w.dep_a) == final
    assert verify_notice(session, final.verification_code).is_current
    assert latest_notice(session, w.assessment, SUMMARY, None) is None
    # The summary asked for without saying which kind is the ranked one now.
    table = issue_summary(session, store, w.assessment, w.scorer).notice
    assert not table.is_preliminary


def test_ranked_summary_waits_for_a_department_under_appeal(
    session: Session, store: LocalStore, world: World
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a)
    score_department(session, store, w, w.dep_b, w.member_b)
    mark_others_scored(session, w, w.dep_a, w.dep_b)
    start_publication(session, w.assessment)
    first = issue_summary(session, store, w.assessment, w.scorer).notice
    session.commit()
    item = session.scalars(select(Item).where(Item.department_id == w.dep_b.id)).first()
    assert item is not None
    actions.appeal_item(session, item.id, w.member_b, item.version, "佐证材料已按时报送")
    session.commit()
    with pytest.raises(Conflict) as own:
        issue_notice(session, store, w.assessment, w.dep_b, w.scorer)
    assert own.value.code == "not_all_scored"
    session.rollback()
    with pytest.raises(Conflict) as err:
        issue_summary(session, store, w.assessment, w.scorer)
    assert err.value.code == "departments_not_scored"
    assert err.value.detail == [{"department_id": w.dep_b.id, "department": w.dep_b.name}]
    assert "尚有 1 个部门未完成评分" in err.value.message and w.dep_b.name in err.value.message
    session.rollback()
    assert latest_notice(session, w.assessment, SUMMARY, None) == first
    assert len(notice_events(session, "summary_issued")) == 1


def test_nothing_scored_issues_nothing(
    session: Session, store: LocalStore, world: World, app: Flask
) -> None:
    w = world
    with pytest.raises(Conflict) as err:
        issue_summary(session, store, w.assessment, w.scorer)
    assert err.value.code == "nothing_scored"
    session.rollback()

    def run(**params: object) -> Job:
        job = jobs.start_job(
            session, w.admin, jobs.NOTICES, {"assessment_id": w.assessment.id, **params}
        ).job
        session.commit()
        jobs.execute(
            app.extensions["sessionmaker"], app.extensions["store"], job.id, runners_for(app)
        )
        session.expire_all()
        return session.get_one(Job, job.id)

    job = run(preliminary=True)
    assert job.status == jobs.DONE, job.error
    assert job.message is not None and job.message.startswith("未印发任何考核结果通知书或汇总表")
    assert "26 个部门评分未完成" in job.message
    assert job.storage_key is not None
    with app.extensions["store"].open(job.storage_key) as reader:
        archive = zipfile.ZipFile(io.BytesIO(reader.read()))
    assert archive.namelist() == ["未印发的部门.txt"]
    assert "汇总表：没有部门的考核结果通知书可以印发" in archive.read("未印发的部门.txt").decode()
    assert session.scalars(select(Notice)).all() == []

    # With one department finished, its notice and the preliminary summary go out.
    score_department(session, store, w, w.dep_a, w.member_a)
    job = run(preliminary=True)
    assert job.message is not None and job.message.startswith("已印发 1 份考核结果通知书和汇总表")
    kinds = sorted(session.scalars(select(Notice.kind)))
    assert kinds == [NOTICE, SUMMARY]

    start_publication(session, w.assessment)
    with pytest.raises(Conflict) as late:  # refused when asked, not when a worker runs it
        run(preliminary=True)
    assert late.value.code == "preliminary_after_publication"
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Job)) == 2
    ranked = run()
    assert ranked.status == jobs.DONE, ranked.error
    assert ranked.message is not None
    assert ranked.message.startswith("已印发 1 份考核结果通知书，汇总表未印发（尚有 25 个部门")
