"""Reconciliation: the live rows are replayed from the audit trail and every difference named.

Finding 2 of issue 11: a score edited in the database (10 → 3) changed the progress page and
the notices while `audit verify` still passed. Now the tables are checked against the trail.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import add_evidence, make_world, mini_scheme
from workflow import actions, audit, reconcile
from workflow.audit import record_event
from workflow.models import Evidence, Item, Score, ScoringPoint
from workflow.reconcile import Reconciliation, check_audit


def _named(result: Reconciliation) -> set[tuple[int | None, str, object, object]]:
    def plain(value: object) -> object:
        return json.dumps(value, sort_keys=True) if isinstance(value, dict) else value

    return {(d.item_id, d.field, plain(d.live), plain(d.from_events)) for d in result.differences}


def test_each_tampering_is_named(session: Session, engine: Engine, tmp_path: Path) -> None:
    """Edit a score, a state, an evidence hash, a total; delete evidence; insert a score."""
    w = make_world(session, mini_scheme(("1", "3"), departments=2))
    store = LocalStore(tmp_path / "ev")
    scored = w.item(session, w.dep_a, "1")  # two points, 5 + 5
    add_evidence(session, store, scored, w.member_a, sub_item="1.1")
    kept = add_evidence(session, store, scored, w.member_a, name="其他.pdf")
    actions.submit_item(session, scored.id, w.member_a, scored.version)
    actions.review_item(session, scored.id, w.reviewer, scored.version)
    actions.verify_item(session, scored.id, w.verifier, scored.version)
    actions.score_item(
        session, scored.id, w.scorer, scored.version, scores={"1.1": 5, "1.2": "4.5"},
        deductions={"1.2": "会议记录不全"},
    )  # fmt: skip
    verified = w.item(session, w.dep_b, "1")
    gone = add_evidence(session, store, verified, w.member_b)
    actions.submit_item(session, verified.id, w.member_b, verified.version)
    actions.review_item(session, verified.id, w.reviewer, verified.version)
    actions.verify_item(session, verified.id, w.verifier, verified.version)
    session.commit()
    assert reconcile.reconcile(session).differences == []

    point = session.execute(
        select(ScoringPoint).where(
            ScoringPoint.indicator_id == scored.indicator_id, ScoringPoint.code == "1.1"
        )
    ).scalar_one()
    score_row = session.execute(
        select(Score).where(Score.item_id == scored.id, Score.scoring_point_id == point.id)
    ).scalar_one()
    other_point = session.execute(
        select(ScoringPoint.id).where(
            ScoringPoint.indicator_id == verified.indicator_id, ScoringPoint.code == "1.2"
        )
    ).scalar_one()
    session.commit()
    with engine.begin() as conn:
        conn.execute(text("UPDATE scores SET points = 3 WHERE id = :i"), {"i": score_row.id})
        conn.execute(text("UPDATE items SET total = 8.5 WHERE id = :i"), {"i": scored.id})
        conn.execute(text("UPDATE items SET state = 'scored' WHERE id = :i"), {"i": verified.id})
        conn.execute(
            text("UPDATE evidence SET sha256 = :h WHERE id = :i"), {"h": "f" * 64, "i": kept.id}
        )
        conn.execute(text("DELETE FROM evidence WHERE id = :i"), {"i": gone.id})
        conn.execute(
            text(
                "INSERT INTO scores (item_id, scoring_point_id, points, deduction_reason, "
                "scored_by_id, scored_at) VALUES (:item, :point, 5, NULL, :user, :at)"
            ),
            {"item": verified.id, "point": other_point, "user": w.scorer.id, "at": "2018-12-01"},
        )
    result = reconcile.reconcile(session)
    assert not result.ok
    evidence_gone = {
        "sha256": gone.sha256, "removed": False, "purpose": "evidence", "sub_item": None
    }  # fmt: skip
    assert _named(result) == {
        (scored.id, "score[1.1]", "3.00", "5.00"),
        (scored.id, "total", "8.50", "9.50"),
        (None, "department_total", "8.50", "9.50"),
        (scored.id, f"evidence[{kept.id}].sha256", "f" * 64, kept.sha256),
        (verified.id, "state", "scored", "verified"),
        (None, "department_items_scored", 1, 0),
        (verified.id, f"evidence[{gone.id}]", None, json.dumps(evidence_gone, sort_keys=True)),
        (verified.id, "score[1.2]", "5.00", None),
    }
    by_field = {d.field: d for d in result.differences}
    assert by_field["department_total"].department_id == w.dep_a.id
    assert by_field["department_items_scored"].department_id == w.dep_b.id
    assert "现值 3.00，按审计记录应为 5.00" in by_field["score[1.1]"].describe()


def test_reason_claims_and_removed_evidence_are_checked(
    session: Session, engine: Engine, tmp_path: Path
) -> None:
    """Deduction reasons, a not-involved ruling and a removal are replayed too."""
    w = make_world(session, mini_scheme(("1",), departments=2))
    store = LocalStore(tmp_path / "ev")
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, store, item, w.member_a, sub_item="1.1")
    proof = add_evidence(
        session, store, item, w.member_a, sub_item="1.2", purpose="not_involved_proof"
    )
    extra = add_evidence(session, store, item, w.member_a, name="多余.pdf")
    from workflow.evidence import remove_evidence

    remove_evidence(session, extra.id, w.member_a)
    actions.submit_item(session, item.id, w.member_a, item.version, not_involved=["1.2"])
    actions.review_item(session, item.id, w.reviewer, item.version)
    actions.verify_item(session, item.id, w.verifier, item.version, rulings={"1.2": True})
    actions.score_item(
        session, item.id, w.scorer, item.version, scores={"1.1": 4}, deductions={"1.1": "迟报"}
    )
    session.commit()
    assert reconcile.reconcile(session).differences == []
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE scores SET deduction_reason = '无' WHERE deduction_reason = '迟报'")
        )
        conn.execute(text("UPDATE not_involved_claims SET is_upheld = :f"), {"f": False})
        conn.execute(text("UPDATE evidence SET removed_at = NULL WHERE id = :i"), {"i": extra.id})
        conn.execute(
            text("UPDATE evidence SET purpose = 'evidence' WHERE id = :i"), {"i": proof.id}
        )
    assert _named(reconcile.reconcile(session)) == {
        (item.id, "deduction_reason[1.1]", "无", "迟报"),
        (item.id, "not_involved[1.2]", "rejected", "upheld"),
        (item.id, f"evidence[{extra.id}].removed", False, True),
        (item.id, f"evidence[{proof.id}].purpose", "evidence", "not_involved_proof"),
    }


def test_missing_item_row_and_item_count(session: Session, engine: Engine) -> None:
    """A deleted draft item changes its assessment's count of items; the trail says how many."""
    w = make_world(session, mini_scheme(("1", "3"), departments=2))
    item = w.item(session, w.dep_b, "3")
    session.commit()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM items WHERE id = :i"), {"i": item.id})
    result = reconcile.reconcile(session)
    assert [d.as_dict() for d in result.differences] == [
        {
            "item_id": None, "field": "items", "live": 3, "from_events": 4,
            "department_id": None, "assessment_id": w.assessment.id,
        }
    ]  # fmt: skip


def test_unreadable_trail_is_a_difference(session: Session, tmp_path: Path) -> None:
    """An item event the replay does not know is reported, never skipped."""
    w = make_world(session, mini_scheme(("1",), departments=2))
    item = w.item(session, w.dep_a, "1")
    record_event(
        session, actor=w.admin, action="item_moved", target_type="item", target_id=item.id,
        item_id=item.id, department_id=item.department_id, payload={},
    )  # fmt: skip
    session.commit()
    result = reconcile.reconcile(session)
    assert len(result.differences) == 1
    difference = result.differences[0]
    assert (difference.item_id, difference.field) == (item.id, "trail")
    assert "item_moved" in difference.from_events and "无法重放" in difference.from_events


def test_check_reports_chain_and_tables(session: Session, engine: Engine) -> None:
    w = make_world(session, mini_scheme(("1",), departments=2))
    item = w.item(session, w.dep_a, "1")
    session.commit()
    assert check_audit(session).ok
    with engine.begin() as conn:
        conn.execute(text("UPDATE items SET version = 7 WHERE id = :i"), {"i": item.id})
    check = check_audit(session)
    body = check.as_dict()
    assert body["chain_ok"] is True and body["ok"] is False
    assert body["reconciliation"]["differences"] == [
        {
            "item_id": item.id, "field": "version", "live": 7, "from_events": 1,
            "department_id": w.dep_a.id, "assessment_id": None,
        }
    ]  # fmt: skip
    json.dumps(body)  # every value is JSON


@pytest.mark.backend("postgresql")
def test_parallel_gives_the_sequential_answer(
    session: Session, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks over worker processes find exactly what one pass finds."""
    w = make_world(session, mini_scheme(("1", "3"), departments=3))
    store = LocalStore(tmp_path / "ev")
    items = list(session.execute(select(Item).order_by(Item.id)).scalars())
    for it in items:
        member = w.member_a if it.department_id == w.dep_a.id else w.member_b
        if it.department_id in (w.dep_a.id, w.dep_b.id):
            add_evidence(session, store, it, member)
            actions.submit_item(session, it.id, member, it.version)
    session.commit()
    with engine.begin() as conn:
        conn.execute(text("UPDATE items SET state = 'reviewed' WHERE id = :i"), {"i": items[0].id})
        conn.execute(text("UPDATE evidence SET sha256 = :h WHERE id = 2"), {"h": "0" * 64})
    monkeypatch.setattr(reconcile, "CHUNK_ITEMS", 2)
    monkeypatch.setattr(audit, "PARALLEL_MIN_EVENTS", 10**12)
    sequential = reconcile.reconcile(session)
    session.commit()
    monkeypatch.setattr(audit, "PARALLEL_MIN_EVENTS", 1)
    monkeypatch.setattr(audit.os, "cpu_count", lambda: 2)
    parallel = reconcile._reconcile_parallel(session)
    assert parallel is not None, "the parallel path did not run"
    assert parallel == sequential
    assert _named(parallel) == {
        (items[0].id, "state", "reviewed", "submitted"),
        (_evidence_item(session, 2), "evidence[2].sha256", "0" * 64,
         _evidence_sha(session, 2)),
    }  # fmt: skip


def _evidence_item(session: Session, eid: int) -> int:
    return session.execute(select(Evidence.item_id).where(Evidence.id == eid)).scalar_one()


def _evidence_sha(session: Session, eid: int) -> str:
    payload = session.execute(
        text(
            "SELECT payload FROM audit_events WHERE action = 'evidence_uploaded' AND target_id = :t"
        ),
        {"t": str(eid)},
    ).scalar_one()
    return str(json.loads(payload)["sha256"])


def test_old_creation_event_without_item_count() -> None:
    """Events before `items` was recorded give departments × indicators (install_scheme's)."""
    events = [("1", '{"code":"x","departments":2,"indicators":3}')]
    live = [(1, 6)]

    def fetch(sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        return events if "audit_events" in sql else live  # type: ignore[return-value]

    assert reconcile._item_counts(fetch) == []
    live = [(1, 5)]
    assert [(d.field, d.live, d.from_events, d.assessment_id) for d in
            reconcile._item_counts(fetch)] == [("items", 5, 6, 1)]  # fmt: skip


def test_late_submission_verdict_is_replayed(
    session: Session, engine: Engine, tmp_path: Path
) -> None:
    """The calendar's verdict on a first submission is in the submit event and is checked."""
    from workflow.calendar import set_stage_deadline

    w = make_world(session, mini_scheme(("1",), departments=2))
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=None, due_on=dt.date(2018, 9, 28),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, LocalStore(tmp_path / "ev"), item, w.member_a)
    actions.submit_item(session, item.id, w.member_a, item.version)
    session.commit()
    assert item.is_submitted_late is True
    assert reconcile.reconcile(session).differences == []
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE items SET is_submitted_late = :f, submit_due_on = :d WHERE id = :i"),
            {"f": False, "d": dt.date(2019, 1, 31), "i": item.id},
        )
    assert _named(reconcile.reconcile(session)) == {
        (item.id, "is_submitted_late", False, True),
        (item.id, "submit_due_on", "2019-01-31", "2018-09-28"),
    }


def test_publication_times_are_replayed(
    session: Session, engine: Engine, store: LocalStore
) -> None:
    """The assessment's status is derived from its times: an appeal window stretched, a
    reopening undone or the 公示 page closed to the public in the table is named."""
    from tests.integration.test_routine import Cast, _all_scored
    from workflow.assessments import assessment_status, publish_assessment, reopen_assessment
    from workflow.notices import set_result_settings
    from workflow.setup import install_scheme
    from workflow.users import create_user

    a = install_scheme(session, mini_scheme(("1", "9")))
    d0, d1 = a.departments
    users = {name: create_user(session, name, roles, department=dep) for name, roles, dep in [
        ("member", ["department"], d0), ("member_b", ["department"], d1),
        ("office", ["reviewer"], None), ("reviewer2", ["reviewer"], None),
        ("verifier", ["verifier"], None), ("scorer", ["scorer"], None),
        ("scorer2", ["scorer"], None), ("admin", ["admin"], None),
    ]}  # fmt: skip
    c = Cast(a=a, dep=d0, other=d1, **users)
    _all_scored(session, store, c)
    published = dt.datetime(2018, 12, 20, 1, 0, tzinfo=dt.UTC)
    publish_assessment(session, a, 7, actor=c.admin, now=published)
    set_result_settings(session, a, actor=c.admin, hide_scores=False)
    session.commit()
    assert reconcile.reconcile(session).differences == []

    closes = published + dt.timedelta(days=7)
    with engine.begin() as conn:  # the window stretched: departments could appeal again
        conn.execute(
            text("UPDATE assessments SET appeal_closes_at = :t, publication_page = 'signed_in', "
                 "hide_scores_until_published = :h WHERE id = :a"),
            {"t": closes + dt.timedelta(days=30), "h": True, "a": a.id},
        )  # fmt: skip
    found = {(d.field, d.live, d.from_events, d.assessment_id)
             for d in reconcile.reconcile(session).differences}  # fmt: skip
    assert found == {
        (f"assessment[{a.id}].appeal_closes_at", "2019-01-26T01:00:00.000000Z",
         "2018-12-27T01:00:00.000000Z", a.id),
        (f"assessment[{a.id}].publication_page", "signed_in", "public", a.id),
        (f"assessment[{a.id}].hide_scores_until_published", True, False, a.id),
    }  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE assessments SET appeal_closes_at = :t, publication_page = 'public', "
                 "hide_scores_until_published = :h WHERE id = :a"),
            {"t": closes, "h": False, "a": a.id},
        )  # fmt: skip
    session.expire_all()
    reopened = closes + dt.timedelta(days=1)
    reopen_assessment(session, a, "更正第 1 项得分", actor=c.admin, now=reopened)
    session.commit()
    assert reconcile.reconcile(session).differences == []

    with engine.begin() as conn:  # the reopening undone: the results look final again
        conn.execute(
            text("UPDATE assessments SET reopened_at = NULL, reopen_reason = NULL WHERE id = :a"),
            {"a": a.id},
        )
    session.expire_all()
    assert assessment_status(session.get_one(type(a), a.id), reopened) == "final"
    found = {(d.field, d.live, d.from_events) for d in reconcile.reconcile(session).differences}
    assert found == {
        (f"assessment[{a.id}].reopened_at", None, "2018-12-28T01:00:00.000000Z"),
        (f"assessment[{a.id}].reopen_reason", None, "更正第 1 项得分"),
    }


def test_a_reopening_recorded_without_its_time_is_checked_for_being_set(
    session: Session, engine: Engine
) -> None:
    """Reopen events written before they carried `reopened_at` say only that it is set."""
    w = make_world(session, mini_scheme(("1",), departments=2))
    record_event(session, actor=w.admin, action="assessment_reopened", target_type="assessment",
                 target_id=w.assessment.id, comment="更正",
                 payload={"finalised_at": dt.datetime(2018, 12, 27, tzinfo=dt.UTC)})  # fmt: skip
    w.assessment.reopened_at = dt.datetime(2018, 12, 28, tzinfo=dt.UTC)
    w.assessment.finalised_at = dt.datetime(2018, 12, 27, tzinfo=dt.UTC)
    w.assessment.reopen_reason = "更正"
    session.commit()
    assert reconcile.reconcile(session).differences == []
    with engine.begin() as conn:
        conn.execute(text("UPDATE assessments SET reopened_at = NULL WHERE id = :a"),
                     {"a": w.assessment.id})  # fmt: skip
    assert [(d.field, d.live, d.from_events) for d in reconcile.reconcile(session).differences] == [
        (f"assessment[{w.assessment.id}].reopened_at", None, reconcile.TIME_SET)
    ]
