"""Factories for tests: an installed assessment and users of every role."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import io
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.base import ObjectStore
from workflow.demo import demo_pdf
from workflow.evidence import attach_evidence
from workflow.models import Assessment, Department, Evidence, Indicator, Item, User
from workflow.scheme import SCHEMES_DIR, Scheme, parse_scheme
from workflow.setup import install_scheme
from workflow.users import create_user


@dataclass
class World:
    """An installed assessment and a cast of users."""

    assessment: Assessment
    dep_a: Department
    dep_b: Department
    member_a: User
    member_b: User
    reviewer: User
    reviewer2: User
    verifier: User
    scorer: User
    scorer2: User
    auditor: User
    admin: User
    reviewer_in_a: User  # an office reviewer who also belongs to department A

    def item(self, session: Session, dep: Department, indicator_code: str) -> Item:
        """Return the item of a department × indicator."""
        return session.execute(
            select(Item)
            .join(Indicator, Indicator.id == Item.indicator_id)
            .where(
                Item.department_id == dep.id,
                Indicator.code == indicator_code,
                Indicator.assessment_id == self.assessment.id,
            )
        ).scalar_one()


#: The users of `make_world`: roles, and the index of their department (None: the office).
_CAST: dict[str, tuple[list[str], int | None]] = {
    "member_a": (["department"], 0),
    "member_b": (["department"], 1),
    "reviewer": (["reviewer"], None),
    "reviewer2": (["reviewer"], None),
    "verifier": (["verifier"], None),
    "scorer": (["scorer"], None),
    "scorer2": (["scorer"], None),
    "auditor": (["auditor"], None),
    "admin": (["admin"], None),
    "reviewer_in_a": (["reviewer", "verifier", "scorer"], 0),
}


def without_check_points(scheme: Scheme) -> Scheme:
    """The scheme without its verifier's check points (核查要点)."""
    return dataclasses.replace(
        scheme,
        categories=tuple(
            dataclasses.replace(
                c,
                indicators=tuple(dataclasses.replace(i, check_points=()) for i in c.indicators),
            )
            for c in scheme.categories
        ),
    )


def make_world(session: Session, scheme: Scheme, *, check_points: bool = False) -> World:
    """Install the scheme and create users (no passwords: hashing is slow and not tested here).

    The shared world leaves out the scheme's check points (核查要点), so that a test verifies
    an item without answering a checklist; tests/integration/test_checklist.py installs them.
    """
    if not check_points:
        scheme = without_check_points(scheme)
    assessment = install_scheme(session, scheme)
    deps = assessment.departments
    u = {
        name: create_user(session, name, roles, department=deps[dep] if dep is not None else None)
        for name, (roles, dep) in _CAST.items()
    }
    session.commit()
    return World(assessment=assessment, dep_a=deps[0], dep_b=deps[1], **u)


def load_world(session: Session, scheme: Scheme) -> World | None:
    """Return the world `make_world` installed in this database earlier, or None.

    tests/conftest.py installs the world once per run into a template database and starts
    each test that asks for it from a copy: loading it back costs three queries.
    """
    assessment = session.execute(
        select(Assessment).where(Assessment.code == scheme.code)
    ).scalar_one_or_none()
    if assessment is None:
        return None
    found = session.execute(select(User).where(User.username.in_(_CAST))).scalars()
    users = {u.username: u for u in found}
    deps = assessment.departments
    return World(assessment=assessment, dep_a=deps[0], dep_b=deps[1], **users)


def add_evidence(
    session: Session,
    store: ObjectStore,
    item: Item,
    user: User,
    *,
    sub_item: str | None = None,
    purpose: str = "evidence",
    name: str = "材料.pdf",
) -> Evidence:
    """Attach a small real PDF through the real operation."""
    return attach_evidence(
        session,
        store,
        item.id,
        user,
        io.BytesIO(demo_pdf(f"{item.id}-{sub_item}-{purpose}-{name}")),
        name,
        sub_item=sub_item,
        purpose=purpose,
        max_size=10 * 1024 * 1024,
    )


_RAW_2018 = yaml.safe_load((SCHEMES_DIR / "jiaohe-2018.yaml").read_text("utf-8"))
_MINI = itertools.count()


def mini_scheme(
    indicators: tuple[str, ...] = ("1", "3"), departments: int = 2, *, check_points: bool = False
) -> Scheme:
    """A small valid scheme cut from the 2018 rules: chosen indicators, few departments
    (without the check points unless asked, as `make_world`)."""
    data = copy.deepcopy(_RAW_2018)
    n = next(_MINI)
    data["code"] = f"mini-{n}"
    data["departments"] = [{"name": f"第{k}局{n}"} for k in range(departments)]
    categories = []
    for cat in data["categories"]:
        cat["indicators"] = [i for i in cat["indicators"] if i["code"] in indicators]
        if not check_points:
            for indicator in cat["indicators"]:
                indicator.pop("check_points", None)
        if cat["indicators"]:
            cat["max_points"] = sum(i["max_points"] for i in cat["indicators"])
            categories.append(cat)
    data["categories"] = categories
    data["total_points"] = sum(c["max_points"] for c in categories)
    return parse_scheme(data)


def moved_to_year(data: dict[str, Any], year: int) -> dict[str, Any]:
    """Scheme data restated for another year: the year in its code, titles and counting
    window too (what 复制为下一年度 does), so the loader takes it."""
    moved = copy.deepcopy(data)
    old, new = str(moved["year"]), str(year)
    moved["year"] = year
    for key in ("code", "title", "notice_title"):
        if isinstance(moved.get(key), str):
            moved[key] = moved[key].replace(old, new)
    routine = moved.get("routine") or {}
    for key in ("counting_starts", "counting_ends"):
        if key in routine:
            routine[key] = str(routine[key]).replace(old, new)
    return moved


def submit_items(
    session: Session, store: ObjectStore, world: World, items: list[Item]
) -> list[Item]:
    """Submit the items through the real operations: one PDF each, submitted by a member of
    the item's department (created when the world has none). Commits; returns the items."""
    from workflow.actions import TransitionRequest, transition_item

    members: dict[int, User] = {world.dep_a.id: world.member_a, world.dep_b.id: world.member_b}
    for item in items:
        member = members.get(item.department_id)
        if member is None:
            dep = session.get_one(Department, item.department_id)
            member = create_user(session, f"member_{dep.id}", ["department"], department=dep)
            members[dep.id] = member
        add_evidence(session, store, item, member)
        transition_item(session, item.id, member, TransitionRequest("submit", item.version))
    session.commit()
    return items


def set_scored(session: Session, dep: Department, scored: int, points: Decimal) -> None:
    """Put the department's first `scored` items (by indicator) at `scored` with `points`
    each and the rest at `verified` without a total: a direct write, no audit event (for
    what reads the results only)."""
    items = session.scalars(
        select(Item)
        .join(Indicator, Indicator.id == Item.indicator_id)
        .where(Item.department_id == dep.id)
        .order_by(Indicator.position, Indicator.id)
    ).all()
    for n, item in enumerate(items):
        item.state = "scored" if n < scored else "verified"
        item.total = points if n < scored else None
    session.flush()


def results_in_progress(
    session: Session, world: World
) -> tuple[Department, Department, Department]:
    """Three departments finished and one still being scored, the rest not started:
    department A has 90 (10 items × 9), the third 80 (10 × 8), the fourth 20 (10 × 2),
    department B 30 with 3 of its 10 items scored. Ranked on every total, B stood 3rd on its
    partial sum and pushed the fourth to 4th; ranked among the finished, A is 1st, the third
    2nd, the fourth 3rd, B and the 22 others unranked. Commits; returns (third, fourth, B)."""
    third, fourth = session.scalars(
        select(Department)
        .where(Department.assessment_id == world.assessment.id)
        .order_by(Department.position, Department.id)
        .offset(2)
        .limit(2)
    ).all()
    set_scored(session, world.dep_a, 10, Decimal(9))
    set_scored(session, third, 10, Decimal(8))
    set_scored(session, fourth, 10, Decimal(2))
    set_scored(session, world.dep_b, 3, Decimal(10))
    session.commit()
    return third, fourth, world.dep_b


def appealable(
    session: Session, store: ObjectStore, world: World, item: Item, member: User
) -> Item:
    """The item submitted by `member` (one PDF), reviewed, verified and scored (1.1: 5, 1.2: 2
    with a reason) through the real operations, with an appeal window open now."""
    from workflow import actions

    add_evidence(session, store, item, member)
    actions.submit_item(session, item.id, member, item.version)
    actions.review_item(session, item.id, world.reviewer, item.version)
    actions.verify_item(session, item.id, world.verifier, item.version)
    actions.score_item(
        session, item.id, world.scorer, item.version, scores={"1.1": 5, "1.2": 2},
        deductions={"1.2": "未指定专人"},
    )  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    open_appeals(session, world, now - dt.timedelta(days=1), now + dt.timedelta(days=3))
    return item


def open_appeals(session: Session, world: World, opens: dt.datetime, closes: dt.datetime) -> None:
    """Open an appeal window ahead of publication, as an admin may: with the department's
    scores shown before the 公示 (an appeal needs a score its department can see)."""
    from workflow.assessments import set_appeal_window
    from workflow.notices import set_result_settings

    set_appeal_window(session, world.assessment, opens, closes, actor=world.admin)
    set_result_settings(session, world.assessment, actor=world.admin, hide_scores=False)


def at_once(*targets: Callable[[], object]) -> None:
    """Run the targets in threads released together (a barrier), and wait for them all."""
    barrier = threading.Barrier(len(targets))

    def run(target: Callable[[], object]) -> None:
        barrier.wait()
        target()

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def rules_2019(scheme_2018: Scheme) -> Scheme:
    """The 2018 rules restated for 2019, with their own number (for a second year)."""
    return dataclasses.replace(
        scheme_2018, code="jiaohe-2019", year=2019, title="2019年度市政府相关部门考核细则",
        document_no="蛟市职转办〔2019〕9号",
    )  # fmt: skip


def set_result_document_no(
    factory: Callable[[], Session], assessment_id: int, value: str | None
) -> None:
    """Set or clear the results' 发文字号 in a session of its own: another admin's edit, made
    behind the back of the request under test."""
    with factory() as s:
        row = update(Assessment).where(Assessment.id == assessment_id)
        s.execute(row.values(result_document_no=value))
        s.commit()
