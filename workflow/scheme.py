"""Load an assessment scheme (one YAML file per year and issuer) into frozen dataclasses.

The file is read by declared models (pydantic v2, `SchemeFile` and its parts, the routine
section included), then checked as a whole: parts that add up, unique codes, scoring points
under their indicator, routine points with a suggestion. Every problem is reported at once,
each naming its place in the file::

    categories[0].indicators[0].max_points: 各分项之和 8 ≠ 指标分值 10
    routine.quotas.monthly_info.due_working_days: 必须为整数 ('5')

`load_scheme` and `parse_scheme` return the same frozen `Scheme` as before; the models are
the loader's own.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from scoring.routine import KINDS, PeriodError, parse_period
from workflow.errors import SchemeError

SCHEMES_DIR = Path(__file__).resolve().parent.parent / "schemes"
TWO_PLACES = Decimal("0.01")
MAX_POINTS = Decimal(100000)
#: The years a scheme may be written for (an assessment's year is refused outside them too).
MIN_YEAR, MAX_YEAR = 2000, 2100
#: A year named in a title: "2019年度" (full-width digits too), not part of a longer number.
NAMED_YEAR = re.compile(r"(?<!\d)(\d{4})\s*年度")


@dataclass(frozen=True)
class SubItemSpec:
    """A scoring point (评分项), e.g. 1.1 成立领导小组, 5 points."""

    code: str
    title: str
    max_points: Decimal
    routine: str | None = None


#: How a check point is verified: on site from the department's files, or from the routine
#: reports over the year (the rules' 考评方式: 实地考核 and 平时考核).
CHECK_METHODS = ("实地考核", "平时考核")


@dataclass(frozen=True)
class CheckPointSpec:
    """A check point (核查要点) the verifier answers, e.g. 是否成立工作领导小组 (实地考核)."""

    code: str
    text: str
    method: str


@dataclass(frozen=True)
class IndicatorSpec:
    """An indicator (考核指标), e.g. 1, with its scoring points and check points."""

    code: str
    title: str
    max_points: Decimal
    evidence_basis: str
    sub_items: tuple[SubItemSpec, ...]
    check_points: tuple[CheckPointSpec, ...] = ()


@dataclass(frozen=True)
class CategorySpec:
    """A category (考评内容), e.g. "放管服"工作完成情况, 20 points."""

    code: str
    title: str
    max_points: Decimal
    indicators: tuple[IndicatorSpec, ...]


@dataclass(frozen=True)
class DepartmentSpec:
    """An assessed unit; `offices` are parenthesised offices assessed with it."""

    name: str
    full_name: str
    aliases: tuple[str, ...]
    offices: tuple[str, ...]


@dataclass(frozen=True)
class Scheme:
    """A whole year's rules."""

    code: str
    year: int
    title: str
    notice_title: str
    document_no: str
    issuer: str
    signed_on: dt.date
    total_points: Decimal
    converted_points: Decimal
    appeal_window_days: int
    timezone: str
    departments: tuple[DepartmentSpec, ...]
    categories: tuple[CategorySpec, ...]
    routine: dict[str, Any]
    # `deadlines.block_late_submissions`: refuse a first submission after 自评提交截止.
    block_late_submissions: bool = False

    @property
    def indicators(self) -> tuple[IndicatorSpec, ...]:
        """Return every indicator in order."""
        return tuple(i for c in self.categories for i in c.indicators)

    @property
    def sub_items(self) -> tuple[SubItemSpec, ...]:
        """Return every scoring point in order."""
        return tuple(s for i in self.indicators for s in i.sub_items)


# -- the file's declared shape -------------------------------------------------------------


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("scheme", message)


def shown(value: Any) -> str:
    """A value as the file wrote it, for a message: text in “”, no Python spelling."""
    if value is None:
        return "空值"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"“{value}”"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _points(value: Any) -> Decimal:
    """A positive point value with at most two decimal places (number or numeric text)."""
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        raise _invalid(f"分值缺失或无效（{shown(value)}）")
    try:
        points = Decimal(str(value))
    except InvalidOperation:
        raise _invalid(f"分值不是数字（{shown(value)}）") from None
    if not points.is_finite() or points <= 0:
        raise _invalid(f"分值必须为正数（{shown(value)}）")
    if points >= MAX_POINTS:  # the columns hold 99999.99 (and quantize would overflow)
        raise _invalid(f"分值过大（{shown(value)}）")
    if points != points.quantize(TWO_PLACES):
        raise _invalid(f"分值最多两位小数（{shown(value)}）")
    return points


def _text(value: Any) -> str:
    """A non-empty text; a number (a code written unquoted) is taken as its text."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _invalid(f"必须是文本（{shown(value)}）")
    text = str(value).strip()
    if not text:
        raise _invalid("不能为空")
    return text


def _period(value: Any) -> str:
    """A month `2018-08` or a quarter `2018-Q3`."""
    try:
        return parse_period(str(value)).label
    except PeriodError:
        raise _invalid(f"期间格式应为 2018-08 或 2018-Q3（{shown(value)}）") from None


def _day(value: Any) -> dt.date:
    """A date written as a YAML date or ISO text."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise _invalid(f"日期格式无效（{shown(value)}）") from None


Points = Annotated[Decimal, BeforeValidator(_points)]
Text = Annotated[str, BeforeValidator(_text)]
PeriodText = Annotated[str, BeforeValidator(_period)]
Day = Annotated[dt.date, BeforeValidator(_day)]
DueDays = Annotated[StrictInt, Field(ge=1, le=60)]
Kind = Literal["monthly_info", "quarterly_case", "meeting", "inspection", "task"]
# A scoring point fed by routine records names its kind, or `adhoc` for the office's tasks.
PointRoutine = Literal["monthly_info", "quarterly_case", "meeting", "inspection", "task", "adhoc"]
assert set(KINDS) == set(Kind.__args__)  # type: ignore[attr-defined]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubItemModel(_Model):
    code: Text
    title: Text
    max_points: Points
    routine: PointRoutine | None = None


class CheckPointModel(_Model):
    # `code` defaults to `<indicator>-<n>` (n from 1, in the file's order).
    code: Text | None = None
    text: Text
    method: Literal["实地考核", "平时考核"]


class IndicatorModel(_Model):
    code: Text
    title: Text
    max_points: Points
    evidence_basis: str | None = None
    sub_items: list[SubItemModel] = Field(min_length=1)
    check_points: list[CheckPointModel] = []


class CategoryModel(_Model):
    code: Text
    title: Text
    max_points: Points
    indicators: list[IndicatorModel] = Field(min_length=1)


class DepartmentModel(_Model):
    name: Text
    full_name: Text | None = None
    aliases: list[Text] = []
    offices: list[Text] = []


class QuotaModel(_Model):
    period: Literal["month", "quarter"] = "month"
    minimum: Annotated[StrictInt, Field(ge=0)] = 1
    due_working_days: DueDays | None = None


class SuggestionModel(_Model):
    kind: Kind | None = None
    kinds: list[Kind] | None = Field(default=None, min_length=1)
    formula: Literal["share_of_periods", "share_completed", "share_accepted"] = "share_of_periods"
    late_deduction: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] = Decimal(0)


class RoutineModel(_Model):
    # Absent: the scheme year's first and last month (see `counting_window`).
    counting_starts: PeriodText | None = None
    counting_ends: PeriodText | None = None
    due_working_days: DueDays | None = None
    quotas: dict[Kind, QuotaModel] = {}
    suggestion: dict[str, SuggestionModel] = {}


class DeadlinesModel(_Model):
    # `block_late_submissions`: refuse a first submission after 自评提交截止.
    block_late_submissions: StrictBool = False


class SchemeFile(_Model):
    """A scheme file as written: every key it may hold, with its type."""

    code: Text
    year: Annotated[StrictInt, Field(ge=MIN_YEAR, le=MAX_YEAR)]
    title: Text
    notice_title: Text | None = None
    document_no: Text
    issuer: Text
    issuer_short: Text | None = None
    signed_on: Day
    printed_on: Day | None = None
    timezone: Text = "Asia/Shanghai"
    total_points: Points
    converted_points: Points
    appeal_window_days: Annotated[StrictInt, Field(gt=0)] = 7
    not_involved_rule: str | None = None
    methods: list[Text] = []
    departments: list[DepartmentModel] = Field(min_length=1)
    categories: list[CategoryModel] = Field(min_length=1)
    routine: RoutineModel | None = None
    deadlines: DeadlinesModel | None = None


# -- errors, named by their place --------------------------------------------------------------

# Chinese for pydantic's own error types; `{…}` are filled from the error's context.
_MESSAGES = {
    "missing": "缺少字段",
    "extra_forbidden": "不认识的字段（拼写错误？）",
    "string_type": "必须是文本",
    "int_type": "必须为整数",
    "int_parsing": "必须为整数",
    "int_from_float": "必须为整数",
    "bool_type": "必须为 true 或 false",
    "bool_parsing": "必须为 true 或 false",
    "list_type": "必须是列表",
    "dict_type": "必须是映射",
    "model_type": "必须是映射",
    "model_attributes_type": "必须是映射",
    "too_short": "至少需要一项",
    "greater_than": "必须大于 {gt}",
    "greater_than_equal": "必须不小于 {ge}",
    "less_than_equal": "必须不大于 {le}",
    "literal_error": "必须是以下之一：{expected}",
    "decimal_parsing": "必须是数字",
    "decimal_type": "必须是数字",
    "finite_number": "必须是有限的数",
}


def place(loc: tuple[int | str, ...]) -> str:
    """Write a location the way the file is read: `categories[2].indicators[0].max_points`.

    A key that is not a plain name is quoted (`routine.suggestion["9.1"].kind`); a refused key
    of a mapping is marked as such.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += "（键名）"
        elif part.isidentifier():
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out or "（顶层）"


def _describe(error: ErrorDetails) -> str:
    template = _MESSAGES.get(error["type"])
    if template is None:
        message = error["msg"]
    else:
        context = {k: str(v).replace(" or ", ", ") for k, v in (error.get("ctx") or {}).items()}
        message = template.format(**context) if context else template
    value = error.get("input")
    if error["type"] not in ("missing", "too_short", "scheme") and not isinstance(
        value, dict | list
    ):
        message += f"（{shown(value)}）"
    return f"{place(error['loc'])}: {message}"


# -- the whole file's consistency ----------------------------------------------------------


def _sum(values: list[Decimal]) -> Decimal:
    return sum(values, Decimal(0))


def _consistency(f: SchemeFile) -> list[str]:
    """Check what no single field shows: sums, unique codes and names, cross references."""
    problems: list[str] = []
    codes: Counter[tuple[str, str]] = Counter()
    for ci, c in enumerate(f.categories):
        cwhere = f"categories[{ci}]"
        codes["类别", c.code] += 1
        for ii, i in enumerate(c.indicators):
            iwhere = f"{cwhere}.indicators[{ii}]"
            codes["指标", i.code] += 1
            for si, s in enumerate(i.sub_items):
                codes["评分项", s.code] += 1
                if not s.code.startswith(f"{i.code}."):
                    problems.append(
                        f"{iwhere}.sub_items[{si}].code: 评分项 {s.code} 的编码应以"
                        f"所属指标编码 {i.code}. 开头"
                    )
            checks = Counter(c.code for c in _check_points(i))
            for code, n in sorted(checks.items()):
                if n > 1:
                    problems.append(f"{iwhere}.check_points: 核查要点编码重复 {code}（{n} 次）")
            parts = _sum([s.max_points for s in i.sub_items])
            if parts != i.max_points:
                problems.append(
                    f"{iwhere}.max_points: 各分项之和 {parts} ≠ 指标分值 {i.max_points}"
                    f"（指标 {i.code}）"
                )
        parts = _sum([i.max_points for i in c.indicators])
        if parts != c.max_points:
            problems.append(
                f"{cwhere}.max_points: 各指标之和 {parts} ≠ 类别分值 {c.max_points}"
                f"（类别 {c.code}）"
            )
    parts = _sum([c.max_points for c in f.categories])
    if parts != f.total_points:
        problems.append(f"total_points: 各类别之和 {parts} ≠ 总分 {f.total_points}")
    for (kind, code), n in sorted(codes.items()):
        if n > 1:
            problems.append(f"categories: {kind}编码重复 {code}（{n} 次）")
    return problems + _named_years(f) + _names_and_zone(f) + _routine_consistency(f)


def _check_points(i: IndicatorModel) -> tuple[CheckPointSpec, ...]:
    return tuple(
        CheckPointSpec(c.code or f"{i.code}-{n}", c.text, c.method)
        for n, c in enumerate(i.check_points, 1)
    )


def _names_and_zone(f: SchemeFile) -> list[str]:
    problems: list[str] = []
    names: Counter[str] = Counter()
    for d in f.departments:
        for name in {d.name, d.full_name or d.name, *d.aliases, *d.offices}:
            names[name] += 1
    for name, count in sorted(names.items()):
        if count > 1:
            problems.append(f"departments: 部门名称或别名重复 {name}（{count} 次）")

    try:
        ZoneInfo(f.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone: 未知的时区（{shown(f.timezone)}）")
    return problems


def _named_years(f: SchemeFile) -> list[str]:
    """Titles that name another year than the scheme's ("2019年度" in a 2021 scheme)."""
    problems: list[str] = []
    for key in ("title", "notice_title"):
        text = getattr(f, key)
        for named in dict.fromkeys(int(m.group(1)) for m in NAMED_YEAR.finditer(text or "")):
            if named != f.year:
                problems.append(f"{key}: 标题写的是 {named} 年度，与方案年度 {f.year} 不一致")
    return problems


def counting_window(year: int, routine: RoutineModel | None) -> tuple[str, str]:
    """The routine counting window: as written, else the scheme year's first and last month."""
    routine = routine or RoutineModel()
    return (routine.counting_starts or f"{year}-01", routine.counting_ends or f"{year}-12")


def _routine_consistency(f: SchemeFile) -> list[str]:
    routine = f.routine or RoutineModel()
    problems: list[str] = []
    starts, ends = counting_window(f.year, routine)
    for key, period in (("counting_starts", starts), ("counting_ends", ends)):
        if parse_period(period).year != f.year:  # 2019's months counted for a 2021 assessment
            problems.append(f"routine.{key}: 计数期间 {period} 不在方案年度 {f.year} 内")
    if parse_period(ends) < parse_period(starts):
        problems.append(f"routine.counting_ends: {ends} 早于计数起始 {starts}")
    for code, spec in routine.suggestion.items():
        where = place(("routine", "suggestion", code))
        if spec.formula == "share_of_periods":
            if spec.kind is None:
                problems.append(f"{where}.kind: 按期计分（share_of_periods）须指定一个类型")
            elif spec.kind not in routine.quotas:
                problems.append(f"{where}.kind: 类型 {spec.kind} 在 routine.quotas 中没有配额")
        elif spec.kind is None and not spec.kinds:
            problems.append(f"{where}: 按完成情况计分须指定 kind 或 kinds")
    for ci, c in enumerate(f.categories):
        for ii, i in enumerate(c.indicators):
            for si, s in enumerate(i.sub_items):
                if s.routine and s.code not in routine.suggestion:
                    problems.append(
                        f"categories[{ci}].indicators[{ii}].sub_items[{si}].routine: "
                        f"评分项 {s.code} 取平时考核记录，routine.suggestion 中须有它的计分规则"
                    )
    plain_codes = {
        s.code for c in f.categories for i in c.indicators for s in i.sub_items if not s.routine
    }
    for code in routine.suggestion:
        if code in plain_codes:  # a rule for a point of the scheme that takes no records
            problems.append(
                f"{place(('routine', 'suggestion', code))}: "
                f"评分项 {code} 不取平时考核记录（未标 routine），不能有建议分规则"
            )
    return problems


# -- the result ------------------------------------------------------------------------------


def parse_scheme(data: Any) -> Scheme:
    """Build a Scheme from parsed YAML, refusing every inconsistency at once, each by place."""
    if not isinstance(data, dict):
        raise SchemeError("方案文件的顶层必须是“键: 值”的映射")
    try:
        f = SchemeFile.model_validate(data)
    except ValidationError as exc:
        raise SchemeError.of([_describe(e) for e in exc.errors()]) from None
    problems = _consistency(f)
    if problems:
        raise SchemeError.of(problems)
    return Scheme(
        code=f.code,
        year=f.year,
        title=f.title,
        notice_title=f.notice_title or f"关于{f.year}年度考核结果的通知",
        document_no=f.document_no,
        issuer=f.issuer,
        signed_on=f.signed_on,
        total_points=f.total_points,
        converted_points=f.converted_points,
        appeal_window_days=f.appeal_window_days,
        timezone=f.timezone,
        departments=tuple(
            DepartmentSpec(d.name, d.full_name or d.name, tuple(d.aliases), tuple(d.offices))
            for d in f.departments
        ),
        categories=tuple(
            CategorySpec(
                code=c.code,
                title=c.title,
                max_points=c.max_points,
                indicators=tuple(
                    IndicatorSpec(
                        code=i.code,
                        title=i.title,
                        max_points=i.max_points,
                        evidence_basis=(i.evidence_basis or "").strip(),
                        sub_items=tuple(
                            SubItemSpec(s.code, s.title, s.max_points, s.routine)
                            for s in i.sub_items
                        ),
                        check_points=_check_points(i),
                    )
                    for i in c.indicators
                ),
            )
            for c in f.categories
        ),
        routine=_routine_config(f, data),
        block_late_submissions=f.deadlines.block_late_submissions if f.deadlines else False,
    )


def _routine_config(f: SchemeFile, data: dict[str, Any]) -> dict[str, Any]:
    """The routine section as written, its counting window filled in from the scheme year."""
    routine = dict(data.get("routine") or {})
    starts, ends = counting_window(f.year, f.routine)
    routine["counting_starts"], routine["counting_ends"] = starts, ends
    return routine


def load_scheme(path: str | Path) -> Scheme:
    """Read and validate one scheme file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemeError(f"无法读取方案文件 {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SchemeError(f"方案文件 {path} 不是有效的 YAML: {exc}") from exc
    return parse_scheme(data)


def shipped_schemes() -> list[Path]:
    """Return the scheme files shipped with the project."""
    return sorted(SCHEMES_DIR.glob("*.yaml"))
