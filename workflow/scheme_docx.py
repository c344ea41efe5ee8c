"""A draft scheme from the office's own Word document: a 考核细则 with its 分值构成 table.

The reader takes what the document states and says what it could not read (`warnings`):

- the 分值构成 table (the table whose header names 考评内容): a category per distinct
  「N.标题（M分）」 cell of the second column, an indicator per 「N.…（M分）」 cell of the third;
  inside an indicator, every 「（N分）」 before the last marks a scoring point (the text before
  it is the point's title), the last one is the indicator's maximum; 「（以…为考核依据）」 is its
  evidence basis. Half-width parentheses are read too (the 2018 document mixes both);
- the notice: its number (蛟市职转办〔2018〕6号), the rules' title (《…》), the issuer and the
  signing date, the assessed units (一、考评对象, parenthesised offices kept as offices; a name
  the table writes differently becomes an alias), 满分 and 折合 points, the 注 on units a point
  does not concern;
- routine points (平时考核): a point 「每月至少 N 篇」 or 「每季度 N 篇」 feeds on routine
  records with that quota, 「其他临时性工作」 on the office's tasks; counting starts the month
  after signing. This is read from words, so it is always flagged for checking.

The draft is not stored: it is checked like any scheme (`errors`: the sums it breaks, by
place) and shown beside the document's text (`paragraphs`) for correction before saving.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from workflow.errors import InvalidValue, SchemeError
from workflow.schemes import check_scheme, to_yaml

MAX_DOCX_BYTES = 10 * 1024 * 1024
#: The uncompressed size a .docx may unpack to (a zip bomb is refused before parsing).
MAX_UNPACKED_BYTES = 50 * 1024 * 1024

_OPEN, _CLOSE = "[（(]", "[）)]"
MARK = re.compile(rf"{_OPEN}\s*(\d+(?:\.\d+)?)\s*分\s*{_CLOSE}")
EVIDENCE = re.compile(rf"{_OPEN}\s*(以[^（()）]*?为考核依据)\s*{_CLOSE}")
NUMBERED = re.compile(r"^\s*(\d+)\s*[.．、]\s*")
DOC_NO = re.compile(r"\S+〔\d{4}〕\d+号")
TITLE = re.compile(r"《([^》]+)》")
DATE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日")
UNITS = re.compile(r"具体为(.+?)等\s*(\d+)\s*个(?:部门|单位)")
TOTAL = re.compile(r"满分\s*(\d+(?:\.\d+)?)\s*分")
CONVERTED = re.compile(r"折合(?:为)?\s*(\d+(?:\.\d+)?)\s*分")
NOT_INVOLVED = re.compile(r"如(小项中不涉及[^。]*)")
MONTHLY = re.compile(r"每月至少(?:上报)?\s*(\d+)\s*篇")
QUARTERLY = re.compile(r"每季度(?:至少)?\s*(\d+)\s*篇")
PUNCT = "；;，,。.、 \u3000"


@dataclass
class Draft:
    """What was read: the draft scheme, warnings, remaining problems and the document's text."""

    scheme: dict[str, Any]
    warnings: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)

    def warn(self, path: str, message: str) -> None:
        """Note what could not be read, and where."""
        self.warnings.append({"path": path, "message": message})

    def as_dict(self) -> dict[str, Any]:
        """The draft as the API answers it (`SchemeDraft`)."""
        return {
            "scheme": self.scheme,
            "yaml": to_yaml(self.scheme),
            "warnings": self.warnings,
            "errors": self.errors,
            "paragraphs": self.paragraphs,
        }


def _points(text: str) -> str:
    """A mark's figure as a decimal string ("5", "2.5")."""
    try:
        return format(Decimal(text).normalize(), "f")
    except InvalidOperation:  # pragma: no cover - the pattern allows digits only
        return text


def _clean(text: str) -> str:
    return re.sub(r"\s+", "", text).strip(PUNCT)


def _open_document(data: bytes) -> Any:
    """Open the .docx (python-docx), refusing what is not one and zip bombs (415)."""
    from docx import Document

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            if "word/document.xml" not in archive.namelist():
                raise zipfile.BadZipFile("no word/document.xml")
    except zipfile.BadZipFile:
        raise InvalidValue("文件不是 Word 文档（.docx）", code="not_a_docx") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise InvalidValue("Word 文档解压后过大", code="not_a_docx")
    try:
        return Document(io.BytesIO(data))
    except Exception:  # python-docx raises many kinds on a broken package
        raise InvalidValue("文件不是 Word 文档（.docx）", code="not_a_docx") from None


def _table_rows(table: Any) -> list[list[str]]:
    """The table's rows as texts; a vertically merged cell repeats its text (python-docx)."""
    rows = []
    for row in table.rows:
        rows.append([cell.text.strip() for cell in row.cells])
    return rows


def _find_table(tables: list[list[list[str]]]) -> list[list[str]] | None:
    for rows in tables:
        if rows and any("考评内容" in cell or "考核内容" in cell for cell in rows[0]):
            return rows
    for rows in tables:  # no header: the first table with （N分） marks
        if any(MARK.search(cell) for row in rows for cell in row):
            return rows
    return None


def _split_units(text: str) -> list[dict[str, Any]]:
    """「交通局、政府办（民族宗教局、法制办 )、…」 → units with their parenthesised offices."""
    units, depth, current = [], 0, ""
    for ch in text:
        if ch in "（(":
            depth += 1
        elif ch in "）)":
            depth = max(0, depth - 1)
        if ch == "、" and depth == 0:
            units.append(current)
            current = ""
        else:
            current += ch
    units.append(current)
    out: list[dict[str, Any]] = []
    for raw in units:
        raw = re.sub(r"\s+", "", raw)
        if not raw:
            continue
        m = re.match(rf"^([^（(]+){_OPEN}(.*){_CLOSE}$", raw)
        if m:
            name, inner = m.group(1), m.group(2)
            offices = [o for o in inner.split("、") if o]
            out.append(
                {"name": name, "full_name": f"{name}（{'、'.join(offices)}）", "offices": offices}
            )
        else:
            out.append({"name": raw})
    return out


def _indicator(text: str, where: str, draft: Draft) -> dict[str, Any] | None:
    """One 「N.…（a分）…（b分）。（T分）」 cell → an indicator with its scoring points."""
    flat = re.sub(r"\s+", "", text)
    number = NUMBERED.match(flat)
    if number is None:
        draft.warn(where, f"未找到指标序号（{flat[:30]}…）")
        return None
    code = number.group(1)
    body = flat[number.end() :]
    evidence = EVIDENCE.search(body)
    basis = evidence.group(1) if evidence else ""
    if evidence:
        body = body[: evidence.start()] + body[evidence.end() :]
    else:
        draft.warn(where, f"指标 {code} 未载明考核依据（以…为考核依据），请补充")
    marks = list(MARK.finditer(body))
    if not marks:
        draft.warn(where, f"指标 {code} 未找到分值标记（N分）")
        return None
    last = marks[-1]
    if body[last.end() :].strip(PUNCT):
        draft.warn(where, f"指标 {code} 的分值标记后还有文字，未读取：{body[last.end() :]}")
    maximum = _points(last.group(1))
    inner = marks[:-1]
    points: list[dict[str, Any]] = []
    start = 0
    for k, mark in enumerate(inner, 1):
        title = _clean(body[start : mark.start()])
        if k == 1 and "。" in title:  # 「推行…工作。制定抽查计划情况」: the first part heads it
            head, _, title = title.rpartition("。")
            heading: str | None = _clean(head)
        elif k == 1:
            heading = None
        points.append({"code": f"{code}.{k}", "title": title, "max_points": _points(mark.group(1))})
        start = mark.end()
    if inner and _clean(body[start : last.start()]):
        draft.warn(
            where,
            f"指标 {code} 最后一个分项之后的文字未计分：{_clean(body[start : last.start()])}",
        )
    whole = _clean(MARK.sub("", body[: last.start()]))
    if not points:
        title = whole
        points = [{"code": f"{code}.1", "title": title, "max_points": maximum}]
    else:
        title = heading or "；".join(p["title"] for p in points)
    indicator: dict[str, Any] = {
        "code": code,
        "title": title,
        "max_points": maximum,
        "evidence_basis": basis,
        "sub_items": points,
    }
    return indicator


def _category(text: str, where: str, draft: Draft) -> dict[str, Any] | None:
    flat = re.sub(r"\s+", "", text)
    number = NUMBERED.match(flat)
    marks = list(MARK.finditer(flat))
    if number is None or not marks:
        draft.warn(where, f"考评内容未能读出序号或分值（{flat[:30]}）")
        return None
    title = _clean(flat[number.end() : marks[-1].start()])
    return {
        "code": number.group(1),
        "title": title,
        "max_points": _points(marks[-1].group(1)),
        "indicators": [],
    }


def _routine(
    categories: list[dict[str, Any]], year: int | None, signed: dt.date | None, draft: Draft
) -> Any:
    """Routine points from the words of their titles (always flagged for checking).

    The counting window is the scheme year's, from the month after the rules were signed
    when they were signed in that year (the 2018 rules: 2018-08 to 2018-12), else all of it.
    """
    quotas: dict[str, Any] = {}
    suggestion: dict[str, Any] = {}
    for category in categories:
        for indicator in category["indicators"]:
            for point in indicator["sub_items"]:
                title = point["title"]
                if m := MONTHLY.search(title):
                    point["routine"] = "monthly_info"
                    quotas["monthly_info"] = {"period": "month", "minimum": int(m.group(1))}
                    suggestion[point["code"]] = {
                        "kind": "monthly_info", "formula": "share_of_periods"
                    }  # fmt: skip
                elif m := QUARTERLY.search(title):
                    point["routine"] = "quarterly_case"
                    quotas["quarterly_case"] = {"period": "quarter", "minimum": int(m.group(1))}
                    suggestion[point["code"]] = {
                        "kind": "quarterly_case", "formula": "share_of_periods"
                    }  # fmt: skip
                elif "临时性工作" in title:
                    point["routine"] = "adhoc"
                    suggestion[point["code"]] = {
                        "kinds": ["meeting", "inspection", "task"], "formula": "share_completed"
                    }  # fmt: skip
    if not suggestion:
        return None
    routine: dict[str, Any] = {"quotas": quotas, "suggestion": suggestion}
    year = year if year is not None else signed.year if signed is not None else None
    if year is not None:
        starts = 1
        if signed is not None and signed.year == year:
            starts = min(signed.month + 1, 12)
        routine["counting_starts"] = f"{year}-{starts:02d}"
        routine["counting_ends"] = f"{year}-12"
    draft.warn(
        "routine",
        "平时考核规则（配额、建议分公式、计数期间）由文字推断："
        + "、".join(suggestion)
        + "，请核对",
    )
    return routine


def read_docx_draft(data: bytes) -> Draft:
    """Read a 考核细则 .docx into a draft scheme with warnings (nothing is stored)."""
    document = _open_document(data)
    paragraphs = [p.text.strip() for p in document.paragraphs if p.text.strip()]
    tables = [_table_rows(t) for t in document.tables]
    draft = Draft(scheme={}, paragraphs=list(paragraphs))
    for rows in tables:
        for row in rows:
            draft.paragraphs.append(" | ".join(dict.fromkeys(c for c in row if c)))
    text = "\n".join(paragraphs)
    scheme: dict[str, Any] = {}

    doc_no = DOC_NO.search(text)
    title = TITLE.search(text)
    year_match = re.search(r"(\d{4})年度", title.group(1) if title else text)
    year = int(year_match.group(1)) if year_match else None
    if year is None:
        draft.warn("year", "未能读出考核年度")
    scheme["code"] = f"scheme-{year or 'draft'}"
    draft.warn("code", "方案编码由年度生成，请按需修改")
    if year is not None:
        scheme["year"] = year
    if title:
        scheme["title"] = title.group(1)
    else:
        draft.warn("title", "未找到《…》中的细则名称")
    if doc_no:
        scheme["document_no"] = doc_no.group(0)
    else:
        draft.warn("document_no", "未找到发文字号（如 蛟市职转办〔2018〕6号）")

    issuer, signed, printed = None, None, None
    for k, line in enumerate(paragraphs):
        date = DATE.search(line)
        if date is None:
            continue
        day = dt.date(int(date.group(1)), int(date.group(2)), int(date.group(3)))
        before = _clean(line[: date.start()])
        if "印发" in line[date.end() :]:
            printed = printed or day
            issuer = issuer or before or None
        elif signed is None and not before:  # a date on its own line: the signing date
            signed = day
            if k > 0:
                issuer = _clean(paragraphs[k - 1]) or issuer
    if issuer:
        scheme["issuer"] = issuer
    else:
        draft.warn("issuer", "未能读出发文机关")
    if signed:
        scheme["signed_on"] = signed.isoformat()
    else:
        draft.warn("signed_on", "未能读出成文日期")
    if printed:
        scheme["printed_on"] = printed.isoformat()

    table = _find_table(tables)
    categories: list[dict[str, Any]] = []
    table_units: list[str] = []
    if table is None:
        draft.warn("categories", "未找到分值构成表（含「考评内容」的表格）")
    else:
        current: dict[str, Any] | None = None
        last_category_text = None
        for r, row in enumerate(table):
            where = f"表格第 {r + 1} 行"
            if r == 0 and any("考评内容" in c or "考核内容" in c for c in row):
                continue
            if len(row) < 3:
                draft.warn(where, "少于三列，未读取")
                continue
            units_cell, category_cell, indicator_cell = row[-3], row[-2], row[-1]
            if units_cell and not table_units:
                table_units = [u["name"] for u in _split_units(UNITS_TAIL.sub("", units_cell))]
            if category_cell and category_cell != last_category_text:
                last_category_text = category_cell
                current = _category(category_cell, where, draft)
                if current is not None:
                    categories.append(current)
            if current is None:
                draft.warn(where, "该行不属于任何考评内容，未读取")
                continue
            if indicator_cell and (
                not current["indicators"] or indicator_cell != current.get("_last")
            ):
                current["_last"] = indicator_cell
                indicator = _indicator(indicator_cell, where, draft)
                if indicator is not None:
                    current["indicators"].append(indicator)
        for category in categories:
            category.pop("_last", None)
    scheme["categories"] = categories

    units_text = UNITS.search(text)
    departments: list[dict[str, Any]] = []
    if units_text:
        departments = _split_units(units_text.group(1))
        stated = int(units_text.group(2))
        if stated != len(departments):
            draft.warn("departments", f"考评对象写明 {stated} 个部门，读出 {len(departments)} 个")
    elif table_units:
        departments = [{"name": n} for n in table_units]
    else:
        draft.warn("departments", "未能读出考评对象")
    if table_units and len(table_units) == len(departments):
        for unit, other in zip(departments, table_units, strict=True):
            if other != unit["name"]:
                unit.setdefault("aliases", []).append(other)
                draft.warn(
                    "departments",
                    f"分值构成表把 {unit['name']} 写作 {other}，已作为别名",
                )
    elif table_units:
        draft.warn("departments", "分值构成表所列部门与考评对象不一致，请核对")
    scheme["departments"] = departments

    total = TOTAL.search(text + "\n" + "\n".join(draft.paragraphs))
    sum_total = sum((Decimal(c["max_points"]) for c in categories), Decimal(0))
    if total:
        scheme["total_points"] = _points(total.group(1))
    else:
        scheme["total_points"] = format(sum_total, "f")
        draft.warn("total_points", "未找到「满分 N 分」，取各类别之和")
    converted = CONVERTED.search(text + "\n" + "\n".join(draft.paragraphs))
    if converted:
        scheme["converted_points"] = _points(converted.group(1))
    else:
        draft.warn("converted_points", "未找到折合分值（折合 N 分）")
    note = NOT_INVOLVED.search("\n".join(draft.paragraphs))
    if note:
        scheme["not_involved_rule"] = note.group(1)
    routine = _routine(categories, year, signed, draft)
    if routine is not None:
        scheme["routine"] = routine
    draft.warn("appeal_window_days", "文件未载明申诉期，取默认 7 天")
    draft.warn("check_points", "核查要点（考评方式一节的“是否…”）未按指标读出，请在各指标下补充")
    # Keys in the file's order, as the shipped schemes write them.
    order = [
        "code", "year", "title", "document_no", "issuer", "signed_on", "printed_on",
        "total_points", "converted_points", "not_involved_rule", "departments", "categories",
        "routine",
    ]  # fmt: skip
    draft.scheme = {k: scheme[k] for k in order if k in scheme}
    try:
        check_scheme(draft.scheme)
    except SchemeError as exc:
        draft.errors = [{**e, "line": None} for e in exc.errors]
    return draft


#: The tail 「等26个部门」 of the table's unit cell.
UNITS_TAIL = re.compile(r"等\s*\d+\s*个(?:部门|单位)\s*$")
