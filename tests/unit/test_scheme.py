"""The 2018 scheme as data, and the loader's refusals."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
import yaml

from workflow.errors import SchemeError
from workflow.scheme import SCHEMES_DIR, Scheme, parse_scheme

RAW: dict[str, Any] = yaml.safe_load((SCHEMES_DIR / "jiaohe-2018.yaml").read_text("utf-8"))


def test_2018_scheme_matches_the_rules(scheme_2018: Scheme) -> None:
    s = scheme_2018
    assert s.document_no == "蛟市职转办〔2018〕6号"
    assert s.issuer == "蛟河市人民政府推进职能转变协调小组办公室"
    assert s.signed_on.isoformat() == "2018-07-30"
    assert len(s.departments) == 26
    assert [c.max_points for c in s.categories] == [Decimal(x) for x in (20, 20, 10, 10, 20, 20)]
    assert [i.code for i in s.indicators] == [str(n) for n in range(1, 11)]
    assert [i.max_points for i in s.indicators] == [
        Decimal(x) for x in (10, 10, 5, 5, 10, 10, 10, 20, 15, 5)
    ]
    codes = {p.code: p.max_points for p in s.sub_items}
    assert codes["1.1"] == codes["1.2"] == 5
    assert codes["4.1"] == 3 and codes["4.2"] == 2
    assert codes["8.1"] == 5 and codes["8.2"] == 15
    assert codes["9.1"] == 8 and codes["9.2"] == 7 and codes["10.1"] == 5
    assert sum(codes.values()) == s.total_points == 100
    assert s.converted_points == 2
    assert s.routine["quotas"]["monthly_info"]["minimum"] == 2
    assert s.routine["quotas"]["quarterly_case"]["minimum"] == 1


def test_departments_keep_aliases_and_offices(scheme_2018: Scheme) -> None:
    by_name = {d.name: d for d in scheme_2018.departments}
    assert "城管局" in by_name["城管执法大队"].aliases
    assert by_name["政府办"].offices == ("民族宗教局", "法制办")
    assert by_name["政府办"].full_name == "政府办（民族宗教局、法制办）"
    assert by_name["住建局"].offices == ("人防办",)


def _mutated(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(RAW)
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["categories"][0].__setitem__("max_points", 25), "不等于类别分值"),
        (
            lambda d: d["categories"][0]["indicators"][0]["sub_items"][0].__setitem__(
                "max_points", 6
            ),
            "评分项分值之和",
        ),
        (
            lambda d: d["categories"][1]["indicators"][0].__setitem__("max_points", 6),
            "指标 3",
        ),
        (
            lambda d: d["categories"][1]["indicators"][0]["sub_items"][0].__setitem__(
                "code", "1.1"
            ),
            "编码重复",
        ),
        (
            lambda d: d["categories"][0]["indicators"][0]["sub_items"][1].__setitem__(
                "max_points", -5
            ),
            "必须为正数",
        ),
        (
            lambda d: d["categories"][0]["indicators"][0]["sub_items"][1].__setitem__(
                "max_points", 0
            ),
            "必须为正数",
        ),
        (lambda d: d["categories"][2].__setitem__("code", "1"), "编码重复"),
        (lambda d: d["departments"].append({"name": "交通局"}), "部门名称或别名重复"),
        (lambda d: d.__setitem__("total_points", 90), "不等于总分"),
        (lambda d: d.pop("document_no"), "document_no"),
        (
            lambda d: d["categories"][0]["indicators"][0]["sub_items"][0].__setitem__(
                "max_points", "abc"
            ),
            "不是数字",
        ),
        (
            lambda d: d["categories"][0]["indicators"][0]["sub_items"][0].__setitem__(
                "code", "2.9"
            ),
            "应以所属指标编码",
        ),
    ],
)
def test_loader_refuses_inconsistent_files(change: Any, message: str) -> None:
    with pytest.raises(SchemeError, match=message):
        parse_scheme(_mutated(change))


def test_loader_refuses_non_mapping() -> None:
    with pytest.raises(SchemeError):
        parse_scheme(["not", "a", "mapping"])


def test_another_year_is_another_file() -> None:
    data = _mutated(lambda d: d.update(code="jiaohe-2019", year=2019))
    s = parse_scheme(data)
    assert s.year == 2019 and s.code == "jiaohe-2019"
