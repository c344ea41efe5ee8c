"""Issue 11, finding 4: final results are final.

Finalisation waits for every pending appeal to be decided; after it a change goes only through
`reopen`; the appeal window does not move after publication except through reopen and a new
publication, both audited.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.integration import test_routine
from tests.integration.test_routine import Cast, _all_scored
from workflow import actions
from workflow.assessments import (
    assessment_status,
    is_final,
    local_minute,
    publish_assessment,
    reopen_assessment,
    set_appeal_window,
)
from workflow.audit import format_time, payload_of, verify_chain
from workflow.errors import Conflict, Forbidden
from workflow.models import AuditEvent, utcnow
from workflow.users import create_user

# The routine tests' cast: a small scheme (indicators 1 and 9, two departments).
cast = test_routine.cast

FIX = {"scores": {"1.1": 4, "1.2": 5}, "deductions": {"1.1": "更正"}, "comment": "更正"}


def _close_window(session: Session, c: Cast) -> None:
    c.a.appeal_closes_at = utcnow() - dt.timedelta(seconds=1)  # let the window pass now
    session.flush()


def test_finalisation_waits_for_pending_appeals(
    session: Session, store: LocalStore, cast: Cast
) -> None:
    c = cast
    items = _all_scored(session, store, c)
    appealed, untouched = items[0], items[2]  # department 0 and department 1, indicator 1
    publish_assessment(session, c.a, 5, actor=c.admin)
    actions.appeal_item(session, appealed.id, c.member, appealed.version, "已按时报送")
    _close_window(session, c)

    # The window has closed but an appeal is undecided: not final, not reopenable.
    assert assessment_status(c.a) == "appeals_pending" and not is_final(c.a)
    with pytest.raises(Conflict) as refused:
        reopen_assessment(session, c.a, "更正", actor=c.admin)
    assert refused.value.code == "not_final" and "1 件申诉待决定" in refused.value.message
    with pytest.raises(Conflict) as refused:
        publish_assessment(session, c.a, 5, actor=c.admin)
    assert refused.value.code == "appeals_pending"
    with pytest.raises(Conflict):  # no new appeal after the window
        actions.appeal_item(session, untouched.id, c.member_b, untouched.version, "迟到的申诉")
    with pytest.raises(Conflict):  # and no rescoring of what was not appealed
        actions.rescore_item(session, untouched.id, c.scorer2, untouched.version, **FIX)

    # Deciding the last appeal finalises the results.
    actions.rescore_item(session, appealed.id, c.scorer2, appealed.version, **FIX)
    decided_at = appealed.updated_at
    assert assessment_status(c.a) == "final" and is_final(c.a)

    # After that, every change is refused until an admin reopens.
    with pytest.raises(Conflict) as refused:
        actions.rescore_item(session, untouched.id, c.scorer2, untouched.version, **FIX)
    assert refused.value.code == "assessment_final"
    with pytest.raises(Conflict) as refused:
        actions.appeal_item(session, untouched.id, c.member_b, untouched.version, "再申诉")
    assert refused.value.code == "assessment_final"
    reopen_assessment(session, c.a, "发现评分录入错误", actor=c.admin)
    assert c.a.finalised_at == decided_at  # final when the last appeal was decided
    # A second admin pressing 重新开启 a moment later is told it was done, and when.
    with pytest.raises(Conflict) as again:
        reopen_assessment(session, c.a, "同一错误", actor=c.admin)
    assert again.value.code == "already_reopened" and "已于 " in again.value.message
    # A department trying to appeal while the results are reopened is not told they are
    # final (they are being corrected): its window closed, a new one opens on republication.
    with pytest.raises(Conflict) as reopened:
        actions.appeal_item(session, untouched.id, c.member_b, untouched.version, "更正中申诉")
    assert reopened.value.code == "appeal_window_closed"
    assert "最终确定" not in reopened.value.message
    assert "重新开启" in reopened.value.message and "重新公示后" in reopened.value.message
    actions.rescore_item(session, untouched.id, c.scorer2, untouched.version, **FIX)
    session.commit()
    assert verify_chain(session).ok

    # Published again, the department appeals the corrected score: scorer2 gave it, so
    # scorer2 may not decide the appeal (rescore nor reject), any more than the first scorer.
    publish_assessment(session, c.a, 5, actor=c.admin)
    actions.appeal_item(session, untouched.id, c.member_b, untouched.version, "更正有误")
    for scorer in (c.scorer2, c.scorer):
        with pytest.raises(Forbidden) as own:
            actions.rescore_item(session, untouched.id, scorer, untouched.version, **FIX)
        assert own.value.code == "four_eyes"
        with pytest.raises(Forbidden) as own:
            actions.reject_appeal_item(session, untouched.id, scorer, untouched.version, "维持")
        assert own.value.code == "four_eyes"
    third = create_user(session, "scorer3", ["scorer"], actor=c.admin)
    actions.reject_appeal_item(session, untouched.id, third, untouched.version, "维持更正")
    session.commit()
    assert verify_chain(session).ok


def test_appeal_window_moves_after_publication_only_through_reopen(
    session: Session, store: LocalStore, cast: Cast
) -> None:
    c = cast
    _all_scored(session, store, c)
    now = utcnow()
    set_appeal_window(session, c.a, now, now + dt.timedelta(days=9), actor=c.admin)  # before
    publish_assessment(session, c.a, 5, actor=c.admin)
    window = (c.a.appeal_opens_at, c.a.appeal_closes_at)
    for when in ("published", "final", "reopened"):
        if when == "final":
            _close_window(session, c)
            window = (c.a.appeal_opens_at, c.a.appeal_closes_at)
        if when == "reopened":
            reopen_assessment(session, c.a, "更正后重新公示", actor=c.admin)
        assert assessment_status(c.a) == when
        with pytest.raises(Conflict) as refused:
            set_appeal_window(
                session, c.a, now - dt.timedelta(days=1), now + dt.timedelta(days=30),
                actor=c.admin,
            )  # fmt: skip
        assert refused.value.code == "assessment_published"
        assert "重新开启" in refused.value.message
        session.expire(c.a)
        assert (c.a.appeal_opens_at, c.a.appeal_closes_at) == window

    # The way through: a new publication after the reopen sets a new window, keeping the old
    # one in the trail.
    publish_assessment(session, c.a, 3, actor=c.admin)
    session.commit()
    events = list(
        session.execute(
            select(AuditEvent)
            .where(
                AuditEvent.target_type == "assessment", AuditEvent.action != "assessment_created"
            )
            .order_by(AuditEvent.seq)
        ).scalars()
    )
    assert [e.action for e in events] == [
        "appeal_window_set",
        "assessment_published",
        "assessment_reopened",
        "assessment_published",
    ]
    republished = payload_of(events[-1])
    assert republished["previous_window"] == {
        "opens_at": format_time(window[0]),
        "closes_at": format_time(window[1]),
    }
    assert republished["closes_at"] == format_time(c.a.appeal_closes_at)
    assert verify_chain(session).ok


def test_refused_reopen_and_publish_say_when_they_become_possible(
    session: Session, store: LocalStore, cast: Cast
) -> None:
    """Walk: 重新开启 pressed during the 公示 answered only 只有已最终确定的考核可以重新开启, and
    公示 pressed again 考核结果正在公示中: neither said until when. Both name the window's end."""
    c = cast
    _all_scored(session, store, c)
    with pytest.raises(Conflict) as early:  # never published: nothing to wait for
        reopen_assessment(session, c.a, "更正", actor=c.admin)
    assert early.value.code == "not_final" and "尚未公示" in early.value.message
    publish_assessment(session, c.a, 5, actor=c.admin)
    closes = local_minute(c.a.appeal_closes_at, c.a.timezone)
    with pytest.raises(Conflict) as refused:
        reopen_assessment(session, c.a, "更正", actor=c.admin)
    assert refused.value.code == "not_final"
    assert f"{closes}（北京时间）" in refused.value.message and "公示" in refused.value.message
    with pytest.raises(Conflict) as again:
        publish_assessment(session, c.a, 5, actor=c.admin)
    assert again.value.code == "already_published" and closes in again.value.message
