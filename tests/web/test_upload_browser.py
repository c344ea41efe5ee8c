"""The evidence upload form (upload.js) in Chromium: refusals that happen before the view runs,
and the rest of the page while a file is still on its way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from tests.factories import World
from tests.web.browser import chromium, live_server, needs_chromium, signed_in_page
from workflow.demo import demo_pdf
from workflow.models import Evidence, Item

pytestmark = needs_chromium


def _pdf(name: str, size: int) -> dict[str, Any]:
    """A PDF of about `size` bytes (a comment pads it), as Playwright's in-memory file."""
    head = demo_pdf(name)
    return {
        "name": name,
        "mimeType": "application/pdf",
        "buffer": head + b"\n%" + b"0" * max(0, size - len(head)),
    }


def test_a_file_over_the_request_limit_says_the_limit_not_try_again(
    make_app: Callable[..., Flask], session: Session, world: World
) -> None:
    """A file more than 1 MB over MAX_UPLOAD_BYTES is refused by Werkzeug before the view (an
    error page, not the item page): the form still says why, with the limit, and no retry."""
    item_id = world.item(session, world.dep_a, "1").id
    session.commit()
    app = make_app(WTF_CSRF_ENABLED=True, MAX_UPLOAD_BYTES=512 * 1024)
    problems: list[str] = []
    with live_server(app) as base_url, chromium() as browser:
        page = signed_in_page(browser, base_url, "member_a", 390, problems)
        page.goto(f"{base_url}/portal/items/{item_id}")
        page.set_input_files("input[name=files]", [_pdf("扫描件.pdf", 2 * 1024 * 1024)])
        page.click("form.upload-form button[type=submit]")
        page.wait_for_selector(".upload-status.error")
        status = page.locator(".upload-status").inner_text()
        assert status == "文件超过大小上限（512 KB）", status
        assert "单个文件不超过 512 KB" in page.inner_text("body")
    session.expire_all()
    assert session.query(Evidence).filter_by(item_id=item_id).count() == 0


def test_submit_waits_for_an_upload_in_flight(
    base_url: str, session: Session, world: World
) -> None:
    """提交 clicked while a file is still uploading is held with a reason: leaving the page
    would cancel the upload and submit the item without the file its user just chose."""
    item_id = world.item(session, world.dep_a, "1").id
    session.commit()
    problems: list[str] = []
    with chromium() as browser:
        page = signed_in_page(browser, base_url, "member_a", 390, problems)
        page.goto(f"{base_url}/portal/items/{item_id}")
        page.set_input_files("input[name=files]", [_pdf("第一份.pdf", 2000)])
        page.click("form.upload-form button[type=submit]")
        page.wait_for_selector("text=已上传 1 个文件")
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 20,
                "downloadThroughput": -1,
                "uploadThroughput": 200_000,
            },
        )
        page.set_input_files("input[name=files]", [_pdf("第二份.pdf", 1_200_000)])
        page.click("form.upload-form button[type=submit]")
        page.wait_for_selector("text=正在上传…")
        page.click("button.primary:has-text('提交')")
        status = page.locator(".upload-status")
        assert status.inner_text() == "文件正在上传，请等上传完成后再提交"
        session.expire_all()
        assert session.get(Item, item_id).state == "draft"  # type: ignore[union-attr]
        # The upload went on, and its page came back with the file in the table.
        page.wait_for_selector("table >> text=第二份.pdf", timeout=30_000)
    session.expire_all()
    assert session.query(Evidence).filter_by(item_id=item_id).count() == 2
    assert session.get(Item, item_id).state == "draft"  # type: ignore[union-attr]
    assert not [p for p in problems if "Failed to load resource" not in p], problems
