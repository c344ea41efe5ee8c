"""Load an assessment scheme (one YAML file per year and issuer) into frozen dataclasses.

The loader refuses an inconsistent file: parts that do not add up, duplicate codes,
non-positive points, missing fields. Every refusal names the problem.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from workflow.errors import SchemeError

SCHEMES_DIR = Path(__file__).resolve().parent.parent / "schemes"
TWO_PLACES = Decimal("0.01")


@dataclass(frozen=True)
class SubItemSpec:
    """A scoring point (评分项), e.g. 1.1 成立领导小组, 5 points."""

    code: str
    title: str
    max_points: Decimal
    routine: str | None = None


@dataclass(frozen=True)
class IndicatorSpec:
    """An indicator (考核指标), e.g. 1, with its scoring points."""

    code: str
    title: str
    max_points: Decimal
    evidence_basis: str
    sub_items: tuple[SubItemSpec, ...]


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


def _points(value: Any, where: str) -> Decimal:
    """Parse a positive point value with at most two decimal places."""
    if isinstance(value, bool) or value is None:
        raise SchemeError(f"{where}: 分值缺失或无效 (max_points={value!r})")
    try:
        points = Decimal(str(value))
    except InvalidOperation as exc:
        raise SchemeError(f"{where}: 分值不是数字 (max_points={value!r})") from exc
    if not points.is_finite() or points <= 0:
        raise SchemeError(f"{where}: 分值必须为正数 (max_points={value!r})")
    if points != points.quantize(TWO_PLACES):
        raise SchemeError(f"{where}: 分值最多两位小数 (max_points={value!r})")
    return points


def _text(data: dict[str, Any], key: str, where: str) -> str:
    """Read a required non-empty text field."""
    value = data.get(key)
    if value is None or str(value).strip() == "":
        raise SchemeError(f"{where}: 缺少字段 {key}")
    return str(value).strip()


def _date(value: Any, where: str) -> dt.date:
    """Read a date written as YAML date or ISO text."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise SchemeError(f"{where}: 日期格式无效 ({value!r})") from exc


def parse_scheme(data: Any) -> Scheme:
    """Build a Scheme from parsed YAML, refusing any inconsistency with a clear message."""
    if not isinstance(data, dict):
        raise SchemeError("方案文件的顶层必须是映射 (mapping)")
    total = _points(data.get("total_points"), "total_points")
    converted = _points(data.get("converted_points"), "converted_points")
    seen_codes: set[str] = set()

    def unique(kind: str, code: str) -> str:
        key = f"{kind}:{code}"
        if key in seen_codes:
            raise SchemeError(f"编码重复: {kind} {code}")
        seen_codes.add(key)
        return code

    categories: list[CategorySpec] = []
    raw_categories = data.get("categories")
    if not isinstance(raw_categories, list) or not raw_categories:
        raise SchemeError("categories: 至少需要一个考评类别")
    for c in raw_categories:
        if not isinstance(c, dict):
            raise SchemeError("categories: 每个类别必须是映射")
        ccode = unique("category", _text(c, "code", "category"))
        cwhere = f"类别 {ccode}"
        cmax = _points(c.get("max_points"), cwhere)
        indicators: list[IndicatorSpec] = []
        raw_inds = c.get("indicators")
        if not isinstance(raw_inds, list) or not raw_inds:
            raise SchemeError(f"{cwhere}: 至少需要一个考核指标")
        for i in raw_inds:
            if not isinstance(i, dict):
                raise SchemeError(f"{cwhere}: 指标必须是映射")
            icode = unique("indicator", _text(i, "code", cwhere))
            iwhere = f"指标 {icode}"
            imax = _points(i.get("max_points"), iwhere)
            subs: list[SubItemSpec] = []
            raw_subs = i.get("sub_items")
            if not isinstance(raw_subs, list) or not raw_subs:
                raise SchemeError(f"{iwhere}: 至少需要一个评分项")
            for s in raw_subs:
                if not isinstance(s, dict):
                    raise SchemeError(f"{iwhere}: 评分项必须是映射")
                scode = unique("sub_item", _text(s, "code", iwhere))
                if not scode.startswith(f"{icode}."):
                    raise SchemeError(f"评分项 {scode}: 编码应以所属指标编码 {icode}. 开头")
                subs.append(
                    SubItemSpec(
                        code=scode,
                        title=_text(s, "title", f"评分项 {scode}"),
                        max_points=_points(s.get("max_points"), f"评分项 {scode}"),
                        routine=s.get("routine"),
                    )
                )
            sub_sum = sum((s.max_points for s in subs), Decimal(0))
            if sub_sum != imax:
                raise SchemeError(f"{iwhere}: 评分项分值之和 {sub_sum} 不等于指标分值 {imax}")
            indicators.append(
                IndicatorSpec(
                    code=icode,
                    title=_text(i, "title", iwhere),
                    max_points=imax,
                    evidence_basis=str(i.get("evidence_basis") or "").strip(),
                    sub_items=tuple(subs),
                )
            )
        ind_sum = sum((i.max_points for i in indicators), Decimal(0))
        if ind_sum != cmax:
            raise SchemeError(f"{cwhere}: 指标分值之和 {ind_sum} 不等于类别分值 {cmax}")
        categories.append(
            CategorySpec(
                code=ccode,
                title=_text(c, "title", cwhere),
                max_points=cmax,
                indicators=tuple(indicators),
            )
        )
    cat_sum = sum((c.max_points for c in categories), Decimal(0))
    if cat_sum != total:
        raise SchemeError(f"类别分值之和 {cat_sum} 不等于总分 {total}")

    departments: list[DepartmentSpec] = []
    names: set[str] = set()
    raw_deps = data.get("departments")
    if not isinstance(raw_deps, list) or not raw_deps:
        raise SchemeError("departments: 至少需要一个被考核部门")
    for d in raw_deps:
        if not isinstance(d, dict):
            raise SchemeError("departments: 每个部门必须是映射")
        name = _text(d, "name", "department")
        aliases = tuple(str(a).strip() for a in d.get("aliases") or ())
        offices = tuple(str(o).strip() for o in d.get("offices") or ())
        full_name = str(d.get("full_name") or name).strip()
        for n in {name, full_name, *aliases, *offices}:
            if n in names:
                raise SchemeError(f"部门名称或别名重复: {n}")
            names.add(n)
        departments.append(DepartmentSpec(name, full_name, aliases, offices))

    window = data.get("appeal_window_days", 7)
    if not isinstance(window, int) or isinstance(window, bool) or window <= 0:
        raise SchemeError(f"appeal_window_days: 必须为正整数 ({window!r})")
    year = data.get("year")
    if not isinstance(year, int) or isinstance(year, bool):
        raise SchemeError(f"year: 必须为年份整数 ({year!r})")
    routine = data.get("routine") or {}
    if not isinstance(routine, dict):
        raise SchemeError("routine: 必须是映射")
    _check_due_working_days(routine)
    deadlines = data.get("deadlines") or {}
    if not isinstance(deadlines, dict):
        raise SchemeError("deadlines: 必须是映射")
    block_late = deadlines.get("block_late_submissions", False)
    if not isinstance(block_late, bool):
        raise SchemeError(
            f"deadlines.block_late_submissions: 必须为 true 或 false ({block_late!r})"
        )
    return Scheme(
        code=_text(data, "code", "scheme"),
        year=year,
        title=_text(data, "title", "scheme"),
        notice_title=str(data.get("notice_title") or f"关于{year}年度考核结果的通知"),
        document_no=_text(data, "document_no", "scheme"),
        issuer=_text(data, "issuer", "scheme"),
        signed_on=_date(data.get("signed_on"), "signed_on"),
        total_points=total,
        converted_points=converted,
        appeal_window_days=window,
        timezone=str(data.get("timezone") or "Asia/Shanghai"),
        departments=tuple(departments),
        categories=tuple(categories),
        routine=routine,
        block_late_submissions=block_late,
    )


def _check_due_working_days(routine: dict[str, Any]) -> None:
    """Refuse a routine due rule that is not a small positive number of working days."""
    rules = [("routine.due_working_days", routine.get("due_working_days"))]
    for kind, quota in (routine.get("quotas") or {}).items():
        if isinstance(quota, dict):
            rules.append((f"routine.quotas.{kind}.due_working_days", quota.get("due_working_days")))
    for where, value in rules:
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 60:
            raise SchemeError(f"{where}: 必须为 1 到 60 之间的整数 ({value!r})")


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
