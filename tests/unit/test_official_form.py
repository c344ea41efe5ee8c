"""The notice and the summary as a 公文 (GB/T 9704-2012, the seed's layout), read from the .docx."""

from __future__ import annotations

from dataclasses import replace
from io import BytesIO

import docx
import pytest
from docx.document import Document
from docx.oxml.ns import qn

from scoring.notice import balanced_title, render_notice, render_summary
from scoring.official import SEAL_BOOKMARK, authority_mark, char_width
from tests.unit.test_notice import ISSUER, make_notice, make_summary

CODE = "7QF2-MX9Z-P4TW-8RCK"
URL = f"https://kh.example.cn/verify/{CODE}"
MARK = "蛟河市人民政府推进职能转变协调小组办公室文件"


def reopen(data: bytes) -> Document:
    return docx.Document(BytesIO(data))


@pytest.fixture(scope="module")
def notice() -> Document:
    cc = "市政府办公室，市绩效办"
    data = replace(make_notice(), verification_code=CODE, verify_url=URL, cc=cc)
    return reopen(render_notice(data))


def colour_of(run_element: object) -> str | None:
    rpr = run_element.find(qn("w:rPr"))  # type: ignore[attr-defined]
    color = rpr.find(qn("w:color")) if rpr is not None else None
    return color.get(qn("w:val")) if color is not None else None


def bottom_border(paragraph: object) -> object | None:
    ppr = paragraph._p.pPr  # type: ignore[attr-defined]
    borders = ppr.find(qn("w:pBdr")) if ppr is not None else None
    return borders.find(qn("w:bottom")) if borders is not None else None


def test_masthead_mark_is_red_xiaobiaosong_and_centred(notice: Document) -> None:
    first = notice.paragraphs[0]
    assert first.text == MARK == authority_mark(ISSUER)
    runs = first._p.findall(qn("w:r"))
    assert runs and all(colour_of(r) == "FF0000" for r in runs)
    fonts = {r.find(qn("w:rPr")).find(qn("w:rFonts")).get(qn("w:eastAsia")) for r in runs}
    assert fonts == {"方正小标宋简体"}
    assert first._p.pPr.find(qn("w:jc")).get(qn("w:val")) == "center"


def test_document_number_then_red_separator(notice: Document) -> None:
    texts = [p.text for p in notice.paragraphs]
    number = notice.paragraphs[texts.index("蛟市职转办〔2019〕1号")]
    assert texts.index("蛟市职转办〔2019〕1号") < texts.index("政府办（民族宗教局、法制办）：")
    line = bottom_border(number)
    assert line is not None and line.get(qn("w:color")) == "FF0000"
    assert line.get(qn("w:val")) == "single"
    # Nothing else in the body is red: the mark and the line are the only red parts.
    red = [p.text for p in notice.paragraphs if any(colour_of(r) for r in p._p.findall(qn("w:r")))]
    assert red == [MARK]


def test_signature_has_a_seal_area_above_issuer_and_date(notice: Document) -> None:
    paragraphs = notice.paragraphs
    (marked,) = [
        n
        for n, p in enumerate(paragraphs)
        if any(b.get(qn("w:name")) == SEAL_BOOKMARK for b in p._p.iter(qn("w:bookmarkStart")))
    ]
    assert [p.text for p in paragraphs[marked : marked + 3]] == ["", "", ""]
    assert paragraphs[marked + 3].text == ISSUER
    assert paragraphs[marked + 4].text == "2019年1月15日"
    assert paragraphs[marked - 1].text == "特此通知。"
    # The seal's room is kept on the page of the signature.
    for p in paragraphs[marked - 1 : marked + 4]:
        assert p._p.pPr.find(qn("w:keepNext")) is not None


def test_imprint_has_cc_issuer_and_date_between_lines(notice: Document) -> None:
    *_, cc, printed = [p for p in notice.paragraphs if p.text.strip()]
    assert cc.text.strip() == "抄送：市政府办公室，市绩效办。"
    assert printed.text.strip() == f"{ISSUER}　\t2019年1月15日印发"
    cc_borders = cc._p.pPr.find(qn("w:pBdr"))
    printed_borders = printed._p.pPr.find(qn("w:pBdr"))
    first = cc_borders.find(qn("w:top")).get(qn("w:sz"))
    middle = printed_borders.find(qn("w:top")).get(qn("w:sz"))
    last = printed_borders.find(qn("w:bottom")).get(qn("w:sz"))
    assert int(first) == int(last) > int(middle)  # first and last lines thicker than the middle


def frame_of(paragraph: object) -> dict[str, str]:
    frame = paragraph._p.pPr.find(qn("w:framePr"))  # type: ignore[attr-defined]
    assert frame is not None, "the 版记 line is not a frame"
    return {k.split("}")[1]: v for k, v in frame.attrib.items()}


def test_imprint_stands_at_the_foot_of_the_text_block(notice: Document) -> None:
    *_, cc, printed = [p for p in notice.paragraphs if p.text.strip()]
    section = notice.sections[-1]
    assert section.page_height is not None and section.top_margin is not None
    assert section.bottom_margin is not None
    height = round((section.page_height - section.top_margin - section.bottom_margin) / 635)
    last, above = frame_of(printed), frame_of(cc)
    # The 印发 line on the last line of the page, the 抄送 right above it, across the block.
    assert last["yAlign"] == "bottom" and last["vAnchor"] == above["vAnchor"] == "margin"
    assert int(above["y"]) + int(above["h"]) == height - int(last["h"])
    assert last["w"] == above["w"] and last["wrap"] == above["wrap"] == "notBeside"


def test_imprint_without_cc_has_only_the_issuing_line() -> None:
    document = reopen(render_notice(make_notice()))
    texts = [p.text for p in document.paragraphs if p.text.strip()]
    assert not any(t.strip().startswith("抄送") for t in texts)
    assert texts[-1].strip().endswith("2019年1月15日印发")
    assert frame_of(document.paragraphs[-1])["yAlign"] == "bottom"


def test_verification_code_and_qr_code(notice: Document) -> None:
    text = "\n".join(p.text for p in notice.paragraphs)
    assert f"验证码：{CODE}" in text and URL in text
    pictures = notice.inline_shapes
    assert len(pictures) == 1
    blip = pictures[0]._inline.graphic.graphicData.pic.blipFill.blip
    image = notice.part.related_parts[blip.embed].blob
    assert image.startswith(b"\x89PNG")


def test_page_numbers_on_the_outer_side(notice: Document) -> None:
    section = notice.sections[0]
    assert notice.settings.odd_and_even_pages_header_footer
    odd = section.footer.paragraphs[0]
    even = section.even_page_footer.paragraphs[0]
    assert odd.text == even.text == "— 1 —"
    assert odd._p.pPr.find(qn("w:jc")).get(qn("w:val")) == "right"
    assert even._p.pPr.find(qn("w:jc")).get(qn("w:val")) == "left"


def test_notice_names_no_attachment(notice: Document) -> None:
    texts = [p.text for p in notice.paragraphs]
    assert not any(t.startswith("附件") for t in texts)


def test_preliminary_notice_names_no_rank() -> None:
    data = replace(make_notice(), rank=None, is_preliminary=True)
    text = "\n".join(p.text for p in reopen(render_notice(data)).paragraphs)
    assert "（初步结果）" in text and "排名第" not in text
    assert "公示前不作排名" in text


def test_letterhead_replaces_the_mark_but_keeps_number_and_line() -> None:
    letterhead = docx.Document()
    letterhead.add_paragraph("某某信头")
    buffer = BytesIO()
    letterhead.save(buffer)
    document = reopen(render_notice(make_notice(), base=buffer.getvalue()))
    texts = [p.text for p in document.paragraphs]
    assert texts[0] == "某某信头" and MARK not in texts
    assert bottom_border(document.paragraphs[texts.index("蛟市职转办〔2019〕1号")]) is not None


def test_summary_is_a_document_of_its_own_in_the_same_form() -> None:
    data = replace(make_summary(3), verification_code=CODE, verify_url=URL)
    document = reopen(render_summary(data))
    texts = [p.text for p in document.paragraphs]
    assert texts[0] == MARK and "蛟市职转办〔2019〕2号" in texts
    # Issued and verified on its own: not headed 「附件」 as if it came with a notice.
    assert "附件" not in texts
    assert texts.index("蛟市职转办〔2019〕2号") < texts.index(
        "2018年度市政府相关部门“放管服”工作考核结果汇总表"
    )
    assert any(t.strip().endswith("印发") for t in texts) and f"验证码：{CODE}" in "\n".join(texts)
    preliminary = reopen(render_summary(replace(data, is_preliminary=True)))
    assert preliminary.tables[0].rows[0].cells[0].text == "暂定名次"


def test_balanced_title_breaks_at_a_word_boundary() -> None:
    assert balanced_title("关于考核结果的通知", 20) == "关于考核结果的通知"
    broken = balanced_title("关于2018年度“放管服”工作考核结果的通知", 20)
    first, second = broken.split("\n")
    assert first == "关于2018年度“放管服”" and second == "工作考核结果的通知"
    assert abs(char_width(first) - char_width(second)) <= 2
