"""The Word import reads the 2018 考核细则 (built as .docx from the notice's text) into a draft
that reproduces schemes/jiaohe-2018.yaml's numbers, and a changed point value shows."""

from __future__ import annotations

import io

import pytest
from docx import Document

from tests.scheme_docx import build_docx
from workflow.errors import InvalidValue
from workflow.scheme import Scheme, parse_scheme
from workflow.scheme_docx import read_docx_draft


def numbers(scheme: Scheme) -> list[tuple[str, str, object]]:
    """Every figure of a scheme: categories, indicators, points, maxima, totals."""
    out: list[tuple[str, str, object]] = [
        ("total", "", scheme.total_points),
        ("converted", "", scheme.converted_points),
    ]
    for c in scheme.categories:
        out.append(("category", c.code, c.max_points))
        for i in c.indicators:
            out.append(("indicator", f"{c.code}/{i.code}", i.max_points))
            out += [("point", f"{i.code}/{s.code}", s.max_points) for s in i.sub_items]
    return out


def test_the_seed_document_reproduces_the_2018_numbers(scheme_2018: Scheme) -> None:
    draft = read_docx_draft(build_docx())
    assert draft.errors == []
    scheme = parse_scheme(draft.scheme)
    assert numbers(scheme) == numbers(scheme_2018)
    assert len(numbers(scheme)) == 2 + 6 + 10 + 14  # totals, categories, indicators, points
    # What the notice states, read as the YAML has it.
    assert scheme.document_no == scheme_2018.document_no == "蛟市职转办〔2018〕6号"
    assert scheme.title == scheme_2018.title
    assert scheme.issuer == scheme_2018.issuer
    assert scheme.signed_on == scheme_2018.signed_on
    assert [(d.name, d.full_name, d.aliases, d.offices) for d in scheme.departments] == [
        (d.name, d.full_name, d.aliases, d.offices) for d in scheme_2018.departments
    ]
    assert {s.code: s.routine for s in scheme.sub_items} == {
        s.code: s.routine for s in scheme_2018.sub_items
    }
    assert scheme.routine["quotas"] == {
        "monthly_info": {"period": "month", "minimum": 2},
        "quarterly_case": {"period": "quarter", "minimum": 1},
    }
    assert (scheme.routine["counting_starts"], scheme.routine["counting_ends"]) == (
        "2018-08",
        "2018-12",
    )
    evidence = {i.code: i.evidence_basis for i in scheme.indicators}
    assert evidence["1"] == "以部门文件为考核依据"
    assert evidence["4"] == "以平时上报材料和单位存档材料为考核依据"
    # What it could not read is said, by place.
    said = {(w["path"], w["message"]) for w in draft.warnings}
    assert ("表格第 7 行", "指标 6 未载明考核依据（以…为考核依据），请补充") in said
    assert ("departments", "分值构成表把 城管执法大队 写作 城管局，已作为别名") in said
    assert any(w["path"] == "routine" for w in draft.warnings)
    assert any("分值构成" in p for p in draft.paragraphs)


def test_a_changed_point_value_shows_exactly_there(scheme_2018: Scheme) -> None:
    docx = build_docx(
        lambda text: text.replace("工作领导小组（5分）；", "工作领导小组（6分）；", 1)
    )
    draft = read_docx_draft(docx)
    # The sum check flags the indicator whose points no longer add up, by place.
    assert draft.errors == [
        {
            "path": "categories[0].indicators[0].max_points",
            "message": "各分项之和 11 ≠ 指标分值 10（指标 1）",
            "line": None,
        }
    ]
    # And the draft differs from the 2018 scheme at that point only.
    points = {
        s["code"]: s["max_points"]
        for c in draft.scheme["categories"]
        for i in c["indicators"]
        for s in i["sub_items"]
    }
    expected = {s.code: format(s.max_points, "f") for s in scheme_2018.sub_items}
    changed = {k for k in expected if points.get(k) != expected[k]}
    assert changed == {"1.1"} and points["1.1"] == "6"


def test_a_consistent_change_is_a_valid_draft_that_differs_there(scheme_2018: Scheme) -> None:
    def edit(text: str) -> str:  # 4.1 3 → 2 and 4.2 2 → 3: the sums still hold
        return text.replace(
            "修订情况（3分）网上公布、动态管理情况（2分）",
            "修订情况（2分）网上公布、动态管理情况（3分）",
        )

    draft = read_docx_draft(build_docx(edit))
    assert draft.errors == []
    scheme = parse_scheme(draft.scheme)
    diff = [a for a, b in zip(numbers(scheme), numbers(scheme_2018), strict=True) if a != b]
    assert [(kind, code, str(v)) for kind, code, v in diff] == [
        ("point", "4/4.1", "2"),
        ("point", "4/4.2", "3"),
    ]


def test_a_document_without_the_table_says_so() -> None:
    document = Document()
    document.add_paragraph("关于印发《2020年度考核细则》的通知")
    out = io.BytesIO()
    document.save(out)
    draft = read_docx_draft(out.getvalue())
    assert {"path": "categories", "message": "未找到分值构成表（含「考评内容」的表格）"} in (
        draft.warnings
    )
    assert draft.scheme["year"] == 2020
    assert any(e["path"] == "categories" for e in draft.errors)


@pytest.mark.parametrize("data", [b"", b"not a zip", b"PK\x03\x04broken"])
def test_what_is_not_a_docx_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidValue) as caught:
        read_docx_draft(data)
    assert caught.value.code == "not_a_docx"
