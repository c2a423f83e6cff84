"""No import cycle in cli/, engine/ and kernels/, counting imports inside functions
(docs/internals.md, Layers), and the layers point one way: cli -> engine -> kernels."""

import textwrap

from tests.import_graph import all_imports, cycles, graph

LAYER = {"cli": 0, "engine": 1, "kernels": 2}


def _write(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_the_graph_sees_function_level_cycles_and_skips_type_checking(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from . import b\n",
        "pkg/b.py": "def f():\n    from .c import g\n    return g\n",
        "pkg/c.py": "import pkg.a\n",
        "pkg/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .e import x\n",
        "pkg/e.py": "from .d import y\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/f.py": "from ..a import z\n",
    })
    imps = all_imports(tmp_path, packages=("pkg",))
    assert cycles(graph(imps)) == [["pkg.a", "pkg.b", "pkg.c"]]
    lazy = [(i.source, i.target) for i in imps if i.function_level]
    assert lazy == [("pkg.b", "pkg.c")]
    assert ("pkg.sub.f", "pkg.a") in {(i.source, i.target) for i in imps}  # relative imports resolve
    libs = {(i.source, i.target) for i in all_imports(tmp_path, packages=("pkg",), libraries=True) if not i.internal}
    assert libs == {("pkg.d", "typing")}


def test_no_import_cycle():
    found = cycles(graph(all_imports()))
    assert found == [], f"import cycles: {found}"


def test_imports_point_down_the_layers():
    up = [f"{i.source}:{i.line} imports {i.target}" for i in all_imports()
          if LAYER[i.target.split(".")[0]] < LAYER[i.source.split(".")[0]]]
    assert up == []


def says_why(lines: list[str], line: int) -> bool:
    """`# lazy: why` on the import's line, or above the run of imports it is part of
    (one comment for a group of imports from one lazy library)."""
    k = line - 1
    while True:
        if "# lazy:" in lines[k]:
            return True
        k -= 1
        if k < 0 or not lines[k].strip().startswith(("import ", "from ", "# lazy:")):
            return False


def test_the_lazy_rule_reads_groups_and_lines(tmp_path):
    lines = ["def f():", "    # lazy: pandas, 0.5 s", "    import pandas", "    from pandas import x",
             "    y = 1", "    import json", "    import os  # lazy: why not"]
    assert says_why(lines, 3) and says_why(lines, 4) and says_why(lines, 7)
    assert not says_why(lines, 6)


def test_a_function_level_import_says_why_it_is_lazy():
    """In every module of cli/, engine/ and kernels/, an import stays inside a function
    only to keep start-up fast (or to reach an optional library), and says so: `# lazy:
    why` on its line or above its group of imports (issue 12 item 5)."""
    from tests.import_graph import module_files

    files = module_files()
    silent = []
    for imp in all_imports(libraries=True):
        if not imp.function_level:
            continue
        lines = files[imp.source].read_text().splitlines()
        if not says_why(lines, imp.line):
            silent.append(f"{imp.source}:{imp.line}: {lines[imp.line - 1].strip()}")
    assert silent == []
