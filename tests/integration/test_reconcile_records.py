"""Reconciliation of the records outside the items: accounts, routine records, the calendar.

A role granted, an account re-enabled, a routine record accepted or a deadline moved by a
direct database edit left no trace the auditor could see; now each is replayed from its
events and every difference named (record, field, live value, value from the trail).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.integration.test_audit import _tamper
from tests.integration.test_routine import Cast, make_cast, report, shanghai
from workflow.audit import record_event
from workflow.calendar import remove_calendar_override, set_calendar_override, set_stage_deadline
from workflow.models import RoutineRecord
from workflow.reconcile import Difference, Reconciliation, reconcile
from workflow.routine import correct_routine, review_routine, submit_routine, withdraw_routine
from workflow.users import (
    create_user,
    issue_token,
    revoke_token,
    set_active,
    set_password,
    set_roles,
)


def _named(result: Reconciliation) -> set[tuple[str, object, object, int | None, int | None]]:
    def plain(value: object) -> object:
        return json.dumps(value, sort_keys=True, ensure_ascii=False) if value is not None and \
            not isinstance(value, (str, int, bool)) else value  # fmt: skip

    return {
        (d.field, plain(d.live), plain(d.from_events), d.department_id, d.assessment_id)
        for d in result.differences
    }


@pytest.fixture
def cast(session: Session) -> Cast:
    return make_cast(session)


@dataclass
class Records:
    """The records the operations below leave."""

    report: RoutineRecord
    meeting: RoutineRecord
    inspection: RoutineRecord
    holiday: dt.date
    removed: dt.date


def _operate(session: Session, store: LocalStore, c: Cast) -> Records:
    """Role changes, a disabled account, routine records reviewed, rejected and corrected,
    withdrawn, a deadline moved, a calendar override set, replaced and one removed."""
    set_roles(session, c.scorer2, ["scorer", "verifier"], actor=c.admin)
    set_roles(session, c.member_b, ["department"], department=c.dep, actor=c.admin)
    set_roles(session, c.member_b, ["department"], department=c.other, actor=c.admin)
    set_active(session, c.reviewer2, False, actor=c.admin)
    set_active(session, c.reviewer2, True, actor=c.admin)
    gone = create_user(session, "leaver", ["auditor"], actor=c.admin)
    set_active(session, gone, False, actor=c.admin)

    at = shanghai(2018, 10, 8, 9, 0)
    first = report(session, store, c, "2018-09", at)
    review_routine(session, first.id, c.office, "accepted", now=at)
    meeting = submit_routine(
        session, store, c.a, c.office, kind="meeting", period="2018-09", title="推进会",
        stream=None, filename=None, department_id=c.other.id, max_size=1 << 20, now=at,
    )  # fmt: skip
    review_routine(session, meeting.id, c.reviewer2, "rejected", "日期登记有误", now=at)
    correct_routine(
        session, meeting.id, c.office, reason="补正", title="推进会（补）", outcome="late", now=at
    )
    inspection = submit_routine(
        session, store, c.a, c.office, kind="inspection", period="2018-09", title="督查",
        stream=None, filename=None, department_id=c.other.id, max_size=1 << 20, now=at,
    )  # fmt: skip
    withdraw_routine(session, inspection.id, c.office, reason="重复登记", now=at)

    set_stage_deadline(session, c.a, "submit", starts_on=None, due_on=dt.date(2018, 9, 28),
                       working_days=None, actor=c.admin)  # fmt: skip
    set_stage_deadline(session, c.a, "submit", starts_on=None, due_on=dt.date(2018, 10, 12),
                       working_days=None, actor=c.admin)  # fmt: skip
    set_stage_deadline(session, c.a, "review", starts_on=None, due_on=dt.date(2018, 10, 31),
                       working_days=None, actor=c.admin)  # fmt: skip
    holiday, removed = dt.date(2018, 11, 5), dt.date(2018, 11, 6)
    set_calendar_override(session, holiday, False, "临时放假", actor=c.admin)
    set_calendar_override(session, holiday, False, "市政府通知放假", actor=c.admin)
    row = set_calendar_override(session, removed, False, "误录", actor=c.admin)
    remove_calendar_override(session, row.id, actor=c.admin)
    session.commit()
    return Records(first, meeting, inspection, holiday, removed)


def test_operations_on_records_reconcile_clean(
    session: Session, store: LocalStore, cast: Cast, engine: Engine
) -> None:
    """Every operation above, replayed from its events, gives the live rows exactly; and the
    replay reads them: each operation's last step undone behind the engine's back is named."""
    made = _operate(session, store, cast)
    assert session.get_one(RoutineRecord, made.meeting.id).outcome == "late"
    assert reconcile(session).differences == []
    c = cast
    with engine.begin() as conn:
        for sql, params in [
            ("UPDATE users SET is_active = :f WHERE id = :i", {"f": False, "i": c.reviewer2.id}),
            ("UPDATE users SET unit_id = :u WHERE id = :i",
             {"u": c.dep.unit_id, "i": c.member_b.id}),
            ("UPDATE routine_records SET title = '推进会' WHERE id = :i", {"i": made.meeting.id}),
            ("UPDATE routine_records SET status = 'submitted' WHERE id = :i",
             {"i": made.inspection.id}),
            ("UPDATE stage_deadlines SET due_on = :d WHERE stage = 'submit'",
             {"d": dt.date(2018, 9, 28)}),
            ("UPDATE calendar_overrides SET reason = '临时放假'", {}),
        ]:  # fmt: skip
            conn.execute(text(sql), params)
    assert {d.field for d in reconcile(session).differences} == {
        f"user[{c.reviewer2.id}].is_active",
        f"user[{c.member_b.id}].unit_id",
        f"routine[{made.meeting.id}].title",
        f"routine[{made.inspection.id}].status",
        "stage_deadline[submit].due_on",
        f"calendar_override[{made.holiday.isoformat()}].reason",
    }


def test_account_edits_are_named(
    session: Session, store: LocalStore, cast: Cast, engine: Engine
) -> None:
    """A role granted, an account re-enabled, a unit changed, an account with no trail."""
    _operate(session, store, cast)
    c = cast
    other_unit = c.other.unit_id
    with engine.begin() as conn:
        conn.execute(
            text(f"""UPDATE users SET roles = '["admin", "scorer"]' WHERE id = {c.scorer.id}""")
        )
        conn.execute(text("UPDATE users SET is_active = :t WHERE username = 'leaver'"), {"t": True})
        conn.execute(text("UPDATE users SET unit_id = :u WHERE id = :i"),
                     {"u": other_unit, "i": c.member.id})  # fmt: skip
        conn.execute(
            text("INSERT INTO users (username, display_name, roles, is_active, "
                 "must_change_password, session_version, created_at) VALUES ('ghost', '', "
                 """'["admin"]', :t, :f, 1, :at)"""),
            {"t": True, "f": False, "at": dt.datetime(2018, 12, 1)},
        )  # fmt: skip
        ghost = conn.execute(text("SELECT id FROM users WHERE username = 'ghost'")).scalar_one()
        leaver = conn.execute(text("SELECT id FROM users WHERE username = 'leaver'")).scalar_one()
    result = reconcile(session)
    assert _named(result) == {
        (f"user[{c.scorer.id}].roles", '["admin", "scorer"]', '["scorer"]', None, None),
        (f"user[{leaver}].is_active", True, False, None, None),
        (f"user[{c.member.id}].unit_id", other_unit, c.dep.unit_id, None, None),
        (f"user[{ghost}]", '{"username": "ghost"}', None, None, None),
    }
    by_field = {d.field: d for d in result.differences}
    assert by_field[f"user[{c.scorer.id}].roles"].label == "用户账号 · 角色"
    assert by_field[f"user[{ghost}]"].describe() == (
        f'用户 #{ghost} user[{ghost}]（用户账号）：现值 {{"username": "ghost"}}，按审计记录应为 无'
    )


def test_routine_edits_are_named(
    session: Session, store: LocalStore, cast: Cast, engine: Engine
) -> None:
    """A record's status, outcome, lateness, period and department edited; one deleted."""
    made = _operate(session, store, cast)
    c = cast
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE routine_records SET status = 'accepted', outcome = 'done', "
                 "period = '2018-08' WHERE id = :i"), {"i": made.meeting.id},
        )  # fmt: skip
        conn.execute(
            text("UPDATE routine_records SET is_late = :t, department_id = :d WHERE id = :i"),
            {"t": not made.report.is_late, "d": c.other.id, "i": made.report.id},
        )
        conn.execute(text("DELETE FROM routine_records WHERE id = :i"), {"i": made.inspection.id})
    meeting, first, gone = made.meeting.id, made.report.id, made.inspection.id
    where, there = (c.other.id, c.a.id), (c.other.id, None)
    assert _named(reconcile(session)) == {
        (f"routine[{meeting}].status", "accepted", "rejected", *where),
        (f"routine[{meeting}].outcome", "done", "late", *where),
        (f"routine[{meeting}].period", "2018-08", "2018-09", *where),
        (f"routine[{first}].is_late", not made.report.is_late, made.report.is_late, *where),
        (f"routine[{first}].department_id", c.other.id, c.dep.id, *where),
        (f"routine[{gone}]", None,
         '{"kind": "inspection", "period": "2018-09", "title": "督查"}', *there),
    }  # fmt: skip


def test_calendar_edits_are_named(
    session: Session, store: LocalStore, cast: Cast, engine: Engine
) -> None:
    """A deadline moved, an override turned into a working day, one put back, one added."""
    made = _operate(session, store, cast)
    a = cast.a.id
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE stage_deadlines SET due_on = :d WHERE assessment_id = :a AND "
                 "stage = 'submit'"), {"d": dt.date(2018, 12, 31), "a": a},
        )  # fmt: skip
        conn.execute(
            text("UPDATE calendar_overrides SET is_workday = :t, reason = '调休' WHERE day = :d"),
            {"t": True, "d": made.holiday},
        )
        conn.execute(
            text("INSERT INTO calendar_overrides (day, is_workday, reason, created_at) "
                 "VALUES (:d, :f, '误录', :at)"),
            {"d": made.removed, "f": False, "at": dt.datetime(2018, 12, 1)},
        )  # fmt: skip
        conn.execute(
            text("INSERT INTO stage_deadlines (assessment_id, stage, working_days, updated_at) "
                 "VALUES (:a, 'score', 3, :at)"), {"a": a, "at": dt.datetime(2018, 12, 1)},
        )  # fmt: skip
    holiday, removed = made.holiday.isoformat(), made.removed.isoformat()
    result = reconcile(session)
    assert _named(result) == {
        ("stage_deadline[submit].due_on", "2018-12-31", "2018-10-12", None, a),
        ("stage_deadline[score]",
         '{"due_on": null, "starts_on": null, "working_days": 3}', None, None, a),
        (f"calendar_override[{holiday}].is_workday", True, False, None, None),
        (f"calendar_override[{holiday}].reason", "调休", "市政府通知放假", None, None),
        (f"calendar_override[{removed}]", '{"is_workday": false, "reason": "误录"}', None,
         None, None),
    }  # fmt: skip
    labels = {d.field: d.label for d in result.differences}
    assert labels["stage_deadline[submit].due_on"] == "自评提交截止考核阶段截止 · 截止日期"


def test_a_record_trail_that_cannot_be_replayed_is_named(
    session: Session, store: LocalStore, cast: Cast, engine: Engine
) -> None:
    """A routine record whose submission event is gone: its review cannot be replayed."""
    made = _operate(session, store, cast)
    _tamper(
        engine,
        "DELETE FROM audit_events WHERE action = 'routine_submitted' AND target_id = "
        f"'{made.report.id}'",
    )
    result = reconcile(session)
    assert [(d.field, d.live) for d in result.differences] == [
        (f"routine[{made.report.id}].trail", None)
    ]
    assert "routine_reviewed" in result.differences[0].from_events


def test_events_written_before_units_replay_through_the_department(
    session: Session, cast: Cast
) -> None:
    """Account events before migration 0012 name a department: its unit is the user's."""
    from workflow.audit import record_event

    c = cast
    user = create_user(session, "old_member", ["department"], department=c.other)
    session.flush()
    record_event(
        session, actor=c.admin, action="roles_changed", target_type="user", target_id=user.id,
        payload={"before": {"roles": ["department"], "department_id": c.other.id},
                 "after": {"roles": ["department", "reviewer"], "department_id": c.dep.id}},
    )  # fmt: skip
    user.roles = ["department", "reviewer"]
    user.unit_id = c.dep.unit_id
    session.commit()
    assert reconcile(session).differences == []
    user.unit_id = c.other.unit_id
    session.commit()
    assert _named(reconcile(session)) == {
        (f"user[{user.id}].unit_id", c.other.unit_id, c.dep.unit_id, None, None)
    }


@pytest.mark.parametrize(
    ("payload", "late", "outcome"),
    [
        ({"kind": "meeting", "is_late": True}, False, "late"),
        ({"kind": "monthly_info", "is_late": True}, True, None),
        ({"kind": "task", "is_late": True}, True, "late"),
    ],
)
def test_routine_submissions_before_outcomes_replay_as_migrated(
    payload: dict[str, object], late: bool, outcome: str | None
) -> None:
    """A submission written before migration 0006 replays as that migration rewrote it."""
    from workflow import reconcile as module

    p = {"period": "2018-09", "title": "会", **payload}
    record = module._replay_routine(None, "routine_submitted", 3, None, p, "department")
    assert (record["is_late"], record["outcome"]) == (late, outcome)


def test_a_swapped_password_or_token_is_named(session: Session, cast: Cast, engine: Engine) -> None:
    """The trail records a fingerprint of each stored verifier (since this release): a known
    password's hash put on the admin's row is named, as is a token given to another user,
    extended, un-revoked, re-keyed, or made in the table; the untouched ones are not."""
    c = cast
    light = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("workflow.users.hash_password", light.hash)
        set_password(session, c.admin, "管理员的新密码-2018", actor=c.admin)
        set_password(session, c.scorer, "评分员的新密码-2018", actor=c.admin)
    mine, _row = issue_token(session, c.scorer, name="脚本")
    other, kept = issue_token(session, c.reviewer2, name="脚本")
    _, revoked = issue_token(session, c.member, name="旧")
    revoke_token(session, revoked.id, actor=c.member)
    session.commit()
    assert reconcile(session).differences == []
    known = light.hash("attacker-knows-this")
    forged_token = hashlib.sha256(b"fgf_forged").hexdigest()
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET password_hash = :h WHERE id = :i"),
                     {"h": known, "i": c.admin.id})  # fmt: skip
        conn.execute(text("UPDATE api_tokens SET user_id = :u, expires_at = :e WHERE id = :i"),
                     {"u": c.admin.id, "e": dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
                      "i": kept.id})  # fmt: skip
        conn.execute(text("UPDATE api_tokens SET revoked_at = NULL WHERE id = :i"),
                     {"i": revoked.id})  # fmt: skip
        conn.execute(
            text("INSERT INTO api_tokens (user_id, token_hash, name, created_at, expires_at) "
                 "VALUES (:u, :h, '', :at, :e) RETURNING id"),
            {"u": c.admin.id, "h": forged_token, "at": dt.datetime(2018, 12, 1, tzinfo=dt.UTC),
             "e": dt.datetime(2099, 1, 1, tzinfo=dt.UTC)},
        )  # fmt: skip
        ghost = conn.execute(
            text("SELECT id FROM api_tokens WHERE token_hash = :h"), {"h": forged_token}
        ).scalar_one()
    fields = {d.field for d in reconcile(session).differences}
    assert fields == {
        f"user[{c.admin.id}].password",
        f"token[{kept.id}].user_id",
        f"token[{kept.id}].expires_at",
        f"token[{revoked.id}].revoked",
        f"token[{ghost}]",
    }
    assert mine and other  # the plain tokens were shown once; the rows hold their hashes only
    with engine.begin() as conn:  # a token's stored hash replaced by one whose token is known
        conn.execute(text("UPDATE api_tokens SET token_hash = :h WHERE id = :i"),
                     {"h": hashlib.sha256(b"fgf_known").hexdigest(), "i": _row.id})  # fmt: skip
    assert f"token[{_row.id}].token_sha256" in {d.field for d in reconcile(session).differences}


def test_passwords_set_before_fingerprints_are_not_judged(
    session: Session, cast: Cast, engine: Engine
) -> None:
    """A password event written before this release carries no fingerprint: the password it
    set is not compared (the trail does not know it); the next one set through the engine is.
    An account's first state, no password, is known: a hash put on it in the table is named."""
    c = cast
    # As the older release reset a password: the hash written, the event without fingerprint.
    session.execute(text("UPDATE users SET password_hash = 'older-release-hash' WHERE id = :i"),
                    {"i": c.member.id})  # fmt: skip
    record_event(session, actor=c.admin, action="password_reset", target_type="user",
                 target_id=c.member.id, payload={"username": c.member.username})  # fmt: skip
    session.commit()
    assert reconcile(session).differences == []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("workflow.users.hash_password", lambda _p: "new-release-hash")
        set_password(session, c.member, "成员的新的登录密码-2018", actor=c.admin)
    session.commit()
    assert reconcile(session).differences == []
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET password_hash = 'swapped' WHERE id IN (:a, :b)"),
                     {"a": c.member.id, "b": c.office.id})  # fmt: skip
    assert {d.field for d in reconcile(session).differences} == {
        f"user[{c.member.id}].password",
        f"user[{c.office.id}].password",  # created without a password: known, and changed
    }


def test_disabling_an_account_revokes_its_tokens_in_the_replay(
    session: Session, cast: Cast, engine: Engine
) -> None:
    """`set_active(False)` revokes the account's live tokens with one UPDATE and records only
    `user_disabled`: the replay revokes them too (and no later token of the account)."""
    c = cast
    _, before = issue_token(session, c.scorer2, name="旧脚本")
    set_active(session, c.scorer2, False, actor=c.admin)
    set_active(session, c.scorer2, True, actor=c.admin)
    _, after = issue_token(session, c.scorer2, name="新脚本")
    session.commit()
    assert reconcile(session).differences == []
    with engine.begin() as conn:
        conn.execute(text("UPDATE api_tokens SET revoked_at = NULL WHERE id = :i"),
                     {"i": before.id})  # fmt: skip
    assert [(d.field, d.live, d.from_events) for d in reconcile(session).differences] == [
        (f"token[{before.id}].revoked", False, True)
    ]
    assert after.revoked_at is None


def test_an_empty_value_in_a_difference_reads_as_none_in_words() -> None:
    """An empty list or record read "[]" / "{}" in the alert's line, as None read "None"."""
    for empty in ([], {}, None):
        line = Difference(None, "user[5].roles", '["scorer"]', empty).describe()
        assert line.endswith("按审计记录应为 无"), line
    assert (
        Difference(None, "user[5].roles", ["scorer"], [])
        .describe()
        .endswith('现值 ["scorer"]，按审计记录应为 无')
    )
