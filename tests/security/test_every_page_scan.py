"""Finding 11.13: the home page showed `<built-in method items of dict object …>`.

Every GET page of the portal (from the URL map, with ids of the demo data) is rendered for every
role on both shapes of the demo data, and the HTML is scanned for what a person must never see:
a Python repr, a traceback, unrendered template syntax, a bare `None` in a cell, and English
words on a Chinese page outside a short allow-list.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import BACKENDS
from tests.security.conftest import DEMO_PASSWORD, DEMO_ROLES, Demo
from tests.security.portal_walk import department_of, methods, portal_rules, real_paths, sign_in
from workflow.models import User

LEAKS = ("<built-in", " object at 0x", "Traceback")
# Unrendered template syntax, looked for in the visible text (a raw JSON payload shown in
# <code> legitimately ends in "}}").
TEMPLATE_SYNTAX = ("{{", "{%", "%}", "}}")
NONE_CELL = re.compile(r"<t[dh][^>]*>\s*None\s*</t[dh]>|>\s*None\s*<")
WORD = re.compile(r"(?<![\w./@-])[A-Za-z]{2,}(?![\w@/-])")
# English a Chinese page may show: the language switch, file formats and technical names that
# are the same in Chinese documents, and the Word notice's label.
ALLOWED_WORDS = {
    "English",
    "API",
    "Office",
    "PDF",
    "pdf",
    "CSV",
    "JSON",
    "Lines",
    "JSONL",
    "YAML",
    "SHA",
    "Word",
    "docx",
    "Excel",
    "WPS",
    "UTF",
    "ID",
    "MB",
    "KB",
    "GB",
}


class _Text(HTMLParser):
    """Collect the text a person sees: element text plus title/placeholder/aria-label."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "code"):
            self._skip += 1
        for name, value in attrs:
            if name in ("title", "placeholder", "aria-label", "alt") and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "code") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """Return the visible text of a page."""
    parser = _Text()
    parser.feed(html)
    return "\n".join(parser.parts)


def problems_of(html: str, data_words: set[str]) -> list[str]:
    """Return what is wrong on a Chinese page."""
    shown = visible_text(html)
    found = [f"leak {leak!r}" for leak in LEAKS if leak in html]
    found += [f"template syntax {mark!r}" for mark in TEMPLATE_SYNTAX if mark in shown]
    found += [f"bare None: {m.group(0)!r}" for m in NONE_CELL.finditer(html)]
    allowed = ALLOWED_WORDS | data_words | {"None"}  # a bare None is reported above
    english = {w for w in WORD.findall(shown) if w not in allowed}
    if english:
        found.append(f"English words: {sorted(english)}")
    return found


def test_no_python_repr_none_template_syntax_or_english_on_any_page_for_any_role(
    demo: Demo, session: Session
) -> None:
    app = demo.app
    # User names are data (shown as actors and in the user list), not English words.
    data_words = set(session.execute(select(User.username)).scalars())
    failures: list[str] = []
    seen: dict[str, set[int]] = {}
    guessed: set[str] = set()
    for role, username in DEMO_ROLES.items():
        client = sign_in(app, username, DEMO_PASSWORD)
        anonymous = username is None
        department_id = department_of(session, username)
        for rule in portal_rules(app):
            if "GET" not in methods(rule):
                continue
            for path, real in real_paths(session, rule, department_id):
                if not real:  # a parameter no table names (a code): walked, not required to open
                    guessed.add(rule.endpoint)
                response = client.get(path)
                raw = response.get_data()  # a streamed download runs to its end, as served
                response.close()
                if not anonymous:  # an anonymous visitor's 302 is the sign-in page
                    seen.setdefault(rule.endpoint, set()).add(response.status_code)
                if response.status_code >= 500:
                    failures.append(f"{role} {path}: {response.status_code}")
                if response.status_code != 200 or response.mimetype != "text/html":
                    continue
                for problem in problems_of(raw.decode("utf-8"), data_words):
                    failures.append(f"[{demo.shape}] {role} {path}: {problem}")
    # A page that only redirects (to the current year's page) counts as reached.
    unseen = sorted(
        e for e, codes in seen.items() if not codes & {200, 301, 302, 303, 307} and e not in guessed
    )
    assert not failures, "\n".join(failures[:60])
    # Every page is reached by someone on the complete demo data (otherwise the scan proves
    # nothing); notices exist only once every item is scored.
    if demo.shape == "complete":
        assert not unseen, f"pages no role could open on the demo data: {unseen}"
    # The same pages in English show no Chinese interface text (one database is enough: the
    # words do not depend on it), on this demo rather than one built again for it.
    if demo.shape == "complete" and session.get_bind().dialect.name == BACKENDS[-1]:
        from tests.security.test_english_page_scan import english_failures  # it imports us

        english = english_failures(demo, session)
        assert not english, f"{len(english)} English pages:\n" + "\n".join(english)


def test_the_scan_catches_a_python_repr_in_a_cell() -> None:
    page = "<table><tr><td><built-in method items of dict object at 0x7f></td></tr></table>"
    assert problems_of(page, set())
    assert problems_of("<td>None</td>", set()) == ["bare None: '<td>None</td>'"]
    assert problems_of("<p>Not Found</p>", set()) == ["English words: ['Found', 'Not']"]
    assert problems_of("<p>材料.pdf 已上传，共 3 份</p>", set()) == []
