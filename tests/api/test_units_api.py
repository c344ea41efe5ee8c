"""GET /units, POST /units/changes, GET /units/{uid}/history, and the `units` commands."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.api.conftest import Cast
from workflow.audit import verify_chain
from workflow.models import AuditEvent, UnitChange
from workflow.units import find_unit


def _id(session: Session, name: str) -> int:
    unit = find_unit(session, name)
    assert unit is not None
    return unit.id


def _merge(client: FlaskClient, cast: Cast, ids: list[int], **kw: object):  # type: ignore[no-untyped-def]
    body = {
        "kind": "merge",
        "effective_on": "2019-03-01",
        "document_no": "蛟市机编〔2019〕1号（示例）",
        "reason": "机构改革",
        "from": ids,
        "to": [{"name": "应急管理局", "full_name": "蛟河市应急管理局"}],
        **kw,
    }
    return client.post("/api/v1/units/changes", json=body, headers=cast.headers("admin"))


def test_units_are_listed_with_names_and_lineage(
    client: FlaskClient, cast: Cast, session: Session
) -> None:
    ids = [_id(session, "安监局"), _id(session, "煤监局")]
    made = _merge(client, cast, ids)
    assert made.status_code == 201, made.get_json()
    change = made.get_json()
    assert [u["id"] for u in change["from"]] == ids and change["kind"] == "merge"
    assert change["to"][0]["name"] == "应急管理局" and change["effective_on"] == "2019-03-01"

    seen = []
    cursor = None
    while True:
        url = "/api/v1/units?limit=10" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url, headers=cast.headers("reviewer")).get_json()
        seen.extend(body["units"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 27
    by_name = {u["name"]: u for u in seen}
    new = by_name["应急管理局"]
    assert new["status"] == "active" and sorted(p["id"] for p in new["predecessors"]) == ids
    assert new["names"] == [
        {"name": "应急管理局", "full_name": "蛟河市应急管理局", "from": "2019-03-01", "to": None}
    ]
    old = by_name["安监局"]
    assert old["status"] == "merged" and old["successors"] == [change["to"][0]]
    assert old["names"][0]["to"] == "2019-03-01"
    assert by_name["住建局"]["offices"] == ["人防办"]
    assert by_name["城管执法大队"]["aliases"] == ["城管局"]
    # Department users may not list units: a role they lack (403, as API.md says), in words.
    refused = client.get("/api/v1/units", headers=cast.headers("own"))
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "role_required"


def test_a_change_is_admin_only_checked_in_chinese_or_english_and_audited(
    client: FlaskClient, cast: Cast, session: Session
) -> None:
    ids = [_id(session, "安监局"), _id(session, "煤监局")]
    for role in ("reviewer", "own"):
        refused = client.post(
            "/api/v1/units/changes",
            json={"kind": "dissolve", "effective_on": "2019-03-01", "from": ids[:1]},
            headers=cast.headers(role),
        )
        assert refused.status_code == 403
    one = _merge(client, cast, ids[:1])
    assert one.status_code == 422
    assert one.get_json()["error"]["code"] == "merge_needs_two"
    assert "合并须有至少两个原单位" in one.get_json()["error"]["message"]
    english = client.post(
        "/api/v1/units/changes",
        json={"kind": "merge", "effective_on": "2019-03-01", "document_no": "x", "reason": "y",
              "from": ids[:1], "to": [{"name": "应急管理局"}]},
        headers=cast.headers("admin", **{"Accept-Language": "en"}),
    )  # fmt: skip
    assert english.status_code == 422
    assert english.get_json()["error"]["message"].startswith("A merge needs at least two")
    bad_date = _merge(client, cast, ids, effective_on="2019-02-30")
    assert bad_date.get_json()["error"]["code"] == "bad_effective_on"
    ahead = _merge(client, cast, ids, effective_on="2099-01-01")  # after today
    assert ahead.status_code == 422 and ahead.get_json()["error"]["code"] == "bad_effective_on"
    assert "晚于今天" in ahead.get_json()["error"]["message"]
    no_doc = _merge(client, cast, ids, document_no="")
    assert no_doc.get_json()["error"]["code"] == "change_document_required"
    wrong_type = _merge(client, cast, ["安监局"])
    assert wrong_type.status_code == 400
    unknown = _merge(client, cast, [*ids, 99999])
    assert unknown.status_code == 404
    session.expire_all()
    assert session.scalars(select(UnitChange)).first() is None  # nothing half-applied
    assert _merge(client, cast, ids).status_code == 201
    again = _merge(client, cast, ids)  # can't merge merged units
    assert again.status_code == 422 and again.get_json()["error"]["code"] == "unit_not_active"
    session.expire_all()
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "unit_changed")).all()
    assert len(events) == 1 and events[0].actor == "admin"
    assert verify_chain(session).ok


def test_history_lists_the_units_years_to_staff_and_its_own_users(
    client: FlaskClient, cast: Cast, session: Session
) -> None:
    w = cast.world
    uid = w.dep_a.unit_id
    body = client.get(f"/api/v1/units/{uid}/history", headers=cast.headers("auditor"))
    assert body.status_code == 200
    years = body.get_json()["years"]
    assert [(y["year"], y["department_id"], y["via"]) for y in years] == [(2018, w.dep_a.id, None)]
    assert len(years[0]["indicators"]) == 10 and years[0]["total"] == "0.00"
    # Its own users: before publication the scores are not theirs to see yet.
    own = client.get(f"/api/v1/units/{uid}/history", headers=cast.headers("own"))
    assert own.status_code == 200 and own.get_json()["years"] == []
    other = client.get(f"/api/v1/units/{uid}/history", headers=cast.headers("other"))
    assert other.status_code == 404
    assert (
        client.get("/api/v1/units/99999/history", headers=cast.headers("admin")).status_code == 404
    )


def test_units_commands_change_and_list(app: Flask, session: Session, cast: Cast) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["units", "change", "rename", "--from", "国土局", "--to", "自然资源局",
              "--effective", "2019-03-01", "--document-no", "蛟市机编〔2019〕2号（示例）",
              "--reason", "机构改革"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "更名" in result.output
    listed = runner.invoke(args=["units", "list"])
    assert listed.exit_code == 0
    assert "自然资源局（曾用名：国土局）" in listed.output
    refused = runner.invoke(
        args=["units", "change", "merge", "--from", "交通局", "--to", "新局",
              "--effective", "2019-03-01", "--document-no", "x", "--reason", "y"],
    )  # fmt: skip
    assert refused.exit_code != 0 and "合并须有至少两个原单位" in refused.output
    session.expire_all()
    assert len(session.scalars(select(UnitChange)).all()) == 1
