"""Low-level helpers for Chinese official documents (GB/T 9704) built with python-docx.

Pure functions: text cleaning, East Asian fonts on runs and styles, the A4 page set-up,
the "— 1 —" page number footer and small OOXML element builders used by `scoring.notice`.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Final

from docx.enum.section import WD_ORIENT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.section import Section
from docx.shared import Length, Mm, Pt
from docx.styles.style import ParagraphStyle

# GB/T 9704-2012 fonts and sizes (号 → points).
FONT_TITLE: Final = "方正小标宋简体"
FONT_BODY: Final = "仿宋_GB2312"
FONT_HEADING: Final = "黑体"
FONT_PAGE_NUMBER: Final = "宋体"
SIZE_ER_HAO: Final = Pt(22)  # 二号, the title
SIZE_SAN_HAO: Final = Pt(16)  # 三号, body and headings
SIZE_SI_HAO: Final = Pt(14)  # 四号, page numbers
SIZE_XIAO_SI: Final = Pt(12)  # 小四
SIZE_WU_HAO: Final = Pt(10.5)  # 五号, table text

# GB/T 9704-2012 §5.2.1: A4, top 37 mm, bottom 35 mm, left 28 mm, right 26 mm.
PAGE_WIDTH: Final = Mm(210)
PAGE_HEIGHT: Final = Mm(297)
MARGIN_TOP: Final = Mm(37)
MARGIN_BOTTOM: Final = Mm(35)
MARGIN_LEFT: Final = Mm(28)
MARGIN_RIGHT: Final = Mm(26)
FOOTER_DISTANCE: Final = Mm(23)  # puts the "— 1 —" line about 7 mm below the text block
HEADER_DISTANCE: Final = Mm(15)

# XML 1.0 forbids C0 controls except tab/LF/CR, surrogates and U+FFFE/U+FFFF; we also drop
# C1 controls, DEL and the other noncharacters, which Word renders as garbage.
_NONCHARACTERS = "".join(
    chr(plane * 0x10000 + low) for plane in range(17) for low in (0xFFFE, 0xFFFF)
)
_UNSTORABLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef" + _NONCHARACTERS + "]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_TAB_OR_NEWLINE = re.compile("(\t|\n)")


def clean_text(s: str) -> str:
    """Return `s` reduced to what a .docx can store and Word displays sensibly.

    CR LF and lone CR become LF; a surrogate pair left split in a `str` (bad decoding) is
    joined into its character; lone surrogates, control characters other than tab and LF,
    and noncharacters such as U+FFFE/U+FFFF are removed.
    """
    if not s:
        return ""
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    if _SURROGATE.search(s):
        # Join valid high/low pairs; the decoder drops the lone halves.
        s = s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "ignore")
    return _UNSTORABLE.sub("", s)


def set_style_font(style: ParagraphStyle, font: str, size: Length) -> None:
    """Set the Latin and East Asian font and size of a paragraph style (e.g. Normal)."""
    style.font.name = font
    style.font.size = size
    rpr = style.element.get_or_add_rPr()
    rfonts = rpr.get_or_add_rFonts()
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        rfonts.attrib.pop(qn(attr), None)  # a theme font would win over the named one
    rfonts.set(qn("w:eastAsia"), font)
    rfonts.set(qn("w:cs"), font)
    lang = rpr.find(qn("w:lang"))
    if lang is None:
        lang = OxmlElement("w:lang")
        rpr.append(lang)
    lang.set(qn("w:eastAsia"), "zh-CN")


def apply_official_layout(section: Section, *, landscape: bool = False) -> None:
    """Give `section` the GB/T 9704 page: A4 (portrait or landscape) and its margins."""
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = PAGE_HEIGHT, PAGE_WIDTH
    else:
        section.orientation = WD_ORIENT.PORTRAIT
        section.page_width, section.page_height = PAGE_WIDTH, PAGE_HEIGHT
    section.top_margin = MARGIN_TOP
    section.bottom_margin = MARGIN_BOTTOM
    section.left_margin = MARGIN_LEFT
    section.right_margin = MARGIN_RIGHT
    section.header_distance = HEADER_DISTANCE
    section.footer_distance = FOOTER_DISTANCE


def make_landscape(section: Section) -> None:
    """Turn `section` to landscape, keeping its paper size and margins (a no-op if wide)."""
    width, height = section.page_width, section.page_height
    if width is not None and height is not None and width < height:
        section.page_width, section.page_height = height, width
    section.orientation = WD_ORIENT.LANDSCAPE


def text_width(section: Section) -> int:
    """Return the width in EMU between the margins of `section` (A4 defaults if unset)."""
    page = section.page_width if section.page_width is not None else PAGE_WIDTH
    left = section.left_margin if section.left_margin is not None else MARGIN_LEFT
    right = section.right_margin if section.right_margin is not None else MARGIN_RIGHT
    return max(int(page) - int(left) - int(right), int(Mm(60)))


def text_height(section: Section) -> int:
    """Return the height in EMU between the margins of `section` (A4 defaults if unset)."""
    page = section.page_height if section.page_height is not None else PAGE_HEIGHT
    top = section.top_margin if section.top_margin is not None else MARGIN_TOP
    bottom = section.bottom_margin if section.bottom_margin is not None else MARGIN_BOTTOM
    return max(int(page) - int(top) - int(bottom), int(Mm(60)))


def element(tag: str, **attrs: str) -> BaseOxmlElement:
    """Return a new OOXML element `tag` (e.g. "w:tcW") with w:-namespaced attributes."""
    return OxmlElement(tag, attrs={qn(f"w:{name}"): value for name, value in attrs.items()})


def _run_properties(font: str, size: Length, *, bold: bool = False) -> BaseOxmlElement:
    """Return a fresh copy of the w:rPr for `font`, `size` and `bold` (built once)."""
    return copy.deepcopy(_cached_run_properties(font, int(size), bold))


@functools.lru_cache(maxsize=64)
def _cached_run_properties(font: str, size_emu: int, bold: bool) -> BaseOxmlElement:
    """Return a w:rPr naming `font` for Latin (ascii/hAnsi) and East Asian (eastAsia) text.

    python-docx's `run.font.name` only writes w:ascii/w:hAnsi; Word picks the font of CJK
    characters from w:eastAsia, so every run written here names it explicitly.
    """
    rpr = element("w:rPr")
    rpr.append(element("w:rFonts", ascii=font, hAnsi=font, eastAsia=font, cs=font, hint="eastAsia"))
    if bold:
        rpr.append(element("w:b"))
    half_points = str(round(Length(size_emu).pt * 2))
    rpr.append(element("w:sz", val=half_points))
    rpr.append(element("w:szCs", val=half_points))
    return rpr


def text_run(text: str, font: str, size: Length, *, bold: bool = False) -> BaseOxmlElement:
    """Return a w:r of cleaned `text`: tabs become w:tab, newlines w:br, the rest w:t."""
    run = element("w:r")
    run.append(_run_properties(font, size, bold=bold))
    for part in _TAB_OR_NEWLINE.split(clean_text(text)):
        if part == "\t":
            run.append(element("w:tab"))
        elif part == "\n":
            run.append(element("w:br"))
        elif part:
            t = element("w:t")
            t.set(qn("xml:space"), "preserve")
            t.text = part
            run.append(t)
    return run


def fill_paragraph(
    p: BaseOxmlElement,
    text: str,
    *,
    font: str,
    size: Length,
    align: str = "both",
    line_spacing: Length | None = None,
    first_line_chars: int = 0,
    right_chars: int = 0,
    keep_with_next: bool = False,
    bold: bool = False,
) -> None:
    """Give the empty w:p `p` its properties and one run of `text` (none if it is empty).

    `align` is a w:jc value ("left", "center", "right", "both"). Spacing before and after is
    zero; `line_spacing` is exact, or single when None. Indents are in characters of `size`
    (w:firstLineChars / w:rightChars, what Word uses) with absolute twips for other readers.
    The paragraph mark gets the same font and size, so an empty line is as tall as a full one.
    """
    ppr = element("w:pPr")
    if keep_with_next:
        ppr.append(element("w:keepNext"))
    if line_spacing is None:
        ppr.append(element("w:spacing", before="0", after="0", line="240", lineRule="auto"))
    else:
        line = str(round(line_spacing.pt * 20))
        ppr.append(element("w:spacing", before="0", after="0", line=line, lineRule="exact"))
    if first_line_chars or right_chars:
        char_twips = round(size.pt * 20)
        ind = element("w:ind")
        if right_chars:
            ind.set(qn("w:right"), str(char_twips * right_chars))
            ind.set(qn("w:rightChars"), str(right_chars * 100))
        if first_line_chars:
            ind.set(qn("w:firstLine"), str(char_twips * first_line_chars))
            ind.set(qn("w:firstLineChars"), str(first_line_chars * 100))
        ppr.append(ind)
    ppr.append(element("w:jc", val=align))
    ppr.append(_run_properties(font, size, bold=bold))
    p.append(ppr)
    if text:
        run = text_run(text, font, size, bold=bold)
        if len(run) > 1:  # more than its w:rPr: the cleaned text was not empty
            p.append(run)


def _field_char_run(fld_char_type: str) -> BaseOxmlElement:
    run = element("w:r")
    run.append(_run_properties(FONT_PAGE_NUMBER, SIZE_SI_HAO))
    run.append(element("w:fldChar", fldCharType=fld_char_type))
    return run


def _page_number_paragraph(align: str) -> BaseOxmlElement:
    """Return a "— PAGE —" paragraph in 宋体 四号, one character in from the `align` side."""
    p = element("w:p")
    fill_paragraph(p, "— ", font=FONT_PAGE_NUMBER, size=SIZE_SI_HAO, align=align)
    ind = element("w:ind", **{align: str(round(SIZE_SI_HAO.pt * 20))})
    p.find(qn("w:pPr")).find(qn("w:jc")).addprevious(ind)
    p.append(_field_char_run("begin"))
    instr_run = element("w:r")
    instr_run.append(_run_properties(FONT_PAGE_NUMBER, SIZE_SI_HAO))
    instr = element("w:instrText")
    instr.set(qn("xml:space"), "preserve")
    instr.text = " PAGE "
    instr_run.append(instr)
    p.append(instr_run)
    p.append(_field_char_run("separate"))
    p.append(text_run("1", FONT_PAGE_NUMBER, SIZE_SI_HAO))
    p.append(_field_char_run("end"))
    p.append(text_run(" —", FONT_PAGE_NUMBER, SIZE_SI_HAO))
    return p


def _replace_footer(footer: object, paragraph: BaseOxmlElement) -> None:
    element_ = footer._element  # type: ignore[attr-defined]
    for child in list(element_):
        element_.remove(child)
    element_.append(paragraph)


def write_page_number_footer(section: Section) -> None:
    """Write "— N —" page numbers on the outer side (GB/T 9704 §7.5).

    Odd pages: right, 右空一字; even pages: left, 左空一字. The document must have
    `settings.odd_and_even_pages_header_footer` set for Word to use the even footer.
    """
    section.footer.is_linked_to_previous = False
    _replace_footer(section.footer, _page_number_paragraph("right"))
    section.even_page_footer.is_linked_to_previous = False
    _replace_footer(section.even_page_footer, _page_number_paragraph("left"))
