"""Static accessibility checks on a rendered page (GB/T 37668-2019, aligned with WCAG 2.0 AA).

The every-page scan (test_every_page_scan.py) hands every HTML page it renders for every demo
role to `a11y_problems`; no browser is started. What is checked is what the HTML alone decides
and a screen-reader or keyboard user depends on:

- the page says its language (`<html lang>`), has exactly one main landmark and one `<h1>`
  (its title), and starts with a skip link to the main landmark (the first focusable element,
  `href="#<id of main>"`);
- every form control a person fills in (input other than hidden, select, textarea) has a name:
  a `<label for>`, a wrapping `<label>`, `aria-label`, `aria-labelledby` or `title`;
- every button and link has a name (its text, an image's alt, `aria-label`, `aria-labelledby`
  or `title`); every `<img>` has `alt`, every `<iframe>` a title, every `<svg role="img">` a name;
- every table has header cells (a one-cell table holding a message excepted) and no header cell
  is empty;
- no positive `tabindex`, nothing focusable inside `aria-hidden="true"`, ids unique, and every
  id named by `for`, `aria-labelledby`, `aria-describedby` or `aria-controls` exists;
- an error message box (`.flash-error`) is announced (`role="alert"`).

Colour contrast is a property of the stylesheet: tests/unit/test_contrast.py checks it. The full
audit in a browser (axe-core) is described in docs/web.md ("Accessibility").
"""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
# An open element of these closes when another of the listed tags starts in its parent.
IMPLIED_END = {
    "p": {"p", "div", "table", "ul", "ol", "form", "section", "fieldset", "h1", "h2", "h3"},
    "li": {"li"},
    "option": {"option"},
    "td": {"td", "th", "tr"},
    "th": {"td", "th", "tr"},
    "tr": {"tr"},
}
FILLED_IN = {"select", "textarea"}
NOT_FILLED_IN = {"hidden", "submit", "reset", "button", "image"}
REFERENCES = ("for", "aria-labelledby", "aria-describedby", "aria-controls")


class Node:
    """An element of the parsed page."""

    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag = tag
        self.attrs = attrs
        self.parent = parent
        self.children: list[Node | str] = []

    def walk(self) -> list[Node]:
        """Return this element and every element below it, in document order."""
        found = [self]
        for child in self.children:
            if isinstance(child, Node):
                found += child.walk()
        return found

    def ancestors(self) -> list[Node]:
        """Return the elements this one is inside, nearest first."""
        found: list[Node] = []
        node = self.parent
        while node is not None:
            found.append(node)
            node = node.parent
        return found

    def text(self) -> str:
        """Return the text a screen reader reads for the element's content."""
        parts: list[str] = []
        for child in self.children:
            if isinstance(child, str):
                parts.append(child)
            elif child.attrs.get("aria-hidden") != "true":
                parts.append(child.attrs.get("alt", "") if child.tag == "img" else child.text())
        return " ".join(p.strip() for p in parts if p.strip())

    def describe(self) -> str:
        """Return a short form of the start tag, to say which element a problem is about."""
        keys = ("id", "name", "type", "class", "href", "action")
        shown = " ".join(f'{k}="{self.attrs[k]}"' for k in keys if self.attrs.get(k))
        return f"<{self.tag}{' ' + shown if shown else ''}>"


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.open: list[Node] = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        while self.open[-1].tag in IMPLIED_END and tag in IMPLIED_END[self.open[-1].tag]:
            self.open.pop()
        node = Node(tag, {k: v or "" for k, v in attrs}, self.open[-1])
        self.open[-1].children.append(node)
        if tag not in VOID:
            self.open.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.open[-1].tag == tag:
            self.open.pop()

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.open) - 1, 0, -1):
            if self.open[depth].tag == tag:
                del self.open[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.open[-1].children.append(data)


def parse(html: str) -> Node:
    """Return the page as a tree of elements."""
    tree = _Tree()
    tree.feed(html)
    tree.close()
    return tree.root


def _focusable(node: Node) -> bool:
    if "disabled" in node.attrs or node.attrs.get("tabindex", "").strip().startswith("-"):
        return False
    if node.tag == "a":
        return "href" in node.attrs
    if node.tag == "input":
        return node.attrs.get("type") != "hidden"
    return node.tag in ("button", "select", "textarea", "iframe") or "tabindex" in node.attrs


def _hidden(node: Node) -> bool:
    return any(
        a.attrs.get("aria-hidden") == "true" or "hidden" in a.attrs
        for a in [node, *node.ancestors()]
    )


def a11y_problems(html: str) -> list[str]:
    """Return what an assistive technology or a keyboard user would miss on the page."""
    root = parse(html)
    nodes = root.walk()[1:]
    by_id: dict[str, Node] = {}
    for node in nodes:
        by_id.setdefault(node.attrs.get("id", ""), node)

    def named_by_reference(node: Node) -> bool:
        ids = node.attrs.get("aria-labelledby", "").split()
        return any(i in by_id and by_id[i].text() for i in ids)

    def has_name(node: Node, *, own_text: bool) -> bool:
        return bool(
            (own_text and node.text())
            or node.attrs.get("aria-label", "").strip()
            or node.attrs.get("title", "").strip()
            or named_by_reference(node)
        )

    found: list[str] = []
    html_tags = [n for n in nodes if n.tag == "html"]
    if not html_tags or not html_tags[0].attrs.get("lang", "").strip():
        found.append("<html> has no lang")
    mains = [n for n in nodes if n.tag == "main" or n.attrs.get("role") == "main"]
    if len(mains) != 1:
        found.append(f"{len(mains)} main landmarks (one is needed)")
    headings = [n for n in nodes if n.tag == "h1"]
    if len(headings) != 1:
        found.append(f"{len(headings)} <h1> (the page's title, once)")
    focusable = [n for n in nodes if _focusable(n) and not _hidden(n)]
    main_id = mains[0].attrs.get("id") if mains else None
    first = focusable[0] if focusable else None
    if not (first and first.tag == "a" and main_id and first.attrs.get("href") == f"#{main_id}"):
        found.append("the first focusable element is not a skip link to the main landmark")
    labelled = {n.attrs["for"] for n in nodes if n.tag == "label" and n.attrs.get("for")}
    for node in nodes:
        tag, attrs = node.tag, node.attrs
        kind = attrs.get("type", "text").lower()
        if (tag == "input" and kind not in NOT_FILLED_IN) or tag in FILLED_IN:
            inside_label = any(a.tag == "label" for a in node.ancestors())
            by_for = attrs.get("id", "") in labelled
            if not (inside_label or by_for or has_name(node, own_text=False)):
                found.append(f"form field without a label: {node.describe()}")
        elif tag == "input" and kind == "button" and not attrs.get("value", "").strip():
            found.append(f"button without a name: {node.describe()}")
        elif tag == "input" and kind == "image" and not attrs.get("alt", "").strip():
            found.append(f"image button without alt: {node.describe()}")
        elif tag == "button" and not has_name(node, own_text=True):
            found.append(f"button without a name: {node.describe()}")
        elif tag == "a" and "href" in attrs and not has_name(node, own_text=True):
            found.append(f"link without a name: {node.describe()}")
        elif tag == "img" and "alt" not in attrs:
            found.append(f"image without alt: {node.describe()}")
        elif tag == "iframe" and not attrs.get("title", "").strip():
            found.append(f"frame without a title: {node.describe()}")
        elif tag == "svg" and attrs.get("role") == "img":
            titled = any(c.tag == "title" and c.text() for c in node.walk()[1:])
            if not (titled or has_name(node, own_text=False)):
                found.append(f"image (svg) without a name: {node.describe()}")
        elif tag == "table" and attrs.get("role") not in ("presentation", "none"):
            cells = [n for n in node.walk() if n.tag in ("td", "th")]
            if len(cells) > 1 and not any(c.tag == "th" for c in cells):
                found.append(f"table without header cells: {node.describe()}")
        elif tag == "th" and not has_name(node, own_text=True):
            found.append(f"empty table header cell in {node.parent and node.parent.describe()}")
        if "flash-error" in attrs.get("class", "").split() and attrs.get("role") != "alert":
            found.append(f"error message not announced (role=alert): {node.describe()}")
        tabindex = attrs.get("tabindex", "").strip()
        if tabindex.isdigit() and int(tabindex) > 0:
            found.append(f"positive tabindex: {node.describe()}")
        for name in REFERENCES:
            if name == "for" and tag != "label":
                continue
            for ref in attrs.get(name, "").split():
                if ref not in by_id:
                    found.append(f'{name}="{ref}" names no element: {node.describe()}')
    for node in nodes:
        if node.attrs.get("aria-hidden") == "true":
            inner = [n for n in node.walk() if _focusable(n)]
            if inner:
                found.append(f"focusable inside aria-hidden: {inner[0].describe()}")
    repeated = [i for i, n in Counter(n.attrs.get("id") for n in nodes).items() if i and n > 1]
    found += [f'id "{i}" is used more than once' for i in sorted(repeated)]
    return found
