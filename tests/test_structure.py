"""The tree's architecture, checked from the source: lit_cert's modules import each other without a
circle, and no module imports another's private names (issue #37).

The import graph counts every ``import`` / ``from ... import`` of a ``lit_cert`` module, at the
top of a file *and* inside functions: a function-level import that closes a circle hides the
circle from Python's loader, not from the design (``backsub`` and ``windows`` each knew the
other's layer rules until the walker took one rule per layer for both coefficient forms).
The checks are tried first on a small package written for the purpose, so a checker that
found nothing because it read nothing would fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules(package: Path) -> dict[str, Path]:
    out = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, prefix: str):
    """(module imported, names imported) of every import of ``prefix`` modules in the file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == prefix:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == prefix:
                    yield alias.name, []


def import_graph(package: Path) -> dict[str, set[str]]:
    """{module: the package's modules it imports}; ``from pkg.a import b`` counts module
    ``pkg.a.b`` when that is a module, else ``pkg.a``."""
    mods = _modules(package)

    def resolve(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for target, names in _imports(path, package.name):
            for t in [resolve(f"{target}.{n}") for n in names] or [resolve(target)]:
                if t and t != mod:
                    graph[mod].add(t)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def private_imports(package: Path) -> list[tuple[str, str, str]]:
    """(importer, module, name) for every ``_name`` imported from another module of the package."""
    out = []
    for mod, path in _modules(package).items():
        for target, names in _imports(path, package.name):
            out += [(mod, target, n) for n in names if n.startswith("_") and not n.startswith("__")]
    return out


def test_the_checks_find_a_circle_and_a_private_import(tmp_path):
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from toy.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from toy.c import _helper\n")
    (pkg / "c.py").write_text("import toy.a\n_helper = 1\n")
    (pkg / "d.py").write_text("from toy import c\n")
    graph = import_graph(pkg)
    assert graph["toy.d"] == {"toy.c"}
    assert circles(graph) == [["toy.a", "toy.c", "toy.sub.b"]]
    assert private_imports(pkg) == [("toy.sub.b", "toy.c", "_helper")]


def test_lit_cert_has_no_import_circle():
    graph = import_graph(ROOT / "lit_cert")
    assert len(graph) > 100 and sum(map(len, graph.values())) > 200  # the whole package was read
    assert circles(graph) == []


def test_no_module_imports_another_modules_private_names():
    assert private_imports(ROOT / "lit_cert") == []


def test_each_layer_rule_lives_in_the_walker_only():
    """The windowed rows have no back-steps of their own: windows.py defines the window plan and
    the coefficient form, and imports nothing from the walker."""
    windows = ROOT / "lit_cert" / "bounds" / "windows.py"
    imported = {t for t, _ in _imports(windows, "lit_cert")}
    assert "lit_cert.bounds.backsub" not in imported
    defined = {n.name for n in ast.parse(windows.read_text()).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert "Windows" in defined and not defined & {"window_lower", "_back_bn", "_back_conv", "relu_backward"}
