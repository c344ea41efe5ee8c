"""The idle timeout in a real browser (js/session.js): typing keeps the session; after the
timeout a return reason typed on the page survives a sign-in in another tab and is sent.

The timeout is 6 seconds here (SESSION_IDLE_MINUTES=0.1): the script scales its ticks to it.
The test does not wait it out: the page's clock (Playwright's) and the server's session clock
are moved on together, a tick of the script at a time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.base import ObjectStore
from tests.factories import World, submit_items
from tests.web.browser import chromium, live_server, needs_chromium, watch
from tests.web.conftest import PASSWORD
from workflow.models import AuditEvent, Item

pytestmark = needs_chromium
IDLE_SECONDS = 6
#: The script's tick for this timeout (js/session.js: a fifteenth of it).
TICK_SECONDS = IDLE_SECONDS / 15
REASON = "第3项佐证材料缺少盖章页，请补充后重新提交"


class SessionClock:
    """The server's clock of the session timeouts (`web.portal.auth`): the real time plus the
    time the test let pass."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def time(self) -> float:
        return time.time() + self.ahead


def _let_pass(page: Any, clock: SessionClock, seconds: float) -> None:
    """Let `seconds` pass for the page (its timers fire) and the server alike, a tick at a time."""
    left, tick = round(seconds * 1000), round(TICK_SECONDS * 1000)
    while left > 0:
        step = min(tick, left)
        clock.ahead += step / 1000
        page.clock.run_for(step)
        left -= step


def _let_pass_until(page: Any, clock: SessionClock, selector: str, most: float) -> None:
    """Let time pass, a tick at a time, until `selector` shows (within `most` seconds)."""
    timeout = pytest.importorskip("playwright.sync_api").TimeoutError
    for _ in range(round(most / TICK_SECONDS)):
        with contextlib.suppress(timeout):  # the page's answer to a tick may be on its way
            page.locator(selector).wait_for(state="visible", timeout=100)
            return
        _let_pass(page, clock, TICK_SECONDS)
    raise AssertionError(f"{selector} not shown within {most} s")


def _sign_in(page: object, base_url: str) -> None:
    page.goto(f"{base_url}/login")  # type: ignore[attr-defined]
    page.fill("input[name=username]", "reviewer")  # type: ignore[attr-defined]
    page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    page.click("form.form-stack button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(f"{base_url}/review/")  # type: ignore[attr-defined]


def _returned(session: Session, item_id: int) -> list[str | None]:
    session.expire_all()
    return list(
        session.execute(
            select(AuditEvent.comment).where(
                AuditEvent.item_id == item_id, AuditEvent.action == "return"
            )
        ).scalars()
    )


# What is under test is the page's script and the session cookie: one database is enough.
@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_typing_keeps_the_session_and_a_timed_out_page_keeps_its_text(
    make_app: Callable[..., Flask],
    session: Session,
    world: World,
    store: ObjectStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = (world.item(session, world.dep_a, code) for code in ("1", "2"))
    submit_items(session, store, world, [first, second])
    app = make_app(WTF_CSRF_ENABLED=True, SESSION_IDLE_MINUTES=IDLE_SECONDS / 60)
    clock = SessionClock()
    monkeypatch.setattr("web.portal.auth.time", clock)
    problems: list[str] = []
    with live_server(app) as base_url, chromium() as browser:
        context = browser.new_context(locale="zh-CN")
        context.clock.install()  # the real time, flowing, until the test moves it on
        page = watch(context.new_page(), problems)
        _sign_in(page, base_url)

        # 1. Someone typing for twice the timeout is not signed out.
        page.goto(f"{base_url}/review/items/{first.id}")
        box = page.locator("form.action-form textarea[required]")
        for character in REASON[:12]:
            box.type(character)
            _let_pass(page, clock, 1)
        box.type(REASON[12:])
        assert page.locator("#session-keeper").is_hidden()
        page.click("form.action-form button.danger")
        page.wait_for_selector(".state-returned")
        assert _returned(session, first.id) == [REASON]

        # 2. Idle past the timeout: the warning came first, then the page says so and holds
        # the submit (the text stays); signed in again in another tab, the same click sends it.
        page.goto(f"{base_url}/review/items/{second.id}")
        page.locator("form.action-form textarea[required]").fill(REASON)
        _let_pass_until(page, clock, "#session-keeper .session-continue", most=8)
        _let_pass_until(page, clock, "#session-keeper .session-login", most=8)
        assert "登录已超时" in page.locator("#session-keeper").inner_text()
        url = page.url
        page.click("form.action-form button.danger")
        page.wait_for_timeout(1000)
        # Held: the page asked whether its user signed in again, and points to the login.
        page.wait_for_selector("#session-keeper .session-login:focus", timeout=5000)
        assert page.url == url and _returned(session, second.id) == []
        assert page.locator("form.action-form textarea[required]").input_value() == REASON
        other = context.new_page()
        _sign_in(other, base_url)
        other.close()
        page.bring_to_front()
        page.click("form.action-form button.danger")
        page.wait_for_selector(".state-returned")
        assert _returned(session, second.id) == [REASON]
        session.expire_all()
        assert session.get_one(Item, second.id).state == "returned"
    assert not problems, problems
