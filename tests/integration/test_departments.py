"""Departments and aliases (workflow/departments.py): admins only, audited, no duplicates."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import World
from workflow.audit import payload_of, verify_chain
from workflow.departments import add_alias, remove_alias, rename_department
from workflow.errors import Forbidden, InvalidValue, NotFound
from workflow.models import AuditEvent
from workflow.setup import find_department


def _events(session: Session) -> list[AuditEvent]:
    return list(
        session.execute(
            select(AuditEvent)
            .where(AuditEvent.action == "department_changed")
            .order_by(AuditEvent.seq)
        ).scalars()
    )


def test_add_rename_remove_audited(session: Session, world: World) -> None:
    dep = world.dep_b
    row = add_alias(session, dep, " 新别名局 ", "alias", actor=world.admin)
    rename_department(session, dep, "新全称（测试办）", actor=world.admin)
    session.commit()
    assert find_department(session, world.assessment.id, "新别名局") is dep
    assert dep.full_name == "新全称（测试办）"
    remove_alias(session, dep, row.id, actor=world.admin)
    session.commit()
    assert find_department(session, world.assessment.id, "新别名局") is None

    events = _events(session)
    assert [payload_of(e)["operation"] for e in events] == ["add_alias", "rename", "remove_alias"]
    added = payload_of(events[0])
    assert {"alias": "新别名局", "kind": "alias"} in added["after"]["aliases"]
    assert {"alias": "新别名局", "kind": "alias"} not in added["before"]["aliases"]
    renamed = payload_of(events[1])
    assert renamed["after"]["full_name"] == "新全称（测试办）"
    assert renamed["before"]["full_name"] != "新全称（测试办）"
    assert all(e.actor == "admin" and e.department_id == dep.id for e in events)
    assert verify_chain(session).ok


def test_alias_used_by_any_department_is_refused(session: Session, world: World) -> None:
    add_alias(session, world.dep_a, "共用名称", "office", actor=world.admin)
    session.commit()
    for name in ("共用名称", world.dep_a.name, world.dep_b.full_name):
        with pytest.raises(InvalidValue) as exc:
            add_alias(session, world.dep_b, name, actor=world.admin)
        assert name in exc.value.message
        session.rollback()
    with pytest.raises(InvalidValue):
        add_alias(session, world.dep_b, "  ", actor=world.admin)
    with pytest.raises(InvalidValue):
        add_alias(session, world.dep_b, "某办", "nickname", actor=world.admin)
    with pytest.raises(InvalidValue):
        rename_department(session, world.dep_b, "", actor=world.admin)


def test_only_admins(session: Session, world: World) -> None:
    for user in (world.reviewer, world.scorer, world.auditor, world.member_b):
        with pytest.raises(Forbidden):
            add_alias(session, world.dep_b, "某别名", actor=user)
        with pytest.raises(Forbidden):
            rename_department(session, world.dep_b, "某全称", actor=user)
    row = add_alias(session, world.dep_a, "甲别名", actor=world.admin)
    session.commit()
    with pytest.raises(Forbidden):
        remove_alias(session, world.dep_a, row.id, actor=world.reviewer)
    with pytest.raises(NotFound):  # an alias of another department
        remove_alias(session, world.dep_b, row.id, actor=world.admin)
    assert _events(session)[-1].payload is not None


def test_a_department_is_found_by_its_full_name_in_any_spelling(
    session: Session, world: World
) -> None:
    aid = world.assessment.id
    zhengfu = find_department(session, aid, "政府办")
    assert zhengfu is not None and zhengfu.full_name == "政府办（民族宗教局、法制办）"
    for spelling in ("政府办（民族宗教局、法制办）", "政府办(民族宗教局、法制办 )",
                     "政府办 ( 民族宗教局、法制办 )", "法制办", "政府办\u200b"):  # fmt: skip
        assert find_department(session, aid, spelling) is zhengfu, spelling
    zhujian = find_department(session, aid, "住建局")
    assert zhujian is not None and find_department(session, aid, "住建局(人防办)") is zhujian
    assert find_department(session, aid, "不存在局") is None
    assert find_department(session, aid, " ") is None
