"""The layering, read from the source: what may import what, and no import cycles.

Every `import` and `from … import` statement counts, at module level or inside a function (a
lazy import is still a dependency, and a lazy cycle still breaks when the order changes).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "analysis", "report_templates")
COMMON = "engine.common"


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def imported_names(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of everything a file imports: `from a.b import c` gives a.b.c."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}:{node.lineno}: relative import; the project imports absolutely")
    return names


def project_module(name: str) -> str | None:
    """The project module a dotted import name refers to (`engine.x.y.Name` -> `engine.x.y`), or None."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {project module it imports: line of the first such import}."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in MODULES.items():
        edges: dict[str, int] = {}
        for line, name in imported_names(path):
            target = project_module(name)
            if target is not None and target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def top_level_names(path: Path) -> set[str]:
    """What a module defines or imports at its top level (what `from module import name` can find)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.If, ast.Try)):
            names |= {alias.asname or alias.name for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom))
                      for alias in sub.names}
    return names


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_sees_lazy_imports():
    graph = import_graph()
    assert "engine.common.logschema" in graph["analysis.loading"]
    # engine.study.config imports engine.cli inside a function: still an edge
    assert "engine.cli" in graph["engine.study.config"]


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles (a module that imports, directly or not, one that imports it back): " + \
        "; ".join(" <-> ".join(component) for component in found)


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []


def test_analysis_imports_only_engine_common():
    leaks = [f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}"
             for module, edges in import_graph().items() if _inside(module, "analysis")
             for target, line in edges.items() if _inside(target, "engine") and not _inside(target, COMMON)]
    assert not leaks, "analysis may import only engine.common from engine:\n" + "\n".join(leaks)


def test_engine_common_stands_below_both():
    leaks = [f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}"
             for module, edges in import_graph().items() if _inside(module, COMMON)
             for target, line in edges.items() if not _inside(target, COMMON)]
    assert not leaks, "engine.common imports nothing else of the project:\n" + "\n".join(leaks)


def test_engine_never_imports_analysis():
    leaks = [f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}"
             for module, edges in import_graph().items() if _inside(module, "engine")
             for target, line in edges.items() if _inside(target, "analysis")]
    assert not leaks, "\n".join(leaks)


@pytest.mark.parametrize("heavy", ["torch", "transformers"])
def test_analysis_and_the_common_layer_import_no_model_library(heavy):
    leaks = [f"{path.relative_to(ROOT)}:{line} imports {name}" for module, path in MODULES.items()
             if _inside(module, "analysis") or (_inside(module, COMMON) and module != f"{COMMON}.int8")
             for line, name in imported_names(path) if name == heavy or name.startswith(heavy + ".")]
    assert not leaks, "\n".join(leaks)


def test_every_project_import_names_something_that_exists():
    """An import of a moved or deleted module fails here, not by luck: an editable install of another
    checkout would otherwise serve the old module from there."""
    files = [*MODULES.values(), *sorted((ROOT / "tests").glob("*.py")), *sorted((ROOT / "bench").glob("*.py"))]
    stale = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] not in PACKAGES:
                    continue
                if node.module not in MODULES:
                    stale.append(f"{path.relative_to(ROOT)}:{node.lineno}: no module {node.module}")
                    continue
                defined = top_level_names(MODULES[node.module])
                stale += [f"{path.relative_to(ROOT)}:{node.lineno}: {node.module} has no {alias.name}"
                          for alias in node.names if f"{node.module}.{alias.name}" not in MODULES
                          and alias.name not in defined and alias.name != "*"]
                continue
            else:
                continue
            stale += [f"{path.relative_to(ROOT)}:{node.lineno}: no module {name}" for name in wanted
                      if name.split(".")[0] in PACKAGES and name not in MODULES]
    assert not stale, "\n".join(stale)
