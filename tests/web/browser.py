"""The portal in Debian's Chromium through Playwright: a live server and a browser, shared by
the browser tests (tests/web/test_*browser.py)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.web.conftest import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"
)


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """Serve the app from a thread on a free local port; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Debian's binary), closed afterwards."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            browser.close()


def watch(page: Any, problems: list[str]) -> Any:
    """Collect the page's console errors (a CSP violation, a script error) into `problems`."""
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    return page


def sign_in(page: Any, base_url: str, username: str) -> None:
    """Sign in through the login form (cookies of an earlier user cleared first)."""
    page.context.clear_cookies()
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.form-stack button[type=submit]")
    page.wait_for_load_state()


def signed_in_page(
    browser: Any, base_url: str, username: str, width: int, problems: list[str]
) -> Any:
    """A Chinese page `width` px wide, watched for script errors, signed in as `username`."""
    page = watch(
        browser.new_page(viewport={"width": width, "height": 900}, locale="zh-CN"), problems
    )
    sign_in(page, base_url, username)
    return page


def screenshots(tmp_path: Path) -> Path:
    """Where screenshots go: $PORTAL_SCREENSHOTS (kept for people), else the test's folder."""
    return Path(os.environ.get("PORTAL_SCREENSHOTS") or tmp_path / "screenshots")
