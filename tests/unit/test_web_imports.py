"""web/ without a circle: its modules import each other in one direction only.

The graph is read from the source (every `import` and `from … import`, inside functions too),
so a late import does not hide a cycle. Layers: `web.app` composes everything and nothing
imports it; the API, the portal and the CLI are faces that import `web.common`, `web.db`,
`web.errors`, … but never each other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FACES = ("web.api", "web.portal", "web.cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def web_import_graph() -> dict[str, set[str]]:
    """Return each module of web/ with the modules of web/ it imports."""
    paths = {_module_name(p): p for p in sorted((ROOT / "web").rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against the package
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                # `from pkg import module` depends on the module; `from mod import name` on mod.
                submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in paths]
                names = len(submodules) < len(node.names)
                targets = [*([base] if names else []), *submodules]
            graph[name].update(t for t in targets if t in paths and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _edges(graph: dict[str, set[str]]) -> Iterator[tuple[str, str]]:
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            yield source, target


def test_the_graph_is_read() -> None:
    graph = web_import_graph()
    assert "web.db" in graph["web.portal.items"]
    assert "web.common.ids" in graph["web.api.common"]


def test_no_cycle_among_web_modules() -> None:
    found = cycles(web_import_graph())
    assert not found, f"import cycles in web/: {found}"


def test_a_cycle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_faces_do_not_import_each_other() -> None:
    wrong = [
        f"{source} → {target}"
        for source, target in _edges(web_import_graph())
        for face in FACES
        if _in(source, face)
        for other in FACES
        if other != face and _in(target, other)
    ]
    assert not wrong, f"the API, the portal and the CLI share code through web.common: {wrong}"


def test_nothing_imports_the_app_and_shared_modules_import_no_face() -> None:
    graph = web_import_graph()
    importers_of_app = sorted(s for s, t in _edges(graph) if t == "web.app")
    assert not importers_of_app, f"web.app composes the app; nothing imports it: {importers_of_app}"
    wrong = [
        f"{s} → {t}"
        for s, t in _edges(graph)
        if not any(_in(s, face) for face in FACES)
        and s != "web.app"
        and any(_in(t, face) for face in FACES)
    ]
    assert not wrong, f"shared modules import no face: {wrong}"


def test_no_private_name_crosses_a_module() -> None:
    wrong = []
    for path in sorted((ROOT / "web").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("web"):
                wrong += [
                    f"{path.relative_to(ROOT)}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_")
                ]
    assert not wrong, f"private helpers stay in their module: {wrong}"
