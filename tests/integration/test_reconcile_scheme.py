"""Reconciliation of a scheme's figures: the points an indicator or a scoring point is worth.

A scoring point's maximum raised by a direct database edit changed what every department
could score while `audit verify` still passed: `assessment_created` recorded only counts. Now
it records the figures and their SHA-256, and the live rules are compared with them.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from tests.factories import World, make_world, mini_scheme, rules_2019
from workflow.models import UnitChange
from workflow.reconcile import reconcile
from workflow.scheme import Scheme
from workflow.setup import create_assessment


def _named(session: Session) -> set[tuple[str, object, object, int | None]]:
    return {
        (d.field, d.live, d.from_events, d.assessment_id) for d in reconcile(session).differences
    }


def test_installed_and_created_schemes_reconcile_clean_and_edits_are_named(
    session: Session, world: World, scheme_2018: Scheme, engine: Engine
) -> None:
    """Both ways an assessment is made record its figures; each edited figure is named with
    its live value and the trail's, beside the fingerprint."""
    a = world.assessment
    made = create_assessment(
        session, rules_2019(scheme_2018), year=2019, result_document_no="蛟市职转办〔2020〕1号",
        actor=world.admin,
    )  # fmt: skip
    session.commit()
    assert reconcile(session).differences == []
    with engine.begin() as conn:
        conn.execute(text(
            "UPDATE scoring_points SET max_points = 9 WHERE code = '1.1' AND indicator_id IN "
            "(SELECT id FROM indicators WHERE assessment_id = :a)"), {"a": a.id})  # fmt: skip
        conn.execute(text(
            "UPDATE indicators SET max_points = 12 WHERE code = '2' AND assessment_id = :a"),
            {"a": made.id})  # fmt: skip
        conn.execute(text(
            "UPDATE scoring_points SET title = '改过的评分项' WHERE code = '2.1' AND indicator_id "
            "IN (SELECT id FROM indicators WHERE assessment_id = :a)"), {"a": made.id})  # fmt: skip
    differences = reconcile(session).differences
    fingerprints = {d.assessment_id: d for d in differences if d.field.endswith(".fingerprint")}
    assert set(fingerprints) == {a.id, made.id}
    assert all(len(d.live) == len(d.from_events) == 64 for d in fingerprints.values())
    assert {
        (d.field, d.live, d.from_events, d.assessment_id)
        for d in differences
        if not d.field.endswith(".fingerprint")
    } == {
        (f"scheme[{a.id}].point_max_points[1.1]", "9.00", "5.00", a.id),
        (f"scheme[{made.id}].indicator_max_points[2]", "12.00", "10.00", made.id),
        (f"scheme[{made.id}].point_title[2.1]", "改过的评分项",
         "落实国家、省、吉林市“放管服”改革工作任务完成情况", made.id),
    }  # fmt: skip
    by_field = {d.field: d for d in differences}
    point = by_field[f"scheme[{a.id}].point_max_points[1.1]"]
    assert point.label == "考核细则分值 · 评分项分值 1.1"
    assert point.describe() == (
        f"考核 #{a.id} scheme[{a.id}].point_max_points[1.1]（考核细则分值 · 评分项分值 1.1）："
        "现值 9.00，按审计记录应为 5.00"
    )


def test_check_points_and_a_removed_point_are_named(session: Session, engine: Engine) -> None:
    """A check point's code changed, a scoring point deleted: each named."""
    w = make_world(session, mini_scheme(("1", "3"), check_points=True), check_points=True)
    session.commit()
    aid = w.assessment.id
    assert reconcile(session).differences == []
    with engine.begin() as conn:
        conn.execute(text(
            """UPDATE indicators SET check_points = '[{"code": "1-9", "text": "x", """
            """"method": "实地考核"}]' WHERE code = '1' AND assessment_id = :a"""),
            {"a": aid})  # fmt: skip
        conn.execute(text(
            "DELETE FROM scoring_points WHERE code = '1.2' AND indicator_id IN "
            "(SELECT id FROM indicators WHERE assessment_id = :a)"), {"a": aid})  # fmt: skip
    named = {f for f in _named(session) if not f[0].endswith(".fingerprint")}
    assert named == {
        (f"scheme[{aid}].check_points[1]", "1-9", "1-1、1-2", aid),
        (f"scheme[{aid}].point_max_points[1.2]", None, "5.00", aid),
        (f"scheme[{aid}].point_title[1.2]", None, "指定专人负责", aid),
    }


def test_an_assessment_created_before_the_figures_is_not_checked(
    session: Session, engine: Engine
) -> None:
    """An `assessment_created` without figures says nothing of them: no finding."""
    w = make_world(session, mini_scheme(("1",)))
    session.commit()
    aid = w.assessment.id
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # a DBA past the append-only trigger
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        payload = conn.execute(
            text("SELECT payload FROM audit_events WHERE action = 'assessment_created' "
                 "AND target_id = :a"), {"a": str(aid)},
        ).scalar_one()  # fmt: skip
        assert "figures" in json.loads(payload)  # written now; stripped as an old event's
        old = {k: v for k, v in json.loads(payload).items() if not k.startswith("figures")}
        conn.execute(
            text("UPDATE audit_events SET payload = :p WHERE action = 'assessment_created' "
                 "AND target_id = :a"), {"p": json.dumps(old), "a": str(aid)},
        )  # fmt: skip
        conn.execute(text(
            "UPDATE scoring_points SET max_points = 9 WHERE indicator_id IN "
            "(SELECT id FROM indicators WHERE assessment_id = :a)"), {"a": aid})  # fmt: skip
    assert reconcile(session).differences == []


def _renamed_and_merged(session: Session) -> tuple[World, tuple[int, ...], UnitChange]:
    """Four departments' units: the first renamed (with an alias), the next two merged."""
    from workflow.units import apply_change

    w = make_world(session, mini_scheme(("1",), departments=4))
    a, b, c, d = (dep.unit_id for dep in w.assessment.departments)
    apply_change(
        session, kind="rename", effective_on=dt.date(2019, 3, 1), document_no="蛟市机编〔2019〕1号",
        reason="机构改革", from_ids=[a], to=[{"name": "改名局", "aliases": ["旧称局"]}],
        actor=w.admin,
    )  # fmt: skip
    merged = apply_change(
        session, kind="merge", effective_on=dt.date(2019, 3, 2), document_no="蛟市机编〔2019〕2号",
        reason="机构改革", from_ids=[b, c], to=[{"name": "合并局"}], actor=w.admin,
    )  # fmt: skip
    session.commit()
    return w, (a, b, c, d), merged


def test_units_reconcile_clean_after_changes_and_edits_are_named(
    session: Session, engine: Engine
) -> None:
    """Units made by a scheme, renamed and merged through the engine replay to the live rows;
    a name, a full name, an alias and a status edited in the tables are each named."""
    w, (a, b, _c, d), merged = _renamed_and_merged(session)
    new = next(link.unit_id for link in merged.links if link.role == "to")
    assert reconcile(session).differences == []
    with engine.begin() as conn:
        conn.execute(text("UPDATE unit_names SET name = '偷改局' WHERE unit_id = :u "
                          "AND valid_to IS NULL"), {"u": a})  # fmt: skip
        conn.execute(text("UPDATE unit_aliases SET alias = '偷改别名' WHERE unit_id = :u"),
                     {"u": a})  # fmt: skip
        conn.execute(text("UPDATE units SET status = 'active' WHERE id = :u"), {"u": b})
        conn.execute(text("UPDATE unit_names SET full_name = '偷改全称' WHERE unit_id = :u"),
                     {"u": d})  # fmt: skip
    named = _named(session)
    assert named == {
        (f"unit[{a}].name", "偷改局", "改名局", None),
        (f"unit[{a}].aliases", "偷改别名（别名）", "旧称局（别名）", None),
        (f"unit[{b}].unit_status", "active", "merged", None),
        (f"unit[{d}].full_name", "偷改全称", w.assessment.departments[3].name, None),
    }
    assert new not in {int(f[0].split("[")[1].split("]")[0]) for f in named}
    by_field = {diff.field: diff for diff in reconcile(session).differences}
    assert by_field[f"unit[{b}].unit_status"].describe() == (
        f"单位 #{b} unit[{b}].unit_status（被考核单位 · 单位状态）："
        "现值 active，按审计记录应为 merged"
    )


def test_lineage_changes_reconcile_clean_and_forged_or_edited_ones_are_named(
    session: Session, engine: Engine
) -> None:
    """A lineage change is replayed whole from `unit_changed`: its kind, date, document,
    reason, author and the units on each side. An edited field, a unit moved to the other side
    and a change row no event made are each named; the untouched change is not."""
    _w, (_a, b, c, d), merged = _renamed_and_merged(session)
    assert reconcile(session).differences == []
    with engine.begin() as conn:
        conn.execute(text("UPDATE unit_changes SET document_no = '伪造〔2019〕9号', "
                          "effective_on = :day WHERE id = :i"),
                     {"day": dt.date(2018, 1, 1), "i": merged.id})  # fmt: skip
        # c is no longer merged away: its history would look like its own again
        conn.execute(text("DELETE FROM unit_change_units WHERE change_id = :i AND unit_id = :u"),
                     {"i": merged.id, "u": c})  # fmt: skip
        forged = conn.execute(
            text("INSERT INTO unit_changes (kind, effective_on, document_no, reason, created_at) "
                 "VALUES ('merge', :day, '伪造〔2019〕10号', '无', :at) RETURNING id"),
            {"day": dt.date(2019, 4, 1), "at": dt.datetime(2019, 4, 1, tzinfo=dt.UTC)},
        ).scalar_one()  # fmt: skip
        conn.execute(text("INSERT INTO unit_change_units (change_id, unit_id, role) "
                          "VALUES (:i, :u, 'from')"), {"i": forged, "u": d})  # fmt: skip
    by_field = {diff.field: diff for diff in reconcile(session).differences}
    assert {f: (diff.live, diff.from_events) for f, diff in by_field.items()} == {
        f"unit_change[{merged.id}].document_no": ("伪造〔2019〕9号", "蛟市机编〔2019〕2号"),
        f"unit_change[{merged.id}].effective_on": ("2018-01-01", "2019-03-02"),
        f"unit_change[{merged.id}].from_units": ([b], sorted([b, c])),
        f"unit_change[{forged}]": (
            {
                "change_kind": "merge",
                "effective_on": "2019-04-01",
                "document_no": "伪造〔2019〕10号",
            },
            None,
        ),
    }
    assert by_field[f"unit_change[{merged.id}].document_no"].describe() == (
        f"单位调整 #{merged.id} unit_change[{merged.id}].document_no"
        "（单位调整记录 · 调整依据文号）：现值 伪造〔2019〕9号，按审计记录应为 蛟市机编〔2019〕2号"
    )
