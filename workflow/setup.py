"""Install a scheme into the database: assessment, departments, indicators, items."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.audit import record_event
from workflow.models import (
    Assessment,
    Category,
    Department,
    DepartmentAlias,
    Indicator,
    Item,
    ScoringPoint,
    User,
)
from workflow.scheme import Scheme


def install_scheme(session: Session, scheme: Scheme, actor: User | None = None) -> Assessment:
    """Create the assessment of a scheme with one draft item per department × indicator.

    Idempotent: a scheme whose code is already installed is returned unchanged.
    """
    existing = session.execute(
        select(Assessment).where(Assessment.code == scheme.code)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    assessment = Assessment(
        code=scheme.code,
        year=scheme.year,
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
    departments: list[Department] = []
    for pos, d in enumerate(scheme.departments):
        dep = Department(
            assessment_id=assessment.id, name=d.name, full_name=d.full_name, position=pos
        )
        dep.aliases = [DepartmentAlias(alias=a, kind="alias") for a in d.aliases] + [
            DepartmentAlias(alias=o, kind="office") for o in d.offices
        ]
        session.add(dep)
        departments.append(dep)
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
            for spos, s in enumerate(i.sub_items):
                session.add(
                    ScoringPoint(
                        indicator_id=ind.id,
                        code=s.code,
                        title=s.title,
                        max_points=s.max_points,
                        routine=s.routine,
                        position=spos,
                    )
                )
            indicators.append(ind)
    session.flush()
    items = [
        Item(assessment_id=assessment.id, department_id=dep.id, indicator_id=ind.id)
        for dep in departments
        for ind in indicators
    ]
    session.add_all(items)
    session.flush()
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
            "items": len(items),  # what reconciliation expects the assessment to hold
        },
    )
    return assessment


def find_department(session: Session, assessment_id: int, name: str) -> Department | None:
    """Find a department by its name, full name, alias or office name."""
    name = name.strip()
    dep = session.execute(
        select(Department).where(
            Department.assessment_id == assessment_id,
            (Department.name == name) | (Department.full_name == name),
        )
    ).scalar_one_or_none()
    if dep is not None:
        return dep
    return session.execute(
        select(Department)
        .join(DepartmentAlias, DepartmentAlias.department_id == Department.id)
        .where(Department.assessment_id == assessment_id, DepartmentAlias.alias == name)
    ).scalar_one_or_none()
