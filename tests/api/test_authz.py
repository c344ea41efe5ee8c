"""Every endpoint × every role, and IDOR probes on every id-taking route."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.api.conftest import ROLES, Cast, error_code, pdf_upload
from tests.factories import add_evidence
from workflow import actions
from workflow.models import Evidence, Item
from workflow.users import issue_token

Prepare = Callable[[str], tuple[str, str, dict[str, Any]]]

STAFF = ("reviewer", "verifier", "scorer", "auditor", "admin")
UNAUTH = {"anonymous": 401, "disabled": 401}


def expect(default: int, **codes: int) -> dict[str, int]:
    """Return the expected status per role: `default`, the given overrides, 401 without a user."""
    table = dict.fromkeys(ROLES, default)
    table.update(UNAUTH)
    table.update(codes)
    return table


def readers(ok: int) -> dict[str, int]:
    """Expected codes of reading a department-A resource: A and every office role read it."""
    return expect(ok, other=404)


def test_authorization_matrix(
    app: Flask, client: FlaskClient, session: Session, cast: Cast
) -> None:
    w = cast.world
    store = app.extensions["store"]
    aid = w.assessment.id

    def item(code: str) -> Item:
        return w.item(session, w.dep_a, code)

    draft = item("1")
    file_row = add_evidence(session, store, draft, w.member_a, name="读.pdf")
    submitted, reviewed, verified, with_file = item("2"), item("3"), item("4"), item("5")
    for it in (submitted, reviewed, verified, with_file):
        add_evidence(session, store, it, w.member_a, name=f"{it.id}.pdf")
    for it in (submitted, reviewed, verified):
        actions.submit_item(session, it.id, w.member_a, it.version)
    for it in (reviewed, verified):
        actions.review_item(session, it.id, w.reviewer2, it.version)
    actions.verify_item(session, verified.id, w.verifier, verified.version)
    session.commit()

    def fixed(method: str, path: str, **kw: Any) -> Prepare:
        return lambda _role: (method, path, kw)

    def version_of(it: Item) -> int:
        session.expire_all()
        return session.get(Item, it.id).version  # type: ignore[union-attr]

    def transition(it: Item, action: str, **body: Any) -> Prepare:
        def prepare(_role: str) -> tuple[str, str, dict[str, Any]]:
            payload = {"action": action, "version": version_of(it), **body}
            return "POST", f"/api/v1/items/{it.id}/transitions", {"json": payload}

        return prepare

    def fresh_evidence(_role: str) -> tuple[str, str, dict[str, Any]]:
        row = add_evidence(session, store, draft, w.member_a, name=f"删{_role}.pdf")
        session.commit()
        return "DELETE", f"/api/v1/evidence/{row.id}", {}

    def token_of_member_b(_role: str) -> tuple[str, str, dict[str, Any]]:
        _, row = issue_token(session, w.member_b, name=_role)
        session.commit()
        return "DELETE", f"/api/v1/tokens/{row.id}", {}

    def upload(_role: str) -> tuple[str, str, dict[str, Any]]:
        data = pdf_upload(f"{_role}.pdf", seed=_role)
        kw = {"data": data, "content_type": "multipart/form-data"}
        return "POST", f"/api/v1/items/{draft.id}/evidence", kw

    auditors = expect(403, auditor=200, admin=200)
    office_and_audit = expect(200, own=403, other=403)
    matrix: list[tuple[str, Prepare, dict[str, int]]] = [
        ("me", fixed("GET", "/api/v1/me"), expect(200)),
        ("list tokens", fixed("GET", "/api/v1/tokens"), expect(200)),
        ("revoke token", token_of_member_b, expect(404, other=204, admin=204)),
        ("assessments", fixed("GET", "/api/v1/assessments"), expect(200)),
        ("scheme", fixed("GET", f"/api/v1/assessments/{aid}"), expect(200)),
        ("items", fixed("GET", f"/api/v1/assessments/{aid}/items"), expect(200)),
        ("results", fixed("GET", f"/api/v1/assessments/{aid}/results"), office_and_audit),
        ("item", fixed("GET", f"/api/v1/items/{draft.id}"), readers(200)),
        ("history", fixed("GET", f"/api/v1/items/{draft.id}/history"), readers(200)),
        ("upload", upload, expect(403, own=201, other=404)),
        ("remove evidence", fresh_evidence, expect(403, own=204, other=404)),
        ("download", fixed("GET", f"/api/v1/evidence/{file_row.id}/content"), readers(200)),
        ("submit", transition(with_file, "submit"), expect(403, own=200, other=404)),
        ("review", transition(submitted, "review"), expect(403, reviewer=200, other=404)),
        ("verify", transition(reviewed, "verify"), expect(403, verifier=200, other=404)),
        (
            "score",
            transition(verified, "score", scores=_full(session, verified)),
            expect(403, scorer=200, other=404),
        ),
        ("audit events", fixed("GET", "/api/v1/audit/events"), auditors),
        ("audit verify", fixed("GET", "/api/v1/audit/verify"), auditors),
        ("openapi", fixed("GET", "/api/v1/openapi.json"), dict.fromkeys(ROLES, 200)),
        ("docs", fixed("GET", "/api/v1/docs"), dict.fromkeys(ROLES, 200)),
    ]
    failures = []
    cells = 0
    for label, prepare, expected in matrix:
        assert set(expected) == set(ROLES), label
        # Refusals first: the one role allowed to move the item goes last.
        for role in sorted(ROLES, key=lambda r: (expected[r] < 300, ROLES.index(r))):
            method, path, kw = prepare(role)
            response = client.open(path, method=method, headers=cast.headers(role), **kw)
            cells += 1
            if response.status_code != expected[role]:
                failures.append(
                    (label, role, expected[role], response.status_code, response.data[:200])
                )
            elif response.status_code >= 400:
                error_code(response)  # every refusal has the contract's shape
    assert not failures, "\n".join(map(str, failures))
    assert cells == len(matrix) * len(ROLES)


def _full(session: Session, it: Item) -> dict[str, str]:
    return {p.code: str(p.max_points) for p in actions.scoring_points_of(session, it)}


def test_department_user_lists_only_own_items(client: FlaskClient, cast: Cast) -> None:
    w = cast.world
    path = f"/api/v1/assessments/{w.assessment.id}/items?limit=500"
    own = client.get(path, headers=cast.headers("own")).get_json()["items"]
    assert own and {i["department"]["id"] for i in own} == {w.dep_a.id}
    # Asking for another department's items yields nothing of theirs.
    probe = client.get(f"{path}&department={w.dep_b.id}", headers=cast.headers("own"))
    assert probe.status_code == 200 and probe.get_json()["items"] == []
    staff = client.get(path, headers=cast.headers("auditor")).get_json()["items"]
    assert len({i["department"]["id"] for i in staff}) > 2


IDOR_ROUTES = [
    ("GET", "/api/v1/items/{iid}"),
    ("GET", "/api/v1/items/{iid}/history"),
    ("POST", "/api/v1/items/{iid}/evidence"),
    ("POST", "/api/v1/items/{iid}/transitions"),
    ("DELETE", "/api/v1/evidence/{eid}"),
    ("GET", "/api/v1/evidence/{eid}/content"),
    ("DELETE", "/api/v1/tokens/{tid}"),
]


def test_idor_probes(app: Flask, client: FlaskClient, session: Session, cast: Cast) -> None:
    """Another department's id answers exactly like an id that does not exist."""
    w = cast.world
    target = w.item(session, w.dep_a, "1")
    row = add_evidence(session, app.extensions["store"], target, w.member_a)
    _, token = issue_token(session, w.member_a)
    session.commit()
    ids = {"iid": target.id, "eid": row.id, "tid": token.id}

    def probe(method: str, template: str, role: str, **override: object) -> tuple[int, str]:
        kw: dict[str, Any] = {}
        if template.endswith("/transitions"):
            kw = {"json": {"action": "submit", "version": target.version}}
        elif template.endswith("/evidence"):
            kw = {"data": pdf_upload(), "content_type": "multipart/form-data"}
        path = template.format(**{**ids, **override})
        response = client.open(path, method=method, headers=cast.headers(role), **kw)
        return response.status_code, error_code(response)

    for method, template in IDOR_ROUTES:
        foreign = probe(method, template, "other")
        missing = probe(method, template, "other", iid=2**31 - 1, eid=2**31 - 1, tid=2**31 - 1)
        assert foreign[0] == 404 and foreign == missing, template
        for bad in ("abc", "-1", "0", "1.5", str(2**31), str(2**64), "%00", "1e3"):
            status, code = probe(method, template, "own", iid=bad, eid=bad, tid=bad)
            assert status == 404, (template, bad, code)
    # Nothing happened to the department's resources.
    session.expire_all()
    assert session.get(Item, target.id).state == "draft"  # type: ignore[union-attr]
    assert session.get(Evidence, row.id).removed_at is None  # type: ignore[union-attr]


def test_unknown_assessment_ids(client: FlaskClient, cast: Cast) -> None:
    for suffix in ("", "/items", "/results"):
        for aid in ("999999", "x", str(2**40)):
            response = client.get(
                f"/api/v1/assessments/{aid}{suffix}", headers=cast.headers("admin")
            )
            assert response.status_code == 404 and error_code(response).endswith("not_found")
