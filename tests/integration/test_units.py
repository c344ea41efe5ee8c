"""Units and their lineage: the rules of each change, the audit, and users across years."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import World, moved_to_year
from workflow.audit import payload_of, verify_chain
from workflow.errors import Forbidden, InvalidValue, NotFound
from workflow.models import AuditEvent, Department, Item, Unit, UnitChange
from workflow.permissions import (
    can_read_item,
    current_department,
    department_for,
    is_own_department,
)
from workflow.reconcile import reconcile
from workflow.scheme import SCHEMES_DIR, parse_scheme
from workflow.setup import install_scheme
from workflow.units import all_units, apply_change, find_unit, lineages, proposed_units
from workflow.users import set_roles

DAY = dt.date(2019, 3, 1)
DOC = "蛟市机编〔2019〕1号（示例）"


def change(  # type: ignore[no-untyped-def]
    session: Session, w: World, kind: str, from_ids: list[int], to: list, **kw
):
    return apply_change(
        session,
        kind=kind,
        effective_on=kw.get("effective_on", DAY),
        document_no=kw.get("document_no", DOC),
        reason=kw.get("reason", "机构改革"),
        from_ids=from_ids,
        to=to,
        actor=kw.get("actor", w.admin),
    )


def unit_named(session: Session, name: str) -> Unit:
    unit = find_unit(session, name)
    assert unit is not None, name
    return unit


def test_each_2018_department_is_a_unit_and_members_belong_to_it(
    session: Session, world: World
) -> None:
    deps = world.assessment.departments
    assert len({d.unit_id for d in deps}) == len(deps) == 26
    assert world.member_a.unit_id == world.dep_a.unit_id
    assert department_for(world.member_a, world.assessment.id) == world.dep_a
    assert world.reviewer.unit_id is None
    assert department_for(world.reviewer, world.assessment.id) is None
    zhujian = unit_named(session, "住建局")
    assert [(a.alias, a.kind) for a in zhujian.aliases] == [("人防办", "office")]
    assert unit_named(session, "城管局").name == "城管执法大队"  # an alias finds the unit


def test_merge_rename_split_dissolve_are_applied_and_audited(
    session: Session, world: World
) -> None:
    w = world
    anjian, meijian = unit_named(session, "安监局"), unit_named(session, "煤监局")
    merged = change(session, w, "merge", [anjian.id, meijian.id], [{"name": "应急管理局"}])
    guotu = unit_named(session, "国土局")
    change(
        session, w, "rename", [guotu.id], [{"name": "自然资源局", "full_name": "蛟河市自然资源局"}]
    )
    zhujian = unit_named(session, "住建局")
    split = change(session, w, "split", [zhujian.id], [{"name": "住建局"}, {"name": "人防办"}])
    lvyou = unit_named(session, "旅游办")
    change(session, w, "dissolve", [lvyou.id], [])
    session.commit()

    assert (anjian.status, meijian.status, zhujian.status, lvyou.status) == (
        "merged", "merged", "split", "dissolved"
    )  # fmt: skip
    yingji = session.get_one(Unit, merged.to_ids[0])
    assert yingji.status == "active" and yingji.names[0].valid_from == DAY
    assert anjian.names[-1].valid_to == DAY
    # A rename keeps the unit and its id; its names carry the dates.
    assert guotu.name == "自然资源局" and guotu.full_name == "蛟河市自然资源局"
    assert [(n.name, n.valid_to) for n in guotu.names] == [("国土局", DAY), ("自然资源局", None)]
    graph = lineages(session)
    assert sorted(graph[yingji.id].predecessors) == sorted([anjian.id, meijian.id])
    assert len(split.to_ids) == 2 and graph[zhujian.id].successors == split.to_ids
    assert graph[lvyou.id].successors == []

    events = session.execute(
        select(AuditEvent).where(AuditEvent.action == "unit_changed").order_by(AuditEvent.seq)
    ).scalars()
    kinds = [(payload_of(e)["kind"], payload_of(e)["document_no"]) for e in events]
    assert kinds == [(k, DOC) for k in ("merge", "rename", "split", "dissolve")]
    assert verify_chain(session).ok
    assert reconcile(session).ok
    # The proposal for a new year: the active units, the new ones where their predecessors stood.
    names = [u.name for u in proposed_units(session)]
    assert "应急管理局" in names and "安监局" not in names and "旅游办" not in names
    assert names.count("住建局") == 1 and "人防办" in names and len(names) == 26 - 2 + 1 - 1 + 1


@pytest.mark.parametrize(
    ("kind", "from_names", "to", "code"),
    [
        ("merge", ["安监局"], [{"name": "应急管理局"}], "merge_needs_two"),
        ("merge", ["安监局", "煤监局"], [], "merge_needs_two"),
        ("split", ["住建局"], [{"name": "住建局"}], "split_needs_two"),
        ("split", ["住建局", "交通局"], [{"name": "甲"}, {"name": "乙"}], "split_needs_two"),
        ("rename", ["国土局"], [], "bad_change_units"),
        ("create", ["国土局"], [{"name": "新局"}], "bad_change_units"),
        ("dissolve", ["旅游办"], [{"name": "新局"}], "bad_change_units"),
        ("rename", ["国土局"], [{"name": "交通局"}], "unit_name_in_use"),
        ("split", ["住建局"], [{"name": "甲"}, {"name": "甲"}], "unit_name_in_use"),
        ("absorb", ["国土局"], [{"name": "新局"}], "unknown_change_kind"),
        ("create", [], [{"name": ""}], "bad_unit_name"),
        ("create", [], ["新局"], "bad_change_units"),
    ],
)
def test_a_change_that_breaks_a_rule_is_refused_and_nothing_is_applied(
    session: Session, world: World, kind: str, from_names: list[str], to: list, code: str
) -> None:
    ids = [unit_named(session, n).id for n in from_names]
    before = session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    with pytest.raises(InvalidValue) as caught:
        change(session, world, kind, ids, to)
    assert caught.value.code == code
    session.rollback()
    assert session.scalars(select(UnitChange)).first() is None
    assert all(u.status == "active" for u in all_units(session))
    after = session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    assert after == before


def test_an_ended_unit_cannot_change_again_and_dates_and_documents_are_checked(
    session: Session, world: World
) -> None:
    w = world
    anjian, meijian = unit_named(session, "安监局"), unit_named(session, "煤监局")
    change(session, w, "dissolve", [meijian.id], [])
    with pytest.raises(InvalidValue) as caught:  # can't merge a dissolved unit
        change(session, w, "merge", [anjian.id, meijian.id], [{"name": "应急管理局"}])
    assert caught.value.code == "unit_not_active"
    guotu = unit_named(session, "国土局")
    change(session, w, "rename", [guotu.id], [{"name": "自然资源局"}])
    with pytest.raises(InvalidValue) as caught:  # not before the current name began
        change(session, w, "rename", [guotu.id], [{"name": "资源局"}], effective_on="2019-02-01")
    assert caught.value.code == "bad_effective_on"
    # Not ahead of its day: a change applies when it is recorded (who belongs where changes).
    with pytest.raises(InvalidValue) as caught:
        apply_change(
            session, kind="rename", effective_on="2019-07-02", document_no="蛟市机编〔2019〕9号",
            reason="机构改革", from_ids=[guotu.id], to=[{"name": "资源局"}], actor=w.admin,
            today=dt.date(2019, 7, 1),
        )  # fmt: skip
    assert caught.value.code == "bad_effective_on" and "晚于今天（2019-07-01）" in str(
        caught.value.message
    )
    assert guotu.current.name == "自然资源局"  # nothing applied
    for bad in ({"effective_on": "2019-13-01"}, {"document_no": " "}, {"reason": ""}):
        with pytest.raises(InvalidValue):
            change(session, w, "rename", [guotu.id], [{"name": "资源局"}], **{
                "effective_on": "2019-06-01", **bad})  # fmt: skip
    with pytest.raises(NotFound):
        change(session, w, "dissolve", [999999], [])
    with pytest.raises(Forbidden):
        change(session, w, "dissolve", [anjian.id], [], actor=w.reviewer)
    # Not before a year the unit was assessed under its name (安监局 is in 2018's assessment).
    with pytest.raises(InvalidValue) as caught:
        change(session, w, "rename", [anjian.id], [{"name": "安全局"}], effective_on="2017-06-01")
    assert caught.value.code == "bad_effective_on" and "2018 年度" in str(caught.value.message)
    assert anjian.current.name == "安监局"


def _scheme_2019(drop: tuple[str, ...], add: list[dict]):  # type: ignore[no-untyped-def]
    data = yaml.safe_load((SCHEMES_DIR / "jiaohe-2018.yaml").read_text("utf-8"))
    data = moved_to_year(data, 2019)
    data["code"] = "test-2019"
    data["departments"] = [d for d in data["departments"] if d["name"] not in drop] + add
    return parse_scheme(data)


def test_a_merged_units_users_see_the_new_years_items_and_keep_their_old_ones(
    session: Session, world: World
) -> None:
    w = world
    a_unit, b_unit = w.dep_a.unit, w.dep_b.unit
    merged = change(session, w, "merge", [a_unit.id, b_unit.id], [{"name": "合并局"}])
    new = install_scheme(
        session, _scheme_2019((w.dep_a.name, w.dep_b.name), [{"name": "合并局"}]), actor=w.admin
    )
    session.commit()
    dep_new = session.execute(
        select(Department).where(Department.assessment_id == new.id, Department.name == "合并局")
    ).scalar_one()
    assert dep_new.unit_id == merged.to_ids[0]  # the scheme's department is the merged unit
    for member, old in ((w.member_a, w.dep_a), (w.member_b, w.dep_b)):
        assert department_for(member, new.id) == dep_new
        assert department_for(member, w.assessment.id) == old
        assert current_department(member) == dep_new
        item = (
            session.execute(select(Item).where(Item.department_id == dep_new.id)).scalars().first()
        )
        assert item is not None and can_read_item(member, item)
    # The reviewer in department A may not act on the merged unit's items either.
    assert is_own_department(w.reviewer_in_a, dep_new.id)
    other = next(d for d in new.departments if d.id != dep_new.id)
    assert not is_own_department(w.member_a, other.id)


def test_a_rename_to_the_same_name_is_refused(session: Session, world: World) -> None:
    """Found by an exploratory walk: 教育局 → 教育局 was recorded (曾用名 教育局、教育局)."""
    unit = unit_named(session, "国土局")
    same = {"name": unit.current.name, "full_name": unit.current.full_name}
    with pytest.raises(InvalidValue) as caught:
        change(session, world, "rename", [unit.id], [same])
    assert caught.value.code == "same_name"
    # A new full name under the same short name is a change.
    renamed = {**same, "full_name": "蛟河市自然资源局"}
    change(session, world, "rename", [unit.id], [renamed])
    assert unit.current.full_name == "蛟河市自然资源局"
    # The same rename sent again (a second click): it says the first one took, not that the
    # date must be later than the new name's own start.
    with pytest.raises(InvalidValue) as again:
        change(session, world, "rename", [unit.id], [renamed])
    assert again.value.code == "same_name"
    assert again.value.message == f"单位已于 {DAY} 更名为“蛟河市自然资源局”，无需再次更名"
    assert len(unit.names) == 2


def test_saving_a_merged_units_user_with_the_department_they_lead_to_keeps_their_years(
    session: Session, world: World
) -> None:
    """The user page preselects the department the user's unit leads to in the newest year:
    saving it unchanged must not move them onto the merged unit and cut off 2018."""
    w = world
    a_unit, b_unit = w.dep_a.unit, w.dep_b.unit
    change(session, w, "merge", [a_unit.id, b_unit.id], [{"name": "合并局"}])
    new = install_scheme(
        session, _scheme_2019((w.dep_a.name, w.dep_b.name), [{"name": "合并局"}]), actor=w.admin
    )
    session.commit()
    dep_new = department_for(w.member_a, new.id)
    assert dep_new is not None
    set_roles(session, w.member_a, ["department", "reviewer"], department=dep_new, actor=w.admin)
    session.commit()
    assert w.member_a.unit_id == a_unit.id and w.member_a.roles == ["department", "reviewer"]
    assert department_for(w.member_a, w.assessment.id) == w.dep_a  # 2018 still theirs
    other = next(d for d in new.departments if d.id != dep_new.id)
    set_roles(session, w.member_a, ["department"], department=other, actor=w.admin)
    session.commit()
    assert w.member_a.unit_id == other.unit_id  # a deliberate move still moves them


def test_a_user_is_not_put_into_an_ended_unit(session: Session, world: World) -> None:
    """Found by the race review: the user page could move someone into a unit merged away
    (through a department of an earlier year), a unit no year to come has a department of."""
    w = world
    a_unit, b_unit = w.dep_a.unit, w.dep_b.unit
    change(session, w, "merge", [a_unit.id, b_unit.id], [{"name": "合并局"}])
    session.commit()
    events = session.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(InvalidValue) as refused:
        set_roles(session, w.member_a, ["department"], department=w.dep_b, actor=w.admin)
    assert refused.value.code == "unit_ended"
    session.rollback()
    assert w.member_a.unit_id == a_unit.id
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == events
    # Their own unit, though ended, stays theirs when only their roles change.
    set_roles(session, w.member_a, ["department", "reviewer"], department=w.dep_a, actor=w.admin)
    session.commit()
    assert w.member_a.unit_id == a_unit.id and w.member_a.roles == ["department", "reviewer"]


@pytest.mark.parametrize(
    ("name", "clash"),
    [
        ("交通局\u200b", "交通局"),  # a zero-width space
        ("\ufeff交通\u2060局", "交通局"),  # a byte-order mark, a word joiner
        ("交 通 局", "交通局"),  # spaces
        ("ｘ局", "x局"),  # full-width (equal after NFKC)
        ("X局", "x局"),  # letter case
    ],
)
def test_a_look_alike_of_a_units_name_is_refused(
    session: Session, world: World, name: str, clash: str
) -> None:
    if clash == "x局":
        change(session, world, "create", [], [{"name": "x局"}])
    with pytest.raises(InvalidValue) as caught:
        change(session, world, "create", [], [{"name": name}])
    assert caught.value.code == "unit_name_in_use"
    assert f"单位“{clash}”的名称" in str(caught.value.message)


def test_new_names_are_cleaned_of_invisible_characters_and_control_characters_refused(
    session: Session, world: World
) -> None:
    made = change(
        session, world, "create", [], [{"name": "\u202e局育教\u200b", "full_name": " 新\u200d局 ",
                                        "aliases": ["甲\ufeff"], "offices": ["乙"]}],
    )  # fmt: skip
    unit = session.get_one(Unit, made.to_ids[0])
    assert (unit.name, unit.full_name) == ("局育教", "新局")  # no longer reads as 教育局
    assert [(a.alias, a.kind) for a in unit.aliases] == [("甲", "alias"), ("乙", "office")]
    for bad in ({"name": "新\n局"}, {"name": "新局", "full_name": "新\t局"},
                {"name": "新局", "aliases": ["a\x00"]}, {"name": "\u200b\u202e"}):  # fmt: skip
        with pytest.raises(InvalidValue) as caught:
            change(session, world, "create", [], [bad])
        assert caught.value.code == "bad_unit_name", bad
    # An office also given as an alias is one row (the table holds each name once a unit).
    twice = change(session, world, "create", [], [{"name": "丙局", "aliases": ["丁"],
                                                   "offices": ["丁"]}])  # fmt: skip
    assert [a.alias for a in session.get_one(Unit, twice.to_ids[0]).aliases] == ["丁"]


@pytest.mark.parametrize(
    ("kind", "from_name", "new_name", "holder", "how"),
    [
        ("rename", "财政局", "城管局", "城管执法大队", "别名"),
        ("create", None, "价格监督检查局", "发改局", "挂牌机构"),
        ("create", None, "住建局(人防办)", "住建局", "全称"),
        ("rename", "卫计局", "安监局", "安监局", "名称"),  # merged into 应急管理局 below
        ("rename", "卫计局", "国土局", "自然资源局", "曾用名"),  # renamed below
    ],
)
def test_a_name_another_unit_answers_to_is_refused_naming_that_unit(
    session: Session, world: World, kind: str, from_name: str | None, new_name: str,
    holder: str, how: str,
) -> None:  # fmt: skip
    w = world
    anjian, meijian = unit_named(session, "安监局"), unit_named(session, "煤监局")
    change(session, w, "merge", [anjian.id, meijian.id], [{"name": "应急管理局"}])
    change(session, w, "rename", [unit_named(session, "国土局").id], [{"name": "自然资源局"}])
    ids = [unit_named(session, from_name).id] if from_name else []
    with pytest.raises(InvalidValue) as caught:
        change(session, w, kind, ids, [{"name": new_name}])
    assert caught.value.code == "unit_name_in_use"
    message = str(caught.value.message)
    assert f"单位“{holder}”的{how}" in message and f"名称“{new_name}”" in message
    assert ("已合并或拆分的单位" in message) is (holder == "安监局")
    # Nor as an alias or office of the new unit.
    with pytest.raises(InvalidValue) as caught:
        change(session, w, "create", [], [{"name": "新局", "offices": [new_name]}])
    assert caught.value.code == "unit_name_in_use"


def test_names_a_change_ends_or_a_dissolution_freed_may_be_taken(
    session: Session, world: World
) -> None:
    w = world
    zhujian = unit_named(session, "住建局")  # its office 人防办 becomes a unit of its own
    change(session, w, "split", [zhujian.id], [{"name": "住建局"}, {"name": "人防办"}])
    change(session, w, "dissolve", [unit_named(session, "旅游办").id], [])
    again = change(session, w, "create", [], [{"name": "旅游办"}], effective_on=dt.date(2019, 4, 1))
    assert session.get_one(Unit, again.to_ids[0]).status == "active"
    assert unit_named(session, "旅游办").id == again.to_ids[0]
    guotu = unit_named(session, "国土局")  # a unit may take back its own former name
    change(session, w, "rename", [guotu.id], [{"name": "自然资源局"}])
    change(session, w, "rename", [guotu.id], [{"name": "国土局"}], effective_on=dt.date(2019, 4, 1))
    assert guotu.name == "国土局"


def test_a_unit_is_found_by_its_full_name_in_any_spelling(session: Session, world: World) -> None:
    zhengfu = unit_named(session, "政府办")
    for spelling in ("政府办（民族宗教局、法制办）", "政府办(民族宗教局、法制办 )",
                     " 政府办 （民族宗教局、法制办）\u200b", "民族宗教局"):  # fmt: skip
        assert find_unit(session, spelling) is zhengfu, spelling
    assert find_unit(session, "住建局（人防办）") is unit_named(session, "住建局")
    assert find_unit(session, "住建局(人防办)", active_only=True) is unit_named(session, "住建局")
    assert find_unit(session, "城管局") is unit_named(session, "城管执法大队")
    assert find_unit(session, "") is None and find_unit(session, "\u200b") is None
    assert find_unit(session, "不存在局") is None


def test_a_scheme_of_many_departments_reads_the_unit_names_once(
    session: Session, world: World, count_statements: Any
) -> None:
    """Each department was found by reading every unit name again (twice): a scheme of a
    thousand departments (the benchmark's province) took minutes. Now once per install."""
    data = yaml.safe_load((SCHEMES_DIR / "jiaohe-2018.yaml").read_text("utf-8"))
    data["code"] = "many-departments"  # the same year's rules again, under another code
    existing = [{"name": d.name} for d in world.assessment.departments[:5]]  # found again
    data["departments"] = existing + [{"name": f"合成部门{n}"} for n in range(60)]  # made
    scheme = parse_scheme(data)
    with count_statements() as sent:
        assessment = install_scheme(session, scheme)
    name_reads = [s for s in sent.sql if s.startswith("SELECT") and "FROM unit_names" in s]
    assert len(name_reads) == 1, sent
    units = [d.unit_id for d in assessment.departments]
    assert len(set(units)) == 65  # the made ones were remembered: no department shares a unit
    assert units[:5] == [d.unit_id for d in world.assessment.departments[:5]]
    assert reconcile(session).ok


def test_the_audit_says_whether_the_new_year_took_the_proposed_units(
    session: Session, world: World
) -> None:
    """The portal always sends the ticked units, so `proposed` was false for every year made
    there, even when the clerk took the proposal unchanged; it now compares with the proposal."""
    from tests.factories import rules_2019
    from workflow.scheme import load_scheme
    from workflow.setup import create_assessment

    scheme = rules_2019(load_scheme(SCHEMES_DIR / "jiaohe-2018.yaml"))
    proposal = [u.id for u in proposed_units(session)]

    def made(unit_ids: list[int]) -> Any:
        create_assessment(
            session, scheme, year=2019, result_document_no="蛟市职转办〔2020〕1号",
            unit_ids=unit_ids, actor=world.admin,
        )  # fmt: skip
        event = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "assessment_created")
            .order_by(AuditEvent.seq.desc())
        ).first()
        payload = payload_of(event)
        session.rollback()
        return payload

    taken = made(list(reversed(proposal)))  # every proposed unit, in another order
    assert taken["proposed"] is True and sorted(taken["units"]) == sorted(proposal)
    assert made(proposal[:-1])["proposed"] is False  # one left out


def test_a_unit_given_twice_is_named_in_the_refusal(session: Session, world: World) -> None:
    """原单位重复：7 named the unit by its id, which a clerk never sees; the change and the new
    year now name it, and nothing is made."""
    from tests.factories import rules_2019
    from workflow.models import Assessment
    from workflow.scheme import load_scheme
    from workflow.setup import create_assessment

    anjian = unit_named(session, "安监局")
    with pytest.raises(InvalidValue) as caught:
        change(session, world, "merge", [anjian.id, anjian.id], [{"name": "应急管理局"}])
    assert caught.value.message == "原单位“安监局”选了两次"
    session.rollback()
    assert session.scalars(select(UnitChange)).first() is None
    scheme = rules_2019(load_scheme(SCHEMES_DIR / "jiaohe-2018.yaml"))
    with pytest.raises(InvalidValue) as caught:
        create_assessment(
            session, scheme, year=2019, result_document_no="蛟市职转办〔2020〕1号",
            unit_ids=[anjian.id, anjian.id], actor=world.admin,
        )  # fmt: skip
    assert caught.value.message == "单位“安监局”选了两次"
    session.rollback()
    assert session.scalar(select(Assessment).where(Assessment.year == 2019)) is None


def test_a_full_width_effective_date_is_read_and_a_bad_one_refused_in_chinese(
    session: Session, world: World
) -> None:
    """２０１９－０３－０１ (full-width, as a Chinese input method types it) was refused with
    “须为 YYYY-MM-DD 格式”, Latin letters on a Chinese page."""
    anjian, meijian = unit_named(session, "安监局"), unit_named(session, "煤监局")
    with pytest.raises(InvalidValue) as caught:
        change(session, world, "merge", [anjian.id, meijian.id], [{"name": "应急管理局"}],
               effective_on="2019-02-30")  # fmt: skip
    assert caught.value.message == "生效日期须为有效日期（如 2019-03-01）"
    session.rollback()
    made = change(
        session, world, "merge", [anjian.id, meijian.id], [{"name": "应急管理局"}],
        effective_on="２０１９－０３－０１",
    )  # fmt: skip
    assert made.effective_on == dt.date(2019, 3, 1)
