"""Text colours of the portal's stylesheet reach WCAG 2.0 AA contrast (4.5:1; GB/T 37668-2019).

The state badges, flash messages, quota cells and muted text are coloured pairs in
static/css/app.css; a browser audit (axe-core, docs/web.md) found several below 4.5:1 (the
green of 已评分 on its cell, the amber of 待评分, the grey of table headers). Here the colours an
element gets are worked out from the stylesheet itself — its :root variables and the rules of
plain selectors (`.a.b`, `td.cell.state-x`, `table.grid th`) in source order and specificity —
so a colour changed later is checked again without a browser.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[2] / "static" / "css" / "app.css"
HEX = re.compile(r"#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b")
COMPOUND = re.compile(r"^([a-z]*)((?:\.[\w-]+)*)$")

Rule = tuple[list[tuple[str, set[str]]], dict[str, str], tuple[int, int], int]


def top_level_rules(css: str) -> list[tuple[str, str]]:
    """Return (selectors, declarations) of the rules outside @media blocks."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    rules: list[tuple[str, str]] = []
    depth, start, head = 0, 0, ""
    for i, ch in enumerate(css):
        if ch == "{":
            if depth == 0:
                head, start = css[start:i].strip(), i + 1
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                if not head.startswith("@"):
                    rules.append((head, css[start:i]))
                start = i + 1
    return rules


def parse_rules(css: str) -> tuple[dict[str, str], list[Rule]]:
    """Return the :root variables and the rules made of plain compound selectors."""
    variables: dict[str, str] = {}
    rules: list[Rule] = []
    for order, (selectors, body) in enumerate(top_level_rules(css)):
        declarations = {}
        for part in body.split(";"):
            if ":" in part:
                name, value = part.split(":", 1)
                declarations[name.strip()] = value.strip()
        if selectors == ":root":
            variables.update({k: v for k, v in declarations.items() if k.startswith("--")})
            continue
        for selector in selectors.split(","):
            compounds = []
            for word in selector.split():
                match = COMPOUND.match(word)
                if not match or not (match[1] or match[2]):
                    break  # a pseudo-class, an attribute or a combinator: not a plain selector
                compounds.append((match[1], set(match[2].split(".")[1:])))
            else:
                tags = sum(1 for tag, _ in compounds if tag)
                classes = sum(len(c) for _, c in compounds)
                rules.append((compounds, declarations, (classes, tags), order))
    return variables, rules


def _matches(compound: tuple[str, set[str]], element: tuple[str, set[str]]) -> bool:
    return (not compound[0] or compound[0] == element[0]) and compound[1] <= element[1]


def _applies(selector: list[tuple[str, set[str]]], path: list[tuple[str, set[str]]]) -> bool:
    if not selector or not _matches(selector[-1], path[-1]):
        return False
    wanted = selector[:-1]
    for element in reversed(path[:-1]):  # the rest match ancestors, in order
        if wanted and _matches(wanted[-1], element):
            wanted = wanted[:-1]
    return not wanted


def element(spec: str) -> tuple[str, set[str]]:
    match = COMPOUND.match(spec)
    assert match, spec
    return match[1], set(match[2].split(".")[1:])


def colours(css: str, path: str) -> tuple[str, str]:
    """Return (text colour, background) of the last element of `path` ("body .panel span.x"):
    its own or inherited colour, and the background of the nearest element that has one."""
    variables, rules = parse_rules(css)

    def value(elements: list[tuple[str, set[str]]], names: tuple[str, ...]) -> str | None:
        found = [
            (specificity, order, declarations[name])
            for selector, declarations, specificity, order in rules
            for name in names
            if name in declarations and _applies(selector, elements)
        ]
        if not found:
            return None
        text = max(found)[2]
        text = re.sub(r"var\((--[\w-]+)\)", lambda m: variables[m[1]], text)
        colour = HEX.search(text)
        return colour[0].lower() if colour else None

    elements = [element(spec) for spec in path.split()]
    foreground = background = None
    for depth in range(len(elements), 0, -1):
        foreground = foreground or value(elements[:depth], ("color",))
        background = background or value(elements[:depth], ("background", "background-color"))
    assert foreground and background, f"no colours found for {path}"
    return foreground, background


def luminance(colour: str) -> float:
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """The WCAG 2.0 contrast ratio of two colours."""
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


STATES = ("draft", "submitted", "reviewed", "verified", "scored", "returned", "appealed")
FLASHES = ("success", "info", "error", "warning")
QUOTAS = ("met", "late", "short", "missing")
# Where text sits on a coloured ground: the element, inside what (the page's grey, a panel).
PANEL = "body div.panel"
PAIRS = [
    *(f"{PANEL} span.state.state-{s}" for s in STATES),  # the state badges
    *(f"{PANEL} table.grid td.cell.state-{s}" for s in STATES),  # the progress matrix
    *(f"{PANEL} div.flash.flash-{f}" for f in FLASHES),
    *(f"{PANEL} span.quota.quota-{q}" for q in QUOTAS),
    *(f"{PANEL} table.grid td.cell.quota.quota-{q}" for q in QUOTAS),
    f"{PANEL} table.grid th",  # every table's header row
    f"{PANEL} span.muted",
    f"{PANEL} table.grid th span.muted",
    "body span.muted",
    "body footer.site-footer",
    f"{PANEL} span.tag",
    f"{PANEL} span.tag.tag-late",
    f"{PANEL} span.count",
    f"{PANEL} span.count.overdue",
    "body header.site-header span.badge",
    f"{PANEL} button.primary",
    f"{PANEL} button.danger",
    f"{PANEL} div.notice.notice-warn",
    "body div.publication-banner",
    f"{PANEL} p.warn-text",
    f"{PANEL} p.error-text",
    "body header.site-header a",
]


@pytest.mark.parametrize("path", PAIRS)
def test_text_colours_reach_aa_contrast(path: str) -> None:
    foreground, background = colours(CSS.read_text("utf-8"), path)
    ratio = contrast(foreground, background)
    assert ratio >= 4.5, f"{path}: {foreground} on {background} is {ratio:.2f}:1"


def test_every_coloured_state_flash_and_quota_class_is_checked() -> None:
    """A state, message kind or quota colour added to the stylesheet is checked above too."""
    css = CSS.read_text("utf-8")
    styled = set(re.findall(r"\.((?:state|flash|quota)-[a-z]+)\b", css))
    checked = {f"state-{s}" for s in STATES} | {f"flash-{f}" for f in FLASHES}
    checked |= {f"quota-{q}" for q in QUOTAS}
    assert styled <= checked, f"not checked: {sorted(styled - checked)}"


def test_the_cascade_and_the_ratio() -> None:
    css = """:root { --grey: #777777; }
    .state { background: #ffffff; }
    .state-x { color: var(--grey); }
    td.cell.state-x { background: #000000; }
    @media print { .state-x { color: #ffffff; } }
    .box .state-x:hover { color: #ff0000; }"""
    assert colours(css, "div.box span.state.state-x") == ("#777777", "#ffffff")
    assert colours(css, "div.box td.cell.state-x") == ("#777777", "#000000")
    assert round(contrast("#777777", "#ffffff"), 2) == 4.48  # the classic just-below-AA grey
    assert round(contrast("#000", "#fff"), 1) == 21.0
