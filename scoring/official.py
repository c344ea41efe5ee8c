"""The parts of a 公文 (GB/T 9704-2012) around a notice's body, in the seed's own layout.

版头: the red 发文机关标志 (小标宋, centred), the 发文字号 and the red separator line.
版记: 抄送 (when configured), then 印发机关 and 印发日期 between black lines.
Between them the caller writes the title, 主送 and body; `add_signature` writes the
发文机关署名 and 成文日期 below a blank seal area (marked by the bookmark `SealArea`), and
`add_verification` the verification code with its QR code.

Pure functions over python-docx documents: no database, no Flask.
"""

from __future__ import annotations

import datetime as dt
from io import BytesIO
from typing import Final

import segno
from docx.document import Document
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Length, Mm, Pt

from scoring.docx_text import (
    FONT_BODY,
    FONT_TITLE,
    SIZE_SAN_HAO,
    SIZE_SI_HAO,
    clean_text,
    element,
    fill_paragraph,
    text_height,
    text_width,
)

RED: Final = "FF0000"
SEAL_BOOKMARK: Final = "SealArea"
SEAL_LINES: Final = 3  # blank 三号 lines above the signature: room for the 印章 (42 mm)
MARK_MAX_SIZE: Final = Pt(30)
MARK_MIN_SIZE: Final = Pt(16)
QR_WIDTH: Final = Mm(20)
_LINE_BODY: Final = Pt(28)
_SEPARATOR_SIZE_EIGHTHS: Final = "16"  # 2 pt red line under the 发文字号
_IMPRINT_THICK: Final = "8"  # 版记 first and last lines (0.35 mm ≈ 1 pt)
_IMPRINT_THIN: Final = "4"  # 版记 middle line (0.25 mm ≈ 0.5 pt)
_LINE_IMPRINT: Final = Pt(22)
_IMPRINT_FRAME_BORDERS: Final = 80  # twips: two borders of at most 1 pt with 1 pt of space


def chinese_date(value: dt.date) -> str:
    """Format a date the Chinese official way: 2019年1月15日."""
    return f"{value.year}年{value.month}月{value.day}日"


def authority_mark(issuer: str) -> str:
    """Return the 发文机关标志 of an issuer: its full name followed by 文件."""
    name = clean_text(issuer).strip()
    return name if name.endswith("文件") else f"{name}文件"


def _paragraph(document: Document) -> BaseOxmlElement:
    p: BaseOxmlElement = document.add_paragraph()._p
    return p


def _colour_runs(p: BaseOxmlElement, colour: str) -> None:
    for rpr in p.iter(qn("w:rPr")):
        color = element("w:color", val=colour)
        # w:color must precede w:sz in a w:rPr (schema order); insert before the size.
        size = rpr.find(qn("w:sz"))
        if size is not None:
            size.addprevious(color)
        else:
            rpr.append(color)


def _border(p: BaseOxmlElement, *sides: tuple[str, str, str, str]) -> None:
    """Add paragraph borders: (side, size in eighths of a point, space in pt, colour)."""
    ppr = p.find(qn("w:pPr"))
    borders = element("w:pBdr")
    for side, size, space, colour in sides:
        borders.append(element(f"w:{side}", val="single", sz=size, space=space, color=colour))
    # w:pBdr follows w:keepNext and precedes w:tabs and w:spacing in a w:pPr.
    following = ppr.find(qn("w:tabs"))
    if following is None:
        following = ppr.find(qn("w:spacing"))
    if following is not None:
        following.addprevious(borders)
    else:
        ppr.append(borders)


def _mark_size(document: Document, text: str) -> Length:
    """Return the largest size up to 30 pt at which the mark fits one line of the page."""
    chars = max(len(text), 1)
    fitting = Pt(int(text_width(document.sections[-1]) / chars / Pt(1)))
    return Length(max(min(int(fitting), int(MARK_MAX_SIZE)), int(MARK_MIN_SIZE)))


def add_masthead(
    document: Document, *, issuer: str, document_no: str, with_mark: bool = True
) -> None:
    """Write the 版头: red 发文机关标志 (unless a letterhead gives it), 发文字号, red line.

    GB/T 9704 §7.2: the mark centred in red 小标宋; two blank lines; the number centred in
    仿宋 三号; 4 mm below it a red line across the text block.
    """
    if with_mark:
        mark = authority_mark(issuer)
        size = _mark_size(document, mark)
        p = _paragraph(document)
        fill_paragraph(p, mark, font=FONT_TITLE, size=size, align="center", line_spacing=None)
        _colour_runs(p, RED)
        for _ in range(2):
            fill_paragraph(
                _paragraph(document), "", font=FONT_BODY, size=SIZE_SAN_HAO,
                line_spacing=_LINE_BODY,
            )  # fmt: skip
    p = _paragraph(document)
    fill_paragraph(
        p, clean_text(document_no).strip(), font=FONT_BODY, size=SIZE_SAN_HAO, align="center",
        line_spacing=_LINE_BODY,
    )  # fmt: skip
    _border(p, ("bottom", _SEPARATOR_SIZE_EIGHTHS, "11", RED))
    fill_paragraph(_paragraph(document), "", font=FONT_BODY, size=SIZE_SAN_HAO,
                   line_spacing=_LINE_BODY)  # fmt: skip


def _bookmark(p: BaseOxmlElement, name: str, bookmark_id: int) -> None:
    p.append(element("w:bookmarkStart", id=str(bookmark_id), name=name))
    p.append(element("w:bookmarkEnd", id=str(bookmark_id)))


def add_signature(document: Document, issuer: str, issued_on: dt.date) -> None:
    """Write the seal area, the 发文机关署名 and the 成文日期 (GB/T 9704 §7.3.5.1).

    With a seal: the date 右空四字, the issuer centred over the date, the seal pressing on
    both; the blank lines above them keep the seal's room on the same page (keep-with-next).
    """
    for n in range(SEAL_LINES):
        p = _paragraph(document)
        fill_paragraph(
            p, "", font=FONT_BODY, size=SIZE_SAN_HAO, line_spacing=_LINE_BODY,
            keep_with_next=True,
        )  # fmt: skip
        if n == 0:
            _bookmark(p, SEAL_BOOKMARK, 9001)
    issuer_text = clean_text(issuer).strip()
    date_text = chinese_date(issued_on)
    # The shorter of the two is centred under (over) the longer; the date 右空四字 unless
    # the issuer is so long that it must itself stand 右空二字.
    issuer_width, date_width = char_width(issuer_text), char_width(date_text)
    if issuer_width + 2 > date_width + 4:
        issuer_right = 2.0
        date_right = 2 + (issuer_width - date_width) / 2
    else:
        date_right = 4.0
        issuer_right = 4 + (date_width - issuer_width) / 2
    for text, right, keep in ((issuer_text, issuer_right, True), (date_text, date_right, False)):
        p = _paragraph(document)
        fill_paragraph(
            p, text, font=FONT_BODY, size=SIZE_SAN_HAO, align="right",
            line_spacing=_LINE_BODY, keep_with_next=keep,
        )  # fmt: skip
        _indent(p, right=round(right * SIZE_SAN_HAO.pt * 20))


def char_width(text: str) -> float:
    """Return the width of `text` in full-width characters (ASCII letters and digits: ½)."""
    return sum(0.5 if ord(ch) < 0x2E80 and ch not in "“”‘’" else 1.0 for ch in text)


def qr_png(url: str) -> bytes:
    """Return a PNG QR code of `url` (error correction M, 2-module quiet zone)."""
    buffer = BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=6, border=2)
    return buffer.getvalue()


def add_verification(document: Document, code: str, url: str) -> None:
    """Write the QR code and the verification code with where to check it."""
    if not code:
        return
    paragraph = document.add_paragraph()
    fill_paragraph(paragraph._p, "", font=FONT_BODY, size=Pt(10.5), align="left", line_spacing=None)
    if url:
        paragraph.add_run().add_picture(BytesIO(qr_png(url)), width=QR_WIDTH)
    lines = [f"验证码：{code}"]
    if url:  # the address on a line of its own, so it never breaks inside the code
        lines.append(f"扫描二维码或访问 {url} 可核验本文件")
    for text in lines:
        fill_paragraph(
            _paragraph(document), text, font=FONT_BODY, size=Pt(10.5), align="left",
            line_spacing=None,
        )  # fmt: skip


def add_imprint(document: Document, *, issuer: str, issued_on: dt.date, cc: str) -> None:
    """Write the 版记 at the foot of the last page: 抄送 (when given), 印发机关 and 印发日期.

    GB/T 9704 §7.4: 四号 仿宋, 左右各空一字; the first and last lines thicker than the
    middle one; the 印发日期 右空一字 on the line of the 印发机关; the 版记 ends on the last
    line of the last page. Each line is a frame (w:framePr) anchored to the bottom of the
    text block, the 抄送 frame just above the 印发 one: text before it keeps clear of them,
    and wherever the body ends, they sit on that page's last lines. One frame per paragraph,
    because LibreOffice drops the borders (and the frame) of a bordered multi-paragraph frame.
    """
    char = round(SIZE_SI_HAO.pt * 20)
    section = document.sections[-1]
    width = text_width(section)
    width_twips = round(width / 635)
    height_twips = round(text_height(section) / 635)
    cc_text = clean_text(cc).strip()
    cc_line = f"　抄送：{cc_text.rstrip('。')}。" if cc_text else ""
    p = _paragraph(document)
    # The lines span the text block, so no indents: a full-width space puts the 印发机关
    # 左空一字, and a right tab stop one character in carries the 印发日期 to 右空一字; the
    # full-width space before the tab keeps the two apart when a long issuer fills the line.
    fill_paragraph(
        p, f"　{clean_text(issuer).strip()}　\t{chinese_date(issued_on)}印发", font=FONT_BODY,
        size=SIZE_SI_HAO, align="left", line_spacing=_LINE_IMPRINT,
    )  # fmt: skip
    tabs = element("w:tabs")
    tabs.append(element("w:tab", val="right", pos=str(width_twips - char)))
    p.find(qn("w:pPr")).find(qn("w:spacing")).addprevious(tabs)
    # 印发机关 and 印发日期 share one line (the seed does): condense the characters just
    # enough when a long issuer would otherwise push the date onto a line of its own.
    chars = char_width(issuer.strip()) + char_width(f"{chinese_date(issued_on)}印发")
    spare = width / Pt(1) - (chars + 4) * SIZE_SI_HAO.pt  # 左空一字, 右空一字, 2 apart
    if spare < 0:
        count = len(issuer.strip()) + len(chinese_date(issued_on)) + 3
        _condense(p, twips=-min(round(-spare * 20 / count) + 1, 40))
    top = _IMPRINT_THIN if cc_line else _IMPRINT_THICK
    _border(p, ("top", top, "1", "000000"), ("bottom", _IMPRINT_THICK, "1", "000000"))
    imprint_height = _frame_height(1)
    if not cc_line:
        _frame(p, width=width_twips, height=imprint_height, y=None)
        return
    # The 抄送 comes first in the text, its frame stands right above the 印发 frame.
    cc_p = element("w:p")
    p.addprevious(cc_p)
    fill_paragraph(cc_p, cc_line, font=FONT_BODY, size=SIZE_SI_HAO, align="left",
                   line_spacing=_LINE_IMPRINT)  # fmt: skip
    _border(cc_p, ("top", _IMPRINT_THICK, "1", "000000"))
    # Lines the 抄送 takes, with a character to spare for where Word and LibreOffice wrap.
    per_line = max(int(width / Pt(1) / SIZE_SI_HAO.pt) - 1, 1)
    lines = -(-int(char_width(cc_line) + 1) // per_line)
    cc_height = _frame_height(lines)
    _frame(cc_p, width=width_twips, height=cc_height,
           y=height_twips - imprint_height - cc_height)  # fmt: skip
    _frame(p, width=width_twips, height=imprint_height, y=None)
    # An ordinary paragraph between the two frames, or LibreOffice takes them for one frame.
    gap = element("w:p")
    p.addprevious(gap)
    fill_paragraph(gap, "", font=FONT_BODY, size=Pt(1), line_spacing=Pt(1))


def _frame_height(lines: int) -> int:
    """Return the height in twips of a 版记 frame of `lines` lines and its two borders."""
    return lines * round(_LINE_IMPRINT.pt * 20) + _IMPRINT_FRAME_BORDERS


def _frame(p: BaseOxmlElement, *, width: int, height: int, y: int | None) -> None:
    """Make `p` a frame across the text block, `y` twips below its top, or at its bottom."""
    position = {"yAlign": "bottom"} if y is None else {"y": str(max(y, 0))}
    frame = element(
        "w:framePr", w=str(width), h=str(height), hRule="exact", wrap="notBeside",
        vAnchor="margin", hAnchor="margin", xAlign="center", **position,
    )  # fmt: skip
    ppr = p.find(qn("w:pPr"))
    # w:framePr follows w:keepNext and precedes w:pBdr (schema order).
    keep = ppr.find(qn("w:keepNext"))
    if keep is not None:
        keep.addnext(frame)
    else:
        ppr.insert(0, frame)


def _condense(p: BaseOxmlElement, *, twips: int) -> None:
    """Tighten the character spacing of every run of `p` by `twips` (w:spacing in w:rPr)."""
    for rpr in p.iter(qn("w:rPr")):
        size = rpr.find(qn("w:sz"))
        spacing = element("w:spacing", val=str(twips))
        if size is not None:
            size.addprevious(spacing)
        else:
            rpr.append(spacing)


def _indent(p: BaseOxmlElement, *, left: int = 0, right: int = 0) -> None:
    """Set absolute left and right indents in twips (the paragraph has no w:ind yet)."""
    ppr = p.find(qn("w:pPr"))
    ind = element("w:ind", left=str(left), right=str(right))
    jc = ppr.find(qn("w:jc"))
    jc.addprevious(ind)
