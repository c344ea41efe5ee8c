"""sanitize_filename: examples, then properties over arbitrary Unicode."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from storage.ingest import FALLBACK_FILENAME, MAX_FILENAME_BYTES, sanitize_filename


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("自评报告.pdf", "自评报告.pdf"),
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("C:\\Users\\张三\\报告.docx", "报告.docx"),
        ("报告\x00.pdf", "报告.pdf"),
        ("年度\u202e报告.pdf", "年度报告.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("a\u2066b\u2069c\u200e\u200fd\ufeff.txt", "abcd.txt"),
        ("  多个   空格\t和\n换行\u3000.pdf  ", "多个 空格 和 换行 .pdf"),
        ("...隐藏文件.pdf", "隐藏文件.pdf"),
        ("结尾的点.pdf. . ", "结尾的点.pdf"),
        ('是否合规?<草稿>:"终版"|*.pdf', "是否合规__草稿___终版___.pdf"),
        ("CON.txt", "_CON.txt"),
        ("", FALLBACK_FILENAME),
        ("../", FALLBACK_FILENAME),
        ("\x00\u202e\u200b", FALLBACK_FILENAME),
        ("....", FALLBACK_FILENAME),
        ("（定稿）【附件1】《通知》.docx", "（定稿）【附件1】《通知》.docx"),
    ],
)
def test_examples(raw: str, clean: str) -> None:
    assert sanitize_filename(raw) == clean


def test_long_names_keep_their_extension() -> None:
    name = sanitize_filename("证" * 300 + ".pdf")
    assert len(name.encode()) <= MAX_FILENAME_BYTES
    # Cut in the middle, no character cut in half: 41 × 3 + 3 + 41 × 3 + 4 = 253 bytes.
    assert name == "证" * 41 + "…" + "证" * 41 + ".pdf"


def test_a_long_name_keeps_the_end_that_tells_versions_apart() -> None:
    """Found in a department's walk: the name was cut at its end, so 「（送审稿）」 and
    「（定稿）」 of one long title became the same name."""
    title = "关于进一步深化“放管服”改革优化营商环境若干措施落实情况的自查报告" * 3
    drafts = [sanitize_filename(f"{title}（{v}）.docx") for v in ("送审稿", "定稿")]
    assert drafts[0].endswith("（送审稿）.docx") and drafts[1].endswith("（定稿）.docx")
    assert all(d.startswith("关于进一步深化") and "…" in d for d in drafts)
    assert all(len(d.encode()) <= MAX_FILENAME_BYTES for d in drafts)


def test_long_dotted_tail_is_not_treated_as_an_extension() -> None:
    name = sanitize_filename("a." + "b" * 400)
    assert len(name.encode()) == MAX_FILENAME_BYTES
    assert name.startswith("a.bbb") and name.endswith("bbb") and "…" in name


FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}

# Mostly the characters that matter: CJK, separators, dots, spaces, controls, bidi marks.
interesting = st.text(
    alphabet=st.one_of(
        st.sampled_from('/\\.. \t\n\x00\u202a\u202e\u2066\u2069\u200e\u200f\u3000:*?"<>|'),
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
        st.characters(),
    ),
    max_size=400,
)


@given(interesting)
@example("证" * 300 + ".pdf")
@example("\udcff.pdf")  # a lone surrogate, as produced by decoding with surrogateescape
def test_properties(raw: str) -> None:
    name = sanitize_filename(raw)
    assert name
    assert "/" not in name and "\\" not in name
    assert not any(unicodedata.category(ch) in FORBIDDEN_CATEGORIES for ch in name)
    assert len(name.encode("utf-8")) <= MAX_FILENAME_BYTES
    assert not name.startswith((".", " ")) and not name.endswith((".", " "))
    assert "  " not in name
    assert sanitize_filename(name) == name  # idempotent: re-sanitising changes nothing


@given(st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=80))
def test_chinese_names_pass_through(stem: str) -> None:
    assert sanitize_filename(stem + ".docx") == stem + ".docx"


@pytest.mark.parametrize(
    "raw", ["COM¹.pdf", "lpt³.txt", "CONIN$.docx", "conout$", "COM0.pdf", "LPT0", "con .txt"]
)
def test_windows_reserved_names_com_superscript_and_conin_get_the_con_prefix(raw: str) -> None:
    # Finding 11.18: only CON, PRN, AUX, NUL, COM1-9 and LPT1-9 were prefixed.
    assert sanitize_filename(raw) == "_" + " ".join(raw.split()).rstrip(". ")


def test_ordinary_names_that_start_like_devices_are_kept() -> None:
    assert sanitize_filename("COM10.pdf") == "COM10.pdf"
    assert sanitize_filename("CONSOLE.txt") == "CONSOLE.txt"
    assert sanitize_filename("COM¹⁰.pdf") == "COM¹⁰.pdf"
