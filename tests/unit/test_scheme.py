"""The 2018 scheme as data, and the loader's refusals."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.factories import moved_to_year
from workflow.errors import SchemeError
from workflow.scheme import SCHEMES_DIR, Scheme, load_scheme, parse_scheme, shipped_schemes

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


def _sub(d: dict[str, Any], c: int, i: int, s: int) -> dict[str, Any]:
    return d["categories"][c]["indicators"][i]["sub_items"][s]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda d: d["categories"][0].__setitem__("max_points", 25),
            [
                "categories[0].max_points: 各指标之和 20 ≠ 类别分值 25（类别 1）",
                "total_points: 各类别之和 105 ≠ 总分 100",
            ],
        ),
        (
            lambda d: _sub(d, 0, 0, 0).__setitem__("max_points", 3),
            "categories[0].indicators[0].max_points: 各分项之和 8 ≠ 指标分值 10（指标 1）",
        ),
        (
            lambda d: d["categories"][1]["indicators"][0].__setitem__("max_points", 6),
            [
                "categories[1].indicators[0].max_points: 各分项之和 5 ≠ 指标分值 6（指标 3）",
                "categories[1].max_points: 各指标之和 21 ≠ 类别分值 20（类别 2）",
            ],
        ),
        (
            lambda d: _sub(d, 1, 0, 0).__setitem__("code", "1.1"),
            [
                "categories[1].indicators[0].sub_items[0].code: "
                "评分项 1.1 的编码应以所属指标编码 3. 开头",
                "categories: 评分项编码重复 1.1（2 次）",
            ],
        ),
        (
            lambda d: _sub(d, 0, 0, 1).__setitem__("max_points", -5),
            "categories[0].indicators[0].sub_items[1].max_points: 分值必须为正数（-5）",
        ),
        (
            lambda d: _sub(d, 0, 0, 1).__setitem__("max_points", 0),
            "categories[0].indicators[0].sub_items[1].max_points: 分值必须为正数（0）",
        ),
        (
            lambda d: _sub(d, 0, 0, 1).__setitem__("max_points", 2.555),
            "categories[0].indicators[0].sub_items[1].max_points: 分值最多两位小数（2.555）",
        ),
        (
            lambda d: _sub(d, 0, 0, 0).__setitem__("max_points", "abc"),
            "categories[0].indicators[0].sub_items[0].max_points: 分值不是数字（“abc”）",
        ),
        (
            lambda d: d["categories"][2].__setitem__("code", "1"),
            "categories: 类别编码重复 1（2 次）",
        ),
        (
            lambda d: d["departments"].append({"name": "交通局"}),
            "departments: 部门名称或别名重复 交通局（2 次）",
        ),
        (lambda d: d.__setitem__("total_points", 90), "total_points: 各类别之和 100 ≠ 总分 90"),
        (lambda d: d.pop("document_no"), "document_no: 缺少字段"),
        (lambda d: d.__setitem__("year", "2018"), "year: 必须为整数（“2018”）"),
        (
            lambda d: d.__setitem__("signed_on", "2018-13-01"),
            "signed_on: 日期格式无效（“2018-13-01”）",
        ),
        (lambda d: d.__setitem__("timezone", "Mars/Base"), "timezone: 未知的时区（“Mars/Base”）"),
        (lambda d: d.__setitem__("appeal_window_days", 0), "appeal_window_days: 必须大于 0（0）"),
        (lambda d: d.__setitem__("titel", "x"), "titel: 不认识的字段（拼写错误？）（“x”）"),
        (
            lambda d: d["categories"][0].__setitem__("indicators", []),
            "categories[0].indicators: 至少需要一项",
        ),
        (
            lambda d: _sub(d, 0, 0, 0).__setitem__("code", "2.9"),
            "categories[0].indicators[0].sub_items[0].code: "
            "评分项 2.9 的编码应以所属指标编码 1. 开头",
        ),
        (
            lambda d: d["departments"][0].__setitem__("aliases", "交通运输局"),
            "departments[0].aliases: 必须是列表（“交通运输局”）",
        ),
        (
            lambda d: d.__setitem__("deadlines", {"block_late_submissions": "yes"}),
            "deadlines.block_late_submissions: 必须为 true 或 false（“yes”）",
        ),
    ],
)
def test_loader_names_the_place_of_each_problem(change: Any, problem: str | list[str]) -> None:
    with pytest.raises(SchemeError) as caught:
        parse_scheme(_mutated(change))
    problems = [problem] if isinstance(problem, str) else problem
    assert caught.value.problems == problems
    if len(problems) == 1:
        assert str(caught.value) == problem


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda r: r["quotas"]["monthly_info"].__setitem__("due_working_days", "5"),
            "routine.quotas.monthly_info.due_working_days: 必须为整数（“5”）",
        ),
        (
            lambda r: r.__setitem__("due_working_days", 0),
            "routine.due_working_days: 必须不小于 1（0）",
        ),
        (
            lambda r: r["quotas"]["quarterly_case"].__setitem__("period", "week"),
            "routine.quotas.quarterly_case.period: 必须是以下之一：'month', 'quarter'（“week”）",
        ),
        (
            lambda r: r["quotas"]["monthly_info"].__setitem__("minimum", -1),
            "routine.quotas.monthly_info.minimum: 必须不小于 0（-1）",
        ),
        (
            lambda r: r["quotas"].__setitem__("weekly", {"minimum": 1}),
            "routine.quotas.weekly（键名）: 必须是以下之一："
            "'monthly_info', 'quarterly_case', 'meeting', 'inspection', 'task'（“weekly”）",
        ),
        (
            lambda r: r["suggestion"]["9.1"].__setitem__("formula", "share"),
            'routine.suggestion["9.1"].formula: 必须是以下之一：'
            "'share_of_periods', 'share_completed', 'share_accepted'（“share”）",
        ),
        (
            lambda r: r["suggestion"]["9.2"].__setitem__("kind", "meeting"),
            'routine.suggestion["9.2"].kind: 类型 meeting 在 routine.quotas 中没有配额',
        ),
        (
            lambda r: r["suggestion"]["10.1"].pop("kinds"),
            'routine.suggestion["10.1"]: 按完成情况计分须指定 kind 或 kinds',
        ),
        (
            lambda r: r["suggestion"].pop("9.2"),
            "categories[5].indicators[0].sub_items[1].routine: "
            "评分项 9.2 取平时考核记录，routine.suggestion 中须有它的计分规则",
        ),
        (
            lambda r: r["suggestion"].__setitem__(
                "1.1", {"formula": "share_completed", "kind": "task"}
            ),
            'routine.suggestion["1.1"]: '
            "评分项 1.1 不取平时考核记录（未标 routine），不能有建议分规则",
        ),
        (
            lambda r: r.__setitem__("counting_ends", "2018-06"),
            "routine.counting_ends: 2018-06 早于计数起始 2018-08",
        ),
        (
            lambda r: r.__setitem__("counting_starts", "2018/08"),
            "routine.counting_starts: 期间格式应为 2018-08 或 2018-Q3（“2018/08”）",
        ),
        (
            lambda r: r.__setitem__("quota", {}),
            "routine.quota: 不认识的字段（拼写错误？）",
        ),
        (
            lambda r: r["suggestion"]["9.1"].__setitem__("late_deduction", -1),
            'routine.suggestion["9.1"].late_deduction: 必须不小于 0（-1）',
        ),
    ],
)
def test_the_routine_section_is_checked(change: Any, problem: str) -> None:
    with pytest.raises(SchemeError) as caught:
        parse_scheme(_mutated(lambda d: change(d["routine"])))
    assert caught.value.problems == [problem]


def test_every_problem_is_reported_at_once() -> None:
    def break_everything(d: dict[str, Any]) -> None:
        d.pop("issuer")
        _sub(d, 2, 0, 0)["max_points"] = "x"
        d["routine"]["quotas"]["monthly_info"]["due_working_days"] = "5"

    with pytest.raises(SchemeError) as caught:
        parse_scheme(_mutated(break_everything))
    assert caught.value.problems == [
        "issuer: 缺少字段",
        "categories[2].indicators[0].sub_items[0].max_points: 分值不是数字（“x”）",
        "routine.quotas.monthly_info.due_working_days: 必须为整数（“5”）",
    ]
    assert str(caught.value).startswith("方案文件有 3 处问题：\n  issuer: 缺少字段\n")
    assert caught.value.errors[1] == {
        "path": "categories[2].indicators[0].sub_items[0].max_points",
        "message": "分值不是数字（“x”）",
    }

    def break_the_sums(d: dict[str, Any]) -> None:
        _sub(d, 0, 0, 0)["max_points"] = 3
        d["departments"].append({"name": "交通局"})
        d["routine"]["counting_ends"] = "2018-06"

    with pytest.raises(SchemeError) as caught:
        parse_scheme(_mutated(break_the_sums))
    assert caught.value.problems == [
        "categories[0].indicators[0].max_points: 各分项之和 8 ≠ 指标分值 10（指标 1）",
        "departments: 部门名称或别名重复 交通局（2 次）",
        "routine.counting_ends: 2018-06 早于计数起始 2018-08",
    ]


def test_shipped_schemes_load() -> None:
    schemes = shipped_schemes()
    assert schemes
    for path in schemes:
        scheme = load_scheme(path)
        assert scheme.total_points == sum(c.max_points for c in scheme.categories)


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("code: [unclosed\n", encoding="utf-8")
    with pytest.raises(SchemeError, match="不是有效的 YAML") as caught:
        load_scheme(bad)
    assert caught.value.errors[0]["path"] == ""
    with pytest.raises(SchemeError, match="无法读取方案文件"):
        load_scheme(tmp_path / "missing.yaml")


def test_loader_refuses_non_mapping() -> None:
    with pytest.raises(SchemeError):
        parse_scheme(["not", "a", "mapping"])


def test_another_year_is_another_file() -> None:
    s = parse_scheme(moved_to_year(RAW, 2019))
    assert s.year == 2019 and s.code == "jiaohe-2019"
    assert s.title.startswith("2019年度")
    assert s.notice_title == "关于2019年度“放管服”工作考核结果的通知"
    assert (s.routine["counting_starts"], s.routine["counting_ends"]) == ("2019-08", "2019-12")
    # Rules signed late in the year before are that year's rules all the same.
    assert parse_scheme(moved_to_year(RAW, 2019) | {"signed_on": "2018-12-20"}).year == 2019


def test_a_copy_with_only_its_year_changed_is_refused_by_place() -> None:
    example = yaml.safe_load((SCHEMES_DIR / "jiaohe-2019-示例.yaml").read_text("utf-8"))
    example.update(code="jiaohe-2021", year=2021)
    with pytest.raises(SchemeError) as caught:
        parse_scheme(example)
    assert caught.value.problems == [
        "title: 标题写的是 2019 年度，与方案年度 2021 不一致",
        "notice_title: 标题写的是 2019 年度，与方案年度 2021 不一致",
        "routine.counting_starts: 计数期间 2019-01 不在方案年度 2021 内",
        "routine.counting_ends: 计数期间 2019-12 不在方案年度 2021 内",
    ]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda d: d["routine"].__setitem__("counting_ends", "2019-03"),
            "routine.counting_ends: 计数期间 2019-03 不在方案年度 2018 内",
        ),
        (
            lambda d: d["routine"].__setitem__("counting_starts", "2017-Q4"),
            "routine.counting_starts: 计数期间 2017-Q4 不在方案年度 2018 内",
        ),
        (
            lambda d: d.__setitem__("title", "２０１７年度“放管服”工作考核细则"),
            "title: 标题写的是 2017 年度，与方案年度 2018 不一致",
        ),
        (
            lambda d: d.__setitem__("notice_title", "关于2019 年度考核结果的通知"),
            "notice_title: 标题写的是 2019 年度，与方案年度 2018 不一致",
        ),
        (lambda d: d.__setitem__("year", 1999), "year: 必须不小于 2000（1999）"),
    ],
)
def test_the_year_is_the_schemes_throughout(change: Any, problem: str) -> None:
    with pytest.raises(SchemeError) as caught:
        parse_scheme(_mutated(change))
    assert caught.value.problems == [problem]


def test_without_a_counting_window_the_scheme_counts_its_year() -> None:
    data = moved_to_year(RAW, 2021)
    for key in ("counting_starts", "counting_ends"):
        data["routine"].pop(key)
    s = parse_scheme(data)
    assert (s.routine["counting_starts"], s.routine["counting_ends"]) == ("2021-01", "2021-12")
    data["routine"]["counting_starts"] = "2021-Q2"
    s = parse_scheme(data)
    assert (s.routine["counting_starts"], s.routine["counting_ends"]) == ("2021-Q2", "2021-12")
    # Numbers that are not the year ("2018年落实…" in an indicator, a longer number) pass.
    data["title"] = "12021年度 2021年度细则"
    assert parse_scheme(data).title == "12021年度 2021年度细则"


def test_a_huge_point_value_is_refused_by_place() -> None:
    data = copy.deepcopy(RAW)
    data["total_points"] = "1e30"
    with pytest.raises(SchemeError) as caught:
        parse_scheme(data)
    assert caught.value.errors == [{"path": "total_points", "message": "分值过大（“1e30”）"}]
