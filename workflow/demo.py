"""A demonstration data set made through the real operations, so its audit chain is real."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.base import ObjectStore
from workflow import actions
from workflow.assessments import publish_assessment, set_appeal_window
from workflow.errors import Conflict
from workflow.evidence import attach_evidence
from workflow.models import (
    Assessment,
    Department,
    Evidence,
    Indicator,
    Item,
    Notice,
    RoutineRecord,
    ScoringPoint,
    User,
    utcnow,
)
from workflow.notices import set_result_settings
from workflow.routine import review_routine, submit_routine, suggestions_for
from workflow.scheme import SCHEMES_DIR
from workflow.states import Role, State
from workflow.users import create_user, get_user

# The order in which demo items are spread over the states.
DEMO_STATES = (
    State.DRAFT,
    State.SUBMITTED,
    State.REVIEWED,
    State.VERIFIED,
    State.SCORED,
    State.RETURNED,
    State.APPEALED,
    State.SCORED,
)
STAFF = (
    ("reviewer1", "初审员甲", ["reviewer"]),
    ("reviewer2", "初审员乙", ["reviewer"]),
    ("verifier1", "核实员甲", ["verifier"]),
    ("verifier2", "核实员乙", ["verifier"]),
    ("scorer1", "评分员甲", ["scorer"]),
    ("scorer2", "评分员乙", ["scorer"]),
    ("auditor1", "审计员", ["auditor"]),
)


@dataclass
class DemoResult:
    """What the demo made: user names and how many items reached each state."""

    users: list[str] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)


def demo_pdf(title: str) -> bytes:
    """Return a small valid PDF whose content differs per title (so hashes differ)."""
    text = title.encode("utf-8").hex()
    stream = f"BT /F1 12 Tf 72 720 Td <{text}> Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{n} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def run_demo(
    session: Session,
    store: ObjectStore,
    assessment: Assessment,
    *,
    password: str,
    admin: User | None,
    max_size: int = 200 * 1024 * 1024,
    complete: bool = False,
) -> DemoResult:
    """Create users for every role and move the 26 departments' items over every state.

    With `complete`, every item is scored instead and the results are published (公示), which
    is what the score notices and the summary table need.
    """
    if get_user(session, "reviewer1") is not None:
        raise Conflict("演示数据已存在", code="demo_exists")
    refuse_a_system_in_use(session)
    result = DemoResult()
    staff: dict[str, User] = {}
    for username, name, roles in STAFF:
        staff[username] = create_user(
            session, username, roles, password=password, display_name=name, actor=admin
        )
        result.users.append(username)
    departments = list(
        session.execute(
            select(Department)
            .where(Department.assessment_id == assessment.id)
            .order_by(Department.position)
        ).scalars()
    )
    indicators = list(
        session.execute(
            select(Indicator)
            .where(Indicator.assessment_id == assessment.id)
            .order_by(Indicator.position)
        ).scalars()
    )
    now = utcnow()
    set_appeal_window(
        session, assessment, now - dt.timedelta(days=1), now + dt.timedelta(days=7), actor=admin
    )
    if not complete:
        # Every state at once, appeals included: an appeal needs a score its department can
        # see, so this demo's departments see their scores as they are given.
        set_result_settings(session, assessment, actor=admin, hide_scores=False)
    members = []
    for d_index, dep in enumerate(departments):
        username = f"dept{d_index + 1:02d}"
        member = create_user(
            session,
            username,
            ["department"],
            department=dep,
            password=password,
            display_name=f"{dep.name}填报员",
            actor=admin,
        )
        result.users.append(username)
        members.append(member)
        _routine(session, store, assessment, dep, member, staff, d_index, max_size)
    for d_index, dep in enumerate(departments):
        member = members[d_index]
        for i_index, ind in enumerate(indicators):
            target = (
                State.SCORED if complete else DEMO_STATES[(d_index + i_index) % len(DEMO_STATES)]
            )
            item = session.execute(
                select(Item).where(Item.department_id == dep.id, Item.indicator_id == ind.id)
            ).scalar_one()
            _advance(session, store, item, ind, dep, member, staff, target, d_index, max_size)
            result.states[target.value] = result.states.get(target.value, 0) + 1
    if assessment.result_document_no is None:  # a demo number, so notices can be issued
        set_result_settings(
            session, assessment, actor=admin,
            document_no=f"蛟市职转办〔{assessment.year + 1}〕1号",
        )  # fmt: skip
    if complete and admin is not None:
        publish_assessment(session, assessment, assessment.appeal_window_days, actor=admin)
    return result


def refuse_a_system_in_use(session: Session) -> None:
    """Refuse to add the demonstration to an installation that already holds work of its own.

    The demo acts through the real operations: it writes its submissions, scores and
    publication into the audit trail, which nothing can remove, and creates accounts whose
    password is printed in the README. Run by mistake on a system in use (a command tried
    from the list), it mixed invented results into the official year. Only `init`'s own rows
    (the schemes, the administrators) may be there.
    """
    found = {
        "users": sum(not user.has_role(Role.ADMIN) for user in session.scalars(select(User))),
        "items": session.scalar(
            select(func.count()).select_from(Item).where(Item.state != State.DRAFT)
        ),
        "evidence": session.scalar(select(func.count()).select_from(Evidence)),
        "routine": session.scalar(select(func.count()).select_from(RoutineRecord)),
        "notices": session.scalar(select(func.count()).select_from(Notice)),
    }
    if any(found.values()):
        raise Conflict(
            "本系统已有数据（非管理员用户 %(users)s 个、已提交的事项 %(items)s 个、材料 "
            "%(evidence)s 个、常态化记录 %(routine)s 条、通知书 %(notices)s 份）：演示数据会"
            "写入不可删除的审计日志，并创建公开密码的账号，只能在新安装的系统上生成",
            code="demo_on_live_data",
            params={name: int(count or 0) for name, count in found.items()},
        )


def _routine(
    session: Session,
    store: ObjectStore,
    assessment: Assessment,
    dep: Department,
    member: User,
    staff: dict[str, User],
    d_index: int,
    max_size: int,
) -> None:
    """Routine records of 2018: monthly reports, quarterly cases, a meeting; some late."""
    tz = ZoneInfo(assessment.timezone)
    office = staff["reviewer1"]
    reports = []
    for month in range(8, 13):
        count = 2 if (d_index + month) % 4 else 1  # one in four months short of the quota
        for n in range(count):
            late = (d_index + month + n) % 7 == 0
            day = dt.datetime(2018 + (month == 12 and late), (month % 12) + 1 if late else month,
                              2 if late else 20, 10, 0, tzinfo=tz)  # fmt: skip
            reports.append(
                ("monthly_info", f"2018-{month:02d}", f"{dep.name}“放管服”信息{n + 1}", day)
            )
    for quarter, month in (("2018-Q3", 9), ("2018-Q4", 12)):
        if (d_index + month) % 5:
            reports.append(
                (
                    "quarterly_case",
                    quarter,
                    f"{dep.name}典型案例",
                    dt.datetime(2018, month, 25, tzinfo=tz),
                )
            )
    for kind, period, title, at in reports:
        name = f"{title}-{period}.pdf"
        record = submit_routine(
            session, store, assessment, member, kind=kind, period=period, title=title,
            stream=io.BytesIO(demo_pdf(name + dep.name)), filename=name, max_size=max_size,
            now=at.astimezone(dt.UTC),
        )  # fmt: skip
        rejected = (record.id + d_index) % 9 == 0
        review_routine(
            session, record.id, office, "rejected" if rejected else "accepted",
            "内容与“放管服”工作无关" if rejected else None,
        )  # fmt: skip
    # The office records how the department did (outcome): an absence is a record with the
    # outcome missed that counts against 10.1, not a rejected registration (rejecting means the
    # registration was made in error, and leaves it out of the count).
    attended = d_index % 6 != 0
    meeting = submit_routine(
        session, store, assessment, office, kind="meeting", period="2018-09",
        title="全市“放管服”改革推进会", stream=None, filename=None, department_id=dep.id,
        max_size=max_size, now=dt.datetime(2018, 9, 12, 9, 0, tzinfo=tz).astimezone(dt.UTC),
        outcome="done" if attended else "missed",
        note=None if attended else "未派员参会",
    )  # fmt: skip
    review_routine(session, meeting.id, office, "accepted")


def _advance(
    session: Session,
    store: ObjectStore,
    item: Item,
    ind: Indicator,
    dep: Department,
    member: User,
    staff: dict[str, User],
    target: State,
    d_index: int,
    max_size: int,
) -> None:
    """Move one item to `target` through the real operations."""
    points = list(
        session.execute(
            select(ScoringPoint)
            .where(ScoringPoint.indicator_id == ind.id)
            .order_by(ScoringPoint.position)
        ).scalars()
    )
    name = f"{dep.name}-指标{ind.code}-佐证材料.pdf"
    attach_evidence(
        session,
        store,
        item.id,
        member,
        io.BytesIO(demo_pdf(name)),
        name,
        sub_item=points[0].code,
        max_size=max_size,
    )
    claim = len(points) > 1 and d_index % 3 == 0
    not_involved: list[str] = []
    if claim:
        proof = f"{dep.name}-评分项{points[-1].code}-不涉及证明.pdf"
        attach_evidence(
            session,
            store,
            item.id,
            member,
            io.BytesIO(demo_pdf(proof)),
            proof,
            sub_item=points[-1].code,
            purpose="not_involved_proof",
            max_size=max_size,
        )
        not_involved = [points[-1].code]
    if target == State.DRAFT:
        return
    actions.submit_item(session, item.id, member, item.version, not_involved=not_involved)
    if target == State.SUBMITTED:
        return
    reviewer = staff["reviewer1"] if d_index % 2 == 0 else staff["reviewer2"]
    if target == State.RETURNED:
        actions.return_item(
            session, item.id, reviewer, item.version, "佐证材料不完整，请补充会议记录"
        )
        return
    actions.review_item(session, item.id, reviewer, item.version)
    if target == State.REVIEWED:
        return
    verifier = staff["verifier1"] if d_index % 2 == 0 else staff["verifier2"]
    # The checklist (核查要点): all 是, but every fifth department lacks a separate file (否).
    checks = {
        c["code"]: {"answer": "yes"}
        if d_index % 5 or "单独建档" not in c["text"]
        else {"answer": "no", "note": "相关材料未单独建档"}
        for c in ind.check_points
    }
    actions.verify_item(
        session, item.id, verifier, item.version,
        rulings=dict.fromkeys(not_involved, True), checks=checks,
    )  # fmt: skip
    if target == State.VERIFIED:
        return
    scores: dict[str, Decimal] = {}
    deductions: dict[str, str] = {}
    suggested = suggestions_for(session, item.assessment, item.department_id, utcnow())
    for n, p in enumerate(points):
        if p.code in not_involved:
            continue
        if p.code in suggested:  # routine points: take the suggestion from the records
            scores[p.code] = suggested[p.code].points
            if scores[p.code] < p.max_points:
                deductions[p.code] = "平时考核：部分期间未完成报送任务"
            continue
        cut = Decimal((d_index + n) % 3) if p.max_points > 2 else Decimal(0)
        scores[p.code] = p.max_points - cut
        if cut:
            deductions[p.code] = "部分材料未按时报送"
    scorer = staff["scorer1"]
    actions.score_item(session, item.id, scorer, item.version, scores=scores, deductions=deductions)
    if target == State.SCORED:
        return
    actions.appeal_item(session, item.id, member, item.version, "已于规定时间内报送，附回执")


#: The shipped 示例 reorganisation of the 26 units (two merges, one rename, one split).
REORGANISATION = SCHEMES_DIR / "reorganisations" / "2019-示例.yaml"
SECOND_SCHEME = "jiaohe-2019-shili"


@dataclass
class YearsResult:
    """What `run_years_demo` made: the first year's demo, the changes, the second year."""

    first: DemoResult
    changes: int
    second: Assessment
    second_users: list[str] = field(default_factory=list)


def run_years_demo(
    session: Session,
    store: ObjectStore,
    first: Assessment,
    *,
    password: str,
    admin: User | None,
    max_size: int = 200 * 1024 * 1024,
) -> YearsResult:
    """Two years and the lineage between them: the first year scored and published, the
    shipped 示例 reorganisation applied, the 示例 2019 scheme's year created for the proposed
    units (merged units once, split ones each) and every item scored through the real
    operations, by the same accounts (a merged unit's users act for the new unit)."""
    from workflow.permissions import department_id_for
    from workflow.schemes import (
        find_scheme,
        import_shipped,
        latest_version,
        load_scheme,
        use_scheme,
    )
    from workflow.setup import create_assessment
    from workflow.units import apply_reorganisation

    result = run_demo(
        session, store, first, password=password, admin=admin, max_size=max_size, complete=True
    )
    changes = apply_reorganisation(session, REORGANISATION, actor=admin)
    if latest_version(session, SECOND_SCHEME) is None:
        import_shipped(session, actor=admin)
    record = find_scheme(session, SECOND_SCHEME)
    second = create_assessment(
        session,
        load_scheme(session, record.id),
        year=record.year,
        result_document_no=f"蛟市职转办〔{record.year + 1}〕1号（示例）",
        issuer=None,
        actor=admin,
    )
    use_scheme(session, record, second, actor=admin)
    staff = {name: get_user(session, name) for name, _label, _roles in STAFF}
    members: dict[int, User] = {}
    for user in session.scalars(select(User).order_by(User.id)):
        if "department" in user.roles:
            dep_id = department_id_for(user, second.id)
            if dep_id is not None:
                members.setdefault(dep_id, user)
    departments = list(
        session.scalars(
            select(Department)
            .where(Department.assessment_id == second.id)
            .order_by(Department.position)
        )
    )
    indicators = list(
        session.scalars(
            select(Indicator)
            .where(Indicator.assessment_id == second.id)
            .order_by(Indicator.position)
        )
    )
    out = YearsResult(result, len(changes), second)
    for d_index, dep in enumerate(departments):
        member = members.get(dep.id)
        if member is None:  # a unit new in the reorganisation (a split part): its own account
            taken = sum(1 for u in result.users if u.startswith("dept"))
            username = f"dept{taken + len(out.second_users) + 1:02d}"
            member = create_user(
                session, username, ["department"], unit=dep.unit, password=password,
                display_name=f"{dep.name}填报员", actor=admin,
            )  # fmt: skip
            out.second_users.append(username)
        for ind in indicators:
            item = session.execute(
                select(Item).where(Item.department_id == dep.id, Item.indicator_id == ind.id)
            ).scalar_one()
            _score_year_item(session, store, item, dep, member, staff, d_index, max_size)
    return out


def _score_year_item(
    session: Session,
    store: ObjectStore,
    item: Item,
    dep: Department,
    member: User,
    staff: dict[str, User | None],
    d_index: int,
    max_size: int,
) -> None:
    """Evidence for every scoring point, then submit, review, verify and score (the second
    year's figures differ from the first's, so the chart has something to show)."""
    points = list(
        session.scalars(
            select(ScoringPoint)
            .where(ScoringPoint.indicator_id == item.indicator_id)
            .order_by(ScoringPoint.position)
        )
    )
    for p in points:
        name = f"{dep.name}-{item.assessment_id}-评分项{p.code}-佐证材料.pdf"
        attach_evidence(session, store, item.id, member, io.BytesIO(demo_pdf(name)), name,
                        sub_item=p.code, max_size=max_size)  # fmt: skip
    reviewer, verifier, scorer = staff["reviewer2"], staff["verifier2"], staff["scorer2"]
    assert reviewer is not None and verifier is not None and scorer is not None
    actions.submit_item(session, item.id, member, item.version)
    actions.review_item(session, item.id, reviewer, item.version)
    indicator = session.get_one(Indicator, item.indicator_id)
    checks = {c["code"]: {"answer": "yes"} for c in indicator.check_points or ()}  # 核查要点
    actions.verify_item(session, item.id, verifier, item.version, checks=checks)
    scores: dict[str, Decimal] = {}
    deductions: dict[str, str] = {}
    suggested = suggestions_for(session, item.assessment, item.department_id, utcnow())
    for n, p in enumerate(points):
        if p.code in suggested:  # routine points: the suggestion from the (absent) records
            scores[p.code] = suggested[p.code].points
            if scores[p.code] < p.max_points:
                deductions[p.code] = "平时考核：未按期报送"
            continue
        cut = Decimal((d_index * 2 + n) % 4) if p.max_points > 3 else Decimal(0)
        scores[p.code] = p.max_points - cut
        if cut:
            deductions[p.code] = "部分工作未按期完成"
    actions.score_item(session, item.id, scorer, item.version, scores=scores, deductions=deductions)
