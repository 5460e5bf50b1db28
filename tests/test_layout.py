"""The package's layout, checked: imports point one way, the core never reaches up into the notebook
layer, no module outgrows a read, and the notebooks hold calls, not logic."""

import ast
import json
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "alexnet_book"
NOTEBOOKS = PACKAGE.parent / "notebooks"
MAX_LINES = 400

# The notebook layer: the one setup call (runtime) and what imports it. Everything else is the core
# (model, lrn, engine, checkpoint, train, experiment, bench, ...) and may not import runtime.
NOTEBOOK_LAYER = {"runtime", "__init__"}
# What a cell may not call: claims.interval turns a measurement into a decision. A cell hands its numbers
# to a package call (a claims.cN_* rule, claims.direction), which decides.
JUDGING_CALLS = {"interval"}


def modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text()) for path in sorted(PACKAGE.glob("*.py"))}


def package_imports(tree: ast.Module) -> set[str]:
    """The package modules a module imports, at any depth (a lazy import inside a function counts)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("alexnet_book."):
            found.add(node.module.split(".")[1])
    return found


def test_the_import_graph_has_no_cycle():
    trees = modules()  # parsed once: parsing every module again for each name took ~20 s
    graph = {name: package_imports(tree) & set(trees) for name, tree in trees.items()}
    done, on_path = set(), []

    def visit(name):
        if name in on_path:
            raise AssertionError(f"import cycle: {' -> '.join(on_path[on_path.index(name):] + [name])}")
        if name not in done:
            on_path.append(name)
            for imported in sorted(graph[name]):
                visit(imported)
            on_path.pop()
            done.add(name)

    for name in graph:
        visit(name)


def test_no_core_module_imports_the_notebook_layer():
    offenders = {name for name, tree in modules().items() if name not in NOTEBOOK_LAYER and "runtime" in package_imports(tree)}
    assert not offenders, f"core modules importing runtime: {sorted(offenders)}"


def test_no_module_is_longer_than_a_read():
    long = {path.name: n for path in PACKAGE.glob("*.py") if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def code_cells():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for index, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code":
                yield pytest.param(ast.parse("".join(cell["source"])), id=f"{path.stem}-cell{index}")


def only_prints(loop: ast.For | ast.While) -> bool:
    """A loop whose body only prints shows a result; any other statement in it builds one."""
    return all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and getattr(s.value.func, "id", None) == "print"
               for s in loop.body) and not loop.orelse


def is_text(node: ast.AST) -> bool:
    """A string, an f-string, or text joined from them."""
    if isinstance(node, ast.BinOp):
        return is_text(node.left) or is_text(node.right)
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def says_something(statement: ast.stmt) -> bool:
    """A statement that prints, or names a piece of text."""
    return any((isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print")
               or (isinstance(n, ast.Assign) and is_text(n.value)) for n in ast.walk(statement))


def picks_words(node: ast.If | ast.IfExp) -> bool:
    if isinstance(node, ast.IfExp):
        return is_text(node.body) or is_text(node.orelse)
    return any(says_something(s) for s in [*node.body, *node.orelse])


@pytest.mark.parametrize("cell", code_cells())
def test_notebook_cells_hold_calls_not_logic(cell):
    """No def or class; no for/while that builds a result (a loop that only prints is allowed: it shows
    what the package computed); no verdict decision: no if statement or conditional expression that picks
    between words, and no call of a judging statistic (JUDGING_CALLS) of claims. A comprehension that maps
    one package call over the variants is a call per variant, not logic, and is allowed."""
    for node in ast.walk(cell):
        assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)), \
            f"a definition in a notebook cell (line {node.lineno})"
        if isinstance(node, (ast.For, ast.While)):
            assert only_prints(node), f"a loop that builds a result (line {node.lineno}): it belongs in the package"
        if isinstance(node, (ast.If, ast.IfExp)):
            assert not picks_words(node), f"a decision between words (line {node.lineno}): a package call decides"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "claims":
            assert node.attr not in JUDGING_CALLS, f"claims.{node.attr} in a cell (line {node.lineno}): a claims rule judges"


# Where a machine's folders could show in a stored output: the checkout itself, and the usual homes of one.
MACHINE_FOLDERS = ("/work/", "/home/", "/tmp/", "/Users/", "/root/")


def output_text(output: dict) -> str:
    data = output.get("data", {})
    parts = [output.get("text", "")] + [data[k] for k in data if k.startswith("text/")] + output.get("traceback", [])
    return "".join("".join(part) if isinstance(part, list) else part for part in parts)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_no_stored_output_names_a_machines_folders(path):
    """Executed notebooks are committed: a path printed in full would show one machine's folders (results.shown
    prints them relative to the checkout)."""
    needles = MACHINE_FOLDERS + (str(PACKAGE.parent),)
    found = [(index, needle) for index, cell in enumerate(json.loads(path.read_text())["cells"])
             for output in cell.get("outputs", []) for needle in needles if needle in output_text(output)]
    assert not found, f"{path.name}: (cell, folder) {found}"
