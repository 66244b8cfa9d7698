"""The import-layer contract (issue 28), checked on the source: every ``import`` counts, those
inside functions too (only ``if TYPE_CHECKING:`` blocks, which never run, are left out).

Layers, lowest first; a module may import its own layer and those below, never above:

    base     errors, stats, summary, serialize, results, values, safefile
    laws     laws.*
    runs     runs.*
    engines  fit, hparams, downstream, testtime, plan, design, sweep (the transformer sweep
             runner: design's auto-loop trains through it, so it sits beside the engines)
    study    study.*
    faces    cli, clikit, report.*, demo.*, design.figures, and every area's ``*commands``
             module

and no module imports itself back through others (no cycle, any layer). A module added later
gets its layer from the first rule of :data:`LAYERS` that names it; one no rule names fails
here, with the rule to add. ``scalinglab/__init__.py`` (the lazy public API, imports by name
only) is the parent every import runs anyway: importing it (``__version__``) is allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "scalinglab"

#: (prefix, layer): the first prefix a module's name starts with gives its layer
LAYERS: list[tuple[str, str]] = [
    *[(f"scalinglab.{m}", "base") for m in ("errors", "stats", "summary", "serialize",
                                               "results", "values", "safefile")],
    ("scalinglab.laws", "laws"),
    # design's figures draw with the report's style (matplotlib); only `design` commands use them
    ("scalinglab.design.figures", "faces"),
    ("scalinglab.runs", "runs"),
    *[(f"scalinglab.{m}", "engines") for m in ("fit", "hparams", "downstream", "testtime",
                                                  "plan", "design", "sweep")],
    ("scalinglab.study", "study"),
    *[(f"scalinglab.{m}", "faces") for m in ("cli", "clikit", "report", "demo", "__main__")],
]
ORDER = ["base", "laws", "runs", "engines", "study", "faces"]


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def layer_of(name: str) -> str | None:
    if name == "scalinglab":
        return "top"
    if name.rpartition(".")[2].endswith("commands"):
        return "faces"  # an area's command line is a face, whatever its area
    for prefix, layer in LAYERS:
        if name == prefix or name.startswith(prefix + "."):
            return layer
    return None


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """``(module imported, line)`` for every import of a scalinglab module in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test)
                   for sub in node.body for n in ast.walk(sub)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target in known and target != name and target.startswith("scalinglab"):
                found.append((target, node.lineno))
    return found


def graph() -> dict[str, dict[str, int]]:
    known = modules()
    return {name: dict(imports(name, path, known)) for name, path in known.items()}


def cycle(edges: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle, as the modules around it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        stack.append(v)
        for w in edges.get(v, {}):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state:
                found = visit(w)
                if found:
                    return found
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(edges):
        if v not in state:
            found = visit(v)
            if found:
                return found
    return None


def test_every_module_has_a_layer():
    unplaced = [m for m in modules() if layer_of(m) is None]
    assert not unplaced, (f"no layer for {unplaced}: add a rule to LAYERS in {Path(__file__).name} "
                          "(and the picture in docs/ARCHITECTURE.md)")


def test_no_module_imports_a_layer_above_its_own():
    edges = graph()
    known = modules()
    broken = []
    for name, targets in sorted(edges.items()):
        mine = layer_of(name)
        if mine == "top":
            continue
        for target, line in sorted(targets.items()):
            theirs = layer_of(target)
            if theirs != "top" and ORDER.index(theirs) > ORDER.index(mine):
                rel = known[name].relative_to(PACKAGE.parent.parent)
                broken.append(f"{rel}:{line}: {name} ({mine}) imports {target} ({theirs})")
    assert not broken, "imports upward across the layers " + " -> ".join(ORDER) + ":\n" + \
        "\n".join(broken)


def test_no_import_cycle_counting_imports_inside_functions():
    edges = graph()
    found = cycle(edges)
    if found:
        known = modules()
        steps = [f"{a} imports {b} at {known[a].relative_to(PACKAGE.parent.parent)}:{edges[a][b]}"
                 for a, b in zip(found, found[1:], strict=False)]
        raise AssertionError("import cycle:\n" + "\n".join(steps))


def test_the_check_sees_imports_inside_functions(tmp_path):
    # the walk itself: an import inside a function counts, one under TYPE_CHECKING does not
    src = tmp_path / "m.py"
    src.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                   "    from scalinglab.cli import app\n"
                   "def f():\n    from scalinglab.fit import result\n")
    known = {"scalinglab.m": src, "scalinglab.cli": src, "scalinglab.fit": src,
             "scalinglab.fit.result": src}
    assert imports("scalinglab.m", src, known) == [("scalinglab.fit.result", 5)]
    assert cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b": 1}, "b": {}}) is None
