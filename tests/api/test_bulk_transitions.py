"""POST /api/v1/bulk-transitions: dry run, apply, idempotency, limits and who may call it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.api.conftest import Cast, error_code
from tests.factories import submit_items
from workflow.models import AuditEvent, BulkRun, IdempotencyRecord, Item

URL = "/api/v1/bulk-transitions"


@pytest.fixture
def submitted(app: Flask, session: Session, cast: Cast) -> list[Item]:
    """Department B's ten items, submitted."""
    w = cast.world
    chosen = [w.item(session, w.dep_b, str(n)) for n in range(1, 11)]
    return submit_items(session, app.extensions["store"], w, chosen)


def events(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def body(items: list[Item], action: str = "review", **extra: Any) -> dict[str, Any]:
    return {
        "action": action,
        "items": [{"id": i.id, "version": i.version} for i in items],
        **extra,
    }


def test_dry_run_then_apply(
    client: FlaskClient, session: Session, cast: Cast, submitted: list[Item]
) -> None:
    draft = cast.world.item(session, cast.world.dep_a, "1")
    chosen = [*submitted, draft]
    request = body(chosen)
    before = events(session)
    dry = client.post(URL, json={**request, "dry_run": True}, headers=cast.headers("reviewer"))
    assert dry.status_code == 200, dry.get_json()
    report = dry.get_json()
    assert report["dry_run"] is True
    assert report["counts"] == {"ok": 10, "refused": 1, "conflict": 0}
    assert report["results"][-1] == {
        "item_id": draft.id,
        "status": "refused",
        "code": "invalid_state",
        "message": "当前状态（草稿）不允许执行“初审通过”",
        "current_version": None,
        "requested_version": None,
    }
    assert report["results"][0] == {
        "item_id": submitted[0].id,
        "status": "ok",
        "code": None,
        "message": None,
        "current_version": None,
        "requested_version": None,
    }
    assert events(session) == before
    applied = client.post(URL, json=request, headers=cast.headers("reviewer"))
    assert applied.status_code == 200
    assert applied.get_json()["results"] == report["results"]
    assert events(session) - before == 10
    # The same request again: every item is now stale.
    again = client.post(URL, json=request, headers=cast.headers("reviewer"))
    assert [r["status"] for r in again.get_json()["results"]] == ["conflict"] * 10 + ["refused"]
    assert events(session) - before == 10


def test_idempotent_retry(
    client: FlaskClient, session: Session, cast: Cast, submitted: list[Item]
) -> None:
    before = events(session)
    headers = cast.headers("reviewer", **{"Idempotency-Key": "bulk-1"})
    request = body(submitted)
    first = client.post(URL, json=request, headers=headers)
    second = client.post(URL, json=request, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.get_json() == second.get_json()
    assert first.get_json()["counts"]["ok"] == 10
    # The retry says it applied nothing itself, as a single transition's replay does.
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert events(session) - before == 10
    reused = client.post(URL, json={**request, "items": request["items"][:3]}, headers=headers)
    assert reused.status_code == 422 and error_code(reused) == "idempotency_key_reused"
    # Bulk keys are not single-item idempotency records, and the reverse.
    assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    assert session.scalar(select(func.count()).select_from(BulkRun)) == 1
    item = submitted[0]
    session.refresh(item)
    single = client.post(
        f"/api/v1/items/{item.id}/transitions",
        json={"action": "verify", "version": item.version},
        headers=cast.headers("verifier", **{"Idempotency-Key": "bulk-1"}),
    )
    assert single.status_code == 200


def test_return_needs_the_shared_reason(
    client: FlaskClient, session: Session, cast: Cast, submitted: list[Item]
) -> None:
    missing = client.post(URL, json=body(submitted, "return"), headers=cast.headers("reviewer"))
    assert missing.status_code == 422 and error_code(missing) == "reason_required"
    done = client.post(
        URL, json=body(submitted, "return", comment="缺少盖章页"), headers=cast.headers("reviewer")
    )
    assert done.get_json()["counts"]["ok"] == 10
    session.expire_all()
    assert {
        i.return_reason
        for i in session.execute(select(Item).where(Item.state == "returned")).scalars()
    } == {"缺少盖章页"}


def test_more_than_500_refused(client: FlaskClient, cast: Cast) -> None:
    items = [{"id": n, "version": 1} for n in range(1, 502)]
    response = client.post(
        URL, json={"action": "review", "items": items}, headers=cast.headers("reviewer")
    )
    assert response.status_code == 422 and error_code(response) == "too_many_items"
    assert "最多 500 个事项，本次选择了 501 个" in response.get_json()["error"]["message"]
    english = client.post(
        URL,
        json={"action": "review", "items": items},
        headers=cast.headers("reviewer", **{"Accept-Language": "en"}),
    )
    assert english.get_json()["error"]["message"].startswith(
        "A bulk action takes at most 500 items; 501 were selected."
    )
    exactly = client.post(
        URL,
        json={"action": "review", "items": items[:500], "dry_run": True},
        headers=cast.headers("reviewer"),
    )
    assert exactly.status_code == 200
    assert exactly.get_json()["counts"]["refused"] == 500  # unknown or draft items


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("own", 403),
        ("other", 403),
        ("scorer", 403),
        ("auditor", 403),
        ("admin", 403),
        ("anonymous", 401),
        ("disabled", 401),
        ("reviewer", 200),
        ("verifier", 200),
    ],
)
def test_who_may_call_it(client: FlaskClient, cast: Cast, role: str, status: int) -> None:
    probe = {"action": "review", "items": [{"id": 1, "version": 1}], "dry_run": True}
    response = client.post(URL, json=probe, headers=cast.headers(role))
    assert response.status_code == status, response.get_json()
    if status == 403:
        assert error_code(response) == "role_required"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"action": "review", "items": [{"id": 1}]}, 400, "invalid_type"),
        ({"action": "review", "items": [{"id": 1, "version": True}]}, 400, "invalid_type"),
        ({"action": "review", "items": [{"id": 2**40, "version": 1}]}, 400, "invalid_type"),
        ({"action": "review", "items": {"id": 1}}, 400, "invalid_type"),
        ({"action": "review", "items": [], "extra": 1}, 400, "unknown_field"),
        ({"action": "review", "items": [1]}, 400, "invalid_type"),
        ({"action": 5, "items": []}, 400, "invalid_type"),
        ({"action": "review", "items": [], "dry_run": "yes"}, 400, "invalid_type"),
        ({"action": "score", "items": [{"id": 1, "version": 1}]}, 422, "bulk_action_not_supported"),
        ({"action": "review", "items": []}, 422, "no_items"),
        (
            {"action": "review", "items": [{"id": 1, "version": 1}, {"id": 1, "version": 2}]},
            422,
            "duplicate_items",
        ),
    ],
)
def test_bad_bodies(
    client: FlaskClient, cast: Cast, payload: dict[str, Any], status: int, code: str
) -> None:
    response = client.post(URL, json=payload, headers=cast.headers("reviewer"))
    assert response.status_code == status and error_code(response) == code


def test_a_changed_item_is_reported_without_version_numbers(
    client: FlaskClient, session: Session, cast: Cast, submitted: list[Item]
) -> None:
    # The reviewer ticked two items; one was changed by someone else before the run.
    changed, fine = submitted[0], submitted[1]
    request = {
        "action": "review",
        "items": [
            {"id": changed.id, "version": changed.version - 1},
            {"id": fine.id, "version": fine.version},
        ],
    }
    for dry_run in (True, False):
        report = client.post(
            URL, json={**request, "dry_run": dry_run}, headers=cast.headers("reviewer")
        ).get_json()
        stale, ok = report["results"]
        assert (stale["status"], stale["code"]) == ("conflict", "stale_version")
        # The reviewer never saw a version: the text says what happened and what to do.
        assert "版本" not in stale["message"]
        assert "选中后" in stale["message"] and "已被他人" in stale["message"]
        assert "刷新" in stale["message"]
        # The numbers stay for scripts, as fields.
        assert (stale["current_version"], stale["requested_version"]) == (
            changed.version,
            changed.version - 1,
        )
        assert ok["current_version"] is None and ok["requested_version"] is None
    english = client.post(
        URL, json=request, headers=cast.headers("reviewer", **{"Accept-Language": "en"})
    ).get_json()["results"][0]["message"]
    assert "version" not in english.lower()
    assert "after it was selected" in english and "refresh" in english.lower()


@pytest.mark.parametrize("crash_at", [1, 4])
def test_a_resumed_run_is_marked_replayed(
    client: FlaskClient,
    session: Session,
    cast: Cast,
    submitted: list[Item],
    monkeypatch: pytest.MonkeyPatch,
    crash_at: int,
) -> None:
    """The key's stored run, resumed after the first attempt died (before its first item, or
    after three), answers `Idempotent-Replayed: true` as a finished run's retry does."""
    from workflow import bulk

    real = bulk.transition_item
    calls = {"n": 0}

    def dies(*args: Any, **kw: Any) -> Item:
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise RuntimeError("the worker died")
        return real(*args, **kw)

    headers = cast.headers("reviewer", **{"Idempotency-Key": f"resume-{crash_at}"})
    request = body(submitted)
    before = events(session)
    monkeypatch.setattr(bulk, "transition_item", dies)
    assert client.post(URL, json=request, headers=headers).status_code == 500
    monkeypatch.setattr(bulk, "transition_item", real)
    assert events(session) - before == crash_at - 1
    resumed = client.post(URL, json=request, headers=headers)
    assert resumed.status_code == 200
    assert resumed.get_json()["counts"] == {"ok": 10, "refused": 0, "conflict": 0}
    assert resumed.headers.get("Idempotent-Replayed") == "true"
    assert events(session) - before == 10
    # Returned once more, finished: the same report, still marked.
    again = client.post(URL, json=request, headers=headers)
    assert again.get_json() == resumed.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    # A dry run ignores the key: never a replay.
    dry = client.post(URL, json={**request, "dry_run": True}, headers=headers)
    assert "Idempotent-Replayed" not in dry.headers
