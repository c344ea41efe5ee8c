"""Withdraw and resubmit with an explanation (issue 14 item 3), on every configured database.

A resubmission after a return needs a 修改说明; a first submission takes none; after a
withdraw it is optional. The reviewer reads it with the files added and removed since the
previous submission (`item_detail(...).round_changes`), with or without the history.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence
from workflow import actions
from workflow.errors import InvalidValue
from workflow.evidence import remove_evidence
from workflow.models import AuditEvent, Evidence, Item
from workflow.read import item_detail, round_changes
from workflow.reconcile import reconcile


def _events(session: Session, item: Item) -> int:
    return session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.item_id == item.id)
    )


def _last_submit(session: Session, item: Item) -> dict[str, object]:
    event = session.execute(
        select(AuditEvent)
        .where(AuditEvent.item_id == item.id, AuditEvent.action == "submit")
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).scalar_one()
    payload: dict[str, object] = json.loads(event.payload)
    return payload


def _returned(session: Session, store: LocalStore, w: World) -> Item:
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, store, item, w.member_a, name="会议记录.pdf")
    add_evidence(session, store, item, w.member_a, name="旧的分工文件.pdf")
    actions.submit_item(session, item.id, w.member_a, item.version)
    actions.return_item(session, item.id, w.reviewer, item.version, "缺少专人负责的文件")
    session.commit()
    return item


def test_resubmitting_a_returned_item_needs_a_change_note(
    session: Session, store: LocalStore, world: World
) -> None:
    w = world
    item = _returned(session, store, w)
    version, seen = item.version, _events(session, item)
    for note in (None, "", "   "):
        with pytest.raises(InvalidValue) as refused:
            actions.submit_item(session, item.id, w.member_a, item.version, change_note=note)
        assert refused.value.code == "change_note_required"
        assert refused.value.message == "退回后重新提交，请填写修改说明"
        session.rollback()
        session.refresh(item)
        # Nothing changed: state, version, round and the trail are as before.
        assert (item.state, item.version, item.round) == ("returned", version, 1)
        assert _events(session, item) == seen
    # The department still sees the submit button before typing the note.
    assert "submit" in actions.actions_for(session, item, w.member_a)

    actions.submit_item(
        session, item.id, w.member_a, item.version, change_note="  已补充专人负责的文件  "
    )
    session.commit()
    assert item.state == "submitted" and item.round == 2
    payload = _last_submit(session, item)
    assert payload["change_note"] == "已补充专人负责的文件"
    live = session.execute(
        select(Evidence.id).where(Evidence.item_id == item.id).order_by(Evidence.id)
    ).scalars()
    assert payload["evidence_ids"] == list(live)
    assert reconcile(session).differences == []


def test_a_first_submission_takes_no_change_note_and_after_a_withdraw_it_is_optional(
    session: Session, store: LocalStore, world: World
) -> None:
    w = world
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, store, item, w.member_a)
    session.commit()
    with pytest.raises(InvalidValue) as refused:
        actions.submit_item(session, item.id, w.member_a, item.version, change_note="修改")
    assert refused.value.code == "change_note_not_applicable"
    session.rollback()
    session.refresh(item)
    actions.submit_item(session, item.id, w.member_a, item.version)
    actions.transition_item(
        session, item.id, w.member_a,
        actions.TransitionRequest("withdraw", item.version, comment="材料有误，撤回修改"),
    )  # fmt: skip
    assert item.state == "draft" and item.round == 1
    # After a withdraw the reason is on record: the note may be left out ...
    actions.submit_item(session, item.id, w.member_a, item.version)
    assert item.state == "submitted" and "change_note" not in _last_submit(session, item)
    # ... or given.
    actions.transition_item(
        session, item.id, w.member_a,
        actions.TransitionRequest("withdraw", item.version, comment="再改一处"),
    )  # fmt: skip
    actions.submit_item(session, item.id, w.member_a, item.version, change_note="改正页码")
    assert _last_submit(session, item)["change_note"] == "改正页码"
    detail = item_detail(session, item.id, w.reviewer)
    assert detail.round_changes is not None
    assert detail.round_changes.ended_by == "withdraw"
    assert detail.round_changes.ended_reason == "再改一处"
    assert detail.round_changes.change_note == "改正页码"
    session.commit()
    assert reconcile(session).differences == []


def test_a_change_note_is_refused_on_other_actions(
    session: Session, store: LocalStore, world: World
) -> None:
    w = world
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, store, item, w.member_a)
    actions.submit_item(session, item.id, w.member_a, item.version)
    with pytest.raises(InvalidValue) as refused:
        actions.review_item(session, item.id, w.reviewer, item.version, change_note="x")
    assert refused.value.code == "change_note_on_submit_only"


def test_the_reviewer_sees_the_note_and_the_files_added_and_removed(
    session: Session, store: LocalStore, world: World
) -> None:
    w = world
    item = _returned(session, store, w)
    old = session.execute(
        select(Evidence).where(Evidence.item_id == item.id, Evidence.filename == "旧的分工文件.pdf")
    ).scalar_one()
    kept = session.execute(
        select(Evidence).where(Evidence.item_id == item.id, Evidence.filename == "会议记录.pdf")
    ).scalar_one()
    before = item_detail(session, item.id, w.reviewer)
    assert before.round_changes is None  # one submission: nothing to compare with
    remove_evidence(session, old.id, w.member_a)
    new = add_evidence(session, store, item, w.member_a, sub_item="1.2", name="专人负责文件.pdf")
    actions.submit_item(
        session, item.id, w.member_a, item.version, change_note="换成新的专人负责文件"
    )
    session.commit()
    for history in (True, False):  # the page (with the history) and the API (without)
        detail = item_detail(session, item.id, w.reviewer, history=history)
        changes = detail.round_changes
        assert changes is not None
        assert (changes.round, changes.previous_round) == (2, 1)
        assert changes.change_note == "换成新的专人负责文件"
        assert changes.ended_by == "return" and changes.ended_reason == "缺少专人负责的文件"
        assert [e.id for e in changes.added] == [new.id]
        assert [e.id for e in changes.removed] == [old.id]
        assert changes.added[0].scoring_point is not None
        assert changes.added[0].scoring_point.code == "1.2"
        # The live evidence list leaves the removed file out.
        assert [e.id for e in detail.evidence] == [kept.id, new.id]


def test_rounds_recorded_before_the_ids_compare_by_hash() -> None:
    """A trail written before submit events named evidence ids: the hashes decide."""

    def event(seq: int, action: str, payload: dict[str, object], comment: str | None = None):
        return AuditEvent(seq=seq, action=action, payload=json.dumps(payload), comment=comment)

    a = Evidence(id=1, filename="a.pdf", sha256="a" * 64)
    b = Evidence(id=2, filename="b.pdf", sha256="b" * 64)
    c = Evidence(id=3, filename="c.pdf", sha256="c" * 64)
    trail = [
        event(1, "submit", {"round": 1, "evidence_sha256": ["a" * 64, "b" * 64]}),
        event(2, "return", {"round": 1}, "补充"),
        event(3, "submit", {"round": 2, "evidence_sha256": ["a" * 64, "c" * 64]}),
    ]
    changes = round_changes(trail, [a, b, c])
    assert changes is not None and changes.change_note is None
    assert [e.filename for e in changes.added] == ["c.pdf"]
    assert [e.filename for e in changes.removed] == ["b.pdf"]
    assert changes.ended_by == "return" and changes.ended_reason == "补充"
    assert round_changes(trail[:1], [a, b]) is None
