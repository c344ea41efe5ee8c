"""Server-rendered SVG charts (no script, no CDN): a unit's totals across years and the
office-wide spread of totals per year. Text in them is the caller's (Chinese) or figures."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from flask_babel import gettext
from markupsafe import Markup, escape

from workflow.units import UnitYear

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 40


def _x(n: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span / 2 if count == 1 else span * n / (count - 1))


def _y(value: Decimal, top: Decimal) -> float:
    span = HEIGHT - TOP - BOTTOM
    return TOP + span * (1 - float(value / top if top else 0))


def _axes(top: Decimal, labels: Sequence[str]) -> list[str]:
    parts = [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" class="axis"/>',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}"'
        ' class="axis"/>',
    ]
    for k in range(5):
        v = top * k / 4
        y = _y(v, top)
        parts.append(
            f'<line x1="{LEFT - 4}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" class="grid"/>'
        )
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.0f}</text>')
    for n, label in enumerate(labels):
        parts.append(
            f'<text x="{_x(n, len(labels)):.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    return parts


def _svg(title: str, parts: list[str]) -> Markup:
    body = "".join(parts)
    return Markup(
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}"'
        f' height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f"{body}</svg>"
    )


def history_svg(years: Sequence[UnitYear]) -> Markup | None:
    """Totals by year: the unit's own as filled dots joined by a line, a predecessor's as
    hollow dots named under the year. A year not yet fully scored draws no dot (its total is
    not a result): 未评完 stands at the foot of its column instead."""
    if not years:
        return None
    top = max(y.total_points for y in years) or Decimal(100)
    labels = sorted({str(y.year) for y in years})
    parts = _axes(top, labels)
    own = [(labels.index(str(y.year)), y) for y in years if y.via is None and y.complete]
    if len(own) > 1:
        points = " ".join(f"{_x(n, len(labels)):.1f},{_y(y.total, top):.1f}" for n, y in own)
        parts.append(f'<polyline points="{points}" class="line"/>')
    seen: dict[str, int] = {}
    label_at: dict[str, float] = {}
    for y in years:
        n = labels.index(str(y.year))
        cx = _x(n, len(labels))
        if not y.complete:
            if str(y.year) not in seen:
                # Outside the f-string: the catalog's extraction skips a text written inside one.
                unfinished = escape(gettext("未评完"))
                parts.append(
                    f'<text x="{cx:.1f}" y="{_y(Decimal(0), top) - 6:.1f}" text-anchor="middle"'
                    f' class="via">{unfinished}</text>'
                )
            seen[str(y.year)] = seen.get(str(y.year), 0) + 1
            continue
        cy = _y(y.total, top)
        if y.via is None:
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" class="dot"/>')
        else:
            # Two predecessors in one year: their names one under the other, not overprinted.
            label_y = cy - 6
            if str(y.year) in label_at:
                label_y = max(label_y, label_at[str(y.year)] + 14)
            label_at[str(y.year)] = label_y
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" class="dot-via"/>')
            parts.append(
                f'<text x="{cx + 8:.1f}" y="{label_y:.1f}" class="via">'
                f"{escape(gettext('前身：%(name)s', name=y.via.name))}</text>"
            )
        seen[str(y.year)] = seen.get(str(y.year), 0) + 1
        parts.append(
            f'<text x="{cx:.1f}" y="{cy - 9:.1f}" text-anchor="middle">{y.total:.2f}</text>'
        )
    return _svg(gettext("历年总分"), parts)


def distribution_svg(rows: Sequence[tuple[int, int, list[Decimal]]]) -> Markup | None:
    """Every department's total per assessment as dots, with the median as a bar."""
    rows = [r for r in rows if r[2]]
    if not rows:
        return None
    top = max(max(r[2]) for r in rows)
    top = Decimal(100) if top <= 100 else top
    labels = [f"{year}" for year, _aid, _totals in rows]
    parts = _axes(top, labels)
    for n, (_year, _aid, totals) in enumerate(rows):
        cx = _x(n, len(rows))
        for k, t in enumerate(totals):
            dx = (k % 7 - 3) * 3
            parts.append(
                f'<circle cx="{cx + dx:.1f}" cy="{_y(t, top):.1f}" r="3" class="dot-small"/>'
            )
        median = totals[len(totals) // 2]
        y = _y(median, top)
        parts.append(
            f'<line x1="{cx - 16:.1f}" y1="{y:.1f}" x2="{cx + 16:.1f}" y2="{y:.1f}"'
            ' class="median"/>'
        )
    return _svg(gettext("各单位总分分布（横线为中位数）"), parts)


def indicators_svg(years: Sequence[UnitYear]) -> Markup | None:
    """Each indicator's score across years as grouped bars, in percent of the indicator's
    maximum (maxima differ between indicators and may change between schemes). A year of a
    predecessor is a lighter bar, named in the legend; an unscored indicator draws no bar."""
    scored = [y for y in years if any(i.score is not None for i in y.indicators)]
    if not scored:
        return None
    codes: list[str] = []
    for y in scored:
        for i in y.indicators:
            if i.code not in codes:
                codes.append(i.code)
    top = Decimal(100)
    span = WIDTH - LEFT - RIGHT
    slot = span / len(codes)
    bar = max(2.0, (slot - 6) / len(scored))
    parts = _axes(top, [])
    for n, code in enumerate(codes):
        x0 = LEFT + slot * n + 3
        parts.append(
            f'<text x="{x0 + (slot - 6) / 2:.1f}" y="{HEIGHT - BOTTOM + 18}"'
            f' text-anchor="middle">{escape(code)}</text>'
        )
        for k, y in enumerate(scored):
            found = next((i for i in y.indicators if i.code == code), None)
            if found is None or found.score is None or not found.max_points:
                continue
            share = found.score * 100 / found.max_points
            top_y = _y(share, top)
            kind = "bar-via" if y.via is not None else f"bar bar-{k % 4}"
            tip = gettext(
                "%(label)s：%(value)s",
                label=f"{y.year} {code}",
                value=f"{found.score:.2f} / {found.max_points:.2f}",
            )
            parts.append(
                f'<rect x="{x0 + bar * k:.1f}" y="{top_y:.1f}" width="{bar - 1:.1f}"'
                f' height="{HEIGHT - BOTTOM - top_y:.1f}" class="{kind}">'
                f"<title>{escape(tip)}"
                "</title></rect>"
            )
    legend = []
    for k, y in enumerate(scored):
        name = gettext("前身：%(name)s", name=y.via.name) if y.via is not None else ""
        kind = "bar-via" if y.via is not None else f"bar bar-{k % 4}"
        x = LEFT + 150 * k
        legend.append(f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" class="{kind}"/>')
        legend.append(
            f'<text x="{x + 14}" y="{HEIGHT - 5}">{escape(f"{y.year} {name}".strip())}</text>'
        )
    return _svg(gettext("各指标历年得分率（%）"), parts + legend)
