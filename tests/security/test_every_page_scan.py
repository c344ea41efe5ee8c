"""Finding 11.13: the home page showed `<built-in method items of dict object …>`.

Every GET page of the portal (from the URL map, with ids of the demo data) is rendered for every
role on both shapes of the demo data, and the HTML is scanned for what a person must never see:
a Python repr, a traceback, unrendered template syntax, a bare `None` in a cell, and English
words on a Chinese page outside a short allow-list. The same pages are checked for what a
screen-reader or keyboard user would miss (tests/security/a11y_scan.py).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import BACKENDS
from tests.security.a11y_scan import a11y_problems
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
    # Accessibility depends on the templates, not the database: checked on one backend only.
    check_a11y = session.get_bind().dialect.name == BACKENDS[-1]
    a11y: dict[str, list[str]] = {}  # problem → the pages that have it
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
                html = raw.decode("utf-8")
                for problem in problems_of(html, data_words):
                    failures.append(f"[{demo.shape}] {role} {path}: {problem}")
                for problem in a11y_problems(html) if check_a11y else []:
                    pages = a11y.setdefault(problem, [])
                    if f"{role} {path}" not in pages:  # a problem of every row: one a page
                        pages.append(f"{role} {path}")
    # A page that only redirects (to the current year's page) counts as reached.
    unseen = sorted(
        e for e, codes in seen.items() if not codes & {200, 301, 302, 303, 307} and e not in guessed
    )
    assert not failures, "\n".join(failures[:60])
    assert not a11y, f"[{demo.shape}] accessibility, {len(a11y)} problems:\n" + "\n".join(
        f"{problem} ({len(pages)} pages, first {pages[0]})" for problem, pages in a11y.items()
    )
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


GOOD_PAGE = (
    '<!doctype html><html lang="zh-CN"><body><a href="#main">跳到主要内容</a>'
    '<header><nav><a href="/">首页</a><input type="checkbox" id="t" aria-label="菜单"'
    ' aria-controls="menu"><label for="t" aria-hidden="true">菜单</label><div id="menu"></div>'
    '</nav></header><main id="main" tabindex="-1"><h1>标题</h1>'
    '<form><input type="hidden" name="csrf_token" value="x">'
    '<label>用户名 <input name="username"></label><label for="pw">密码</label>'
    '<input id="pw" name="password" type="password"><select name="k" aria-label="类型">'
    "<option>甲</option></select>"
    '<table><tr><th>编号</th><th id="score">得分</th><th><span class="visually-hidden">操作</span>'
    '</th></tr><tr><td id="p1">4.1</td><td><input name="s" aria-labelledby="p1 score"></td>'
    "<td><button>保存</button></td></tr></table></form>"
    "<table><tr><td>尚未上传材料</td></tr></table>"
    '<a href="/x" title="下载"><img src="/i.png" alt=""></a><img src="/j.png" alt="图">'
    '<div class="flash flash-error" role="alert">出错了</div></main></body></html>'
)


def test_the_accessibility_scan_catches_what_a_screen_reader_or_keyboard_would_miss() -> None:
    assert a11y_problems(GOOD_PAGE) == []
    # (what the good page has, what replaces it, the problem reported)
    broken = [
        ('<html lang="zh-CN">', "<html>", "<html> has no lang"),
        ('<a href="#main">跳到主要内容</a>', "", "not a skip link"),
        ('<main id="main" tabindex="-1">', "<main>", "not a skip link"),
        ("</main>", "</main><main></main>", "2 main landmarks"),
        ("<label>用户名 <input", "用户名 <label></label><input", '<input name="username"'),
        ('<label for="pw">密码</label>', "密码", 'without a label: <input id="pw"'),
        (' aria-label="类型"', "", 'without a label: <select name="k">'),
        (' aria-labelledby="p1 score"', "", 'without a label: <input name="s">'),
        ('aria-labelledby="p1 score"', 'aria-labelledby="p2"', 'aria-labelledby="p2" names no'),
        ("<button>保存</button>", "<button></button>", "button without a name"),
        ('<a href="/">首页</a>', '<a href="/"></a>', 'link without a name: <a href="/">'),
        (' title="下载"><img src="/i.png" alt="">', "><img>", "image without alt: <img"),
        ('<span class="visually-hidden">操作</span>', "", "empty table header cell"),
        ("<th>编号</th>", '<th>编号</th><th id="score">', 'id "score" is used more than once'),
        ('class="flash flash-error" role="alert"', 'class="flash flash-error"', "role=alert"),
        ("<h1>标题</h1>", '<h1 tabindex="2">标题</h1>', "positive tabindex"),
        ('<div id="menu">', '<div id="menu" aria-hidden="true"><a href="/y">y</a>', "aria-hidden"),
        ("</main>", "<table><tr><td>编号</td><td>4.1</td></tr></table></main>", "header cells"),
        ("<h1>标题</h1>", "<h2>标题</h2>", "0 <h1>"),
        ("</main>", "<h1>又一个标题</h1></main>", "2 <h1>"),
    ]
    for old, new, expected in broken:
        assert old in GOOD_PAGE, old
        problems = a11y_problems(GOOD_PAGE.replace(old, new, 1))
        assert any(expected in p for p in problems), (old, new, problems)
