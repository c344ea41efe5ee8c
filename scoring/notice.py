"""Word score notices (考核结果通知书) and the summary table (汇总表), rendered with python-docx.

Pure functions over frozen dataclasses: no database, no Flask. The caller gathers the scores,
ranks and conversion (see the rest of `scoring`) and passes them in; this module only lays
them out as a Chinese official document following GB/T 9704-2012.

Base documents. `render_notice` and `render_summary` open a base .docx and append to it.
- `base=None` uses the shipped `templates/notice_base.docx` and (re)applies the GB/T 9704
  page: A4, margins 37/35/28/26 mm, "— 1 —" page numbers from the base's footer.
- A custom `base` (a letterhead the office uploads) is taken as it is: its header, footer,
  letterhead paragraphs, page size and margins are kept, because the office designed them.
  Only the summary's orientation is changed, to landscape, when its table is wide.
Every run written here names its font for East Asian text (w:eastAsia) explicitly, so the
output does not depend on the base's styles.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from io import BytesIO
from pathlib import Path
from typing import Final

import docx
from docx.document import Document
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Length, Mm, Pt

from scoring.docx_text import (
    FONT_BODY,
    FONT_HEADING,
    FONT_TITLE,
    SIZE_ER_HAO,
    SIZE_SAN_HAO,
    SIZE_WU_HAO,
    apply_official_layout,
    clean_text,
    element,
    fill_paragraph,
    make_landscape,
    text_width,
)
from scoring.official import (
    add_imprint,
    add_masthead,
    add_signature,
    add_verification,
    char_width,
)

__all__ = [
    "BASE_DOCX_PATH",
    "InvalidBaseDocumentError",
    "NoticeCategory",
    "NoticeData",
    "NoticeIndicator",
    "NoticePoint",
    "SummaryData",
    "SummaryRow",
    "clean_text",
    "format_chinese_date",
    "format_max",
    "format_points",
    "render_notice",
    "render_summary",
]

BASE_DOCX_PATH: Final = Path(__file__).resolve().parent.parent / "templates" / "notice_base.docx"

NOT_INVOLVED_TEXT: Final = "不涉及（已核实）"
NOT_SCORED_TEXT: Final = "—"
#: Before the scorer's text at a point given full marks (a note, not a deduction's reason).
FULL_MARKS_NOTE: Final = "说明："
LANDSCAPE_ABOVE_CATEGORIES: Final = 4

_LINE_BODY: Final = Pt(28)  # GB/T 9704: 22 lines of 三号 on the A4 text block
_LINE_TITLE: Final = Pt(36)
_TABLE_FONT_SIZE: Final = SIZE_WU_HAO
_LINE_TABLE: Final = Pt(14)  # exact, so row heights do not depend on the CJK font's metrics
_CELL_MARGIN_TWIPS: Final = "57"  # 1 mm left and right, so narrow number columns fit
_CORE_PROPERTY_LIMIT: Final = 255  # python-docx refuses longer core property strings
_CENT: Final = Decimal("0.01")

# Column widths of the notice table in mm at the A4 text width (156 mm); scaled to the base.
_NOTICE_COLUMNS: Final = (
    ("考评内容", 22),
    ("考核指标", 34),
    ("评分项", 40),
    ("分值", 12),
    ("得分", 14),
    ("扣分原因", 34),
)
_SUMMARY_RANK_MM: Final = 12
_SUMMARY_DEPARTMENT_MM: Final = 36
_SUMMARY_TOTAL_MM: Final = 17
_SUMMARY_CONVERTED_MM: Final = 16


class InvalidBaseDocumentError(ValueError):
    """The uploaded base document is not a .docx python-docx can open."""


@dataclass(frozen=True, slots=True)
class NoticePoint:
    """One scoring point (评分项) of an indicator as it appears on the notice."""

    code: str
    title: str
    max_points: Decimal
    awarded: Decimal | None
    deduction_reason: str | None
    not_involved_upheld: bool


@dataclass(frozen=True, slots=True)
class NoticeIndicator:
    """One indicator (考核指标) with its scoring points."""

    code: str
    title: str
    max_points: Decimal
    points: tuple[NoticePoint, ...]


@dataclass(frozen=True, slots=True)
class NoticeCategory:
    """One category (考评内容) with its indicators."""

    code: str
    title: str
    max_points: Decimal
    indicators: tuple[NoticeIndicator, ...]


@dataclass(frozen=True, slots=True)
class NoticeData:
    """Everything one department's score notice shows."""

    year: int
    title: str  # e.g. 关于2018年度“放管服”工作考核结果的通知
    document_no: str  # e.g. 蛟市职转办〔2018〕6号
    issuer: str
    issued_on: date
    department: str
    total: Decimal
    total_max: Decimal
    converted: Decimal
    converted_max: Decimal
    rank: int | None  # None: a preliminary result (初步结果), issued before publication
    department_count: int
    categories: tuple[NoticeCategory, ...]
    version: int = 1
    is_preliminary: bool = False
    cc: str = ""  # 抄送 of the 版记; none when empty
    verification_code: str = ""
    verify_url: str = ""
    tied: bool = False  # other departments share the rank: 并列


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """One department's line of the summary table; `category_points` follow the columns.
    `rank` is None while the department's items are not all scored (printed as —)."""

    rank: int | None
    department: str
    category_points: tuple[Decimal, ...]
    total: Decimal
    converted: Decimal


@dataclass(frozen=True, slots=True)
class SummaryData:
    """The summary table (汇总表) of all departments, rows already in rank order."""

    year: int
    title: str
    document_no: str
    issuer: str
    issued_on: date
    category_titles: tuple[str, ...]
    category_max: tuple[Decimal, ...]
    rows: tuple[SummaryRow, ...]
    is_preliminary: bool = False  # ranks are provisional (暂定) until publication
    cc: str = ""
    verification_code: str = ""
    verify_url: str = ""
    version: int = 1
    converted_max: Decimal = Decimal(2)  # the converted scale, named in the note under the table


# -- formatting ---------------------------------------------------------------------------


def format_points(value: Decimal) -> str:
    """Format a score with two decimal places, rounding half up: Decimal("87.5") → "87.50"."""
    try:
        rounded = value.quantize(_CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:  # NaN, infinity or absurd exponents: show as given
        return clean_text(str(value))
    if rounded.is_zero():
        rounded = abs(rounded)  # never print "-0.00"
    return f"{rounded:f}"


def format_max(value: Decimal) -> str:
    """Format a maximum without trailing zeros: Decimal("100.00") → "100", "2.5" → "2.5"."""
    if not value.is_finite():
        return clean_text(str(value))
    if value == value.to_integral_value():
        return f"{value.to_integral_value():f}"
    return f"{value.normalize():f}"


def format_chinese_date(value: date) -> str:
    """Format a date the Chinese official way: date(2019, 1, 15) → "2019年1月15日"."""
    return f"{value.year}年{value.month}月{value.day}日"


# -- document plumbing --------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _default_base_bytes() -> bytes:
    try:
        return BASE_DOCX_PATH.read_bytes()
    except FileNotFoundError:  # a checkout without the generated file still renders
        from scoring.make_base_docx import base_document_bytes

        return base_document_bytes()


def _open_document(base: bytes | None, *, landscape: bool) -> Document:
    if base is None:
        document = docx.Document(BytesIO(_default_base_bytes()))
        for section in document.sections:
            apply_official_layout(section, landscape=landscape)
        return document
    try:
        document = docx.Document(BytesIO(base))
    except Exception as exc:  # zipfile, lxml and python-docx each raise their own errors
        raise InvalidBaseDocumentError(f"base document is not a readable .docx: {exc}") from exc
    if landscape:
        make_landscape(document.sections[-1])
    return document


def _save(document: Document) -> bytes:
    buffer = BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _core_text(text: str) -> str:
    return clean_text(text)[:_CORE_PROPERTY_LIMIT]


def _set_properties(
    document: Document, *, title: str, subject: str, author: str, issued_on: date
) -> None:
    props = document.core_properties
    props.created = props.modified = datetime.combine(issued_on, time())  # not the base's date
    props.title = _core_text(title)
    props.subject = _core_text(subject)
    props.author = _core_text(author)
    props.last_modified_by = _core_text(author)


def _add_paragraph(
    document: Document,
    text: str,
    *,
    font: str = FONT_BODY,
    size: Length = SIZE_SAN_HAO,
    align: str = "both",
    line_spacing: Length = _LINE_BODY,
    first_line_chars: int = 0,
    right_chars: int = 0,
    keep_with_next: bool = False,
) -> None:
    fill_paragraph(
        document.add_paragraph()._p,
        text,
        font=font,
        size=size,
        align=align,
        line_spacing=line_spacing,
        first_line_chars=first_line_chars,
        right_chars=right_chars,
        keep_with_next=keep_with_next,
    )


def _twips(length: int) -> str:
    return str(round(length / 635))


def _column_widths(section_width: int, widths_mm: Sequence[float]) -> list[int]:
    """Scale the design widths (mm) to the text width of the page, in EMU."""
    total = sum(widths_mm)
    return [int(section_width * w / total) for w in widths_mm]


class _TableBuilder:
    """Write a fixed-layout bordered table straight into OOXML.

    python-docx's `Table.cell()` and `_Row.cells` walk the whole grid on each call, which is
    quadratic for a 1,000-row summary; building w:tr/w:tc elements directly is linear.
    """

    def __init__(self, document: Document, widths: Sequence[int]) -> None:
        self.widths = list(widths)
        # Not `document.add_table()`: it needs the page size, which a letterhead may omit.
        self.tbl = tbl = element("w:tbl")
        body = document.element.body
        sect_pr = body.find(qn("w:sectPr"))
        if sect_pr is not None:
            sect_pr.addprevious(tbl)
        else:
            body.append(tbl)
        tbl_pr = element("w:tblPr")
        tbl_pr.append(element("w:tblW", w=_twips(sum(self.widths)), type="dxa"))
        tbl_pr.append(element("w:jc", val="center"))
        borders = element("w:tblBorders")
        for side in ("top", "left", "bottom", "right", "insideH", "insideV"):
            borders.append(element(f"w:{side}", val="single", sz="4", space="0", color="000000"))
        tbl_pr.append(borders)
        tbl_pr.append(element("w:tblLayout", type="fixed"))
        margins = element("w:tblCellMar")
        for side in ("left", "right"):
            margins.append(element(f"w:{side}", w=_CELL_MARGIN_TWIPS, type="dxa"))
        tbl_pr.append(margins)
        tbl_pr.append(element("w:tblLook", val="0000"))
        tbl.append(tbl_pr)
        grid = element("w:tblGrid")
        for width in self.widths:
            grid.append(element("w:gridCol", w=_twips(width)))
        tbl.append(grid)

    def keep_last_row_with_next(self) -> None:
        """Keep the last row on the page of the paragraph after the table (no lone 署名)."""
        rows = self.tbl.findall(qn("w:tr"))
        if rows:
            self.keep_with_next(rows[-1])

    def add_row(self, *, header: bool = False) -> BaseOxmlElement:
        """Append a row that never breaks across pages: a row split at the page's foot
        leaves half a scoring point on each page, and LibreOffice prints the rest of a
        merged cell's text over the next page's first row."""
        tr = element("w:tr")
        tr_pr = element("w:trPr")
        tr_pr.append(element("w:cantSplit"))
        if header:
            tr_pr.append(element("w:tblHeader"))
        tr.append(tr_pr)
        self.tbl.append(tr)
        return tr

    @staticmethod
    def keep_with_next(tr: BaseOxmlElement) -> None:
        """Keep a row on the page of the row after it (Word's and LibreOffice's way of
        keeping table rows together: "keep with next" on the row's paragraphs)."""
        for ppr in tr.iter(qn("w:pPr")):
            if ppr.find(qn("w:keepNext")) is None:
                ppr.insert(0, element("w:keepNext"))

    def add_cell(
        self,
        tr: BaseOxmlElement,
        column: int,
        text: str,
        *,
        align: str = "center",
        span: int = 1,
        merge: str | None = None,
        font: str = FONT_BODY,
    ) -> None:
        """Append a cell; `merge` is "restart", "continue" or None (no vertical merge)."""
        tc = element("w:tc")
        tc_pr = element("w:tcPr")
        tc_pr.append(
            element("w:tcW", w=_twips(sum(self.widths[column : column + span])), type="dxa")
        )
        if span > 1:
            tc_pr.append(element("w:gridSpan", val=str(span)))
        if merge == "restart":
            tc_pr.append(element("w:vMerge", val="restart"))
        elif merge == "continue":
            tc_pr.append(element("w:vMerge"))
        tc_pr.append(element("w:vAlign", val="center"))
        tc.append(tc_pr)
        p = element("w:p")
        fill_paragraph(
            p,
            text if merge != "continue" else "",
            font=font,
            size=_TABLE_FONT_SIZE,
            align=align,
            line_spacing=_LINE_TABLE,
        )
        tc.append(p)
        tr.append(tc)


def _label(code: str, title: str, max_points: Decimal | None = None) -> str:
    code = clean_text(code).strip()
    title = clean_text(title).strip()
    text = f"{code}.{title}" if code and not code.endswith((".", "．", "、")) else code + title
    if max_points is not None:
        text += f"（{format_max(max_points)}分）"
    return text


def _point_label(point: NoticePoint) -> str:
    code = clean_text(point.code).strip()
    title = clean_text(point.title).strip()
    return f"{code} {title}".strip()


def _merge_states(keys: Sequence[object]) -> list[str | None]:
    """Return the vertical merge of each row of a column: runs of equal keys merge."""
    states: list[str | None] = [None] * len(keys)
    start = 0
    for end in range(1, len(keys) + 1):
        if end == len(keys) or keys[end] != keys[start]:
            if end - start > 1:
                states[start] = "restart"
                states[start + 1 : end] = ["continue"] * (end - start - 1)
            start = end
    return states


# -- the notice -----------------------------------------------------------------------------


#: A merged group of at most this many rows is kept on one page; a longer one (a scheme with
#: a category of many points) breaks between its indicators, or its rows, where it must.
KEEP_TOGETHER_ROWS: Final = 8


def _kept_together(*merges: Sequence[str | None]) -> list[bool]:
    """Whether each row keeps with the next: the next row continues a merged cell of a
    group short enough to stay on one page (the first of `merges` that is, in order)."""
    keep = [False] * len(merges[0])
    for states in merges:
        start = 0
        for end in range(1, len(states) + 1):
            if end == len(states) or states[end] != "continue":
                if 1 < end - start <= KEEP_TOGETHER_ROWS:
                    for index in range(start, end - 1):
                        keep[index] = True
                start = end
    return keep


_NoticeRow = tuple[NoticeCategory, NoticeIndicator | None, NoticePoint | None]


def _notice_rows(data: NoticeData) -> tuple[list[_NoticeRow], list[object], list[object]]:
    """Flatten the scheme into table rows, with the category and indicator key of each."""
    rows: list[_NoticeRow] = []
    category_keys: list[object] = []
    indicator_keys: list[object] = []
    for c, category in enumerate(data.categories):
        if not category.indicators:
            rows.append((category, None, None))
            category_keys.append(c)
            indicator_keys.append((c, None, len(rows)))  # never merged
        for i, indicator in enumerate(category.indicators):
            for point in indicator.points or (None,):
                rows.append((category, indicator, point))
                category_keys.append(c)
                indicator_keys.append((c, i))
    return rows, category_keys, indicator_keys


def _score_cells(point: NoticePoint | None) -> tuple[str, str, str]:
    """Return the 分值, 得分 and 扣分原因 texts of a scoring point."""
    if point is None:
        return "", "", ""
    if point.not_involved_upheld:
        return format_max(point.max_points), format_points(point.max_points), NOT_INVOLVED_TEXT
    awarded = NOT_SCORED_TEXT if point.awarded is None else format_points(point.awarded)
    reason = point.deduction_reason or ""
    if reason and point.awarded is not None and point.awarded >= point.max_points:
        reason = FULL_MARKS_NOTE + reason  # the scorer's note at full marks, not a deduction
    return format_max(point.max_points), awarded, reason


def _add_notice_table(document: Document, data: NoticeData) -> None:
    widths = _column_widths(text_width(document.sections[-1]), [w for _, w in _NOTICE_COLUMNS])
    builder = _TableBuilder(document, widths)
    header = builder.add_row(header=True)
    for column, (title, _) in enumerate(_NOTICE_COLUMNS):
        builder.add_cell(header, column, title, font=FONT_HEADING)

    rows, category_keys, indicator_keys = _notice_rows(data)
    category_merges = _merge_states(category_keys)
    indicator_merges = _merge_states(indicator_keys)
    together = _kept_together(category_merges, indicator_merges)
    left = "left"
    for index, (category, indicator, point) in enumerate(rows):
        tr = builder.add_row()
        category_text = _label(category.code, category.title, category.max_points)
        builder.add_cell(tr, 0, category_text, align=left, merge=category_merges[index])
        indicator_text = "" if indicator is None else _label(indicator.code, indicator.title)
        builder.add_cell(tr, 1, indicator_text, align=left, merge=indicator_merges[index])
        builder.add_cell(tr, 2, "" if point is None else _point_label(point), align=left)
        max_text, awarded_text, reason = _score_cells(point)
        builder.add_cell(tr, 3, max_text)
        builder.add_cell(tr, 4, awarded_text)
        builder.add_cell(tr, 5, reason, align=left)
        # The rows of a category (or of a long one's indicator) stay on one page, the last
        # row with the 合计 row.
        if together[index] or index == len(rows) - 1:
            builder.keep_with_next(tr)

    total = builder.add_row()
    builder.add_cell(total, 0, "合计", span=3, font=FONT_HEADING)
    builder.add_cell(total, 3, format_max(data.total_max))
    builder.add_cell(total, 4, format_points(data.total))
    converted = (
        f"折合考核分{format_points(data.converted)}分（满分{format_max(data.converted_max)}分）"
    )
    builder.add_cell(total, 5, converted, align="left")


PRELIMINARY_MARK: Final = "（初步结果）"
PRELIMINARY_NOTE: Final = (
    "本通知所列为初步考核结果，考核结果公示前不作排名，以公示后的正式通知为准。"
)
#: Under the summary's title when a department is still being scored: its line has no rank.
UNRANKED_NOTE: Final = (
    "名次为“—”的部门尚有事项未评分，不排名，所列分数为已评分事项之和；"
    "名次在事项全部评分的部门之间排列。"
)


_TITLE_BREAKS_AFTER: Final = ("”", "）", "度")
_TITLE_BREAKS_BEFORE: Final = ("考核", "工作", "的通知", "汇总表")


def balanced_title(title: str, line_chars: int) -> str:
    """Break a title too long for one line into two balanced lines at a word boundary.

    GB/T 9704 §7.3.1: a title that wraps keeps words whole and its lines symmetrical
    (梯形或菱形). Candidates are after a closing quote or 年度 and before 考核/工作/的通知.
    """
    title = clean_text(title).strip()
    if "\n" in title or char_width(title) <= line_chars - 1:
        return title
    half = len(title) / 2
    candidates = [
        n
        for n in range(2, len(title) - 1)
        if title[n - 1] in _TITLE_BREAKS_AFTER or title.startswith(_TITLE_BREAKS_BEFORE, n)
    ]
    best = min(candidates, key=lambda n: abs(n - half), default=round(half))
    if max(char_width(title[:best]), char_width(title[best:])) > line_chars:
        best = round(half)
    return title[:best] + "\n" + title[best:]


def _add_title(document: Document, title: str, *, preliminary: bool, version: int) -> None:
    line_chars = int(text_width(document.sections[-1]) / SIZE_ER_HAO)
    _add_paragraph(
        document,
        balanced_title(title, line_chars),
        font=FONT_TITLE,
        size=SIZE_ER_HAO,
        align="center",
        line_spacing=_LINE_TITLE,
    )
    if preliminary:
        _add_paragraph(document, PRELIMINARY_MARK, font=FONT_HEADING, align="center")
    if version > 1:
        _add_paragraph(document, f"（第{version}版，替代此前版本）", align="center")
    _add_paragraph(document, "")


def _add_closing(document: Document, data: NoticeData | SummaryData) -> None:
    """Signature with seal area, verification code and QR, then the 版记."""
    add_signature(document, data.issuer, data.issued_on)
    add_verification(document, data.verification_code, data.verify_url)
    add_imprint(document, issuer=data.issuer, issued_on=data.issued_on, cc=data.cc)


def render_notice(data: NoticeData, base: bytes | None = None) -> bytes:
    """Render one department's score notice as a 公文 (.docx bytes).

    版头 (red 发文机关标志, 发文字号, red line), title, 主送 (the department), body with the
    score table, 署名 and 成文日期 over a seal area, verification code and QR, 版记.
    `base` is an optional letterhead .docx whose header, footer, body and page set-up are
    kept and which replaces the 发文机关标志 (see the module docstring); None uses the
    shipped GB/T 9704 base document. Raises InvalidBaseDocumentError when `base` cannot be
    opened.
    """
    document = _open_document(base, landscape=False)
    year = data.year
    add_masthead(document, issuer=data.issuer, document_no=data.document_no, with_mark=base is None)
    _add_title(document, data.title, preliminary=data.is_preliminary, version=data.version)
    _add_paragraph(document, f"{clean_text(data.department).strip()}：", align="left")
    _add_paragraph(
        document,
        f"根据{year}年度“放管服”工作考核安排，经查阅资料、实地核实和平时考核，"
        "现将贵单位考核结果通知如下。",
        first_line_chars=2,
    )
    result = (
        f"贵单位{year}年度“放管服”工作考核得分为{format_points(data.total)}分"
        f"（满分{format_max(data.total_max)}分），"
        f"折合考核分{format_points(data.converted)}分（满分{format_max(data.converted_max)}分）"
    )
    if data.rank is not None and not data.is_preliminary:
        tie = "并列" if data.tied else ""
        result += f"，在{data.department_count}个被考核部门中排名{tie}第{data.rank}位。"
    else:
        result += "。" + PRELIMINARY_NOTE
    _add_paragraph(document, result, first_line_chars=2)
    _add_paragraph(
        document, "一、考核得分明细", font=FONT_HEADING, first_line_chars=2, keep_with_next=True
    )
    _add_notice_table(document, data)
    _add_paragraph(
        document, "二、有关要求", font=FONT_HEADING, first_line_chars=2, keep_with_next=True
    )
    _add_paragraph(
        document,
        "请对照扣分原因认真整改，进一步抓好“放管服”改革各项任务落实。"
        "如对考核结果有异议，请在规定时限内提出申诉。",
        first_line_chars=2,
    )
    _add_paragraph(document, "特此通知。", first_line_chars=2, keep_with_next=True)
    _add_closing(document, data)
    _set_properties(
        document,
        title=data.title,
        subject=f"{data.department} {year}年度“放管服”工作考核结果",
        author=data.issuer,
        issued_on=data.issued_on,
    )
    document.core_properties.revision = max(int(data.version), 1)
    return _save(document)


# -- the summary ----------------------------------------------------------------------------


def _check_summary(data: SummaryData) -> None:
    columns = len(data.category_titles)
    if len(data.category_max) != columns:
        raise ValueError(f"{columns} category titles but {len(data.category_max)} category maxima")
    for row in data.rows:
        if len(row.category_points) != columns:
            raise ValueError(
                f"row of rank {row.rank} has {len(row.category_points)} category points, "
                f"expected {columns}"
            )


def render_summary(data: SummaryData, base: bytes | None = None) -> bytes:
    """Render the summary table of all departments as a 公文 of its own (.docx bytes).

    版头, title, the table (rows in the given order), signature, verification code and 版记:
    no 「附件」 mark, since no notice carries it as an attachment (docs/notices.md).

    The page turns landscape when there are more than four category columns. `base` is
    handled as in `render_notice`. Raises ValueError when a row's category points do not
    match the category columns.
    """
    _check_summary(data)
    landscape = len(data.category_titles) > LANDSCAPE_ABOVE_CATEGORIES
    document = _open_document(base, landscape=landscape)
    # A document of its own, not the notices' 附件: it is issued, versioned and verified on its
    # own, and a department's notice never carries the other departments' figures.
    add_masthead(document, issuer=data.issuer, document_no=data.document_no, with_mark=base is None)
    _add_title(document, data.title, preliminary=data.is_preliminary, version=data.version)
    if data.is_preliminary:
        _add_paragraph(document, "考核结果公示前，表中名次为暂定名次。", first_line_chars=2)
    if any(row.rank is None for row in data.rows):
        _add_paragraph(document, UNRANKED_NOTE, first_line_chars=2)

    categories = len(data.category_titles)
    fixed = _SUMMARY_RANK_MM + _SUMMARY_DEPARTMENT_MM + _SUMMARY_TOTAL_MM + _SUMMARY_CONVERTED_MM
    available = text_width(document.sections[-1])
    category_mm = max((available / Mm(1) - fixed) / categories, 12.0) if categories else 0.0
    widths_mm = [
        _SUMMARY_RANK_MM,
        _SUMMARY_DEPARTMENT_MM,
        *([category_mm] * categories),
        _SUMMARY_TOTAL_MM,
        _SUMMARY_CONVERTED_MM,
    ]
    builder = _TableBuilder(document, _column_widths(available, widths_mm))
    total_max = sum(data.category_max, Decimal(0))
    headers = [
        "暂定名次" if data.is_preliminary else "排名",
        "部门",
        *(
            f"{clean_text(title).strip()}（{format_max(maximum)}分）"
            for title, maximum in zip(data.category_titles, data.category_max, strict=True)
        ),
        f"总分（{format_max(total_max)}分）" if categories else "总分",
        "折合分",
    ]
    header = builder.add_row(header=True)
    for column, title in enumerate(headers):
        builder.add_cell(header, column, title, font=FONT_HEADING)
    left = "left"
    for row in data.rows:
        tr = builder.add_row()
        builder.add_cell(tr, 0, str(row.rank) if row.rank is not None else NOT_SCORED_TEXT)
        builder.add_cell(tr, 1, row.department, align=left)
        for offset, points in enumerate(row.category_points):
            builder.add_cell(tr, 2 + offset, format_points(points))
        builder.add_cell(tr, 2 + categories, format_points(row.total))
        builder.add_cell(tr, 3 + categories, format_points(row.converted))
    builder.keep_last_row_with_next()
    # How the last two columns are made; it also keeps text on the page of the signature and
    # seal (GB/T 9704 §7.3.5.1: never a seal on a page without text). Word keeps the table's
    # last row with what follows; LibreOffice does not, and printed the signature alone.
    _add_paragraph(
        document,
        f"注：折合分＝总分÷{format_max(total_max)}×{format_max(data.converted_max)}，"
        "四舍五入保留两位小数；总分相同，名次并列。",
        first_line_chars=2,
        keep_with_next=True,
    )

    _add_closing(document, data)
    _set_properties(
        document,
        title=data.title,
        subject=f"{data.year}年度“放管服”工作考核结果汇总表",
        author=data.issuer,
        issued_on=data.issued_on,
    )
    return _save(document)
