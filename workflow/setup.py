"""Install a scheme into the database: assessment, departments, indicators, items."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from workflow.audit import record_event
from workflow.db import serialise
from workflow.departments import department_state
from workflow.docnumbers import check_document_no
from workflow.errors import Conflict, Forbidden, InvalidValue
from workflow.models import (
    Assessment,
    Category,
    Department,
    DepartmentAlias,
    Indicator,
    Item,
    ScoringPoint,
    Unit,
    User,
)
from workflow.permissions import forget_own_departments
from workflow.scheme import Scheme
from workflow.scheme_figures import fingerprint, indicator_figures
from workflow.states import Role
from workflow.units import (
    UNIT_NAMES_LOCK,
    NewUnit,
    get_unit,
    known_names,
    make_unit,
    name_key,
    proposed_units,
    remember_unit,
    unit_for_department,
    unit_state,
)


def _assessment_row(session: Session, scheme: Scheme, *, code: str, year: int) -> Assessment:
    assessment = Assessment(
        code=code,
        year=year,
        title=scheme.title,
        notice_title=scheme.notice_title,
        document_no=scheme.document_no,
        issuer=scheme.issuer,
        signed_on=scheme.signed_on,
        total_points=scheme.total_points,
        converted_points=scheme.converted_points,
        appeal_window_days=scheme.appeal_window_days,
        timezone=scheme.timezone,
        routine_config=scheme.routine,
        blocks_late_submissions=scheme.block_late_submissions,
    )
    session.add(assessment)
    session.flush()
    return assessment


def _install_rules(session: Session, assessment: Assessment, scheme: Scheme) -> list[Indicator]:
    """The scheme's categories, indicators and scoring points in the assessment."""
    indicators: list[Indicator] = []
    for cpos, c in enumerate(scheme.categories):
        cat = Category(
            assessment_id=assessment.id,
            code=c.code,
            title=c.title,
            max_points=c.max_points,
            position=cpos,
        )
        session.add(cat)
        session.flush()
        for i in c.indicators:
            ind = Indicator(
                assessment_id=assessment.id,
                category_id=cat.id,
                code=i.code,
                title=i.title,
                max_points=i.max_points,
                evidence_basis=i.evidence_basis,
                check_points=[
                    {"code": c.code, "text": c.text, "method": c.method} for c in i.check_points
                ],
                position=len(indicators),
            )
            session.add(ind)
            session.flush()
            for spos, sub in enumerate(i.sub_items):
                session.add(
                    ScoringPoint(
                        indicator_id=ind.id,
                        code=sub.code,
                        title=sub.title,
                        max_points=sub.max_points,
                        routine=sub.routine,
                        position=spos,
                    )
                )
            indicators.append(ind)
    session.flush()
    return indicators


def scheme_figures(scheme: Scheme) -> dict[str, Any]:
    """The figures `assessment_created` records (`workflow.scheme_figures`), by indicator."""
    return {
        i.code: indicator_figures(
            i.max_points,
            [c.code for c in i.check_points],
            [(s.code, s.max_points, s.title) for s in i.sub_items],
        )
        for c in scheme.categories
        for i in c.indicators
    }


def _figures_payload(scheme: Scheme) -> dict[str, Any]:
    figures = scheme_figures(scheme)
    return {"figures": figures, "figures_sha256": fingerprint(figures)}


def _made_payload(assessment: Assessment, departments: list[Department]) -> dict[str, Any]:
    """The assessment's settings and its departments as made (what reconciliation expects
    the rows to hold until an audited operation changes them): `assessment[<id>]` and
    `department[<id>]` in `audit verify`. The routine rules by their SHA-256."""
    return {
        "title": assessment.title,
        "notice_title": assessment.notice_title,
        "issuer": assessment.issuer,
        "signed_on": assessment.signed_on,
        "total_points": assessment.total_points,
        "converted_points": assessment.converted_points,
        "appeal_window_days": assessment.appeal_window_days,
        "timezone": assessment.timezone,
        "blocks_late_submissions": assessment.blocks_late_submissions,
        "result_document_no": assessment.result_document_no,
        "routine_sha256": fingerprint(assessment.routine_config or {}),
        "department_states": [department_state(dep) for dep in departments],
    }


def _items(
    session: Session,
    assessment: Assessment,
    departments: list[Department],
    indicators: list[Indicator],
) -> int:
    items = [
        Item(assessment_id=assessment.id, department_id=dep.id, indicator_id=ind.id)
        for dep in departments
        for ind in indicators
    ]
    session.add_all(items)
    session.flush()
    return len(items)


def install_scheme(session: Session, scheme: Scheme, actor: User | None = None) -> Assessment:
    """Create the assessment of a scheme with one draft item per department × indicator.

    Each of the scheme's departments is the appearance of a unit found by name (or made).
    Idempotent: a scheme whose code is already installed is returned unchanged.
    """
    existing = session.execute(
        select(Assessment).where(Assessment.code == scheme.code)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    serialise(session, UNIT_NAMES_LOCK)  # units are found by name, or made: as a change does
    assessment = _assessment_row(session, scheme, code=scheme.code, year=scheme.year)
    departments: list[Department] = []
    units_made: list[Unit] = []
    used: set[int] = set()
    known = known_names(session)  # read once: a scheme may name a thousand departments
    for pos, d in enumerate(scheme.departments):
        spec = NewUnit(d.name, d.full_name, tuple(d.aliases), tuple(d.offices))
        unit, made = unit_for_department(session, spec, known)
        if unit.id in used:  # two departments found one unit: the second is a unit of its own
            unit, made = make_unit(session, spec), True
            remember_unit(known, unit)
        used.add(unit.id)
        if made:
            units_made.append(unit)
        dep = Department(
            assessment_id=assessment.id,
            unit_id=unit.id,
            name=d.name,
            full_name=d.full_name,
            position=pos,
        )
        dep.aliases = [DepartmentAlias(alias=a, kind="alias") for a in d.aliases] + [
            DepartmentAlias(alias=o, kind="office") for o in d.offices
        ]
        session.add(dep)
        departments.append(dep)
    indicators = _install_rules(session, assessment, scheme)
    count = _items(session, assessment, departments, indicators)
    record_event(
        session,
        actor=actor,
        action="assessment_created",
        target_type="assessment",
        target_id=assessment.id,
        payload={
            "code": scheme.code,
            "year": scheme.year,
            "document_no": scheme.document_no,
            "departments": len(departments),
            "indicators": len(indicators),
            "items": count,  # what reconciliation expects the assessment to hold
            "units_created": [u.id for u in units_made],  # units first seen in this scheme
            "unit_states": [unit_state(u) for u in units_made],  # as made: reconciled
            **_figures_payload(scheme),  # what reconciliation expects the rules to hold
            **_made_payload(assessment, departments),
        },
    )
    return assessment


MAX_DOCUMENT_NO = 100
MAX_ISSUER = 200


def _mapped_units(session: Session, unit_ids: Sequence[Any] | None) -> list[Unit]:
    """The units to assess: the given ids (each active, once), or the lineage's proposal."""
    if unit_ids is None:
        units = proposed_units(session)
    else:
        units = []
        seen: set[int] = set()
        for raw in unit_ids:
            if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw < 2**31:
                raise InvalidValue("units 须为单位编号（整数）的列表", code="bad_change_units")
            if raw in seen:  # named, not numbered: the id means nothing to the clerk
                raise InvalidValue(
                    "单位“%(name)s”选了两次",
                    code="bad_change_units",
                    params={"name": get_unit(session, raw).name},
                )
            seen.add(raw)
            unit = get_unit(session, raw)
            if unit.status != "active":
                raise InvalidValue(
                    "单位“%(name)s”已合并、拆分或撤销，不能参加新年度考核",
                    code="unit_not_active",
                    params={"name": unit.name},
                )
            units.append(unit)
    if not units:
        raise InvalidValue("请至少选择一个被考核单位", code="units_required")
    by_name: dict[str, Unit] = {}
    for unit in units:  # each unit is a department named as the unit: one name, one department
        first = by_name.setdefault(name_key(unit.name), unit)
        if first is not unit:
            raise Conflict(
                "单位“%(first)s”（编号 %(first_id)s）与单位“%(second)s”（编号 %(second_id)s）"
                "名称相同，不能在同一年度考核中各为一个部门：请先在“被考核单位”中更名或合并",
                code="unit_names_clash",
                params={
                    "first": first.name,
                    "first_id": first.id,
                    "second": unit.name,
                    "second_id": unit.id,
                },
            )
    return units


#: The advisory lock that serialises the creation of assessments on PostgreSQL.
_CREATE_LOCK = 0x66676601


def create_assessment(
    session: Session,
    scheme: Scheme,
    *,
    year: Any,
    result_document_no: Any,
    issuer: Any = None,
    unit_ids: Sequence[Any] | None = None,
    actor: User | None,
) -> Assessment:
    """A new year's assessment under a scheme for the mapped units (default: the lineage's
    proposal: every active unit, so merged units are assessed as one and split ones each),
    with one draft item per unit × indicator; audited as `assessment_created`.

    The results notice carries `result_document_no` (发文字号), never the rules' number.
    Refused (nothing made): a year out of range, a missing number, an ended or unknown unit,
    a scheme written for another year (422), a year that has an assessment already (409: one
    assessment per year, whatever its scheme).
    """
    if actor is not None and not (actor.is_active and actor.has_role(Role.ADMIN)):
        raise Forbidden("只有管理员可以创建考核", code="role_required")
    if isinstance(year, bool) or not isinstance(year, int) or not 2000 <= year <= 2100:
        raise InvalidValue("考核年度须为 2000 到 2100 之间的整数", code="bad_year")
    doc = "".join(result_document_no.split()) if isinstance(result_document_no, str) else ""
    if not doc or len(doc) > MAX_DOCUMENT_NO:
        raise InvalidValue(
            "请填写考核结果通知书的发文字号（不超过 %(max)s 字）",
            code="document_no_required",
            params={"max": MAX_DOCUMENT_NO},
        )
    name = issuer.strip() if isinstance(issuer, str) else ""
    if len(name) > MAX_ISSUER:
        raise InvalidValue("发文机关不超过 %(max)s 字", code="too_long", params={"max": MAX_ISSUER})
    if scheme.year != year:
        # The rules name their year throughout (title, notice title, counting window of the
        # routine records): another year's scheme is copied to this year first.
        raise InvalidValue(
            "方案“%(title)s”是 %(scheme_year)s 年度的考核细则，不能用于 %(year)s 年度；"
            "请先在方案库中将其复制为 %(year)s 年度方案",
            code="scheme_year_mismatch",
            params={"title": scheme.title, "scheme_year": scheme.year, "year": year},
        )
    code = scheme.code
    serialise(session, _CREATE_LOCK)  # two admins creating the same year at once queue here
    # The units are read as unit changes leave them: a merge, split, rename or dissolution in
    # flight commits first (an ended unit is then refused), a later one waits for the year.
    serialise(session, UNIT_NAMES_LOCK)
    existing = session.execute(
        select(Assessment.title).where((Assessment.year == year) | (Assessment.code == code))
    ).first()
    if existing is not None:
        raise Conflict(
            "%(year)s 年度的考核已存在（%(title)s）：每个年度只有一个考核",
            code="assessment_exists",
            params={"year": year, "title": existing.title},
        )
    check_document_no(session, doc, year=year, rules_no=scheme.document_no)
    units = _mapped_units(session, unit_ids)
    # Whether the year takes the lineage's proposal as it stands (the portal sends the ticked
    # units, so a list equal to the proposal is the proposal), read before the new year's
    # departments join the positions the proposal orders by.
    as_proposed = unit_ids is None or {u.id for u in units} == {
        u.id for u in proposed_units(session)
    }
    assessment = _assessment_row(session, scheme, code=code, year=year)
    assessment.result_document_no = doc
    if name:
        assessment.issuer = name
    departments: list[Department] = []
    for pos, unit in enumerate(units):
        dep = Department(
            assessment_id=assessment.id,
            unit_id=unit.id,
            name=unit.name,
            full_name=unit.full_name,
            position=pos,
        )
        dep.aliases = [DepartmentAlias(alias=a.alias, kind=a.kind) for a in unit.aliases]
        session.add(dep)
        departments.append(dep)
    session.flush()
    indicators = _install_rules(session, assessment, scheme)
    count = _items(session, assessment, departments, indicators)
    forget_own_departments(session)
    record_event(
        session,
        actor=actor,
        action="assessment_created",
        target_type="assessment",
        target_id=assessment.id,
        payload={
            "code": code,
            "scheme_code": scheme.code,
            "year": year,
            "document_no": scheme.document_no,
            "departments": len(departments),
            "indicators": len(indicators),
            "items": count,
            "units": [u.id for u in units],
            "proposed": as_proposed,
            **_figures_payload(scheme),
            **_made_payload(assessment, departments),
        },
    )
    return assessment


def find_department(session: Session, assessment_id: int, name: str) -> Department | None:
    """Find a department by its name, full name, alias or office name (in that order).

    Names compare as units' do (`workflow.units.name_key`): “政府办(民族宗教局、法制办 )” is
    “政府办（民族宗教局、法制办）”."""
    key = name_key(name)
    if not key:
        return None
    deps = session.scalars(
        select(Department)
        .where(Department.assessment_id == assessment_id)
        .options(selectinload(Department.aliases))
        .order_by(Department.position, Department.id)
    ).all()
    for rank in range(3):  # names first, then full names, then aliases and offices
        for dep in deps:
            names = ([dep.name], [dep.full_name], [a.alias for a in dep.aliases])[rank]
            if any(name_key(n) == key for n in names):
                return dep
    return None
