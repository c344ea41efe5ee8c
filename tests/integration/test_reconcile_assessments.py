"""Reconciliation of each year's settings and of its departments.

The results notice's 发文字号 and 抄送, the issuer, the appeal days, whether late
self-assessments are refused, and a department's full name (the addressee of its notice) or
aliases could be changed in the database while `audit verify` still passed: only the
publication columns were replayed. Now each assessment's row and each department are replayed
from the events that made and changed them, and every difference is named
(`assessment[<id>].<field>`, `department[<id>].<field>`).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session

from tests.factories import World, make_world, mini_scheme, rules_2019
from tests.integration.test_audit import _tamper
from web.app import create_app
from workflow.assessments import set_publication_page
from workflow.departments import add_alias, remove_alias, rename_department
from workflow.models import Assessment, Department, Unit
from workflow.notices import set_result_settings
from workflow.reconcile import reconcile
from workflow.scheme import Scheme
from workflow.scheme_figures import figure, fingerprint
from workflow.setup import create_assessment

Named = set[tuple[str, object, object, int | None, int | None]]


def _named(session: Session) -> Named:
    return {
        (d.field, d.live, d.from_events, d.department_id, d.assessment_id)
        for d in reconcile(session).differences
    }


@pytest.fixture
def made(session: Session, world: World, scheme_2018: Scheme) -> Assessment:
    """The 2019 year created for the units beside the 2018 world; both years' settings and
    some departments changed through the engine."""
    w = world
    year = create_assessment(
        session, rules_2019(scheme_2018), year=2019, result_document_no="蛟市职转办〔2020〕1号",
        issuer="蛟河市人民政府办公室", actor=w.admin,
    )  # fmt: skip
    set_result_settings(session, w.assessment, actor=w.admin, document_no="蛟市职转办〔2019〕1号",
                        cc="市委办，市人大办", hide_scores=False)  # fmt: skip
    set_result_settings(session, year, actor=w.admin, cc="市政协办")
    set_publication_page(session, year, "signed_in", actor=w.admin)
    rename_department(session, w.dep_a, "蛟河市改过全称的局", actor=w.admin)
    gone = add_alias(session, w.dep_b, "旧称", actor=w.admin)
    add_alias(session, year.departments[0], "挂牌办", "office", actor=w.admin)
    remove_alias(session, w.dep_b, gone.id, actor=w.admin)
    session.commit()
    return year


def test_settings_and_departments_edited_in_the_table_are_named(
    session: Session, world: World, made: Assessment, engine: Engine, db_url: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """Creating a year, its settings and department changes reconcile clean; each edit of a
    setting or a department behind the engine is named, and `audit verify` exits 1."""
    first, w = world.assessment, world
    assert reconcile(session).differences == []
    new_dep = made.departments[0]
    blocks, routine = made.blocks_late_submissions, made.routine_config
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE assessments SET result_document_no = '蛟市职转办〔2019〕7号', "
                 "notice_cc = NULL, hide_scores_until_published = :t WHERE id = :a"),
            {"t": True, "a": first.id},
        )  # fmt: skip
        conn.execute(
            text("UPDATE assessments SET issuer = '别的机关', appeal_window_days = 30, "
                 "blocks_late_submissions = :b, converted_points = 50, signed_on = :d, "
                 "routine_config = '{}', publication_page = 'public' WHERE id = :a"),
            {"b": not blocks, "d": dt.date(2019, 1, 2), "a": made.id},
        )  # fmt: skip
        conn.execute(text("UPDATE departments SET full_name = '伪造的全称' WHERE id = :d"),
                     {"d": w.dep_a.id})  # fmt: skip
        conn.execute(
            text("INSERT INTO department_aliases (department_id, alias, kind) "
                 "VALUES (:d, '伪造的别名', 'alias')"), {"d": new_dep.id},
        )  # fmt: skip
    m, f = made.id, first.id
    assert _named(session) == {
        (f"assessment[{f}].result_document_no", "蛟市职转办〔2019〕7号", "蛟市职转办〔2019〕1号",
         None, f),
        (f"assessment[{f}].notice_cc", None, "市委办，市人大办", None, f),
        (f"assessment[{f}].hide_scores_until_published", True, False, None, f),
        (f"assessment[{m}].issuer", "别的机关", "蛟河市人民政府办公室", None, m),
        (f"assessment[{m}].appeal_window_days", 30, made.appeal_window_days, None, m),
        (f"assessment[{m}].blocks_late_submissions", not blocks, blocks, None, m),
        (f"assessment[{m}].converted_points", "50.00", figure(made.converted_points), None, m),
        (f"assessment[{m}].signed_on", "2019-01-02", made.signed_on.isoformat(), None, m),
        (f"assessment[{m}].routine_sha256", fingerprint({}), fingerprint(routine), None, m),
        (f"assessment[{m}].publication_page", "public", "signed_in", None, m),
        (f"department[{w.dep_a.id}].full_name", "伪造的全称", "蛟河市改过全称的局", w.dep_a.id, f),
        (f"department[{new_dep.id}].aliases", "伪造的别名（别名）、挂牌办（挂牌机构）",
         "挂牌办（挂牌机构）", new_dep.id, m),
    }  # fmt: skip
    app = create_app({"DATABASE_URL": db_url, "INSTANCE_DIR": str(tmp_path)})
    verify = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert verify.exit_code == 1, verify.output
    assert "审计链完整" in verify.output and "数据核对发现 12 处不一致" in verify.output
    assert (
        f"考核 #{f} assessment[{f}].result_document_no（年度考核 · 结果通知书发文字号）："
        "现值 蛟市职转办〔2019〕7号，按审计记录应为 蛟市职转办〔2019〕1号"
    ) in verify.output
    assert f"部门 #{w.dep_a.id} department[{w.dep_a.id}].full_name（被考核部门 · 全称）" in (
        verify.output
    )


def test_rows_no_event_made_are_named(
    session: Session, world: World, made: Assessment, engine: Engine
) -> None:
    """An assessment row no operation made is a finding, and so is a department row in a year
    whose creation listed its departments."""
    with engine.begin() as conn:
        forged = conn.execute(
            insert(Assessment).values(
                code="forged", year=2030, title="伪造的考核", notice_title="伪造", document_no="无",
                issuer="无", signed_on=dt.date(2030, 1, 1), total_points=100,
                converted_points=100, routine_config={},
            ).returning(Assessment.id)
        ).scalar_one()  # fmt: skip
        unit = conn.execute(insert(Unit).values(status="active").returning(Unit.id)).scalar_one()
        extra = conn.execute(
            insert(Department).values(assessment_id=made.id, unit_id=unit, name="伪造部门",
                                      full_name="伪造部门全称", position=99)
            .returning(Department.id)
        ).scalar_one()  # fmt: skip
    found = [
        (d.field, d.live, d.from_events, d.department_id, d.assessment_id)
        for d in reconcile(session).differences
    ]
    assert found == [
        (f"assessment[{forged}]", {"code": "forged", "year": 2030}, None, None, forged),
        (f"department[{extra}]", {"name": "伪造部门", "full_name": "伪造部门全称"}, None, extra,
         made.id),
    ]  # fmt: skip


def _as_older_release(engine: Engine, assessment_id: int) -> None:
    """Rewrite the year's `assessment_created` as releases before this one wrote it: without
    the settings and the departments (the chain breaks; reconciliation reads the payload)."""
    with engine.begin() as conn:
        seq, payload = conn.execute(
            text("SELECT seq, payload FROM audit_events WHERE action = 'assessment_created' "
                 "AND target_id = :a"), {"a": str(assessment_id)},
        ).one()  # fmt: skip
    p = json.loads(payload)
    old = {k: p[k] for k in ("code", "year", "document_no", "departments", "indicators", "items")}
    _tamper(engine, f"UPDATE audit_events SET payload = '{json.dumps(old)}' WHERE seq = {seq}")


def _edit(engine: Engine, assessment_id: int, columns: str, department_id: int) -> None:
    """Set an assessment's `columns` (SQL) and a department's full name behind the engine."""
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE assessments SET {columns} WHERE id = :a"), {"a": assessment_id})
        conn.execute(text("UPDATE departments SET full_name = '别的全称' WHERE id = :d"),
                     {"d": department_id})  # fmt: skip


def test_settings_before_they_were_recorded_are_not_judged(
    session: Session, engine: Engine
) -> None:
    """A year created before this release recorded neither its settings nor its departments:
    they are not compared (nothing in the trail says what they were), except what an event
    records since (the number set through the engine, a department renamed). What the oldest
    events always recorded (code, year, the rules' number) and the 抄送, which only ever
    changed through its event, are still checked."""
    w = make_world(session, mini_scheme(("1",), departments=2))
    a = w.assessment
    session.commit()
    _as_older_release(engine, a.id)
    # As the demo set the number before it went through an event; an issuer and a department
    # the old trail does not describe.
    _edit(engine, a.id, "result_document_no = '蛟市职转办〔2019〕3号', issuer = '别的机关'",
          w.dep_b.id)  # fmt: skip
    assert reconcile(session).differences == []
    session.expire_all()
    set_result_settings(session, a, actor=w.admin, document_no="蛟市职转办〔2019〕1号")
    rename_department(session, w.dep_a, "蛟河市改名局", actor=w.admin)
    session.commit()
    assert reconcile(session).differences == []
    _edit(engine, a.id, "result_document_no = '蛟市职转办〔2019〕3号', notice_cc = '伪造', "
          "code = 'other'", w.dep_a.id)  # fmt: skip
    assert _named(session) == {
        (f"assessment[{a.id}].result_document_no", "蛟市职转办〔2019〕3号", "蛟市职转办〔2019〕1号",
         None, a.id),
        (f"assessment[{a.id}].notice_cc", "伪造", None, None, a.id),
        (f"assessment[{a.id}].code", "other", a.code, None, a.id),
        (f"department[{w.dep_a.id}].full_name", "别的全称", "蛟河市改名局", w.dep_a.id, a.id),
    }  # fmt: skip
