"""Factories for tests: an installed assessment and users of every role."""

from __future__ import annotations

import io
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.base import ObjectStore
from workflow.demo import demo_pdf
from workflow.evidence import attach_evidence
from workflow.models import Assessment, Department, Evidence, Indicator, Item, User
from workflow.scheme import Scheme
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


def make_world(session: Session, scheme: Scheme) -> World:
    """Install the scheme and create users (no passwords: hashing is slow and not tested here)."""
    assessment = install_scheme(session, scheme)
    deps = assessment.departments
    u = {
        name: create_user(session, name, roles, department=dep)
        for name, roles, dep in [
            ("member_a", ["department"], deps[0]),
            ("member_b", ["department"], deps[1]),
            ("reviewer", ["reviewer"], None),
            ("reviewer2", ["reviewer"], None),
            ("verifier", ["verifier"], None),
            ("scorer", ["scorer"], None),
            ("scorer2", ["scorer"], None),
            ("auditor", ["auditor"], None),
            ("admin", ["admin"], None),
            ("reviewer_in_a", ["reviewer", "verifier", "scorer"], deps[0]),
        ]
    }
    session.commit()
    return World(assessment=assessment, dep_a=deps[0], dep_b=deps[1], **u)


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
