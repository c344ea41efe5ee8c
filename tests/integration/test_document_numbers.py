"""发文字号: the form of GB/T 9704 and one number for one document, for the settings and for a
new year (found by an exploratory walk: another year's number and 〔2019〕01号 were saved)."""

from __future__ import annotations

import functools

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.factories import World, at_once, rules_2019
from workflow.db import make_sessionmaker
from workflow.docnumbers import DOCUMENT_NO, document_no_core
from workflow.errors import DomainError, InvalidValue
from workflow.models import Assessment, User
from workflow.notices import set_result_settings
from workflow.scheme import Scheme
from workflow.setup import create_assessment


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("蛟市职转办〔2019〕1号", True),
        ("蛟市职转办〔2020〕12号（示例）", True),
        ("吉市政办发〔2019〕103号", True),
        ("蛟市职转办[2019]1号", False),  # square brackets
        ("蛟市职转办〔2019〕01号", False),  # a padded sequence number
        ("蛟市职转办〔19〕1号", False),  # the year in full
        ("蛟市职转办〔2019〕第1号", False),
        ("蛟市职转办〔2019〕1", False),
        ("〔2019〕1号", False),  # no issuer
        ("蛟市职转办〔２０１９〕1号", False),  # full-width digits
        ("蛟市职转办〔2019〕１号", False),
        ("蛟市职转办〔٢٠١٩〕1号", False),  # other scripts' digits
        ("abc", False),
    ],
)
def test_the_form_of_a_document_number(number: str, ok: bool) -> None:
    assert (DOCUMENT_NO.match(number) is not None) is ok


def _refused(session: Session, world: World, number: str) -> str:
    with pytest.raises(InvalidValue) as err:
        set_result_settings(session, world.assessment, actor=world.admin, document_no=number)
    assert err.value.code == "bad_document_no"
    return err.value.message


def test_the_settings_keep_one_number_per_document(
    session: Session, world: World, scheme_2018: Scheme
) -> None:
    a = world.assessment
    assert "六角括号" in _refused(session, world, "蛟市职转办[2019]1号")
    assert "虚位" in _refused(session, world, "蛟市职转办〔2019〕01号")
    assert "早于考核年度 2018" in _refused(session, world, "蛟市职转办〔2017〕1号")
    assert "考核细则的文号" in _refused(session, world, a.document_no)
    # Spaces typed into a number go; the number is stored as written otherwise.
    set_result_settings(session, a, actor=world.admin, document_no=" 蛟市职转办 〔2019〕1号 ")
    assert a.result_document_no == "蛟市职转办〔2019〕1号"
    set_result_settings(session, a, actor=world.admin, document_no="蛟市职转办〔2019〕1号")
    # Next year may not take this year's number, for its results nor as it is created.
    scheme_2019 = rules_2019(scheme_2018)
    with pytest.raises(InvalidValue) as err:
        create_assessment(
            session, scheme_2019, year=2019, result_document_no="蛟市职转办〔2019〕1号",
            actor=world.admin,
        )  # fmt: skip
    assert "已用于" in err.value.message and a.title in err.value.message
    with pytest.raises(InvalidValue) as err:  # nor its own rules' number
        create_assessment(
            session, scheme_2019, year=2019, result_document_no="蛟市职转办〔2019〕9号",
            actor=world.admin,
        )  # fmt: skip
    assert "考核细则的文号" in err.value.message
    made = create_assessment(
        session, scheme_2019, year=2019, result_document_no="蛟市职转办〔2020〕1号",
        actor=world.admin,
    )  # fmt: skip
    session.flush()
    for taken in ("蛟市职转办〔2020〕1号", "蛟市职转办〔2019〕9号"):  # its results', its rules'
        with pytest.raises(InvalidValue) as err:
            set_result_settings(session, a, actor=world.admin, document_no=taken)
        assert made.title in err.value.message
    assert a.result_document_no == "蛟市职转办〔2019〕1号"


def test_a_note_or_full_width_forms_make_no_new_number(
    session: Session, world: World, scheme_2018: Scheme
) -> None:
    """The rules' own 〔2018〕6号 with （公开） after it, or in full-width digits, is the same
    number (found by an exploratory walk: both were saved, and 2019 took 2018's with a note)."""
    assert document_no_core("蛟市职转办〔２０１８〕6号（公开）") == "蛟市职转办〔2018〕6号"
    assert document_no_core(" 蛟市职转办〔2018〕6号 (示例)") == "蛟市职转办〔2018〕6号"
    a = world.assessment
    assert a.document_no == "蛟市职转办〔2018〕6号"
    assert "考核细则的文号" in _refused(session, world, "蛟市职转办〔2018〕6号（公开）")
    assert "考核细则的文号" in _refused(session, world, "蛟市职转办〔２０１８〕6号")
    assert "六角括号" in _refused(session, world, "蛟市职转办〔２０１９〕5号")  # ASCII digits only
    set_result_settings(session, a, actor=world.admin, document_no="蛟市职转办〔2019〕1号")
    scheme_2019 = rules_2019(scheme_2018)
    for taken in ("蛟市职转办〔2019〕1号（公开）", "蛟市职转办〔2019〕1号（示例）"):
        with pytest.raises(InvalidValue) as err:
            create_assessment(
                session, scheme_2019, year=2019, result_document_no=taken, actor=world.admin
            )
        assert err.value.code == "bad_document_no" and a.title in err.value.message
    # Its own number with a note added is still its own: no other document holds it.
    set_result_settings(session, a, actor=world.admin, document_no="蛟市职转办〔2019〕1号（公开）")
    assert a.result_document_no == "蛟市职转办〔2019〕1号（公开）"


def test_two_years_given_one_number_at_once_keep_it_once(
    engine: Engine, session: Session, world: World, scheme_2018: Scheme
) -> None:
    scheme_2019 = rules_2019(scheme_2018)
    create_assessment(
        session, scheme_2019, year=2019, result_document_no="蛟市职转办〔2020〕1号",
        actor=world.admin,
    )  # fmt: skip
    session.commit()
    ids = list(session.scalars(Assessment.__table__.select().with_only_columns(Assessment.id)))
    admin_id, factory = world.admin.id, make_sessionmaker(engine)
    outcomes: list[str] = []

    def give(assessment_id: int) -> None:
        with factory() as s:
            admin, target = s.get_one(User, admin_id), s.get_one(Assessment, assessment_id)
            try:
                set_result_settings(s, target, actor=admin, document_no="蛟市职转办〔2020〕7号")
                s.commit()
                outcomes.append("saved")
            except DomainError as exc:
                s.rollback()
                outcomes.append(exc.code)

    at_once(*(functools.partial(give, aid) for aid in ids))
    assert sorted(outcomes) == ["bad_document_no", "saved"]
    session.expire_all()
    numbers = session.scalars(
        Assessment.__table__.select().with_only_columns(Assessment.result_document_no)
    ).all()
    assert numbers.count("蛟市职转办〔2020〕7号") == 1


def test_the_cc_is_unit_names_separated_by_commas(session: Session, world: World) -> None:
    """抄送 lists units separated by commas (GB/T 9704); punctuation alone is no unit (an
    exploratory walk printed 抄送：，,，。)."""
    a = world.assessment
    with pytest.raises(InvalidValue) as err:
        set_result_settings(session, a, actor=world.admin, cc="，,，")
    assert err.value.code == "bad_cc"
    set_result_settings(
        session, a, actor=world.admin, cc=" 市政府办公室, 市纪委监委。；各乡镇、街道"
    )
    assert a.notice_cc == "市政府办公室，市纪委监委，各乡镇、街道"
    set_result_settings(session, a, actor=world.admin, cc="")
    assert a.notice_cc is None
    # One office twice (typed again, or once with 。) would be printed twice: refused, named.
    with pytest.raises(InvalidValue) as twice:
        set_result_settings(session, a, actor=world.admin, cc="市委办,市政府办，市委办。")
    assert twice.value.code == "bad_cc" and "抄送单位“市委办”写了两次" in twice.value.message
    assert a.notice_cc is None
