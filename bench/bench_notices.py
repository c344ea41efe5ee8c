"""Benchmark the Word rendering: a city (26 notices + summary) and a province-sized batch.

Run `python bench/bench_notices.py [--departments 1000] [--city 26] [--out DIR]`. Prints one
table: documents rendered, seconds, milliseconds per notice (per row for summaries) and the
ratio of that per-item cost to the city case, which stays near 1 when rendering is linear.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from scoring.notice import (
    NoticeCategory,
    NoticeData,
    NoticeIndicator,
    NoticePoint,
    SummaryData,
    SummaryRow,
    render_notice,
    render_summary,
)

ISSUER = "蛟河市人民政府推进职能转变协调小组办公室"
# The 2018 scheme: (category title, max, [(indicator title, [(point code, title, max)])]).
SCHEME: tuple[tuple[str, int, tuple[tuple[str, tuple[tuple[str, str, int], ...]], ...]], ...] = (
    ("“放管服”工作完成情况", 20, (
        ("成立领导小组；指定专人负责", (("1.1", "成立“放管服”工作领导小组", 5),
                                        ("1.2", "指定专人负责", 5))),
        ("2018年落实国家、省、吉林市“放管服”改革工作任务完成情况",
         (("2.1", "改革工作任务完成情况", 10),)),
    )),
    ("行政审批制度改革工作完成情况", 20, (
        ("行政许可事项目录修订情况", (("3.1", "行政许可事项目录修订", 5),)),
        ("权力清单和责任清单修订情况", (("4.1", "清单修订", 3), ("4.2", "网上公布、动态管理", 2))),
        ("优化服务流程，修订行政审批事项目录及审批事项进入政务大厅情况",
         (("5.1", "优化服务流程", 10),)),
    )),
    ("清理规范行政审批中介服务事项情况", 10, (
        ("清理规范行政审批中介服务事项工作落实情况", (("6.1", "中介服务事项清理规范", 10),)),
    )),
    ("清理规范证明事项情况", 10, (
        ("清理规范证明事项工作落实情况", (("7.1", "证明事项清理规范", 10),)),
    )),
    ("“双随机一公开”工作完成情况", 20, (
        ("推行“双随机一公开”监管工作", (("8.1", "制定抽查计划", 5),
                                         ("8.2", "建立检查对象和人员名录等", 15))),
    )),
    ("“放管服”信息报送和其他临时性工作", 20, (
        ("“放管服”信息报送", (("9.1", "每月至少上报2篇信息", 8), ("9.2", "每季度1篇经验做法", 7))),
        ("其他临时性工作完成情况", (("10.1", "其他临时性工作", 5),)),
    )),
)  # fmt: skip


@dataclass(frozen=True)
class Measurement:
    """One benchmark case: what was rendered, how many items, how long it took."""

    case: str
    documents: int
    items: int
    seconds: float


def synthetic_notice(index: int, count: int) -> NoticeData:
    """Return department `index`'s notice with a deterministic spread of deductions."""
    categories = []
    total = Decimal(0)
    indicator_no = 0
    for c, (cat_title, cat_max, indicators) in enumerate(SCHEME, start=1):
        notice_indicators = []
        for ind_title, points in indicators:
            indicator_no += 1
            notice_points = []
            for code, title, maximum in points:
                lost = Decimal((index * 7 + len(code) * 3) % 5) / 2
                awarded = max(Decimal(maximum) - lost, Decimal(0))
                reason = f"第{index}号部门：{title}材料不完整" if awarded < maximum else None
                not_involved = (index + indicator_no) % 17 == 0
                if not_involved:
                    awarded, reason = Decimal(maximum), None
                total += awarded
                notice_points.append(
                    NoticePoint(code, title, Decimal(maximum), awarded, reason, not_involved)
                )
            notice_indicators.append(
                NoticeIndicator(
                    str(indicator_no),
                    ind_title,
                    sum((p.max_points for p in notice_points), Decimal(0)),
                    tuple(notice_points),
                )
            )
        categories.append(
            NoticeCategory(str(c), cat_title, Decimal(cat_max), tuple(notice_indicators))
        )
    return NoticeData(
        year=2018,
        title="关于2018年度“放管服”工作考核结果的通知",
        document_no="蛟市职转办〔2019〕1号",
        issuer=ISSUER,
        issued_on=date(2019, 1, 15),
        department=f"第{index:04d}号部门（综合办公室）",
        total=total,
        total_max=Decimal(100),
        converted=total * 2 / 100,
        converted_max=Decimal(2),
        rank=index,
        department_count=count,
        categories=tuple(categories),
    )


def synthetic_summary(notices: Sequence[NoticeData]) -> SummaryData:
    """Return the summary table of `notices`, in their order."""
    rows = tuple(
        SummaryRow(
            rank=notice.rank,
            department=notice.department,
            category_points=tuple(
                sum(
                    (p.awarded or Decimal(0) for i in c.indicators for p in i.points),
                    Decimal(0),
                )
                for c in notice.categories
            ),
            total=notice.total,
            converted=notice.converted,
        )
        for notice in notices
    )
    return SummaryData(
        year=2018,
        title="2018年度市政府相关部门“放管服”工作考核结果汇总表",
        document_no="蛟市职转办〔2019〕2号",
        issuer=ISSUER,
        issued_on=date(2019, 1, 15),
        category_titles=tuple(title for title, _, _ in SCHEME),
        category_max=tuple(Decimal(maximum) for _, maximum, _ in SCHEME),
        rows=rows,
    )


def _timed(render: Callable[[], list[bytes]]) -> tuple[list[bytes], float]:
    started = time.perf_counter()
    outputs = render()
    return outputs, time.perf_counter() - started


def run_case(label: str, count: int, out: Path | None) -> tuple[Measurement, Measurement, int]:
    """Render `count` notices and their summary; return both measurements and bytes written."""
    notices = [synthetic_notice(i, count) for i in range(1, count + 1)]
    documents, seconds = _timed(lambda: [render_notice(n) for n in notices])
    summary = synthetic_summary(notices)
    summary_docs, summary_seconds = _timed(lambda: [render_summary(summary)])
    if out is not None:
        folder = out / label
        folder.mkdir(parents=True, exist_ok=True)
        for index, document in enumerate(documents, start=1):
            (folder / f"notice-{index:04d}.docx").write_bytes(document)
        (folder / "summary.docx").write_bytes(summary_docs[0])
    size = sum(map(len, documents)) + len(summary_docs[0])
    return (
        Measurement(f"{label}: notices", count, count, seconds),
        Measurement(f"{label}: summary", 1, count, summary_seconds),
        size,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--city", type=int, default=26, help="departments of the city case")
    parser.add_argument("--departments", type=int, default=1000, help="the large case")
    parser.add_argument("--out", type=Path, default=None, help="also write the .docx files here")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.city < 1 or args.departments < 1:
        parser.error("counts must be positive")

    render_notice(synthetic_notice(1, 1))  # warm up: imports, base document cache
    city_notices, city_summary, city_bytes = run_case("city", args.city, args.out)
    large_notices, large_summary, large_bytes = run_case("large", args.departments, args.out)

    baselines = {"notices": city_notices, "summary": city_summary}
    header = f"{'case':<16} {'count':>7} {'seconds':>9} {'ms/item':>9} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for m in (city_notices, city_summary, large_notices, large_summary):
        per_item = m.seconds * 1000 / m.items
        base = baselines[m.case.split(": ")[1]]
        ratio = per_item / (base.seconds * 1000 / base.items)
        count = f"{m.items}" if m.documents == m.items else f"{m.items}r"
        print(f"{m.case:<16} {count:>7} {m.seconds:>9.3f} {per_item:>9.2f} {ratio:>7.2f}")
    print(
        f"(ms/item: per notice, or per table row for a summary; 'r' = rows; "
        f"ratio vs the city case; {city_bytes + large_bytes:,} bytes rendered)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
