"""Lists: keyset pagination (stable under inserts), filters, audit events, scheme, results."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.api.conftest import Cast, error_code
from tests.factories import add_evidence
from web.api.common import query_limit
from workflow import actions
from workflow.models import Department, Indicator, Item
from workflow.units import NewUnit, make_unit


def test_items_pagination_is_stable_under_inserts(
    client: FlaskClient, session: Session, cast: Cast
) -> None:
    w = cast.world
    path = f"/api/v1/assessments/{w.assessment.id}/items"
    headers = cast.headers("reviewer")
    before = {i.id for i in session.execute(select(Item)).scalars()}
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        query = f"{path}?limit=97" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(query, headers=headers).get_json()
        seen.extend(i["id"] for i in body["items"])
        pages += 1
        if pages == 2:  # a department joins while we page: its items come at the end
            unit = make_unit(session, NewUnit("新部门"))
            dep = Department(
                assessment_id=w.assessment.id, unit_id=unit.id, name="新部门", full_name="新部门"
            )
            session.add(dep)
            session.flush()
            for ind in session.execute(select(Indicator)).scalars():
                session.add(Item(assessment_id=w.assessment.id, department_id=dep.id,
                                 indicator_id=ind.id))  # fmt: skip
            session.commit()
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "no item twice"
    assert before <= set(seen), "no item skipped"
    assert seen == sorted(seen)
    assert len(seen) > len(before)


def test_limit_and_filters(app: Flask, client: FlaskClient, session: Session, cast: Cast) -> None:
    w = cast.world
    path = f"/api/v1/assessments/{w.assessment.id}/items"
    headers = cast.headers("auditor")
    assert len(client.get(path, headers=headers).get_json()["items"]) == 50
    total = len(session.execute(select(Item.id)).all())
    capped = client.get(f"{path}?limit=100000", headers=headers).get_json()  # capped at 500
    assert len(capped["items"]) == min(total, 500) and capped["next_cursor"] is None
    for bad in ("limit=0", "limit=x", "limit=-1", "cursor=zzz", "state=flying", "department=x"):
        response = client.get(f"{path}?{bad}", headers=headers)
        assert response.status_code == 400, bad
        error_code(response)
    item = w.item(session, w.dep_a, "3")
    add_evidence(session, app.extensions["store"], item, w.member_a)
    actions.submit_item(session, item.id, w.member_a, item.version)
    session.commit()
    submitted = client.get(f"{path}?state=submitted", headers=headers).get_json()["items"]
    assert [i["id"] for i in submitted] == [item.id]
    one = client.get(f"{path}?department={w.dep_a.id}&indicator=3", headers=headers).get_json()[
        "items"
    ]
    assert [i["id"] for i in one] == [item.id]
    assert one[0]["indicator"]["code"] == "3" and one[0]["state"] == "submitted"


def test_limit_is_capped_at_500(app: Flask) -> None:
    for query, expected in (("", 50), ("limit=7", 7), ("limit=500", 500), ("limit=501", 500),
                            ("limit=99999999999", 500)):  # fmt: skip
        with app.test_request_context(f"/?{query}"):
            assert query_limit() == expected


def test_limit_refusal_names_the_rule(client: FlaskClient, cast: Cast) -> None:
    """A script's bad `limit` is told the documented rule (1 up, capped at 500), never the
    internal 64-bit bound; a limit of any length above 500 is capped, not refused."""
    path = f"/api/v1/assessments/{cast.world.assessment.id}/items"
    headers = cast.headers("auditor")
    for bad in ("0", "-1", "x", "1.5", "000"):
        response = client.get(f"{path}?limit={bad}", headers=headers)
        assert response.status_code == 400, bad
        assert error_code(response) == "invalid_parameter"
        message = response.get_json()["error"]["message"]
        assert "500" in message and "9223372036854775807" not in message, message
    for big in ("99999999999999999999", "1" * 5000):
        response = client.get(f"{path}?limit={big}", headers=headers)
        assert response.status_code == 200, big
    events = client.get("/api/v1/audit/events?limit=0", headers=headers)
    assert "9223372036854775807" not in events.get_json()["error"]["message"]


def test_scheme_and_assessments(client: FlaskClient, cast: Cast) -> None:
    listed = client.get("/api/v1/assessments", headers=cast.headers("own")).get_json()
    (a,) = listed["assessments"]
    assert a["year"] == 2018 and a["total_points"] == "100.00" and a["converted_points"] == "2.00"
    scheme = client.get(f"/api/v1/assessments/{a['id']}", headers=cast.headers("own")).get_json()
    first = scheme["categories"][0]["indicators"][0]
    assert first["sub_items"][0] == {"code": "1.1", "title": "成立“放管服”工作领导小组",
                                     "max_points": "5.00"}  # fmt: skip
    names = {d["name"]: d for d in scheme["departments"]}
    assert "城管局" in names["城管执法大队"]["aliases"]


def test_audit_events_filters_and_paging(client: FlaskClient, cast: Cast) -> None:
    headers = cast.headers("auditor")
    everything = client.get("/api/v1/audit/events?limit=500", headers=headers).get_json()
    seqs = [e["seq"] for e in everything["events"]]
    assert seqs == sorted(seqs) and len(seqs) >= 10
    first = everything["events"][0]
    assert set(first) >= {"seq", "at", "actor", "action", "target", "from_state", "to_state",
                          "comment", "payload", "prev_hash", "hash"}  # fmt: skip
    page = client.get("/api/v1/audit/events?limit=3", headers=headers).get_json()
    assert [e["seq"] for e in page["events"]] == seqs[:3]
    nxt = client.get(f"/api/v1/audit/events?limit=3&cursor={page['next_cursor']}", headers=headers)
    assert [e["seq"] for e in nxt.get_json()["events"]] == seqs[3:6]
    after = client.get(f"/api/v1/audit/events?after_seq={seqs[-2]}", headers=headers).get_json()
    assert [e["seq"] for e in after["events"]] == seqs[-1:] and after["next_cursor"] is None
    by_actor = client.get("/api/v1/audit/events?actor=admin", headers=headers).get_json()
    assert by_actor["events"] and {e["actor"] for e in by_actor["events"]} == {"admin"}
    by_action = client.get("/api/v1/audit/events?action=token_issued", headers=headers).get_json()
    assert by_action["events"] and {e["action"] for e in by_action["events"]} == {"token_issued"}
    bad = client.get("/api/v1/audit/events?after_seq=-5", headers=headers)
    assert bad.status_code == 400


def test_json_errors_and_docs_page(client: FlaskClient, cast: Cast) -> None:
    response = client.put("/api/v1/me", headers=cast.headers("own"))
    assert response.status_code == 405 and error_code(response) == "method_not_allowed"
    assert "GET" in response.headers["Allow"]
    response = client.get("/api/v1/nothing-here", headers=cast.headers("own"))
    assert response.status_code == 404 and error_code(response) == "not_found"
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "/api/v1/items/{iid}/transitions" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "<style" not in html and " style=" not in html  # the CSP allows no inline style


def test_an_id_out_of_range_is_a_404_for_every_method(client: FlaskClient, cast: Cast) -> None:
    """Werkzeug says 405 when another method's rule matched the pattern but refused the id;
    no rule exists for such an id, so the API answers 404 (the fuzz run found it)."""
    url = "/api/v1/assessments/14362517574162368/departments/818555/notices"
    response = client.get(url, headers=cast.headers("admin"))
    assert response.status_code == 404, response.get_json()
    wrong = client.delete(
        f"/api/v1/assessments/{cast.world.assessment.id}", headers=cast.headers("admin")
    )
    assert wrong.status_code == 405  # a real path with a method it does not take stays 405


def test_an_unknown_query_parameter_is_refused_by_name(client: FlaskClient, cast: Cast) -> None:
    """`?stat=submitted` (a typo of `state`) used to answer every item: a script took it for
    its queue. Now it is a 400 naming the parameter and the accepted ones."""
    path = f"/api/v1/assessments/{cast.world.assessment.id}/items"
    typo = client.get(f"{path}?stat=submitted&limit=5", headers=cast.headers("reviewer"))
    assert typo.status_code == 400 and error_code(typo) == "unknown_parameter"
    assert typo.get_json()["error"]["message"] == (
        "不支持的查询参数：stat（本接口接受：limit, cursor, department, state, indicator, "
        "failed_checks），请检查拼写"
    )
    english = client.get(
        f"{path}?stat=submitted", headers=cast.headers("reviewer", **{"Accept-Language": "en"})
    ).get_json()["error"]["message"]
    assert english == (
        "Unknown query parameter: stat (this operation takes limit, cursor, department, "
        "state, indicator, failed_checks); check the spelling."
    )
    # Two at once are named together; the documented ones still work.
    both = client.get(f"{path}?stat=x&dept=1", headers=cast.headers("reviewer"))
    assert "dept, stat" in both.get_json()["error"]["message"]
    fine = client.get(
        f"{path}?state=submitted&department=1&indicator=1&limit=5", headers=cast.headers("auditor")
    )
    assert fine.status_code == 200
    # Who asks is checked first: without a token it is the 401 it always was.
    assert client.get(f"{path}?stat=submitted").status_code == 401


def test_every_operation_with_query_parameters_refuses_unknown_ones(
    app: Flask, client: FlaskClient, session: Session, cast: Cast
) -> None:
    from web.api.contract import openapi_document

    w = cast.world
    ids = {
        "aid": w.assessment.id,
        "iid": w.item(session, w.dep_a, "1").id,
        "did": w.dep_a.id,
        "sid": 1,
        "oid": 1,
    }
    with app.app_context():
        paths = openapi_document()["paths"]
    checked = []
    for path, ops in paths.items():
        for method, op in ops.items():
            declared = {p["name"] for p in op.get("parameters", ()) if p["in"] == "query"}
            if not declared:
                continue
            url = path.format(**{k: ids[k] for k in ids if f"{{{k}}}" in path})
            response = client.open(
                f"{url}?bogus=1", method=method.upper(), headers=cast.headers("admin")
            )
            assert response.status_code == 400, (method, path, response.get_json())
            assert error_code(response) == "unknown_parameter", (method, path)
            assert "bogus" in response.get_json()["error"]["message"]
            checked.append(f"{method.upper()} {path}")
    assert "GET /api/v1/assessments/{aid}/items" in checked
    assert "GET /api/v1/audit/events" in checked and len(checked) >= 12
