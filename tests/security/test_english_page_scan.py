"""The reverse of the every-page scan: no Chinese interface text on an English page.

The every-page scan (test_every_page_scan.py) rejects English words on the Chinese pages; nothing
looked the other way, so an English page could still show an untranslated label, a Chinese colon
"：", a "、" between names, 【】 brackets or a message glued together from Chinese fragments.
Here every GET page is rendered with the English interface for every demo role (on the complete
demo data: it has every page the smaller shape has), the DATA the page may show is taken out of
its visible text first — department and unit names and aliases, user display names, the scheme's
titles and check points, document numbers, what people typed (reasons, comments, notes), file
names — and what remains must hold no CJK character and no full-width punctuation. The walk
(`english_failures`) runs inside the every-page scan's test on its complete demo and last
database, so the demo is built once for both scans; this module tests the data filter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from tests.security.conftest import DEMO_PASSWORD, DEMO_ROLES, Demo
from tests.security.portal_walk import department_of, methods, portal_rules, real_paths, sign_in
from tests.security.test_every_page_scan import visible_text
from workflow.models import (
    Assessment,
    AuditEvent,
    BulkRun,
    CalendarOverride,
    Category,
    Department,
    DepartmentAlias,
    Evidence,
    Indicator,
    Item,
    Notice,
    NoticeBase,
    RoutineFile,
    RoutineRecord,
    Score,
    ScoringPoint,
    StoredScheme,
    Unit,
    UnitAlias,
    UnitChange,
    UnitName,
    User,
)
from workflow.schemes import read_yaml

# CJK ideographs (and their extensions and compatibility forms), the CJK punctuation block
# (、。〈〉《》「」【】〔〕…) and the full-width forms (，：；（）！？…).
# A text cut short for a narrow column or a chart label.
CUT = re.compile(r"([^\n…]+)…")
CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]+")

# Columns whose values a page shows as they were written: names, the scheme's wording, document
# numbers, and what people typed. They stay Chinese in the English interface.
DATA_COLUMNS: tuple[InstrumentedAttribute[Any], ...] = (
    Assessment.title,
    Assessment.notice_title,
    Assessment.document_no,
    Assessment.issuer,
    Assessment.reopen_reason,
    Assessment.result_document_no,
    Assessment.notice_cc,
    StoredScheme.title,
    UnitName.name,
    UnitName.full_name,
    UnitAlias.alias,
    UnitChange.document_no,
    UnitChange.reason,
    Department.name,
    Department.full_name,
    DepartmentAlias.alias,
    Category.title,
    Indicator.title,
    Indicator.evidence_basis,
    ScoringPoint.title,
    User.display_name,
    Item.return_reason,
    Item.appeal_reason,
    Score.deduction_reason,
    Evidence.filename,
    Evidence.note,
    AuditEvent.comment,
    BulkRun.comment,
    Notice.filename,
    NoticeBase.filename,
    RoutineRecord.title,
    RoutineRecord.note,
    RoutineRecord.reason,
    RoutineFile.filename,
    CalendarOverride.reason,
)

# Chinese an English page shows on purpose, each with why (taken out of the text like data).
ALLOWED_CHINESE: dict[str, str] = {
    "中文": "the language switch names each language in its own script (as the Chinese page "
    "shows “English”), so a reader who cannot read the current one finds their own",
    "〔〕": "GB/T 9704's hexagonal brackets around a document number's year, named in the "
    "document number rules: an English reader has to type them",
    "〔year〕sequence号": "the shape of a Chinese document number (the 号 is part of it)",
    "蛟市职转办〔2019〕1号": "an example document number (placeholder): they are Chinese",
    "蛟市机编〔2019〕1号": "an example document number (placeholder): they are Chinese",
    "实地考核：": "the scheme editor's check point syntax (web/portal/schemes.py CHECK_LINE): "
    "the method is one of the scheme's own two words, then a colon",
    "平时考核：": "the scheme editor's check point syntax, as 实地考核：",
    "是否成立工作领导小组": "the scheme editor's example check point, in the scheme's language",
    "“验证码：”": "the label printed on the Chinese notice, which the reader looks for",
}


def _strings(value: Any) -> Iterator[str]:
    """Yield every string in a parsed scheme file (titles, check points, department names…)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for part in value.values():
            yield from _strings(part)
    elif isinstance(value, list):
        for part in value:
            yield from _strings(part)


# Keys of an audit event's payload whose values people typed (a check point's note, a
# resubmission's 修改说明, a withdrawal's reason).
TYPED_KEYS = {"note", "reason", "comment", "change_note"}


def _typed(value: Any) -> Iterator[str]:
    """Yield what people typed, kept in an audit payload."""
    if isinstance(value, dict):
        for key, part in value.items():
            if key in TYPED_KEYS and isinstance(part, str):
                yield part
            else:
                yield from _typed(part)
    elif isinstance(value, list):
        for part in value:
            yield from _typed(part)


def data_strings(session: Session) -> set[str]:
    """Return the data texts of the demo database that a page may show in either language."""
    found: set[str] = set()
    for column in DATA_COLUMNS:
        found.update(v for v in session.execute(select(column)).scalars() if v)
    for source in session.execute(select(StoredScheme.source)).scalars():
        found.update(_strings(read_yaml(source)))
    for payload in session.execute(select(AuditEvent.payload)).scalars():
        found.update(_typed(json.loads(payload or "{}")))
    for unit in session.execute(select(Unit)).scalars():  # a unit's current name, if kept apart
        found.update(str(v) for k, v in vars(unit).items() if isinstance(v, str) and k != "status")
    # A multi-line text is shown line by line (<br> or one paragraph per line).
    found |= {line.strip() for text in list(found) for line in text.splitlines()}
    return {s for s in found if s.strip() and CHINESE.search(s)}


@dataclass
class Data:
    """The data texts as one pattern (the longest first: a name inside a title), and every
    prefix of them: a long title is cut short with "…" in tables and chart labels."""

    pattern: re.Pattern[str]
    prefixes: set[str]


def data_of(strings: Iterable[str]) -> Data:
    """Return the data (and the allowed Chinese) ready to be taken out of a page's text."""
    ordered = sorted(set(strings) | set(ALLOWED_CHINESE), key=len, reverse=True)
    return Data(
        re.compile("|".join(re.escape(s) for s in ordered)),
        {s[:n] for s in ordered for n in range(1, len(s) + 1)},
    )


def _uncut(shown: str, data: Data) -> str:
    """Take out each "…"-cut text that begins a data text (the longest such tail of the text
    before the "…")."""

    def cut(match: re.Match[str]) -> str:
        before = match.group(1)
        for start in range(len(before)):
            if before[start:] in data.prefixes and CHINESE.search(before[start:]):
                return before[:start] + " "
        return match.group(0)

    return CUT.sub(cut, shown)


def chinese_of(html: str, data: Data) -> list[str]:
    """Return the Chinese left in a page's visible text once the data is taken out."""
    shown = data.pattern.sub(" ", _uncut(visible_text(html), data))
    return sorted(set(CHINESE.findall(shown)))


def english_failures(demo: Demo, session: Session) -> list[str]:
    """Walk every GET page for every role with the English interface; name the Chinese left.

    Run by the Chinese scan (tests/security/test_every_page_scan.py) on its complete demo and
    its last database (PostgreSQL when configured), so the demo is built once for both: the
    pages' words do not depend on the database, and the scans run on every push.
    """
    app = demo.app
    data = data_of(data_strings(session))
    failures: list[str] = []
    for role, username in DEMO_ROLES.items():
        client = sign_in(app, username, DEMO_PASSWORD)
        client.set_cookie("lang", "en")
        department_id = department_of(session, username)
        for rule in portal_rules(app):
            if "GET" not in methods(rule):
                continue
            for path, _real in real_paths(session, rule, department_id):
                response = client.get(path)
                if response.status_code != 200 or response.mimetype != "text/html":
                    response.close()
                    continue
                page = response.get_data(as_text=True)
                response.close()
                found = chinese_of(page, data)
                if found:
                    failures.append(f"{role} {path}: {found}")
    return failures


def test_the_english_scan_tells_data_from_interface_text() -> None:
    data = data_of(
        {"蛟市职转办〔2018〕6号", "市公安局", "市公安局交警支队", "清理规范中介服务事项"}
    )
    assert chinese_of("<p>Document 蛟市职转办〔2018〕6号</p>", data) == []
    assert chinese_of("<p>市公安局交警支队, 市公安局</p>", data) == []
    assert chinese_of("<p>Units: 市公安局、市公安局交警支队</p>", data) == ["、"]
    assert chinese_of("<p>Reason：市公安局</p>", data) == ["："]
    assert chinese_of("<p>【市公安局】</p>", data) == ["【", "】"]
    assert chinese_of('<input placeholder="请输入">', data) == ["请输入"]
    assert chinese_of("<td>1. 清理规范中介…</td><td>2. 清理规范行政…</td>", data) == [
        "清理规范行政"
    ]
    assert chinese_of("<script>var a = '中文';</script><p>English</p>", data) == []
