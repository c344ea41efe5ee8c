"""GET /assessments/{aid}/results and /units/{uid}/history: a rank only once a department's
items are all scored, among those departments; the others say why they have none."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.api.conftest import Cast
from tests.factories import results_in_progress


def test_results_rank_only_departments_whose_items_are_all_scored(
    client: FlaskClient, session: Session, cast: Cast
) -> None:
    """Walk: the results ranked a department with 3 of 10 items scored 3rd on its 30 points
    and pushed a finished one to 4th; a script that read `rank` passed both on. Now the
    finished are ranked among themselves, best first; the others follow with `rank` null,
    `unranked_reason` `not_all_scored`, `complete` false and their figures so far."""
    w = cast.world
    third, fourth, partial = results_in_progress(session, w)
    got = client.get(
        f"/api/v1/assessments/{w.assessment.id}/results", headers=cast.headers("auditor")
    )
    assert got.status_code == 200
    rows = got.get_json()["results"]
    assert [(r["department"]["id"], r["rank"], r["unranked_reason"]) for r in rows[:3]] == [
        (w.dep_a.id, 1, None),
        (third.id, 2, None),
        (fourth.id, 3, None),
    ]
    assert all(r["complete"] for r in rows[:3])
    by_id = {r["department"]["id"]: r for r in rows}
    assert by_id[partial.id] == {
        "department": by_id[partial.id]["department"],
        "total": "30.00",
        "converted": "0.60",
        "rank": None,
        "unranked_reason": "not_all_scored",
        "complete": False,
        "items_scored": 3,
        "items_total": 10,
    }
    rest = rows[3:]
    assert len(rest) == 23 and all(r["rank"] is None for r in rest)
    assert all(r["unranked_reason"] == "not_all_scored" and not r["complete"] for r in rest)

    history = client.get(
        f"/api/v1/units/{partial.unit_id}/history", headers=cast.headers("auditor")
    )
    year = history.get_json()["years"][0]
    assert year["rank"] is None and year["unranked_reason"] == "not_all_scored"
    assert year["total"] == "30.00" and not year["complete"]
    ranked = client.get(f"/api/v1/units/{fourth.unit_id}/history", headers=cast.headers("auditor"))
    year = ranked.get_json()["years"][0]
    assert year["rank"] == 3 and year["unranked_reason"] is None and year["complete"]
