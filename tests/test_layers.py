"""The package's shape: imports point one way, from the base up to the command line, with no cycle.

Every import of a package module is read from the source (top-level and
inside functions; imports under ``if TYPE_CHECKING:`` are only annotations),
so a new upward import or cycle fails here, before it can hide inside a
function.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "astro_semsearch"

#: The pipeline stages, lowest first. A module may import its own layer or lower ones.
LAYERS = (
    ("config", "exceptions", "_validate", "_io", "_lazy", "_meta"),
    ("catalog", "images"),
    ("cutouts",),
    ("model",),
    ("index",),
    ("thumbnails",),
    ("search",),
    ("rerank", "crossmatch", "report", "plotting", "citation", "classify", "sketch", "lensing"),
    ("datasets",),
    ("build", "evaluation", "training"),
    ("cli",),
)
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _type_checking_lines(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(d.lineno for d in ast.walk(child) if hasattr(d, "lineno"))
    return skip


def _edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    edges = {m: set() for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                if node.level:
                    base = base[: len(base) - (node.level - 1)]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                # a module importing its own package's __init__ (re-exports) is not an edge
                if t and t != mod and not (mods[t].name == "__init__.py" and mod.startswith(t + ".")):
                    edges[mod].add(t)
    return edges


def _stage(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the top-level facade


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v):
        state[v] = 1
        stack.append(v)
        for w in sorted(edges[v]):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state:
                found = visit(w)
                if found:
                    return found
        state[v] = 2
        stack.pop()
        return None

    for v in sorted(edges):
        if v not in state:
            found = visit(v)
            if found:
                return found
    return None


def test_every_stage_has_a_layer():
    stages = {_stage(m) for m in _modules()} - {None}
    assert stages <= set(LAYER), f"stages without a layer in LAYERS: {sorted(stages - set(LAYER))}"


def test_no_import_cycle():
    cycle = _cycle(_edges(_modules()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_point_down_the_pipeline():
    upward = []
    for mod, targets in _edges(_modules()).items():
        src = _stage(mod)
        if src is None:
            continue
        for t in targets:
            dst = _stage(t)
            if dst is not None and LAYER[dst] > LAYER[src]:
                upward.append(f"{mod} -> {t}")
    assert not upward, "imports up the pipeline: " + "; ".join(sorted(upward))


def test_the_checks_see_a_cycle_and_an_upward_import():
    """The checks themselves: a made-up cycle and a made-up upward edge are found."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert _cycle(edges) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    assert LAYER["index"] < LAYER["search"]  # so index -> search would be reported as upward


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["index", "info"], ["search", "--help"]])
def test_light_commands_do_not_import_torch(argv):
    code = ("import sys\nfrom astro_semsearch.cli import main\n"
            "try:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n") % (argv,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "NO-TORCH", out.stdout + out.stderr
