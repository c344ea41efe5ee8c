"""The year-over-year charts are plain SVG computed from the figures (no database)."""

from __future__ import annotations

import re
from decimal import Decimal
from types import SimpleNamespace
from typing import cast

from flask import Flask
from flask_babel import Babel

from web.portal.charts import BOTTOM, HEIGHT, TOP, indicators_svg
from workflow.models import Unit
from workflow.units import IndicatorScore, UnitYear

D = Decimal


def _year(year: int, scores: dict[str, Decimal | None], via: Unit | None = None) -> UnitYear:
    maxima = {"1": D(10), "8": D(20)}
    return UnitYear(
        year=year, assessment_id=year, department_id=year, name="局", total=D(0),
        converted=D(0), rank=1, complete=True, via=via,
        indicators=[IndicatorScore(c, f"指标{c}", maxima[c], s) for c, s in scores.items()],
        total_points=D(100),
    )  # fmt: skip


def test_indicator_bars_are_shares_of_each_maximum_and_predecessors_are_marked() -> None:
    app = Flask(__name__)
    Babel(app)
    predecessor = cast(Unit, SimpleNamespace(name="安监局"))  # only its name is drawn
    years = [
        _year(2018, {"1": D(5), "8": D(20)}, via=predecessor),
        _year(2019, {"1": D(10), "8": None}),  # 8 not scored yet: no bar
    ]
    with app.test_request_context():
        svg = str(indicators_svg(years))
    bars = re.findall(
        r'<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" class="([^"]+)">'
        r"<title>([^<]+)</title>",
        svg,
    )
    assert len(bars) == 3
    span = HEIGHT - TOP - BOTTOM
    heights = {title: float(h) for _y, h, _c, title in bars}
    assert abs(heights["2018 1：5.00 / 10.00"] - span * 0.5) < 0.2
    assert abs(heights["2018 8：20.00 / 20.00"] - span) < 0.2
    assert abs(heights["2019 1：10.00 / 10.00"] - span) < 0.2
    kinds = {title: kind for _y, _h, kind, title in bars}
    assert (
        kinds["2018 1：5.00 / 10.00"] == "bar-via" and "bar-0" not in kinds["2019 1：10.00 / 10.00"]
    )
    assert "前身：安监局" in svg and "各指标历年得分率" in svg
    with app.test_request_context():
        assert indicators_svg([_year(2019, {"1": None})]) is None


def test_a_year_not_fully_scored_draws_no_total_and_two_predecessors_do_not_overprint() -> None:
    """2020 half scored showed as a dot at 0.00; two predecessors of one year printed their
    names on top of each other."""
    import dataclasses

    from web.portal.charts import history_svg

    app = Flask(__name__)
    Babel(app)
    a = cast(Unit, SimpleNamespace(name="交通局"))
    b = cast(Unit, SimpleNamespace(name="教育局"))
    years = [
        dataclasses.replace(_year(2018, {"1": D(5)}, via=a), total=D("88.50")),
        dataclasses.replace(_year(2018, {"1": D(5)}, via=b), total=D("91.00")),
        dataclasses.replace(_year(2019, {"1": D(5)}), total=D("90.00")),
        dataclasses.replace(_year(2020, {"1": None}), complete=False),
    ]
    with app.test_request_context():
        svg = str(history_svg(years))
    assert ">0.00<" not in svg and "未评完" in svg
    assert len(re.findall(r'class="dot"', svg)) == 1 and len(re.findall("dot-via", svg)) == 2
    ys = [float(y) for y in re.findall(r'<text x="[\d.]+" y="([\d.]+)" class="via">前身', svg)]
    assert len(ys) == 2 and abs(ys[0] - ys[1]) >= 12  # one under the other


def test_a_year_not_fully_scored_is_named_in_english_on_an_english_page() -> None:
    """未评完 was written inside an f-string, which the catalog's extraction skips: the English
    unit page drew it in Chinese under an unfinished year."""
    import dataclasses

    from web.portal.charts import history_svg
    from web.portal.i18n import TRANSLATIONS

    app = Flask(__name__)
    Babel(app, default_translation_directories=str(TRANSLATIONS), locale_selector=lambda: "en")
    years = [
        dataclasses.replace(_year(2018, {"1": D(5)}), total=D("88.50")),
        dataclasses.replace(_year(2019, {"1": None}), complete=False),
    ]
    with app.test_request_context():
        svg = str(history_svg(years))
    assert not re.search(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", svg), svg
    assert "not fully scored" in svg
