"""Walk the portal from its URL map: every route, ids from the data, one client per role.

Used by the hostile-input walk and the every-page scan. Nothing here lists pages by hand: a page
another change adds is walked as soon as it is registered. A path parameter `<x_id>` takes ids
of the table named `x`/`xs`/`…_xs`; a route with a parameter no table matches is walked with 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session
from werkzeug.routing import Rule

from workflow.models import Base, Department, User
from workflow.permissions import department_id_for

PARAM = re.compile(r"<(?:(?P<conv>[a-z]+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")


def portal_rules(app: Flask) -> list[Rule]:
    """Return every route of the portal: everything but the JSON API and static files."""
    return sorted(
        (
            rule
            for rule in app.url_map.iter_rules()
            if not rule.rule.startswith("/api/") and rule.endpoint != "static"
        ),
        key=lambda rule: (rule.rule, rule.endpoint),
    )


def methods(rule: Rule) -> list[str]:
    """Return the rule's methods the walk uses (GET and POST)."""
    return sorted((rule.methods or set()) & {"GET", "POST"})


def table_for(param: str) -> str | None:
    """Return the table whose ids fill the path parameter `param` (`item_id` → `items`)."""
    stem = param.removesuffix("_id")
    names = [table.name for table in Base.metadata.sorted_tables]
    for name in names:
        if name in (stem, f"{stem}s"):
            return name
    for name in names:
        if name.endswith((f"_{stem}s", f"_{stem}")):
            return name
    return None


def sample_ids(
    session: Session, table: str, department_id: int | None, limit: int = 6
) -> list[int]:
    """Return a few ids of `table`: the role's own department's first, then the first and last."""
    columns = {c["name"] for c in inspect(session.get_bind()).get_columns(table)}
    ids: list[int] = []
    if department_id is not None and "department_id" in columns:
        ids += session.execute(
            text(f"SELECT id FROM {table} WHERE department_id = :d ORDER BY id LIMIT {limit}"),
            {"d": department_id},
        ).scalars()
    if "state" in columns:  # one row per state, so every shape of a page is seen
        ids += session.execute(text(f"SELECT MIN(id) FROM {table} GROUP BY state")).scalars()
    ids += session.execute(text(f"SELECT MIN(id) FROM {table}")).scalars()
    ids += session.execute(text(f"SELECT MAX(id) FROM {table}")).scalars()
    return list(dict.fromkeys(i for i in ids if i is not None))


def fill(rule: Rule, values: dict[str, str]) -> str:
    """Return the rule's path with each parameter replaced by `values[name]`."""
    return PARAM.sub(lambda m: values[m.group("name")], rule.rule)


def params(rule: Rule) -> list[tuple[str, str, str]]:
    """Return the rule's parameters as (converter, arguments, name)."""
    return [(m["conv"] or "default", m["args"] or "", m["name"]) for m in PARAM.finditer(rule.rule)]


def real_paths(
    session: Session, rule: Rule, department_id: int | None
) -> Iterator[tuple[str, bool]]:
    """Yield the rule's paths with real ids; the flag tells whether every id was real."""
    choices: dict[str, list[str]] = {}
    real = True
    for conv, args, name in params(rule):
        if conv == "any":
            choices[name] = [a.strip().strip("'\"") for a in args.split(",")]
            continue
        table = table_for(name)
        ids = sample_ids(session, table, department_id) if table else []
        if not ids:
            real = False
            ids = [1]
        choices[name] = [str(i) for i in ids]
    if not choices:
        yield rule.rule, True
        return
    width = max(len(v) for v in choices.values())
    for n in range(width):
        yield fill(rule, {k: v[min(n, len(v) - 1)] for k, v in choices.items()}), real


@dataclass
class Form:
    """A POST form found on a page: its action and fields with their default values."""

    action: str
    fields: dict[str, str] = field(default_factory=dict)
    multipart: bool = False


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "get").lower() == "post":
            self._current = Form(a.get("action", ""), multipart="multipart" in a.get("enctype", ""))
            self.forms.append(self._current)
        elif self._current is None or "name" not in a:
            return
        elif tag == "input" and a.get("type") not in ("file", "checkbox", "radio", "submit"):
            self._current.fields.setdefault(a["name"], a.get("value", ""))
        elif tag in ("input", "button") and a.get("type") in ("checkbox", "radio", "submit", None):
            if tag == "button" or "checked" in a or a.get("type") == "submit":
                self._current.fields.setdefault(a["name"], a.get("value", "on"))
        elif tag == "textarea":
            self._current.fields.setdefault(a["name"], "")
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select is not None:
            self._current.fields.setdefault(self._select, a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
        elif tag == "select":
            self._select = None


def forms_of(html: str) -> list[Form]:
    """Return the POST forms of a page."""
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def sign_in(app: Flask, username: str | None, password: str) -> FlaskClient:
    """Return a client signed in as `username` (anonymous for None)."""
    client = app.test_client()
    if username is not None:
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        data = {"username": username, "password": password}
        if token:
            data["csrf_token"] = token.group(1)
        response = client.post("/login", data=data)
        assert response.status_code == 302, (username, response.get_data(as_text=True)[:500])
    return client


def csrf_of(client: FlaskClient) -> str:
    """Return a CSRF token valid for the client's session."""
    page = client.get("/").get_data(as_text=True)  # every page's language switch has one
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token on the home page"
    return match.group(1)


def department_of(session: Session, username: str | None) -> int | None:
    """Return the department id of a user (None for office staff and anonymous)."""
    if username is None:
        return None
    user = session.execute(select(User).where(User.username == username)).scalar()
    if user is None:
        return None
    return department_id_for(user, session.execute(select(Department.assessment_id)).scalar() or 0)
