"""Bulk review, verify and return (workflow/bulk.py): one transaction and event per item."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from storage.local import LocalStore
from tests.factories import World, submit_items
from workflow import bulk
from workflow.actions import TransitionRequest, transition_item
from workflow.audit import verify_chain
from workflow.bulk import BulkTarget, apply_bulk, preview
from workflow.db import make_sessionmaker
from workflow.errors import Forbidden, InvalidValue
from workflow.models import AuditEvent, BulkRun, BulkRunItem, Item
from workflow.reconcile import reconcile


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions of the engine's own transactions (one per item)."""
    return make_sessionmaker(engine)


@pytest.fixture
def items(session: Session, world: World) -> list[Item]:
    """The 2018 assessment's 260 items, department by department."""
    return list(
        session.execute(
            select(Item).where(Item.assessment_id == world.assessment.id).order_by(Item.id)
        ).scalars()
    )


@pytest.fixture
def two_hundred(
    session: Session, store: LocalStore, world: World, items: list[Item]
) -> Iterator[tuple[list[BulkTarget], dict[str, int]]]:
    """200 targets of which exactly 3 fail for reviewer_in_a (a reviewer in department A):
    one of A's own items, one item still in draft, one given with a stale version."""
    own = next(i for i in items if i.department_id == world.dep_a.id)
    others = [i for i in items if i.department_id != world.dep_a.id]
    draft, stale, fine = others[0], others[1], others[2:199]
    submit_items(session, store, world, [own, stale, *fine])
    targets = [BulkTarget(i.id, i.version) for i in (own, draft, *fine)]
    targets.insert(100, BulkTarget(stale.id, stale.version - 1))
    assert len(targets) == 200
    yield targets, {"own": own.id, "draft": draft.id, "stale": stale.id}


def events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_bulk_review_of_200_with_3_refused(
    session: Session,
    factory: sessionmaker[Session],
    world: World,
    two_hundred: tuple[list[BulkTarget], dict[str, int]],
) -> None:
    targets, bad = two_hundred
    before = events(session)
    versions = dict(session.execute(select(Item.id, Item.version)).all())

    # The dry run: every verdict, nothing written.
    dry = preview(session, world.reviewer_in_a, "review", targets)
    assert not session.dirty and not session.new
    session.rollback()
    assert events(session) == before
    assert dict(session.execute(select(Item.id, Item.version)).all()) == versions
    assert dry.dry_run and dry.counts == {"ok": 197, "refused": 2, "conflict": 1}

    report = apply_bulk(factory, world.reviewer_in_a.id, "review", targets)
    session.expire_all()
    assert events(session) - before == 197
    assert report.counts == {"ok": 197, "refused": 2, "conflict": 1}
    failed = {r.item_id: r for r in report.results if r.status != "ok"}
    assert set(failed) == set(bad.values())
    assert failed[bad["own"]].code == "own_department"
    assert failed[bad["own"]].message == "不能以审核人员身份处理本部门的考核事项"
    assert failed[bad["draft"]].code == "invalid_state"
    assert failed[bad["stale"]].status == "conflict"
    assert failed[bad["stale"]].code == "stale_version"
    assert [r.item_id for r in report.results] == [t.item_id for t in targets]
    # The preview said exactly what the run then did, in the same words.
    assert [(r.item_id, r.status, r.code, r.message) for r in dry.results] == [
        (r.item_id, r.status, r.code, r.message) for r in report.results
    ]
    reviewed = session.scalar(
        select(func.count()).select_from(Item).where(Item.state == "reviewed")
    )
    assert reviewed == 197
    new = session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(197)).scalars()
    assert {(e.action, e.actor, e.from_state, e.to_state) for e in new} == {
        ("review", "reviewer_in_a", "submitted", "reviewed")
    }
    assert verify_chain(session).ok
    assert reconcile(session).ok


def test_more_than_500_refused(
    session: Session, factory: sessionmaker[Session], world: World
) -> None:
    targets = [BulkTarget(n, 1) for n in range(1, 502)]
    for call in (
        lambda: preview(session, world.reviewer, "review", targets),
        lambda: apply_bulk(factory, world.reviewer.id, "review", targets),
    ):
        with pytest.raises(InvalidValue) as caught:
            call()
        assert caught.value.code == "too_many_items"
        assert caught.value.status == 422
        assert "最多 500 个" in caught.value.message and "501" in caught.value.message


@pytest.mark.parametrize(
    ("action", "targets", "comment", "code"),
    [
        ("score", [BulkTarget(1, 1)], None, "bulk_action_not_supported"),
        ("review", [], None, "no_items"),
        ("review", [BulkTarget(1, 1), BulkTarget(1, 1)], None, "duplicate_items"),
        ("return", [BulkTarget(1, 1)], "  ", "reason_required"),
    ],
)
def test_unusable_requests_refused_whole(
    session: Session,
    world: World,
    action: str,
    targets: list[BulkTarget],
    comment: str | None,
    code: str,
) -> None:
    with pytest.raises(InvalidValue) as caught:
        preview(session, world.reviewer, action, targets, comment)
    assert caught.value.code == code


def test_only_reviewers_and_verifiers(
    session: Session, factory: sessionmaker[Session], world: World
) -> None:
    for user in (world.member_a, world.scorer, world.auditor, world.admin):
        with pytest.raises(Forbidden):
            preview(session, user, "review", [BulkTarget(1, 1)])
        with pytest.raises(Forbidden):
            apply_bulk(factory, user.id, "review", [BulkTarget(1, 1)])


def test_return_and_verify_with_one_reason(
    session: Session,
    store: LocalStore,
    factory: sessionmaker[Session],
    world: World,
    items: list[Item],
) -> None:
    chosen = [i for i in items if i.department_id == world.dep_b.id][:4]
    submit_items(session, store, world, chosen)
    targets = [BulkTarget(i.id, i.version) for i in chosen]
    reviewed = apply_bulk(factory, world.reviewer_in_a.id, "review", targets)
    assert reviewed.counts["ok"] == 4
    targets = [BulkTarget(r.item_id, r.version or 0) for r in reviewed.results]
    # The round's reviewer may not verify it (four eyes): refused, with the guard's words.
    four_eyes = apply_bulk(factory, world.reviewer_in_a.id, "verify", targets[:1])
    assert [(r.status, r.code) for r in four_eyes.results] == [("refused", "four_eyes")]
    verified = apply_bulk(factory, world.verifier.id, "verify", targets[:1])
    assert verified.counts["ok"] == 1
    verifier = apply_bulk(factory, world.verifier.id, "return", targets[1:], "材料不全，请补充")
    assert verifier.counts["ok"] == 3
    session.expire_all()
    for item in chosen[1:]:
        session.refresh(item)
        assert item.state == "returned" and item.return_reason == "材料不全，请补充"
    last = session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc())).scalars().first()
    assert last is not None and last.comment == "材料不全，请补充"


def test_verify_refuses_items_with_claims(
    session: Session,
    store: LocalStore,
    factory: sessionmaker[Session],
    world: World,
) -> None:
    """A not-involved claim needs a ruling: the bulk verify refuses it with the guard's message."""
    from tests.factories import add_evidence

    item = world.item(session, world.dep_b, "1")
    add_evidence(session, store, item, world.member_b, sub_item="1.1", purpose="not_involved_proof")
    add_evidence(session, store, item, world.member_b)
    transition_item(
        session,
        item.id,
        world.member_b,
        TransitionRequest("submit", item.version, not_involved=["1.1"]),
    )
    transition_item(session, item.id, world.reviewer, TransitionRequest("review", item.version))
    session.commit()
    target = [BulkTarget(item.id, item.version)]
    dry = preview(session, world.verifier, "verify", target)
    real = apply_bulk(factory, world.verifier.id, "verify", target)
    for report in (dry, real):
        (result,) = report.results
        assert (result.status, result.code) == ("refused", "ruling_required")


def test_idempotent_retry_returns_the_same_report(
    session: Session,
    store: LocalStore,
    factory: sessionmaker[Session],
    world: World,
    items: list[Item],
) -> None:
    chosen = [i for i in items if i.department_id == world.dep_b.id][:5]
    submit_items(session, store, world, chosen)
    targets = [BulkTarget(i.id, i.version) for i in chosen]
    targets.append(BulkTarget(items[0].id, items[0].version))  # a draft: refused
    before = events(session)
    first = apply_bulk(factory, world.reviewer.id, "review", targets, idempotency_key="b-1")
    again = apply_bulk(factory, world.reviewer.id, "review", targets, idempotency_key="b-1")
    assert first.results == again.results and first.counts["ok"] == 5
    assert first.run_id == again.run_id
    assert (first.resumed, again.resumed) == (False, True)
    session.expire_all()
    assert events(session) - before == 5
    # The same key with another body is refused; another key is a new run (all stale now).
    with pytest.raises(InvalidValue) as caught:
        apply_bulk(factory, world.reviewer.id, "review", targets[:2], idempotency_key="b-1")
    assert caught.value.code == "idempotency_key_reused"
    other = apply_bulk(factory, world.reviewer.id, "review", targets, idempotency_key="b-2")
    assert other.counts == {"ok": 0, "refused": 1, "conflict": 5}
    # The bulk keys live apart from the single-item records: the same key works there.
    single = chosen[0]
    session.refresh(single)
    transition_item(
        session,
        single.id,
        world.verifier,
        TransitionRequest("verify", single.version),
        idempotency_key="b-1",
    )
    session.commit()
    assert session.scalar(select(func.count()).select_from(BulkRun)) == 2


def test_a_crash_half_way_keeps_earlier_items_and_the_retry_finishes(
    session: Session,
    store: LocalStore,
    factory: sessionmaker[Session],
    world: World,
    items: list[Item],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chosen = [i for i in items if i.department_id == world.dep_b.id][:6]
    submit_items(session, store, world, chosen)
    targets = [BulkTarget(i.id, i.version) for i in chosen]
    before = events(session)
    real = bulk.transition_item
    calls = {"n": 0}

    def crash_on_fourth(*args: object, **kw: object) -> Item:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("the worker died")
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(bulk, "transition_item", crash_on_fourth)
    with pytest.raises(RuntimeError):
        apply_bulk(factory, world.reviewer.id, "review", targets, idempotency_key="k")
    session.expire_all()
    assert events(session) - before == 3  # the three before the crash stay committed
    monkeypatch.setattr(bulk, "transition_item", real)
    retry = apply_bulk(factory, world.reviewer.id, "review", targets, idempotency_key="k")
    assert retry.counts == {"ok": 6, "refused": 0, "conflict": 0}
    assert retry.resumed and retry.replayed == 3  # three stored, three applied now
    session.expire_all()
    assert events(session) - before == 6
    assert session.scalar(select(func.count()).select_from(BulkRunItem)) == 6
    assert verify_chain(session).ok
