"""Issue 11, finding 11: no authenticated page and no download may be kept by a cache."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence
from workflow.users import issue_token


def _parameterless_get_pages(app: Flask) -> list[str]:
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or set())
        and not rule.arguments
        and not rule.rule.startswith("/static")
        and rule.endpoint != "auth.logout"
    )


def test_cache_control_no_store_on_every_authenticated_page_and_download(
    app: Flask,
    login: Callable[[str], FlaskClient],
    session: Session,
    store: LocalStore,
    world: World,
) -> None:
    item = world.item(session, world.dep_a, "1")
    evidence = add_evidence(session, store, item, world.member_a)
    token, _row = issue_token(session, world.admin, name="t")
    session.commit()
    checked = 0
    for username in ("admin", "member_a", "auditor", "reviewer"):
        client = login(username)
        for path in _parameterless_get_pages(app):
            response = client.get(path)
            response.close()  # a streamed export must not outlive its request (see below)
            if response.status_code >= 500:
                raise AssertionError(f"{path}: {response.status_code}")
            cache = response.headers.get("Cache-Control", "")
            assert "no-store" in cache, (username, path, response.status_code, cache)
            checked += 1
    assert checked > 40
    member = login("member_a")
    bearer = {"Authorization": f"Bearer {token}"}
    api = app.test_client()
    downloads = {
        "portal evidence": (member, f"/portal/evidence/{evidence.id}/download", {}),
        "portal preview": (member, f"/portal/evidence/{evidence.id}/preview", {}),
        "audit export": (login("auditor"), "/audit/export.csv", {}),
        "api evidence": (api, f"/api/v1/evidence/{evidence.id}/content", bearer),
        "api me": (api, "/api/v1/me", bearer),
        "api items": (api, f"/api/v1/items/{item.id}", bearer),
    }
    for name, (who, path, headers) in downloads.items():
        response = who.get(path, headers=headers)
        # A streamed body is closed before the next request: left to the garbage collector,
        # its request context would be popped in the middle of another request's.
        response.close()
        assert response.status_code == 200, (name, response.status_code)
        assert "no-store" in response.headers.get("Cache-Control", ""), name
    # Static assets stay cacheable: the rule is about data, not about style sheets.
    static = app.test_client().get("/static/favicon.svg")
    assert "no-store" not in static.headers.get("Cache-Control", "")
