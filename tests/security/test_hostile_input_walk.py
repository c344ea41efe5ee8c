"""Finding 11.12: bad input gave 500s (CR/LF in next=, NUL on PostgreSQL, year 0001, huge ids).

Every portal route of the URL map is walked as every role of the demo data, GET with hostile
query values and POST (with a valid CSRF token) with hostile form values, and with hostile path
parameters. The input layer must refuse NUL, controls and 10⁶ characters with a 400 (413 for a
body over the form limit); any other hostile value may be refused (4xx) or be harmless
(2xx/3xx), but never a 5xx.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from tests.security.conftest import DEMO_PASSWORD, DEMO_ROLES, Demo, password_hash
from tests.security.portal_walk import (
    Form,
    csrf_of,
    department_of,
    fill,
    forms_of,
    methods,
    params,
    portal_rules,
    real_paths,
    sign_in,
)
from web.portal.inputs import MAX_QUERY_CHARS
from workflow.models import User

ROOT = Path(__file__).resolve().parents[2]
# Refused by the input layer whatever the field: 400 (413 when the body passes the form limit).
LAYER_VALUES = ["a\x00b", "\x1b[2J\x07", "x" * 1_000_000]
# In a query string, ten times the layer's limit stands for the 10⁶ characters: a real server
# refuses a longer request line before the app, and the test client's URL handling of 10⁶
# characters cost a fifth of the walk's time (twice per request, on the client's side).
QUERY_LAYER_VALUES = [*LAYER_VALUES[:2], "x" * (10 * MAX_QUERY_CHARS)]
# Refused by a view or harmless, never a 5xx.
SEMANTIC_VALUES = [
    "/portal/\r\nSet-Cookie: x=1",
    "99999999999999999999999",
    "-1",
    "0001-01-01",
    "9999-12-31T23:59",
    "1e309",
    "",
]
PATH_VALUES = ["99999999999999999999", "-1", "%00", "%0D%0A", "%ED%A0%80", "x" * 3000]
# A lone surrogate cannot travel as UTF-8: Werkzeug decodes its bytes to U+FFFD, harmlessly.
RAW_QUERY = "%ED%A0%80=%ED%A0%80&next=%ED%A0%80"
SOURCE_NAME = re.compile(
    r"""(?:request\.(?:args|form|values)\.get(?:list)?|int_arg|_date_arg|_local_datetime)"""
    r"""\(\s*["'](\w+)["']"""
)


def source_names() -> list[str]:
    """Return every query/form field name the web layer reads (so new fields are walked)."""
    names: set[str] = {"next", "back"}
    for path in (ROOT / "web").rglob("*.py"):
        names.update(SOURCE_NAME.findall(path.read_text("utf-8")))
    return sorted(names)


def _fresh_sign_in(app: Flask, session: Session, username: str | None) -> FlaskClient:
    """Sign in again (an earlier POST may have reset the password or disabled the account)."""
    if username is not None:
        session.execute(
            update(User)
            .where(User.username == username)
            .values(password_hash=password_hash(), is_active=True, must_change_password=False)
        )
        session.commit()
    return sign_in(app, username, DEMO_PASSWORD)


def _check(failures: list[str], label: str, status: int, layer: bool) -> None:
    if status >= 500 or (layer and status not in (400, 413)):
        failures.append(f"{label}: {status}")


@pytest.mark.parametrize("demo", ["demo"], indirect=True)
def test_hostile_values_in_every_portal_route_for_every_role_are_never_a_5xx(
    demo: Demo, session: Session
) -> None:
    app = demo.app
    names = source_names()
    rules = portal_rules(app)
    adapter = app.url_map.bind("localhost")
    failures: list[str] = []
    walked: set[str] = set()
    for role, username in DEMO_ROLES.items():
        client = _fresh_sign_in(app, session, username)
        department_id = department_of(session, username)
        forms: dict[str, list[Form]] = {}
        for rule in rules:  # GET pages: hostile query values, and collect their forms
            if "GET" not in methods(rule):
                continue
            path = next(real_paths(session, rule, department_id))[0]
            page = client.get(path)
            if page.status_code == 200 and page.mimetype == "text/html":
                for form in forms_of(page.get_data(as_text=True)):
                    try:
                        endpoint, _args = adapter.match(form.action, method="POST")
                    except Exception:  # a form posting elsewhere is not ours
                        continue
                    forms.setdefault(str(endpoint), []).append(form)
            page.close()
            # A page the role may not open refuses before reading any value: the layer only.
            values = QUERY_LAYER_VALUES + (SEMANTIC_VALUES if page.status_code == 200 else [])
            for value in values:
                query = {names[0]: value} if len(value) > 1000 else dict.fromkeys(names, value)
                response = client.get(path, query_string=query)
                _check(failures, f"{role} GET {path} ?…={value[:30]!r}", response.status_code,
                       value in QUERY_LAYER_VALUES)  # fmt: skip
                response.close()
            response = client.get(f"{path}?{RAW_QUERY}")
            _check(failures, f"{role} GET {path} surrogate", response.status_code, False)
            walked.add(rule.endpoint)
        csrf = csrf_of(client)
        for rule in rules:  # POST: the page's own forms (else every field name) with one bad value
            if "POST" not in methods(rule) or rule.endpoint == "auth.logout":
                continue
            path = next(real_paths(session, rule, department_id))[0]
            # The role's own form for the route, one field at a time; without one (the route is
            # not for this role, or shows no form), every field name the web layer reads at once.
            found = forms.get(rule.endpoint)
            form = found[0] if found else Form(path, dict.fromkeys(names, "1"))
            action = form.action or path
            defaults = {k: v for k, v in form.fields.items() if k != "csrf_token"}
            targets = list(defaults) or names[:1]  # a form of only a button still gets a field
            for value in LAYER_VALUES:
                bad = dict.fromkeys(targets[:1] if len(value) > 1000 else targets, value)
                response = client.post(action, data={**defaults, **bad, "csrf_token": csrf})
                _check(failures, f"{role} POST {action} {value[:20]!r}", response.status_code, True)
            # One field at a time; of fields repeated by position (the scheme form's
            # `ind-3-point-2-max`), the first of each shape: the others take the same path.
            shapes = {re.sub(r"\d+", "#", field): field for field in reversed(defaults)}
            variants = [[field] for field in defaults if field in shapes.values()]
            if not found:  # no page offers this role the form: is the route open to it at all?
                probe = client.post(action, data={**defaults, "csrf_token": csrf}).status_code
                variants = [] if probe in (302, 401, 403, 404, 405) else [list(defaults)]
            for fields in variants:
                for value in SEMANTIC_VALUES:
                    data = {**defaults, **dict.fromkeys(fields, value), "csrf_token": csrf}
                    response = client.post(action, data=data)
                    _check(failures, f"{role} POST {action} {fields[:3]}={value[:30]!r}",
                           response.status_code, False)  # fmt: skip
            if variants:  # the POSTs may have signed us out (password reset, disabled account)
                client = _fresh_sign_in(app, session, username)
                csrf = csrf_of(client)
            walked.add(rule.endpoint)
    anonymous = app.test_client()
    for rule in rules:  # hostile path parameters: the router answers 404, never a 5xx
        for _conv, _args, _name in params(rule)[:1]:
            for value in PATH_VALUES:
                path = fill(rule, {n: value for _c, _a, n in params(rule)})
                for method in methods(rule):
                    status = anonymous.open(path, method=method).status_code
                    _check(failures, f"{method} {path[:80]}", status, False)
    assert not failures, "\n".join(failures[:80])
    expected = {r.endpoint for r in rules} - {"auth.logout"}
    assert expected <= walked, f"routes not walked: {sorted(expected - walked)}"
