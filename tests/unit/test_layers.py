"""The package's architecture, checked: a strict layer order, no import cycles, no imports hidden in
functions to dodge either, and a URL-building application that never loads Pillow."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.support.paths import REPO

PACKAGE = REPO / "sidecar"

#: Lowest first. A module may import from its own layer's package and from lower layers only.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("sidecar._version", "sidecar.errors", "sidecar.log", "sidecar.resources"),
    ("sidecar.url",),
    ("sidecar.observe",),
    ("sidecar.config",),
    ("sidecar.builder",),
    ("sidecar.sources", "sidecar.transform"),
    ("sidecar.cache",),
    ("sidecar.app",),
    ("sidecar.server",),
    ("sidecar.render",),
    ("sidecar.runner",),
    ("sidecar.cli", "sidecar.__main__", "sidecar"),
)
#: Modules whose functions may import sidecar modules lazily, and why (never to dodge a cycle: the
#: order above still applies to those imports).
LAZY = {
    "sidecar.cli": "each command imports only what it runs, so `resize-sidecar url` starts in milliseconds",
    "sidecar.sources": "aiobotocore and aiohttp are imported only when a remote source is configured",
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path) -> list[tuple[str, int, bool]]:
    """(imported sidecar module, line, at module level) for every import of `path`'s package."""
    tree = ast.parse(path.read_text(), str(path))
    nested = {id(inner) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              for inner in ast.walk(node)}
    nested |= {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node.test)
               for inner in ast.walk(node)}
    found: list[tuple[str, int, bool]] = []
    modules = {module_name(p, root) for p in root.rglob("*.py")}
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n for n in names if n in modules] or [node.module]
            if len(names) > 1:  # `from pkg import module`: the module is what is imported
                names = names[1:]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import (the package uses absolute imports)")
        for name in names:
            if name == root.name or name.startswith(root.name + "."):
                found.append((name, node.lineno, id(node) not in nested))
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING" or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def layer_of(name: str, layers: tuple[tuple[str, ...], ...]) -> int:
    best = (-1, -1)
    for index, prefixes in enumerate(layers):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best[1]:
                best = (index, len(prefix))
    if best[0] < 0:
        raise AssertionError(f"{name} is in no layer: add it to LAYERS")
    return best[0]


def problems(root: Path, layers: tuple[tuple[str, ...], ...] = LAYERS,
             lazy: dict[str, str] | None = None) -> list[str]:
    """Every import against the order, every hidden import and every cycle under `root`."""
    lazy = LAZY if lazy is None else lazy
    found: list[str] = []
    graph: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        if path.name.startswith("_") and path.name not in ("__init__.py", "__main__.py", "_version.py"):
            continue  # build scripts and compiled-module shims
        name = module_name(path, root)
        graph.setdefault(name, set())
        for target, line, at_top in imports(path, root):
            where = f"{name}:{line} imports {target}"
            if not at_top and name not in lazy:
                found.append(f"{where} inside a function or TYPE_CHECKING")
            if name != root.name and layer_of(target, layers) > layer_of(name, layers):
                found.append(f"{where}, a higher layer")
            if at_top and target != name:
                graph[name].add(target)
    found += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component) + [sorted(component)[0]])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_the_package_keeps_its_layers() -> None:
    assert problems(PACKAGE) == []


def test_a_cycle_or_an_upward_import_is_caught(tmp_path: Path) -> None:
    root = tmp_path / "sidecar"
    (root / "url").mkdir(parents=True)
    (root / "app").mkdir()
    for init in ("__init__.py", "url/__init__.py", "app/__init__.py"):
        (root / init).write_text("")
    (root / "url" / "a.py").write_text("from sidecar.url import b\n")
    (root / "url" / "b.py").write_text("from sidecar.url.a import x\n")
    (root / "url" / "c.py").write_text("import sidecar.app.d\n")
    (root / "app" / "d.py").write_text("def f():\n    from sidecar.url import c\n")
    layers = (("sidecar.url",), ("sidecar.app",), ("sidecar",))
    found = problems(root, layers, lazy={})
    assert "import cycle: sidecar.url.a -> sidecar.url.b -> sidecar.url.a" in found
    assert "sidecar.url.c:1 imports sidecar.app.d, a higher layer" in found
    assert "sidecar.app.d:2 imports sidecar.url.c inside a function or TYPE_CHECKING" in found
    assert len(found) == 3


