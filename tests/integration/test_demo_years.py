"""`demo --years`: two years and the 示例 reorganisation between them, through the engine."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.base import ObjectStore
from workflow.audit import verify_chain
from workflow.demo import run_years_demo
from workflow.models import Assessment, Item, UnitChange, User
from workflow.permissions import department_for
from workflow.reconcile import reconcile
from workflow.scheme import Scheme
from workflow.schemes import import_shipped
from workflow.setup import install_scheme
from workflow.states import State
from workflow.units import find_unit, unit_history
from workflow.users import create_user

pytestmark = pytest.mark.slow


def test_two_years_show_the_lineage(
    session: Session, store: ObjectStore, scheme_2018: Scheme, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workflow.users.hash_password", lambda p: "light:" + p)
    first = install_scheme(session, scheme_2018)
    import_shipped(session)
    admin = create_user(session, "admin", ["admin"])
    made = run_years_demo(session, store, first, password="demo-password-2018", admin=admin)
    session.commit()

    assert made.changes == 4
    kinds = sorted(c.kind for c in session.scalars(select(UnitChange)))
    assert kinds == ["merge", "merge", "rename", "split"]
    assert all("示例" in c.document_no for c in session.scalars(select(UnitChange)))
    second = made.second
    names = [d.name for d in second.departments]
    assert len(names) == 25
    assert {"应急管理局", "文化广电和旅游局", "自然资源局", "住建局", "人防办"} <= set(names)
    assert not {"安监局", "煤监局", "文广新局", "旅游办", "国土局"} & set(names)
    assert second.result_document_no == "蛟市职转办〔2020〕1号（示例）"
    states = set(session.scalars(select(Item.state).where(Item.assessment_id == second.id)))
    assert states == {State.SCORED.value}
    # The 安监局 account acts for 应急管理局 in 2019; the split part got an account of its own.
    anjian_user = session.execute(
        select(User).where(User.display_name == "安监局填报员")
    ).scalar_one()
    yingji = next(d for d in second.departments if d.name == "应急管理局")
    assert department_for(anjian_user, second.id) == yingji
    assert made.second_users == ["dept27", "dept28"]  # 住建局 split: 人防办 and the new 住建局
    # Year over year: 应急管理局 shows its predecessors' 2018 results, marked, and its own 2019.
    unit = find_unit(session, "应急管理局")
    assert unit is not None
    years = unit_history(session, unit)
    assert [(y.year, y.via.name if y.via else None) for y in years] == [
        (2018, "安监局"),
        (2018, "煤监局"),
        (2019, None),
    ]
    assert all(y.complete for y in years)
    # A rename keeps the unit: 自然资源局 has 国土局's 2018 year as its own.
    ziran = find_unit(session, "自然资源局")
    assert ziran is not None
    assert [(y.year, y.via) for y in unit_history(session, ziran)] == [(2018, None), (2019, None)]
    assert session.scalar(select(Assessment.published_at).where(Assessment.id == first.id))
    assert verify_chain(session).ok
    assert reconcile(session).ok
