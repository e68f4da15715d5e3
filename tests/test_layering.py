"""The import graph of ml/, orchestration/ and data_quality/ has no circles and respects the layers.

The graph is read from the source with ``ast`` (nothing is imported), so a circle hidden in
a function-level import counts too; imports under ``if TYPE_CHECKING:`` do not, as they
never run. The layers are the design card's (docs/ARCHITECTURE.md): ``ml/`` and
``data_quality/`` are used without Dagster, and the stage libraries never reach back
into the Dagster assets that call them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("ml", "orchestration", "data_quality")
# Stage libraries: plain modules the Dagster wiring calls, never the other way round.
STAGE_LIBRARIES = (
    "ml",
    "data_quality",
    "orchestration.io",
    "orchestration.ingest",
    "orchestration.publish",
    "orchestration.demo",
    "orchestration.report",
)
DAGSTER_WIRING = ("orchestration.assets", "orchestration.definitions")
# Usable and testable without Dagster or the orchestration (docs/ARCHITECTURE.md, "Folders").
WITHOUT_DAGSTER = ("ml", "data_quality")


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """(imported name, line) of every import that runs, at any depth of the module."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".")
                package = package if is_package else package[:-1]
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno  # a submodule, or a name in base
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path = REPO) -> dict[str, dict[str, int]]:
    """Module -> {imported module: line}; project modules are resolved, others kept as named."""
    files = {
        _module_name(p, root): p
        for package in PACKAGES
        for p in sorted((root / package).rglob("*.py"))
    }
    graph: dict[str, dict[str, int]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges = graph.setdefault(module, {})
        for name, line in _imports(tree, module, path.name == "__init__.py"):
            # `from a.b import c`: the module a.b.c if there is one, else a.b.
            target = name if name in files else name.rpartition(".")[0]
            if not (target in files or name.split(".")[0] in PACKAGES):
                target = name  # a third-party module: `import x.y` or `from x import y`
            if target != module:
                edges.setdefault(target, line)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _describe(graph: dict[str, dict[str, int]], component: list[str]) -> str:
    """One shortest circle through the component's first module, as module:line of each import."""
    members, start = set(component), component[0]
    came_from: dict[str, str] = {}
    queue = [start]
    while queue and start not in came_from:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w in members and w not in came_from:
                came_from[w] = v
                queue.append(w)
    path = [start]
    while len(path) == 1 or path[-1] != start:
        path.append(came_from[path[-1]])
    path.reverse()
    steps = [f"{a}:{graph[a][b]}" for a, b in zip(path, path[1:], strict=False)]
    return " -> ".join([*steps, start]) + f"  [{len(component)} modules in the knot]"


def test_the_graph_is_read():
    graph = import_graph()
    # a few known edges, so an empty or mis-resolved graph cannot pass the tests below
    assert "ml.clustering.base" in graph["ml.clustering.centroid"]
    assert "ml.segmentation.segmenter" in graph["ml.segmentation.selection"]
    assert "orchestration.demo" in graph["orchestration.assets.ingest"]
    assert "dagster" in graph["orchestration.definitions"]


def test_no_import_circles():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import circles:\n" + "\n".join(_describe(graph, c) for c in found)


def _imports_between(sources: tuple[str, ...], targets: tuple[str, ...]) -> list[str]:
    """Every import from a module under ``sources`` of a module under ``targets``."""
    return [
        f"{module} -> {target} (line {line})"
        for module, edges in sorted(import_graph().items())
        if _within(module, sources)
        for target, line in sorted(edges.items())
        if _within(target, targets)
    ]


def test_stage_libraries_never_import_the_dagster_wiring():
    bad = _imports_between(STAGE_LIBRARIES, DAGSTER_WIRING)
    assert not bad, "stage libraries importing the Dagster assets:\n" + "\n".join(bad)


def test_ml_and_data_quality_need_neither_dagster_nor_the_orchestration():
    bad = _imports_between(WITHOUT_DAGSTER, ("orchestration", "dagster", "dagster_dbt"))
    assert not bad, "imports that tie ml/ or data_quality/ to Dagster:\n" + "\n".join(bad)
