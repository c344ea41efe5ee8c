"""发文字号: the form GB/T 9704 gives a document number, and one number for one document.

A number is the issuer's short name (机关代字), the year in full between 六角括号, and the
sequence number without padding or 第, followed by 号: 蛟市职转办〔2019〕1号. A short note in
full-width brackets may follow (（示例）, as the demo's numbers carry).
"""

from __future__ import annotations

import re

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from workflow.db import lock_key, serialise
from workflow.errors import InvalidValue
from workflow.models import Assessment

DOCUMENT_NO = re.compile(
    r"^(?P<issuer>[^\s〔〕\[\]()（）]+)〔(?P<year>\d{4})〕(?P<seq>[1-9]\d{0,5})号(?:（[^（）]{1,20}）)?$"
)
EXAMPLE = "蛟市职转办〔2019〕1号"


def check_document_no(
    session: Session,
    number: str,
    *,
    year: int,
    rules_no: str,
    assessment_id: int | None = None,
) -> str:
    """Return `number` if it is a well-formed 发文字号 that no other document holds.

    Refused (422 `bad_document_no`): another form (square brackets, a padded or missing
    sequence number, no 号), a year before the assessment's (its results cannot be issued
    before it), a number already given to another year's results notice or to any year's
    rules (the rules' own number included). The caller writes the number in the same
    transaction: the check holds a lock on the number until it ends.
    """
    if number == rules_no.strip():
        raise InvalidValue(
            "考核结果通知书须有自己的发文字号，不能使用考核细则的文号 %(number)s",
            code="bad_document_no",
            params={"number": number},
        )
    match = DOCUMENT_NO.match(number)
    if match is None:
        raise InvalidValue(
            "发文字号应为“机关代字〔年份〕序号号”，如 %(example)s：年份写全并用六角括号〔〕，"
            "序号不编虚位（1 不写作 01）",
            code="bad_document_no",
            params={"example": EXAMPLE},
        )
    if int(match["year"]) < year:
        raise InvalidValue(
            "发文字号的年份 %(number_year)s 早于考核年度 %(year)s",
            code="bad_document_no",
            params={"number_year": match["year"], "year": year},
        )
    # Two admins giving one number to two documents at once queue here, so the second sees
    # the first's (the check and the write are in the same transaction).
    serialise(session, lock_key("document_no", number))
    other_results = Assessment.result_document_no == number
    if assessment_id is not None:
        other_results = other_results & (Assessment.id != assessment_id)
    holder = session.execute(
        select(Assessment.title).where(or_(other_results, Assessment.document_no == number))
    ).first()
    if holder is not None:
        raise InvalidValue(
            "发文字号 %(number)s 已用于%(title)s的文件，每份文件须有自己的文号",
            code="bad_document_no",
            params={"number": number, "title": holder.title},
        )
    return number
