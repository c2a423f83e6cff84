"""No import cycle in cli/, engine/ and kernels/, counting imports inside functions
(docs/internals.md, Layers), and the layers point one way: cli -> engine -> kernels."""

import textwrap

import pytest

from tests.import_graph import all_imports, cycles, graph

# engine/report/jsonio.py <-> schema.py: the report module's own split fixes it (issue
# 12 item 3); until it lands the pair is known, and the test below says when it is gone.
KNOWN = {frozenset({"engine.report.jsonio", "engine.report.schema"})}

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


def test_no_import_cycle():
    found = [c for c in cycles(graph(all_imports())) if frozenset(c) not in KNOWN]
    assert found == [], f"import cycles: {found}"


@pytest.mark.xfail(strict=True, reason="engine/report/jsonio <-> schema: the report split removes it; "
                                       "when this passes, drop the xfail and KNOWN")
def test_report_jsonio_schema_cycle_is_gone():
    assert not any(frozenset(c) in KNOWN for c in cycles(graph(all_imports())))


def test_imports_point_down_the_layers():
    up = [f"{i.source}:{i.line} imports {i.target}" for i in all_imports()
          if LAYER[i.target.split(".")[0]] < LAYER[i.source.split(".")[0]]]
    assert up == []
