"""The scheme library: stored through the engine, audited, frozen once used, compared."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import World, moved_to_year
from workflow.audit import verify_chain
from workflow.errors import Forbidden, InvalidValue
from workflow.models import AuditEvent, StoredScheme
from workflow.scheme import SCHEMES_DIR, Scheme, load_scheme
from workflow.schemes import (
    diff_schemes,
    diff_stored,
    import_shipped,
    latest_version,
    line_of,
    previous_scheme,
    read_yaml,
    save_scheme,
    use_scheme,
)
from workflow.schemes import (
    load_scheme as load_stored,
)

TEXT_2018 = (SCHEMES_DIR / "jiaohe-2018.yaml").read_text("utf-8")
EXAMPLE = SCHEMES_DIR / "jiaohe-2019-示例.yaml"


def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(TEXT_2018)
    return copy.deepcopy(data)


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(StoredScheme)) or 0


def test_stored_scheme_loads_as_the_file_does(session: Session, world: World) -> None:
    saved = save_scheme(session, read_yaml(TEXT_2018), actor=world.admin, source=TEXT_2018)
    assert (saved.status, saved.record.version, saved.record.code) == ("created", 1, "jiaohe-2018")
    assert saved.record.source == TEXT_2018
    assert load_stored(session, saved.record.id) == load_scheme(SCHEMES_DIR / "jiaohe-2018.yaml")
    event = session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc())).scalars().first()
    assert event is not None and (event.action, event.target_type) == ("scheme_created", "scheme")
    assert event.target_id == str(saved.record.id) and event.actor == world.admin.username
    assert verify_chain(session).ok


def test_a_bad_scheme_is_refused_by_place_and_nothing_is_saved(
    session: Session, world: World
) -> None:
    data = raw()
    data["categories"][1]["indicators"][1]["sub_items"][0]["max_points"] = 4  # 4.1: 3 → 4
    data["year"] = "二〇一八"
    before = count(session)
    with pytest.raises(InvalidValue) as caught:
        save_scheme(session, data, actor=world.admin)
    assert caught.value.code == "scheme_invalid" and caught.value.status == 422
    assert caught.value.detail == [
        {"path": "year", "message": "必须为整数（“二〇一八”）"},
    ]
    data["year"] = 2018
    with pytest.raises(InvalidValue) as caught:
        save_scheme(session, data, actor=world.admin)
    assert caught.value.detail == [
        {
            "path": "categories[1].indicators[1].max_points",
            "message": "各分项之和 6 ≠ 指标分值 5（指标 4）",
        },
    ]
    assert count(session) == before


def test_only_an_admin_saves(session: Session, world: World) -> None:
    with pytest.raises(Forbidden):
        save_scheme(session, raw(), actor=world.scorer)
    assert count(session) == 0


def test_an_unused_scheme_changes_in_place_a_used_one_gets_a_new_version(
    session: Session, world: World
) -> None:
    first = save_scheme(session, raw(), actor=world.admin).record
    data = raw()
    data["title"] = "2018年度细则（修订）"
    again = save_scheme(session, data, actor=world.admin)
    assert (again.status, again.record.id, again.record.version) == ("updated", first.id, 1)
    assert save_scheme(session, data, actor=world.admin).status == "unchanged"

    use_scheme(session, first, world.assessment, actor=world.admin)  # an assessment uses it
    assert world.assessment.scheme_id == first.id and first.frozen_at is not None
    frozen_source = first.source
    data["categories"][1]["indicators"][1]["sub_items"][0]["max_points"] = 2  # 4.1: 3 → 2
    data["categories"][1]["indicators"][1]["sub_items"][1]["max_points"] = 3  # 4.2: 2 → 3
    new = save_scheme(session, data, actor=world.admin)
    assert (new.status, new.record.code, new.record.version) == ("versioned", "jiaohe-2018", 2)
    assert new.record.id != first.id and first.source == frozen_source
    assert previous_scheme(session, new.record) is first
    changes = [c.as_dict() for c in diff_stored(session, first, new.record)]
    assert [(c["kind"], c["code"], c["before"], c["after"]) for c in changes] == [
        ("reweighted", "4.1", "3.00", "2.00"),
        ("reweighted", "4.2", "2.00", "3.00"),
    ]
    actions = session.execute(
        select(AuditEvent.action).where(AuditEvent.target_type == "scheme").order_by(AuditEvent.seq)
    ).scalars()
    assert list(actions) == [
        "scheme_created",
        "scheme_updated",
        "scheme_frozen",
        "scheme_versioned",
    ]
    # A used scheme's new version stays that year's: saving one "for 2022" under its code
    # left a new year that could not be created (the assessment's code is the scheme's).
    data = moved_to_year(data, 2022) | {"code": "jiaohe-2018"}
    with pytest.raises(InvalidValue) as moved:
        save_scheme(session, data, actor=world.admin)
    assert moved.value.code == "scheme_year_changed" and "2018 年度" in moved.value.message
    assert latest_version(session, "jiaohe-2018") is new.record


def test_the_example_scheme_against_2018(scheme_2018: Scheme) -> None:
    changes = diff_schemes(scheme_2018, load_scheme(EXAMPLE))
    points = {(c.kind, c.code, c.before, c.after) for c in changes if c.level == "point"}
    assert {(k, code) for k, code, _, _ in points} == {
        ("reweighted", "1.1"),
        ("retitled", "1.1"),
        ("removed", "1.2"),
        ("added", "1.3"),
        ("reweighted", "4.1"),
        ("reweighted", "4.2"),
        ("reweighted", "8.2"),
        ("added", "8.3"),
    }
    assert ("reweighted", "1.1", Decimal(5), Decimal(6)) in points


def test_shipped_schemes_are_stored_and_the_installed_one_is_frozen(
    session: Session, world: World
) -> None:
    saved = {s.record.code: s for s in import_shipped(session)}
    assert set(saved) == {"jiaohe-2018", "jiaohe-2019-shili"}
    real, example = saved["jiaohe-2018"].record, saved["jiaohe-2019-shili"].record
    assert world.assessment.scheme_id == real.id and real.frozen_at is not None
    assert example.is_example and "示例" in example.title and not real.is_example
    assert example.frozen_at is None
    assert previous_scheme(session, example) is real
    assert [s.status for s in import_shipped(session)] == ["unchanged", "unchanged"]


def test_places_are_found_in_the_yaml_text() -> None:
    # indicator 4: `- code: "4"`, its title, then its max_points
    assert line_of(TEXT_2018, "categories[1].indicators[1].max_points") == (
        _line(TEXT_2018, '- code: "4"') + 2
    )
    assert line_of(TEXT_2018, "total_points") == _line(TEXT_2018, "total_points: 100")
    assert line_of(TEXT_2018, 'routine.suggestion["9.1"].kind') == _line(TEXT_2018, '"9.1": {')


def _line(text: str, start: str) -> int:
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith(start):
            return n
    raise AssertionError(start)


def test_yaml_aliases_and_syntax_errors_are_placed() -> None:
    from workflow.errors import SchemeError

    with pytest.raises(SchemeError) as caught:
        read_yaml("a: &x [1, 2]\nb: *x\n")
    assert caught.value.errors == [
        {"path": "第 2 行第 4 列", "message": "不支持 YAML 别名（*引用）"}
    ]
    with pytest.raises(SchemeError) as caught:
        read_yaml("code: [unclosed\nyear: 2018\n")
    assert caught.value.errors[0]["path"].startswith("第 ")
