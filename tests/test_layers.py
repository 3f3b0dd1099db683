"""The package's floor plan holds: no import cycle among the modules of src/seenn, and no import that
breaks the layering rule written in the `seenn` package docstring (`seenn.LAYERS`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import seenn

PACKAGE_DIR = Path(seenn.__file__).resolve().parent
MAX_TOP_LEVEL_MODULES = 6  # besides __init__ and __main__
MAX_LINES = 400


def modules(root: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package under `root`, by dotted name (a package by its own name)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the package modules it imports, at module level or inside functions. `from X import
    name` is an edge to X.name when that is a module (a sibling, a subpackage), else to X (a name
    defined in X, an `__init__` included); relative imports are resolved against the module."""
    top = next(iter(mods)).split(".")[0]
    edges = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = alias.name
                    while target and target not in mods:
                        target = target.rpartition(".")[0]
                    if target:
                        found.add(target)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                if base.split(".")[0] != top:
                    continue
                for alias in node.names:
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in mods else base)
        found.discard(name)
        edges[name] = found
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def rank_of(module: str, layers=seenn.LAYERS) -> tuple[int, str]:
    """(layer number, room) of a module: the room is its first-level subpackage or top-level module."""
    room = module.split(".")[1] if "." in module else ""
    for rank, rooms in enumerate(layers):
        if room in rooms:
            return rank, room
    raise KeyError(f"{module}: room '{room}' is in no layer of seenn.LAYERS")


def layer_violations(edges: dict[str, set[str]], layers=seenn.LAYERS) -> list[str]:
    """Imports that break the rule: a module may import its own room and rooms of lower layers only
    (two rooms of one layer do not import each other). The package `__init__` imports nothing."""
    bad = []
    for src, targets in sorted(edges.items()):
        if src == "seenn":
            bad += [f"seenn -> {t}" for t in sorted(targets)]
            continue
        s_rank, s_room = rank_of(src, layers)
        for t in sorted(targets):
            if t == "seenn":
                continue
            t_rank, t_room = rank_of(t, layers)
            if t_room != s_room and t_rank >= s_rank:
                bad.append(f"{src} (layer {s_rank}, {s_room}) -> {t} (layer {t_rank}, {t_room})")
    return bad


def test_no_import_cycle():
    found = cycles(import_edges(modules()))
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_every_import_follows_the_layering_rule():
    bad = layer_violations(import_edges(modules()))
    assert not bad, "imports against the layering rule in the seenn docstring:\n" + "\n".join(bad)


def test_every_room_is_in_a_layer_and_every_layer_has_a_room():
    rooms = {p.name if p.is_dir() else p.stem for p in PACKAGE_DIR.iterdir()
             if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    named = {room for layer in seenn.LAYERS for room in layer}
    assert rooms == named


def test_few_top_level_modules_and_no_long_module():
    top = [p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem not in ("__init__", "__main__")]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    long = {str(p.relative_to(PACKAGE_DIR)): n for p in PACKAGE_DIR.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


# --- the checks themselves fail on a tree that breaks them --------------------------------------

def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        path = tmp_path / "seenn" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return modules(tmp_path / "seenn")


def test_a_cycle_through_a_package_init_is_found(tmp_path):
    """The circle the flat layout had: a registry in data/__init__ that imports a dataset module
    (inside a function) which imports a name back from data/__init__."""
    mods = _tree(tmp_path, {"__init__.py": "", "data/__init__.py": "def registry():\n    from . import cifar\n",
                            "data/cifar.py": "from . import registry\n"})
    edges = import_edges(mods)
    assert edges["seenn.data.cifar"] == {"seenn.data"} and "seenn.data.cifar" in edges["seenn.data"]
    assert cycles(edges) == [["seenn.data", "seenn.data.cifar"]]


@pytest.mark.parametrize("importer, imported, ok", [
    ("snn/kernels.py", "from seenn.common.runtime import setup\n", True),
    ("snn/kernels.py", "from seenn.methods import engine\n", False),
    ("models/resnet.py", "def f():\n    from seenn.data.spec import DatasetSpec\n", False),  # one layer, two rooms
    ("report/tables.py", "from seenn.pipeline.config import SOURCE_KEY\n", False),
    ("pipeline/table.py", "from seenn.stages import train_snn\n", True),
])
def test_the_layering_rule_catches_an_upward_import(tmp_path, importer, imported, ok):
    files = {"__init__.py": ""}
    for room in ("common", "snn", "models", "data", "methods", "report", "stages", "pipeline"):
        files[f"{room}/__init__.py"] = ""
    files.update({"common/runtime.py": "", "methods/engine.py": "", "data/spec.py": "", "pipeline/config.py": "",
                  "stages/train_snn.py": "", importer: imported})
    bad = layer_violations(import_edges(_tree(tmp_path, files)))
    assert (bad == []) is ok, bad
