"""The scheme library over the API: store (YAML or JSON), refusals by place, list, diff, Word."""

from __future__ import annotations

import io

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.api.conftest import Cast, error_code
from tests.scheme_docx import build_docx
from workflow.models import StoredScheme
from workflow.scheme import SCHEMES_DIR

TEXT_2018 = (SCHEMES_DIR / "jiaohe-2018.yaml").read_text("utf-8")
TEXT_EXAMPLE = (SCHEMES_DIR / "jiaohe-2019-示例.yaml").read_text("utf-8")
YAML = "application/yaml"


def stored(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(StoredScheme)) or 0


def post_yaml(client: FlaskClient, cast: Cast, text: str, role: str = "admin") -> object:
    return client.post(
        "/api/v1/schemes", data=text.encode(), headers=cast.headers(role, **{"Content-Type": YAML})
    )


def test_yaml_is_stored_listed_read_and_compared(
    client: FlaskClient, cast: Cast, session: Session
) -> None:
    first = post_yaml(client, cast, TEXT_2018)
    assert first.status_code == 201, first.get_json()  # type: ignore[attr-defined]
    body = first.get_json()  # type: ignore[attr-defined]
    assert (body["code"], body["version"], body["status"]) == ("jiaohe-2018", 1, "created")
    again = post_yaml(client, cast, TEXT_2018)
    assert again.status_code == 200 and again.get_json()["status"] == "unchanged"  # type: ignore[attr-defined]
    example = post_yaml(client, cast, TEXT_EXAMPLE).get_json()  # type: ignore[attr-defined]

    listed = client.get("/api/v1/schemes", headers=cast.headers("scorer")).get_json()
    assert [(s["code"], s["is_example"]) for s in listed["schemes"]] == [
        ("jiaohe-2019-shili", True),
        ("jiaohe-2018", False),
    ]
    detail = client.get(f"/api/v1/schemes/{example['id']}", headers=cast.headers("auditor"))
    assert detail.status_code == 200
    assert detail.get_json()["previous_id"] == body["id"]
    assert detail.get_json()["source"] == TEXT_EXAMPLE
    diff = client.get(f"/api/v1/schemes/{example['id']}/diff", headers=cast.headers("admin"))
    changes = {(c["kind"], c["code"]) for c in diff.get_json()["changes"] if c["level"] == "point"}
    assert {("removed", "1.2"), ("added", "1.3"), ("added", "8.3"), ("reweighted", "4.1")} <= (
        changes
    )
    assert client.get("/api/v1/schemes", headers=cast.headers("own")).status_code == 403
    assert client.get("/api/v1/schemes/99999", headers=cast.headers("admin")).status_code == 404


def test_a_bad_sum_is_refused_naming_its_place_and_line(
    client: FlaskClient, cast: Cast, session: Session
) -> None:
    bad = TEXT_2018.replace(
        '{code: "4.1", title: 权力清单和责任清单修订情况, max_points: 3}',
        '{code: "4.1", title: 权力清单和责任清单修订情况, max_points: 4}',
    ).replace("converted_points: 2", "converted_points: 两分")
    response = post_yaml(client, cast, bad)
    assert response.status_code == 422  # type: ignore[attr-defined]
    body = response.get_json()  # type: ignore[attr-defined]
    assert body["error"]["code"] == "scheme_invalid"
    lines = bad.splitlines()
    assert body["errors"] == [
        {
            "path": "converted_points",
            "message": "分值不是数字（“两分”）",
            "line": lines.index("converted_points: 两分") + 1,
        }
    ]
    bad = bad.replace("converted_points: 两分", "converted_points: 2")
    body = post_yaml(client, cast, bad).get_json()  # type: ignore[attr-defined]
    assert body["errors"] == [
        {
            "path": "categories[1].indicators[1].max_points",
            "message": "各分项之和 6 ≠ 指标分值 5（指标 4）",
            "line": next(n for n, t in enumerate(lines, 1) if t == '      - code: "4"') + 2,
        }
    ]
    assert stored(session) == 0


def test_json_and_refusals_of_the_input(client: FlaskClient, cast: Cast, session: Session) -> None:
    import yaml

    data = yaml.safe_load(TEXT_2018)
    for day in ("signed_on", "printed_on"):
        data[day] = data[day].isoformat()
    response = client.post("/api/v1/schemes", json=data, headers=cast.headers("admin"))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["version"] == 1
    assert (
        client.post("/api/v1/schemes", json=data, headers=cast.headers("scorer")).status_code == 403
    )
    assert post_yaml(client, cast, TEXT_2018, role="own").status_code == 403  # type: ignore[attr-defined]
    refused = client.post(
        "/api/v1/schemes",
        data=b"x",
        headers=cast.headers("admin", **{"Content-Type": "text/plain"}),
    )
    assert refused.status_code == 415 and error_code(refused) == "unsupported_media_type"
    syntax = post_yaml(client, cast, "code: [unclosed\n").get_json()  # type: ignore[attr-defined]
    assert syntax["errors"][0]["path"].startswith("第 ") and syntax["errors"][0]["line"] == 2
    assert stored(session) == 1


def test_word_import_answers_a_draft_not_stored(
    client: FlaskClient, cast: Cast, session: Session
) -> None:
    response = client.post(
        "/api/v1/schemes/import-docx",
        data={"file": (io.BytesIO(build_docx()), "细则.docx")},
        headers=cast.headers("admin"),
    )
    assert response.status_code == 201
    draft = response.get_json()
    assert draft["errors"] == [] and draft["warnings"]
    assert draft["scheme"]["document_no"] == "蛟市职转办〔2018〕6号"
    assert stored(session) == 0
    saved = post_yaml(client, cast, draft["yaml"])  # the draft, saved as it is
    assert saved.status_code == 201  # type: ignore[attr-defined]
    not_docx = client.post(
        "/api/v1/schemes/import-docx",
        data={"file": (io.BytesIO(b"plain text"), "a.docx")},
        headers=cast.headers("admin"),
    )
    assert not_docx.status_code == 422 and error_code(not_docx) == "not_a_docx"
    # As every upload: a field it does not take, or a second file, is named, never dropped.
    for extra in ({"year": "2019"}, {"file2": (io.BytesIO(b"x"), "b.docx")}):
        odd = client.post(
            "/api/v1/schemes/import-docx",
            data={"file": (io.BytesIO(build_docx()), "细则.docx"), **extra},
            headers=cast.headers("admin"),
        )
        assert odd.status_code == 400 and error_code(odd) == "unknown_field", extra
    two = client.post(
        "/api/v1/schemes/import-docx",
        data={"file": [(io.BytesIO(build_docx()), "一.docx"), (io.BytesIO(b"x"), "二.docx")]},
        headers=cast.headers("admin"),
    )
    assert two.status_code == 400 and error_code(two) == "one_file_only"
    assert (
        client.post(
            "/api/v1/schemes/import-docx",
            data={"file": (io.BytesIO(build_docx()), "细则.docx")},
            headers=cast.headers("reviewer"),
        ).status_code
        == 403
    )


def test_points_are_decimal_strings_with_two_places_as_in_assessments(
    client: FlaskClient, cast: Cast
) -> None:
    first = post_yaml(client, cast, TEXT_2018).get_json()  # type: ignore[attr-defined]
    example = post_yaml(client, cast, TEXT_EXAMPLE).get_json()  # type: ignore[attr-defined]
    headers = cast.headers("auditor")
    scheme = client.get(f"/api/v1/schemes/{first['id']}", headers=headers).get_json()["scheme"]
    assert (scheme["total_points"], scheme["converted_points"]) == ("100.00", "2.00")
    category = scheme["categories"][0]
    indicator = category["indicators"][0]
    assert (category["max_points"], indicator["max_points"]) == ("20.00", "10.00")
    assert [p["max_points"] for p in indicator["sub_items"]] == ["5.00", "5.00"]
    # The same values as the assessment made from these rules answers them.
    assessment = client.get(f"/api/v1/assessments/{cast.world.assessment.id}", headers=headers)
    shown = assessment.get_json()
    assert (shown["total_points"], shown["converted_points"]) == ("100.00", "2.00")
    # Everything else as stored, and the stored text untouched.
    assert scheme["routine"]["counting_starts"] == "2018-08" and scheme["year"] == 2018
    detail = client.get(f"/api/v1/schemes/{first['id']}", headers=headers).get_json()
    assert detail["source"] == TEXT_2018
    listed = client.get("/api/v1/schemes", headers=headers).get_json()["schemes"]
    assert {s["total_points"] for s in listed} == {"100.00"}
    diff = client.get(f"/api/v1/schemes/{example['id']}/diff", headers=headers).get_json()
    assert {"kind": "reweighted", "code": "4.1", "before": "3.00", "after": "2.00"}.items() <= (
        next(c for c in diff["changes"] if c["code"] == "4.1").items()
    )
    draft = client.post(
        "/api/v1/schemes/import-docx",
        data={"file": (io.BytesIO(build_docx()), "细则.docx")},
        headers=cast.headers("admin"),
    ).get_json()["scheme"]
    assert (draft["total_points"], draft["categories"][0]["max_points"]) == ("100.00", "20.00")
    assert draft["categories"][0]["indicators"][0]["sub_items"][0]["max_points"] == "5.00"
