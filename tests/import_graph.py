"""The import graph of foldgate's own packages, read from the source (AST), not by
importing it: every `import` and `from ... import` counts, at module level or inside a
function (a call-time import closes a cycle as surely as a top-level one, only later).
Imports under `if TYPE_CHECKING:` are left out: they never run.

Run as a script to print the graph's cycles and function-level imports:
    python tests/import_graph.py
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cli", "engine", "kernels")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module, dotted
    line: int
    function_level: bool  # inside a def (runs at call time)
    comment: str  # the source line, for the lazy-import rule
    internal: bool = True  # one of PACKAGES' modules (else a library: numpy, torch, ...)


def module_files(root: Path = ROOT, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under `packages`."""
    out = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(module: str, is_pkg: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    is_pkg = path.name == "__init__.py"
    found: list[Import] = []

    def known(name: str) -> str | None:
        """The longest prefix of `name` that is one of our modules."""
        parts = name.split(".")
        while parts:
            cand = ".".join(parts)
            if cand in modules:
                return cand
            parts.pop()
        return None

    def add(target: str | None, node: ast.stmt, in_def: bool, external: str | None = None) -> None:
        if target and target != module:
            found.append(Import(module, target, node.lineno, in_def, lines[node.lineno - 1]))
        elif target is None and external and external.split(".")[0] not in PACKAGES:
            found.append(Import(module, external, node.lineno, in_def, lines[node.lineno - 1], internal=False))

    def visit(node: ast.AST, in_def: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:
                    visit_stmt(sub, in_def)
                continue
            visit_stmt(child, in_def)

    def visit_stmt(child: ast.AST, in_def: bool) -> None:
        if isinstance(child, ast.Import):
            for alias in child.names:
                add(known(alias.name), child, in_def, external=alias.name)
        elif isinstance(child, ast.ImportFrom):
            base = _resolve(module, is_pkg, child.level, child.module)
            for alias in child.names:
                sub = f"{base}.{alias.name}" if base else alias.name
                # `from pkg import submodule` imports the submodule; `from m import name` imports m
                add(sub if sub in modules else known(base), child, in_def,
                    external=None if child.level else child.module)
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            visit(child, True)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for sub in child.orelse:
                visit_stmt(sub, in_def)
        else:
            visit(child, in_def)

    visit(ast.parse(text, filename=str(path)), False)
    return found


def all_imports(root: Path = ROOT, packages=PACKAGES, *, libraries: bool = False) -> list[Import]:
    """Every import of one of our modules by another, once per statement and target;
    with `libraries`, imports of everything else too (stdlib and third-party)."""
    modules = module_files(root, packages)
    out = {}
    for name, path in modules.items():
        for imp in imports_of(name, path, modules):
            if not (imp.internal or libraries):
                continue
            out.setdefault((imp.source, imp.target, imp.line), imp)
    return list(out.values())


def graph(imports: list[Import]) -> dict[str, set[str]]:
    g: dict[str, set[str]] = {}
    for imp in imports:
        g.setdefault(imp.source, set()).add(imp.target)
        g.setdefault(imp.target, set())
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each
    sorted; a component is every module that some cycle runs through."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    # the recursion runs as deep as the longest import chain; the old limit is put back,
    # since other tests depend on it (the Alpaca client's "nested too deep" pages)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(10_000, limit))
    try:
        for v in sorted(g):
            if v not in index:
                strongconnect(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(out)


if __name__ == "__main__":
    imps = all_imports()
    for comp in cycles(graph(imps)):
        print("cycle:", " <-> ".join(comp))
    for imp in imps:
        if imp.function_level:
            print(f"{imp.source}:{imp.line}: {imp.comment.strip()}")
