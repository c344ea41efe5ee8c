"""The year in the 发文字号 against the 成文日期 (GB/T 9704 §7.2.4): a warning, not a refusal."""

from __future__ import annotations

import datetime as dt

from workflow.docnumbers import issue_year_notes, number_year


def test_number_year_reads_the_year_in_brackets() -> None:
    assert number_year("蛟市职转办〔2019〕1号") == 2019
    assert number_year("蛟市职转办〔2019〕1号（示例）") == 2019
    assert number_year("蛟市职转办[2019]1号") is None


def test_a_number_of_another_year_than_the_issue_date_is_named() -> None:
    (note,) = issue_year_notes("蛟市职转办〔2019〕1号", dt.date(2026, 12, 5))
    assert note.code == "number_year_not_issue_year"
    assert note.params == {
        "number": "蛟市职转办〔2019〕1号", "number_year": 2019, "date": "2026-12-05",
    }  # fmt: skip
    assert "2026-12-05" in note.as_json()["message"]


def test_a_number_of_the_issue_year_or_no_number_is_fine() -> None:
    assert issue_year_notes("蛟市职转办〔2019〕1号", dt.date(2019, 1, 15)) == []
    assert issue_year_notes("", dt.date(2019, 1, 15)) == []
    assert issue_year_notes(None, dt.date(2019, 1, 15)) == []
