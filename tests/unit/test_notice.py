"""Word notices and the summary table: render, reopen with python-docx, check what a reader sees."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from dataclasses import replace
from datetime import date
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import docx
import pytest
from docx.document import Document
from docx.enum.section import WD_ORIENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring import make_base_docx
from scoring.docx_text import clean_text
from scoring.notice import (
    InvalidBaseDocumentError,
    NoticeCategory,
    NoticeData,
    NoticeIndicator,
    NoticePoint,
    SummaryData,
    SummaryRow,
    format_chinese_date,
    format_max,
    format_points,
    render_notice,
    render_summary,
)
from scoring.pdf import docx_to_pdf, office_binary

D = Decimal
ISSUER = "蛟河市人民政府推进职能转变协调小组办公室"
DEPARTMENT = "政府办（民族宗教局、法制办）"
XSS = "<script>alert(1)</script>"

# (category code, title, max, [(indicator code, title, [(point code, title, max)])])
SCHEME_2018 = [
    ("1", "“放管服”工作完成情况", 20, [
        ("1", "成立领导小组；指定专人负责", [
            ("1.1", "成立“放管服”工作领导小组", 5), ("1.2", "指定专人负责", 5)]),
        ("2", "2018年落实国家、省、吉林市“放管服”改革工作任务完成情况", [
            ("2.1", "改革工作任务完成情况", 10)]),
    ]),
    ("2", "行政审批制度改革工作完成情况", 20, [
        ("3", "行政许可事项目录修订情况", [("3.1", "行政许可事项目录修订", 5)]),
        ("4", "权力清单和责任清单修订情况", [
            ("4.1", "清单修订", 3), ("4.2", "网上公布、动态管理", 2)]),
        ("5", "优化服务流程，修订行政审批事项目录及审批事项进入政务大厅情况", [
            ("5.1", "优化服务流程、事项进入政务大厅", 10)]),
    ]),
    ("3", "清理规范行政审批中介服务事项情况", 10, [
        ("6", "清理规范行政审批中介服务事项工作落实情况", [("6.1", "中介服务事项清理规范", 10)]),
    ]),
    ("4", "清理规范证明事项情况", 10, [
        ("7", "清理规范证明事项工作落实情况", [("7.1", "证明事项清理规范", 10)]),
    ]),
    ("5", "“双随机一公开”工作完成情况", 20, [
        ("8", "推行“双随机一公开”监管工作", [
            ("8.1", "制定抽查计划", 5),
            ("8.2", "建立检查对象和人员名录、制定随机抽查细则、抽查事项清单录入", 15)]),
    ]),
    ("6", "“放管服”信息报送和其他临时性工作", 20, [
        ("9", "“放管服”信息报送", [
            ("9.1", "每月至少上报2篇信息", 8),
            ("9.2", "每季度1篇经验做法、典型案例、进展成效、问题建议", 7)]),
        ("10", "其他临时性工作完成情况（参会、平时督查检查、迎检）", [
            ("10.1", "其他临时性工作", 5)]),
    ]),
]  # fmt: skip

# Deductions of the example department: point code → (awarded, reason).
DEDUCTIONS = {
    "2.1": (D("8.5"), "部分改革任务未按期完成"),
    "4.2": (D("1"), "权责清单网上公布不及时"),
    "9.1": (D("6"), XSS),
}
NOT_INVOLVED = {"6.1"}


def make_notice(
    *,
    department: str = DEPARTMENT,
    deductions: dict[str, tuple[Decimal, str]] | None = None,
    version: int = 1,
) -> NoticeData:
    """Build the 2018 notice of one department: 6 categories, 10 indicators, 14 points."""
    deductions = DEDUCTIONS if deductions is None else deductions
    categories = []
    total = D(0)
    for cat_code, cat_title, cat_max, indicators in SCHEME_2018:
        notice_indicators = []
        for ind_code, ind_title, points in indicators:
            notice_points = []
            for code, title, maximum in points:
                awarded, reason = deductions.get(code, (D(maximum), None))
                upheld = code in NOT_INVOLVED
                if upheld:
                    awarded, reason = D(maximum), None
                total += awarded
                notice_points.append(NoticePoint(code, title, D(maximum), awarded, reason, upheld))
            ind_max = sum((p.max_points for p in notice_points), D(0))
            notice_indicators.append(
                NoticeIndicator(ind_code, ind_title, ind_max, tuple(notice_points))
            )
        categories.append(NoticeCategory(cat_code, cat_title, D(cat_max), tuple(notice_indicators)))
    return NoticeData(
        year=2018,
        title="关于2018年度“放管服”工作考核结果的通知",
        document_no="蛟市职转办〔2019〕1号",
        issuer=ISSUER,
        issued_on=date(2019, 1, 15),
        department=department,
        total=total,
        total_max=D(100),
        converted=total * 2 / 100,
        converted_max=D(2),
        rank=3,
        department_count=26,
        categories=tuple(categories),
        version=version,
    )


def make_summary(count: int = 26) -> SummaryData:
    """Build a summary of `count` departments whose totals fall with the rank."""
    titles = tuple(cat[1] for cat in SCHEME_2018)
    maxima = tuple(D(cat[2]) for cat in SCHEME_2018)
    rows = []
    for rank in range(1, count + 1):
        points = tuple(m - D(rank % 3) / 2 for m in maxima)
        total = sum(points, D(0))
        rows.append(SummaryRow(rank, f"部门{rank:02d}", points, total, total * 2 / 100))
    return SummaryData(
        year=2018,
        title="2018年度市政府相关部门“放管服”工作考核结果汇总表",
        document_no="蛟市职转办〔2019〕2号",
        issuer=ISSUER,
        issued_on=date(2019, 1, 15),
        category_titles=titles,
        category_max=maxima,
        rows=tuple(rows),
    )


def reopen(data: bytes) -> Document:
    """Open rendered bytes with python-docx, as Word would be asked to."""
    return docx.Document(BytesIO(data))


def body_text(document: Document) -> str:
    """Return all paragraph and table text of the body, one line per paragraph or cell."""
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.extend(cell.text for cell in row.cells)
    return "\n".join(lines)


def table_rows(document: Document) -> list[list[str]]:
    """Return the text of every row of the first table, merged cells repeated."""
    return [[cell.text for cell in row.cells] for row in document.tables[0].rows]


@pytest.fixture(scope="module")
def notice_document() -> Document:
    return reopen(render_notice(make_notice()))


def test_formatting_helpers() -> None:
    assert format_points(D("87.5")) == "87.50"
    assert format_points(D("1.755")) == "1.76"
    assert format_points(D("-0")) == "0.00"
    assert format_max(D("100.00")) == "100"
    assert format_max(D("2.5")) == "2.5"
    assert format_chinese_date(date(2019, 1, 15)) == "2019年1月15日"


def test_notice_states_department_total_converted_and_rank(notice_document: Document) -> None:
    data = make_notice()
    assert data.total == D("95.50")
    text = body_text(notice_document)
    assert f"{DEPARTMENT}：" in text
    assert "蛟市职转办〔2019〕1号" in text
    # A title too long for one line breaks into two balanced lines at a word boundary.
    assert "关于2018年度“放管服”\n工作考核结果的通知" in text
    assert (
        "贵单位2018年度“放管服”工作考核得分为95.50分（满分100分），"
        "折合考核分1.91分（满分2分），在26个被考核部门中排名第3位。"
    ) in text
    assert "一、考核得分明细" in text
    paragraphs = [p for p in notice_document.paragraphs if p.text.strip()]
    issuer_at = [p.text for p in paragraphs].index(ISSUER)
    assert paragraphs[issuer_at + 1].text == "2019年1月15日"
    assert paragraphs[issuer_at + 1].alignment == WD_ALIGN_PARAGRAPH.RIGHT


def test_notice_table_has_one_row_per_scoring_point(notice_document: Document) -> None:
    rows = table_rows(notice_document)
    assert rows[0] == ["考评内容", "考核指标", "评分项", "分值", "得分", "扣分原因"]
    points = [p for c in make_notice().categories for i in c.indicators for p in i.points]
    assert len(points) == 14
    assert len(rows) == 1 + len(points) + 1
    for row, point in zip(rows[1:-1], points, strict=True):
        assert row[2].startswith(f"{point.code} {point.title}")
        assert row[3] == format_max(point.max_points)
        if point.code in DEDUCTIONS:
            awarded, reason = DEDUCTIONS[point.code]
            assert row[4] == format_points(awarded)
            assert row[5] == reason
        elif point.code in NOT_INVOLVED:
            assert row[4] == format_points(point.max_points)
            assert row[5] == "不涉及（已核实）"
        else:
            assert row[4] == format_points(point.max_points)
            assert row[5] == ""
    assert rows[1][0] == "1.“放管服”工作完成情况（20分）"
    assert rows[1][1] == rows[2][1] == "1.成立领导小组；指定专人负责"
    assert rows[-1][:5] == ["合计", "合计", "合计", "100", "95.50"]
    assert rows[-1][5] == "折合考核分1.91分（满分2分）"


def test_a_note_at_full_marks_reads_as_a_note_not_a_deduction() -> None:
    """A reason given with full marks (why a routine point gets more than its suggestion) is
    kept since the walk of the scorer's pages; in the 扣分原因 column it reads 说明：…"""
    given = {**DEDUCTIONS, "9.2": (D(7), "9月信息经核实已按时报送，给满分")}
    rows = table_rows(reopen(render_notice(make_notice(deductions=given))))
    row = next(r for r in rows if r[2].startswith("9.2 "))
    assert row[4] == "7.00" and row[5] == "说明：9月信息经核实已按时报送，给满分"
    assert next(r for r in rows if r[2].startswith("2.1 "))[5] == "部分改革任务未按期完成"


def test_notice_table_merges_and_repeats_header(notice_document: Document) -> None:
    table = notice_document.tables[0]
    first_row = table.rows[0]._tr
    assert first_row.find(f"{qn('w:trPr')}/{qn('w:tblHeader')}") is not None
    merges = [tc.vMerge for tc in (table.rows[r]._tr.tc_lst[0] for r in range(1, 4))]
    assert merges == ["restart", "continue", "continue"]  # category 1 spans 1.1, 1.2, 2.1
    assert table._tbl.tblPr.find(qn("w:tblLayout")).get(qn("w:type")) == "fixed"
    widths = [int(col.w or 0) for col in table._tbl.tblGrid.gridCol_lst]
    assert abs(sum(widths) - Mm(156)) < Mm(1)


def test_every_run_names_east_asian_font(notice_document: Document) -> None:
    runs = [run for p in notice_document.paragraphs for run in p.runs]
    for table in notice_document.tables:
        for row in table.rows:
            for cell in row.cells:
                runs.extend(run for p in cell.paragraphs for run in p.runs)
    runs.extend(run for p in notice_document.sections[0].footer.paragraphs for run in p.runs)
    assert len(runs) > 50
    fonts = set()
    for run in runs:
        rpr = run._element.rPr
        assert rpr is not None and rpr.rFonts is not None, run.text
        rfonts = rpr.rFonts
        east_asian = rfonts.get(qn("w:eastAsia"))
        assert east_asian, run.text
        assert rfonts.get(qn("w:ascii")) == east_asian
        fonts.add(east_asian)
    assert {"方正小标宋简体", "仿宋_GB2312", "黑体", "宋体"} <= fonts
    title = next(p for p in notice_document.paragraphs if p.text.startswith("关于"))
    assert title.runs[0].font.size == Pt(22)
    normal_rpr = notice_document.styles["Normal"].element.rPr
    assert normal_rpr is not None
    normal = normal_rpr.rFonts
    assert normal is not None
    assert normal.get(qn("w:eastAsia")) == "仿宋_GB2312"


def test_page_is_a4_with_official_margins_and_page_numbers(notice_document: Document) -> None:
    section = notice_document.sections[0]
    assert section.orientation == WD_ORIENT.PORTRAIT
    for actual, expected in [
        (section.page_width, 210),
        (section.page_height, 297),
        (section.top_margin, 37),
        (section.bottom_margin, 35),
        (section.left_margin, 28),
        (section.right_margin, 26),
    ]:
        assert actual is not None
        assert abs(actual.mm - expected) < 0.5
    footer = section.footer
    xml = footer._element.xml
    assert "PAGE" in "".join(t.text or "" for t in footer._element.iter(qn("w:instrText")))
    assert 'w:fldCharType="begin"' in xml and 'w:fldCharType="end"' in xml
    assert footer.paragraphs[0].text == "— 1 —"


def test_notice_keeps_custom_letterhead_header() -> None:
    letterhead = docx.Document()
    letterhead.sections[0].header.paragraphs[0].text = "某某市人民政府"
    letterhead.sections[0].left_margin = Mm(20)
    letterhead.add_paragraph("某某市人民政府推进职能转变协调小组办公室")
    buffer = BytesIO()
    letterhead.save(buffer)

    document = reopen(render_notice(make_notice(), base=buffer.getvalue()))
    section = document.sections[0]
    assert section.header.paragraphs[0].text == "某某市人民政府"
    assert (
        section.left_margin is not None and abs(section.left_margin.mm - 20) < 0.5
    )  # the letterhead's own layout is kept
    assert document.paragraphs[0].text == "某某市人民政府推进职能转变协调小组办公室"
    assert f"{DEPARTMENT}：" in body_text(document)


def test_letterhead_without_page_settings_still_renders() -> None:
    letterhead = docx.Document()
    sect_pr = letterhead.sections[0]._sectPr
    for tag in ("w:pgSz", "w:pgMar"):
        for child in sect_pr.findall(qn(tag)):
            sect_pr.remove(child)
    buffer = BytesIO()
    letterhead.save(buffer)
    document = reopen(render_notice(make_notice(), base=buffer.getvalue()))
    assert len(table_rows(document)) == 16
    summary = reopen(render_summary(make_summary(2), base=buffer.getvalue()))
    assert summary.sections[0].orientation == WD_ORIENT.LANDSCAPE


def test_unreadable_base_is_a_clear_error() -> None:
    with pytest.raises(InvalidBaseDocumentError):
        render_notice(make_notice(), base=b"not a docx")


def test_xss_like_text_is_kept_verbatim(notice_document: Document) -> None:
    assert XSS in body_text(notice_document)


def test_clean_text_removes_what_xml_cannot_store() -> None:
    assert clean_text("a\x00b\x07c\x1fd\tE\nF\r\nG\rH") == "abcd\tE\nF\nG\nH"
    assert clean_text("x\ud800y\udfffz\ufffe\uffff") == "xyz"
    assert clean_text("\ud83d\ude00") == "\U0001f600"  # a split pair is joined
    assert clean_text("政府办（民族宗教局、法制办）") == "政府办（民族宗教局、法制办）"


def test_unstorable_characters_do_not_break_the_notice() -> None:
    dirty = "环保局\x00\x0b\ud800\ufffe"
    deductions = {"3.1": (D("4"), "材料\x01不全\ud800，\x1b[31m未公布\uffff")}
    document = reopen(render_notice(make_notice(department=dirty, deductions=deductions)))
    text = body_text(document)
    assert "环保局：" in text
    assert "材料不全，[31m未公布" in text


def test_very_long_deduction_reason_wraps_in_its_cell() -> None:
    reason = ("材料报送不及时，内容不准确；" * 400)[:5000]
    assert len(reason) == 5000
    document = reopen(render_notice(make_notice(deductions={"8.2": (D("3.25"), reason)})))
    row = next(r for r in table_rows(document) if r[2].startswith("8.2"))
    assert row[4] == "3.25"
    assert row[5] == reason
    assert len(document.tables[0].columns) == 6


def test_reissued_notice_says_its_version() -> None:
    document = reopen(render_notice(make_notice(version=2)))
    assert "（第2版，替代此前版本）" in body_text(document)
    assert document.core_properties.revision == 2


def test_not_scored_point_shows_a_dash() -> None:
    data = make_notice()
    category = data.categories[0]
    indicator = category.indicators[0]
    pending = NoticePoint("1.1", "成立“放管服”工作领导小组", D(5), None, None, False)
    indicator = NoticeIndicator(indicator.code, indicator.title, indicator.max_points, (pending,))
    category = NoticeCategory(category.code, category.title, category.max_points, (indicator,))
    document = reopen(render_notice(replace(data, categories=(category,))))
    assert table_rows(document)[1][3:5] == ["5", "—"]


def test_summary_rows_in_order_and_landscape() -> None:
    data = make_summary()
    document = reopen(render_summary(data))
    section = document.sections[0]
    assert section.orientation == WD_ORIENT.LANDSCAPE
    assert section.page_width is not None and section.page_height is not None
    assert abs(section.page_width.mm - 297) < 0.5 and abs(section.page_height.mm - 210) < 0.5
    rows = table_rows(document)
    assert rows[0][:3] == ["排名", "部门", "“放管服”工作完成情况（20分）"]
    assert rows[0][-2:] == ["总分（100分）", "折合分"]
    assert len(rows) == 27
    assert [r[0] for r in rows[1:]] == [str(n) for n in range(1, 27)]
    assert [r[1] for r in rows[1:]] == [row.department for row in data.rows]
    first = data.rows[0]
    assert rows[1][2:] == [format_points(p) for p in first.category_points] + [
        format_points(first.total),
        format_points(first.converted),
    ]
    header = document.tables[0].rows[0]._tr
    assert header.find(f"{qn('w:trPr')}/{qn('w:tblHeader')}") is not None
    assert "2019年1月15日" in body_text(document)


def test_summary_with_few_categories_stays_portrait() -> None:
    data = make_summary(3)
    narrow = replace(
        data,
        document_no="",
        category_titles=data.category_titles[:2],
        category_max=data.category_max[:2],
        rows=tuple(replace(r, category_points=r.category_points[:2]) for r in data.rows),
    )
    document = reopen(render_summary(narrow))
    assert document.sections[0].orientation == WD_ORIENT.PORTRAIT
    assert len(table_rows(document)[0]) == 6


def test_summary_rejects_rows_that_do_not_match_the_columns() -> None:
    data = make_summary(1)
    bad = replace(data, rows=(SummaryRow(1, "交通局", (D(1),), D(1), D("0.02")),))
    with pytest.raises(ValueError, match="category points"):
        render_summary(bad)


_ANY_CODE_POINT = st.integers(min_value=0, max_value=0x10FFFF).map(chr)
_ANY_TEXT = st.text(_ANY_CODE_POINT, max_size=40) | st.text(max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ANY_TEXT)
def test_clean_text_output_always_survives_a_docx_round_trip(raw: str) -> None:
    cleaned = clean_text(raw)
    assert clean_text(cleaned) == cleaned
    document = docx.Document()
    document.add_paragraph(cleaned)
    document.core_properties.title = cleaned[:255]
    buffer = BytesIO()
    document.save(buffer)
    reopened = docx.Document(BytesIO(buffer.getvalue()))
    assert reopened.paragraphs[-1].text == cleaned


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ANY_TEXT)
def test_any_user_text_renders_into_a_notice_that_reopens(raw: str) -> None:
    data = make_notice(department=raw, deductions={"3.1": (D(4), raw)})
    document = reopen(render_notice(data))
    row = next(r for r in table_rows(document) if r[2].startswith("3.1"))
    assert row[5] == clean_text(raw)


def test_rendered_package_is_a_plain_docx() -> None:
    data = render_notice(make_notice())
    with zipfile.ZipFile(BytesIO(data)) as package:
        names = set(package.namelist())
        assert {"word/document.xml", "[Content_Types].xml"} <= names
        assert any(name.startswith("word/footer") for name in names)
    assert len(data) < 200_000


def _pdf_page_count(pdf: Path) -> int:
    pdfinfo = shutil.which("pdfinfo")
    if pdfinfo:
        out = subprocess.run([pdfinfo, str(pdf)], capture_output=True, text=True, check=True)
        match = re.search(r"^Pages:\s+(\d+)", out.stdout, re.MULTILINE)
        assert match, out.stdout
        return int(match.group(1))
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf.read_bytes()))


def test_notice_converts_to_a_pdf_of_at_most_three_pages(tmp_path: Path) -> None:
    assert office_binary() is not None, "LibreOffice (soffice) is needed: apt-get install it"
    pdf = tmp_path / "notice.pdf"
    pdf.write_bytes(docx_to_pdf(render_notice(make_notice())))
    assert pdf.read_bytes().startswith(b"%PDF")
    # 版头, the 16-row table, the seal area, QR code and 版记 take three A4 pages at most.
    assert 1 <= _pdf_page_count(pdf) <= 3


def _lines_of_last_page(pdf: Path) -> tuple[float, list[tuple[float, str]]]:
    """Return the last page's height and its words (bottom edge, text), from pdftotext."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    out = subprocess.run(
        ["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    page = out.split("<page ")[-1]
    height = float(re.search(r'height="([\d.]+)"', page).group(1))  # type: ignore[union-attr]
    words = re.findall(r'yMax="([\d.]+)">([^<]*)<', page)
    return height, [(float(y), w) for y, w in words]


@pytest.mark.parametrize("reason_repeat", [0, 40])
def test_imprint_is_on_the_last_line_of_the_last_page(tmp_path: Path, reason_repeat: int) -> None:
    assert office_binary() is not None, "LibreOffice (soffice) is needed: apt-get install it"
    deductions = {"1.1": (D(3), "材料不全。" * reason_repeat)} if reason_repeat else None
    data = replace(
        make_notice(deductions=deductions), verification_code="7QF2-MX9Z-P4TW-8RCK",
        verify_url="https://kh.example.cn/verify/7QF2-MX9Z-P4TW-8RCK", cc="市政府办公室",
    )  # fmt: skip
    documents = {"notice": render_notice(data), "summary": render_summary(make_summary())}
    for name, content in documents.items():
        pdf = tmp_path / f"{name}.pdf"
        pdf.write_bytes(docx_to_pdf(content))
        height, words = _lines_of_last_page(pdf)
        text_bottom = height - Mm(35).pt  # the bottom margin of GB/T 9704
        printed = max(y for y, w in words if "印发" in w)
        cc = [y for y, w in words if "抄送" in w]
        # GB/T 9704 §7.4: the 印发 line is the last line of the text block, not mid-page.
        assert text_bottom - Pt(22).pt <= printed <= text_bottom + 1, (name, printed)
        assert all(printed - Pt(22).pt * 2 <= y < printed for y in cc), (name, cc)
        # Whatever comes before (the verification lines) keeps clear of the 版记.
        verification = [y for y, w in words if "可核验本文件" in w or "验证码" in w]
        assert all(y < min(cc or [printed]) - Pt(14).pt for y in verification), name


def test_make_base_docx_writes_an_a4_base(tmp_path: Path) -> None:
    target = tmp_path / "base.docx"
    assert make_base_docx.main([str(target)]) == 0
    document = docx.Document(str(target))
    assert document.paragraphs == []
    section = document.sections[0]
    assert section.top_margin is not None and abs(section.top_margin.mm - 37) < 0.5
    assert "PAGE" in section.footer._element.xml
    with zipfile.ZipFile(target) as package:
        assert "docProps/thumbnail.jpeg" not in package.namelist()


def _overlapping_words(pdf: Path) -> list[tuple[int, str, str]]:
    """Words printed over each other, per page (page number, word, word), from pdftotext."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    out = subprocess.run(
        ["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    found = []
    box = r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<'
    for number, page in enumerate(out.split("<page ")[1:], 1):
        words = [(*map(float, m[:4]), m[4]) for m in re.findall(box, page)]
        for n, (x0, y0, x1, y1, word) in enumerate(words):
            for a0, b0, a1, b1, other in words[n + 1 :]:
                if x0 < a1 - 0.5 and a0 < x1 - 0.5 and y0 < b1 - 0.5 and b0 < y1 - 0.5:
                    found.append((number, word, other))
    return found


def test_table_rows_never_break_across_pages() -> None:
    """Every row stays whole on a page; a category's rows stay together, the last with 合计."""
    document = reopen(render_notice(make_notice()))
    rows = document.tables[0]._tbl.findall(qn("w:tr"))
    assert all(tr.find(qn("w:trPr")).find(qn("w:cantSplit")) is not None for tr in rows)

    def kept(tr: object) -> bool:
        return all(p.find(qn("w:keepNext")) is not None for p in tr.iter(qn("w:pPr")))  # type: ignore[attr-defined]

    texts = [[c.text for c in row.cells] for row in document.tables[0].rows]
    # 2018's category 2 (行政审批制度改革) has indicators 3, 4 and 5: rows 3.1, 4.1, 4.2, 5.1.
    category_2 = [n for n, row in enumerate(texts) if row[0].startswith("2.行政审批")]
    assert [texts[n][2][:3] for n in category_2] == ["3.1", "4.1", "4.2", "5.1"]
    assert [kept(rows[n]) for n in category_2] == [True, True, True, False]
    assert kept(rows[-2]) and not kept(rows[-1])  # the last point with 合计; 合计 alone
    summary = reopen(render_summary(make_summary()))._body._body.findall(f".//{qn('w:tr')}")
    assert all(tr.find(qn("w:trPr")).find(qn("w:cantSplit")) is not None for tr in summary)


def _with_seed_indicator_4(data: NoticeData) -> NoticeData:
    """The notice with indicator 4 as the seed words it (a merged cell of four lines)."""
    categories = list(data.categories)
    category = categories[1]
    indicators = list(category.indicators)
    four = indicators[1]
    points = (
        replace(four.points[0], title="权力清单和责任清单修订情况"),
        replace(four.points[1], title="网上公布、动态管理情况"),
    )
    indicators[1] = replace(four, title="权力清单和责任清单修订情况，网上公布、动态管理情况",
                            points=points)  # fmt: skip
    categories[1] = replace(category, indicators=tuple(indicators))
    return replace(data, categories=tuple(categories))


@pytest.mark.parametrize("reason_repeat", [0, 3, 12])
def test_no_table_text_is_printed_over_other_text(tmp_path: Path, reason_repeat: int) -> None:
    """A row split at the page's foot made LibreOffice print the rest of a merged cell over
    the next page's first row (the PDF rendition the office prints): with the seed's words,
    page 1 ended inside row 4.2 and 「情况」 stood on 「5.优化服务流程」."""
    assert office_binary() is not None, "LibreOffice (soffice) is needed: apt-get install it"
    deductions = {"1.1": (D(3), "材料不全" * reason_repeat)} if reason_repeat else None
    data = _with_seed_indicator_4(make_notice(deductions=deductions))
    pdf = tmp_path / "notice.pdf"
    pdf.write_bytes(docx_to_pdf(render_notice(data)))
    assert _overlapping_words(pdf) == []


def _pages_text(pdf: Path) -> list[str]:
    out = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    return [page for page in out.stdout.split("\f") if page.strip()]


@pytest.mark.parametrize("count", [26, 40])
def test_summary_signature_never_stands_on_a_page_without_text(tmp_path: Path, count: int) -> None:
    """GB/T 9704 §7.3.5.1: the seal shares its page with text. LibreOffice printed the 26-row
    summary's signature alone on page 3 (it does not keep a table's last row with what
    follows); the note on the scale now goes with it."""
    assert office_binary() is not None, "LibreOffice (soffice) is needed: apt-get install it"
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    data = replace(make_summary(count), verification_code="7QF2-MX9Z-P4TW-8RCK")
    pdf = tmp_path / "summary.pdf"
    pdf.write_bytes(docx_to_pdf(render_summary(data)))
    pages = _pages_text(pdf)
    # The page of the 成文日期 under the signature (a line of its own; the 版记's has 印发).
    signed = [
        n for n, page in enumerate(pages)
        if any(line.replace(" ", "") == "2019年1月15日" for line in page.splitlines())
    ]  # fmt: skip
    assert len(signed) == 1
    page = pages[signed[0]]
    assert "注：折合分＝总分÷100×2" in page.replace("\n", "")
    assert page.index("注：") < page.index(ISSUER + "\n")


def test_summary_note_names_the_scale() -> None:
    document = reopen(render_summary(replace(make_summary(3), converted_max=D(5))))
    note = next(p for p in document.paragraphs if p.text.startswith("注："))
    assert note.text == ("注：折合分＝总分÷100×5，四舍五入保留两位小数；总分相同，名次并列。")
    assert note._p.pPr.find(qn("w:keepNext")) is not None
