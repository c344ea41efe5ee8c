"""发文字号: the form GB/T 9704 gives a document number, and one number for one document.

A number is the issuer's short name (机关代字), the year in full between 六角括号, and the
sequence number without padding or 第, followed by 号: 蛟市职转办〔2019〕1号. A short note in
full-width brackets may follow (（示例）, as the demo's numbers carry). Year and sequence are
ASCII digits. Two numbers are the same number when their cores are (`document_no_core`): the
note, full-width forms and spaces do not make 蛟市职转办〔２０１８〕6号（公开） another number.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.db import lock_key, serialise
from workflow.errors import InvalidValue
from workflow.messages import N_, Note
from workflow.models import Assessment

DOCUMENT_NO = re.compile(
    r"^(?P<issuer>[^\s〔〕\[\]()（）]+)〔(?P<year>[0-9]{4})〕(?P<seq>[1-9][0-9]{0,5})号"
    r"(?:（[^（）]{1,20}）)?$"
)
EXAMPLE = "蛟市职转办〔2019〕1号"
# A trailing note in brackets, after NFKC has made full-width brackets ASCII ones.
_NOTE = re.compile(r"\([^()]*\)$")


YEAR_NOT_ISSUE_YEAR = N_(
    "发文字号 %(number)s 的年份 %(number_year)s 与成文日期 %(date)s 不在同一年："
    "按 GB/T 9704，〔〕内为发文年份，请核对考核结果的发文字号"
)


#: A note about an accepted number (its year is not the issue date's).
NumberNote = Note


def number_year(number: str) -> int | None:
    """Return the year in 〔〕 of a well-formed number (None for another form)."""
    match = DOCUMENT_NO.match(number.strip())
    return int(match["year"]) if match is not None else None


def issue_year_notes(number: str | None, issued_on: dt.date) -> list[NumberNote]:
    """Name a number whose year is not the year of its 成文日期 (`number_year_not_issue_year`).

    GB/T 9704 §7.2.4: the year in 〔〕 is the year of issue. A warning, not a refusal: the
    office may issue a late correction under the year's number on purpose.
    """
    year = number_year(number or "")
    if year is None or year == issued_on.year:
        return []
    params = {"number": number, "number_year": year, "date": issued_on.isoformat()}
    return [NumberNote("number_year_not_issue_year", YEAR_NOT_ISSUE_YEAR, params)]


def document_no_core(number: str) -> str:
    """Return what identifies a number: NFKC-normalised, without spaces or a trailing note."""
    core = "".join(unicodedata.normalize("NFKC", number).split())
    while (bare := _NOTE.sub("", core)) != core:
        core = bare
    return core


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
    sequence number, no 号, digits other than ASCII), a year before the assessment's (its
    results cannot be issued before it), a number already given to another year's results
    notice or to any year's rules (the rules' own number included). Numbers are compared on
    their core (`document_no_core`): a note or full-width forms make no new number. The
    caller writes the number in the same transaction: the check holds a lock on the core
    until it ends.
    """
    core = document_no_core(number)
    if core == document_no_core(rules_no):
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
    serialise(session, lock_key("document_no", core))
    # One assessment a year: every number there is fits in memory, compared on its core.
    numbers = select(
        Assessment.id, Assessment.title, Assessment.result_document_no, Assessment.document_no
    )
    for row in session.execute(numbers):
        results_no = row.result_document_no if row.id != assessment_id else None
        if core in {document_no_core(n) for n in (results_no, row.document_no) if n}:
            raise InvalidValue(
                "发文字号 %(number)s 已用于%(title)s的文件，每份文件须有自己的文号",
                code="bad_document_no",
                params={"number": number, "title": row.title},
            )
    return number
