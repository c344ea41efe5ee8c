"""A stored scheme edited while an admin creates a year from it: the new assessment is made
from the very content its scheme version keeps (that version is frozen by the creation).

Deterministic (tests/concurrency.py): the save stops at its commit, the creation runs until it
writes or waits on a lock, then the save commits. Both backends; the race was real on
PostgreSQL (SQLite takes its write lock before the creation reads the scheme).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.concurrency import one_behind_the_other
from tests.factories import World, moved_to_year
from workflow.db import make_sessionmaker
from workflow.models import Assessment, StoredScheme, User
from workflow.scheme import SCHEMES_DIR
from workflow.schemes import get_stored_scheme, load_scheme, read_yaml, save_scheme, use_scheme
from workflow.setup import create_assessment

TEXT_2018 = (SCHEMES_DIR / "jiaohe-2018.yaml").read_text("utf-8")


def test_a_scheme_edited_while_a_year_is_created_from_it_stays_what_the_year_was_made_from(
    engine: Engine, session: Session, world: World
) -> None:
    """Admin A fixes a typo in an unused scheme version (saved in place) while admin B creates
    2019 from that version (as the API and the portal do: find the version, load its rules,
    create, link and freeze it). B's year must not be made from the text A replaced while the
    version it is linked to, frozen, says A's: B reads the version after A's save."""
    data = {**moved_to_year(read_yaml(TEXT_2018), 2019), "document_no": "蛟市职转办〔2019〕9号"}
    saved = save_scheme(session, data, actor=world.admin).record
    session.commit()
    scheme_id, admin_id = saved.id, world.admin.id
    edited = {**data, "title": data["title"] + "（修订）"}

    def edit(held: sessionmaker[Session]) -> str:
        with held() as s:
            outcome = save_scheme(s, edited, actor=s.get_one(User, admin_id)).status
            s.commit()
            return outcome

    def create() -> Any:
        with make_sessionmaker(engine)() as s:
            admin = s.get_one(User, admin_id)
            record = get_stored_scheme(s, scheme_id)
            made = create_assessment(
                s, load_scheme(s, record.id), year=2019,
                result_document_no="蛟市职转办〔2020〕1号", actor=admin,
            )  # fmt: skip
            use_scheme(s, record, made, actor=admin)
            s.commit()
            return made.id

    outcome, made_id = one_behind_the_other(engine, edit, create)
    assert outcome == "updated"  # in place: nothing used the version when the save checked
    session.expire_all()
    made = session.get_one(Assessment, made_id)
    record = session.get_one(StoredScheme, made.scheme_id)
    assert record.frozen_at is not None
    assert made.title == record.title == edited["title"]
