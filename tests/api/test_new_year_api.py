"""POST /api/v1/assessments: a new year for the mapped units, and `assessments create`."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.api.conftest import Cast, pdf_upload
from workflow.audit import verify_chain
from workflow.models import Assessment, Item, StoredScheme
from workflow.reconcile import reconcile
from workflow.schemes import import_shipped
from workflow.units import NewUnit, make_unit


def _scheme_id(session: Session, code: str = "jiaohe-2019-shili") -> int:
    import_shipped(session)
    session.commit()
    return session.execute(select(StoredScheme.id).where(StoredScheme.code == code)).scalar_one()


def _merge_a_and_b(client: FlaskClient, cast: Cast) -> dict:  # type: ignore[type-arg]
    w = cast.world
    made = client.post(
        "/api/v1/units/changes",
        json={"kind": "merge", "effective_on": "2019-03-01",
              "document_no": "蛟市机编〔2019〕1号（示例）", "reason": "机构改革",
              "from": [w.dep_a.unit_id, w.dep_b.unit_id], "to": [{"name": "交通教育局"}]},
        headers=cast.headers("admin"),
    )  # fmt: skip
    assert made.status_code == 201, made.get_json()
    return made.get_json()  # type: ignore[no-any-return]


def test_the_proposal_assesses_a_merged_unit_once_and_its_users_see_the_new_items(
    client: FlaskClient, cast: Cast, session: Session
) -> None:
    scheme_id = _scheme_id(session)
    merged = _merge_a_and_b(client, cast)
    created = client.post(
        "/api/v1/assessments",
        json={"scheme_id": scheme_id, "year": 2019,
              "result_document_no": "蛟市职转办〔2020〕1号（示例）", "issuer": "蛟河市职转办"},
        headers=cast.headers("admin"),
    )  # fmt: skip
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["year"] == 2019 and body["result_document_no"] == "蛟市职转办〔2020〕1号（示例）"
    assert body["scheme_id"] == scheme_id and body["issuer"] == "蛟河市职转办"
    names = [d["name"] for d in body["departments"]]
    assert len(names) == 25 and "交通教育局" in names
    assert "交通局" not in names and "教育局" not in names
    # The merged unit stands where its first predecessor stood.
    assert names[0] == "交通教育局"
    new_dep = body["departments"][0]
    assert new_dep["unit_id"] == merged["to"][0]["id"]
    assert len(body["items"]) == 25 * 10

    # The merged units' users keep their tokens and see the new year's items as their own.
    aid = body["id"]
    for role in ("own", "other"):
        me = client.get("/api/v1/me", headers=cast.headers(role)).get_json()
        assert me["department"]["id"] == new_dep["id"]
        assert me["department"]["assessment_id"] == aid
        listed = client.get(f"/api/v1/assessments/{aid}/items", headers=cast.headers(role))
        items = listed.get_json()["items"]
        assert len(items) == 10 and {i["department"]["id"] for i in items} == {new_dep["id"]}
        one = client.get(f"/api/v1/items/{items[0]['id']}", headers=cast.headers(role))
        assert one.status_code == 200
        uploaded = client.post(
            f"/api/v1/items/{items[0]['id']}/evidence",
            data=pdf_upload(seed=role),
            headers=cast.headers(role),
            content_type="multipart/form-data",
        )
        assert uploaded.status_code == 201, uploaded.get_json()
        # Their 2018 items are still theirs.
        old = client.get(
            f"/api/v1/assessments/{cast.world.assessment.id}/items", headers=cast.headers(role)
        ).get_json()["items"]
        assert len(old) == 10
    session.expire_all()
    assert verify_chain(session).ok and reconcile(session).ok
    frozen = session.get_one(StoredScheme, scheme_id)
    assert frozen.frozen_at is not None

    again = client.post(
        "/api/v1/assessments",
        json={"scheme_id": scheme_id, "year": 2019, "result_document_no": "x"},
        headers=cast.headers("admin"),
    )
    assert again.status_code == 409
    # One assessment per year, whatever its scheme: 2018's rules for 2019 a second time are
    # refused for their year, then for the year that exists.
    other_scheme = _scheme_id(session, "jiaohe-2018")
    for year, status, code in (
        (2019, 422, "scheme_year_mismatch"),
        (2018, 409, "assessment_exists"),
    ):
        refused = client.post(
            "/api/v1/assessments",
            json={"scheme_id": other_scheme, "year": year, "result_document_no": "x"},
            headers=cast.headers("admin"),
        )
        assert refused.status_code == status and refused.get_json()["error"]["code"] == code
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Assessment).where(
        Assessment.year == 2019)) == 1  # fmt: skip


def test_the_admin_corrects_the_mapping_and_bad_requests_change_nothing(
    client: FlaskClient, cast: Cast, session: Session
) -> None:
    scheme_id = _scheme_id(session)
    w = cast.world
    before = session.scalar(select(func.count()).select_from(Assessment))
    url = "/api/v1/assessments"
    admin = cast.headers("admin")
    base = {"scheme_id": scheme_id, "year": 2019, "result_document_no": "蛟市职转办〔2020〕1号"}
    assert client.post(url, json=base, headers=cast.headers("reviewer")).status_code == 403
    missing_no = client.post(url, json={**base, "result_document_no": " "}, headers=admin)
    assert missing_no.status_code == 422
    assert missing_no.get_json()["error"]["code"] == "document_no_required"
    bad_year = client.post(url, json={**base, "year": 1999}, headers=admin)
    assert bad_year.status_code == 422
    assert client.post(url, json={**base, "units": []}, headers=admin).status_code == 422
    assert client.post(url, json={**base, "units": [999999]}, headers=admin).status_code == 404
    assert client.post(url, json={**base, "scheme_id": 999999}, headers=admin).status_code == 404
    assert client.post(url, json={**base, "units": ["交通局"]}, headers=admin).status_code == 400
    # Deadlines out of order refuse the whole year: no assessment is left half made.
    crossed = {"submit": "2019-09-30", "review": "2019-09-01"}
    refused = client.post(url, json={**base, "deadlines": crossed}, headers=admin)
    assert refused.status_code == 422, refused.get_json()
    unknown = client.post(url, json={**base, "deadlines": {"lunch": "2019-09-01"}}, headers=admin)
    assert unknown.status_code == 422 and unknown.get_json()["error"]["code"] == "unknown_stage"
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Assessment)) == before
    merged = _merge_a_and_b(client, cast)
    ended = client.post(url, json={**base, "units": [w.dep_a.unit_id]}, headers=admin)
    assert ended.status_code == 422 and ended.get_json()["error"]["code"] == "unit_not_active"
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Assessment)) == before
    chosen = [merged["to"][0]["id"], w.assessment.departments[5].unit_id]
    dates = {"submit": "2019-09-30", "review": "2019-10-15"}
    made = client.post(url, json={**base, "units": chosen, "deadlines": dates}, headers=admin)
    assert made.status_code == 201
    calendar = client.get(f"/api/v1/assessments/{made.get_json()['id']}/calendar", headers=admin)
    due = {st["name"]: st["due_on"] for st in calendar.get_json()["stages"]}
    assert due["submit"] == "2019-09-30" and due["review"] == "2019-10-15"
    assert [d["unit_id"] for d in made.get_json()["departments"]] == chosen
    session.expire_all()
    count = session.scalar(
        select(func.count()).select_from(Item).where(Item.assessment_id == made.get_json()["id"])
    )
    assert count == 2 * 10


def test_assessments_create_command(app: Flask, session: Session, cast: Cast) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["assessments", "create", "--scheme", "schemes/jiaohe-2019-示例.yaml",
              "--year", "2019", "--document-no", "蛟市职转办〔2020〕2号（示例）"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "已创建 2019 年度考核" in result.output and "被考核单位 26 个" in result.output
    refused = runner.invoke(
        args=["assessments", "create", "--scheme", "jiaohe-2019-shili", "--year", "2019",
              "--document-no", "x"],
    )  # fmt: skip
    assert refused.exit_code != 0 and "2019 年度的考核已存在" in refused.output
    session.expire_all()
    made = session.execute(select(Assessment).where(Assessment.year == 2019)).scalar_one()
    assert made.result_document_no == "蛟市职转办〔2020〕2号（示例）" and made.scheme_id is not None


def test_assessments_create_takes_a_json_scheme_file_and_names_a_missing_one(
    app: Flask, session: Session, cast: Cast, tmp_path: Path
) -> None:
    """`--scheme FILE_OR_CODE`: a file is any file (JSON as well as YAML, as `POST /schemes`
    and `schemes import` take); a file name that is not there is said so, not looked up as
    a code ("考核方案不存在")."""
    runner = app.test_cli_runner()
    data = yaml.safe_load(Path("schemes/jiaohe-2019-示例.yaml").read_text("utf-8"))
    scheme = tmp_path / "2019.json"
    scheme.write_text(json.dumps(data, ensure_ascii=False, default=str), encoding="utf-8")
    for missing in (
        str(tmp_path / "无此文件.yaml"),
        str(tmp_path / "无此文件.json"),
        str(tmp_path),
    ):
        refused = runner.invoke(
            args=["assessments", "create", "--scheme", missing, "--year", "2019",
                  "--document-no", "蛟市职转办〔2020〕2号"],
        )  # fmt: skip
        assert refused.exit_code == 1 and f"找不到方案文件：{missing}" in refused.output
    made = runner.invoke(
        args=["assessments", "create", "--scheme", str(scheme), "--year", "2019",
              "--document-no", "蛟市职转办〔2020〕2号"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "已创建 2019 年度考核" in made.output
    session.expire_all()
    stored = session.execute(
        select(StoredScheme).where(StoredScheme.code == data["code"])
    ).scalar_one()
    assert stored.source_format == "json" and stored.frozen_at is not None


def test_two_units_of_one_name_are_refused_clearly_and_nothing_is_made(
    client: FlaskClient, cast: Cast, session: Session
) -> None:
    scheme_id = _scheme_id(session)
    # Two active units of one name (made before the changes were serialised, or look-alikes).
    first = make_unit(session, NewUnit("并发局"))
    second = make_unit(session, NewUnit("并发局"))
    third = make_unit(session, NewUnit("ｘ局"))
    fourth = make_unit(session, NewUnit("x 局"))
    session.commit()
    url, admin = "/api/v1/assessments", cast.headers("admin")
    base = {"scheme_id": scheme_id, "year": 2019, "result_document_no": "蛟市职转办〔2020〕1号"}
    proposed = client.post(url, json=base, headers=admin)  # the proposal holds both
    assert proposed.status_code == 409, proposed.get_json()
    error = proposed.get_json()["error"]
    assert error["code"] == "unit_names_clash"
    assert f"单位“并发局”（编号 {first.id}）与单位“并发局”（编号 {second.id}）" in error["message"]
    chosen = client.post(url, json={**base, "units": [third.id, fourth.id]}, headers=admin)
    assert chosen.status_code == 409
    assert "“ｘ局”" in chosen.get_json()["error"]["message"]
    english = client.post(url, json=base, headers={**admin, "Accept-Language": "en"})
    assert english.get_json()["error"]["message"].startswith("Unit “并发局” (no. ")
    session.expire_all()
    assert session.scalar(select(func.count()).where(Assessment.year == 2019)) == 0
    fine = client.post(url, json={**base, "units": [first.id, third.id]}, headers=admin)
    assert fine.status_code == 201, fine.get_json()
