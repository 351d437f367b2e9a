"""The package's shape: no import cycles, and imports that only flow down the layers.

The layers are the subpackages, lowest first; a module may import its own layer and the layers before it, never a
later one, so data sources and core training never import serving, the notebook views or the command line. Imports
inside functions count too: hiding an import in a function hides a cycle from Python, not from a reader.
"""

import ast
from pathlib import Path

import captcha_nb

PACKAGE = Path(captcha_nb.__file__).parent
LAYERS = ["sources", "core", "serving", "workflows", "views", "cli"]


def module_names(package: Path) -> set[str]:
    """'sources.data', 'core.engine', ... and the top-level '__init__', '__main__', 'cli'."""
    return {".".join(p.relative_to(package).with_suffix("").parts) for p in package.rglob("*.py")}


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    if top == "__init__":  # the project paths every layer may use
        return 0
    return LAYERS.index("cli" if top in ("cli", "__main__") else top)


def imports_of(package: Path, module: str) -> set[str]:
    """The package modules that `module` imports, anywhere in its source."""
    known = module_names(package)
    found = set()
    tree = ast.parse((package / f"{module.replace('.', '/')}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "captcha_nb":
            inner = node.module[len("captcha_nb"):].lstrip(".")
            for alias in node.names:
                candidate = f"{inner}.{alias.name}" if inner else alias.name
                if candidate in known:  # `from captcha_nb.views import plots`
                    found.add(candidate)
                elif inner in known:  # `from captcha_nb.core.engine import fit`
                    found.add(inner)
                elif inner and f"{inner}.__init__" in known:  # a subpackage's own __init__
                    found.add(f"{inner}.__init__")
                else:  # `from captcha_nb import DATA_ROOT`
                    found.add("__init__")
        elif isinstance(node, ast.Import):
            found.update(a.name[len("captcha_nb."):] for a in node.names if a.name.startswith("captcha_nb."))
    return found - {module} - front_door_exports(tree, module)


def front_door_exports(tree: ast.Module, module: str) -> set[str]:
    """The package's front door: `captcha_nb.__getattr__` hands out `Reader` on first use, so `from captcha_nb import
    Reader` works without the package importing serving (or torch) when it is imported. That one lazy re-export is
    the only import allowed to point up the layers."""
    if module != "__init__":
        return set()
    door = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"]
    return {f"{n.module[len('captcha_nb.'):]}.{a.name}" for d in door for n in ast.walk(d)
            if isinstance(n, ast.ImportFrom) and n.module for a in n.names}


def test_the_front_door_hands_out_only_the_reader():
    import captcha_nb

    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    assert front_door_exports(tree, "__init__") == {"serving.reader"}
    assert captcha_nb.Reader.__module__ == "captcha_nb.serving.reader"


def test_every_module_is_in_a_layer():
    strays = [m for m in module_names(PACKAGE) if m.split(".")[0] not in LAYERS + ["__init__", "__main__"]]
    assert not strays, f"move these into a layer subpackage: {strays}"


def test_imports_flow_down_the_layers():
    wrong = [f"{m} imports {i}" for m in module_names(PACKAGE) for i in imports_of(PACKAGE, m)
             if layer_of(i) > layer_of(m)]
    assert not wrong, "\n".join(sorted(wrong))


def test_there_are_no_import_cycles():
    graph = {module: imports_of(PACKAGE, module) for module in module_names(PACKAGE)}
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in graph.get(module, ()):
            if state.get(target) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_checker_finds_an_import_hidden_in_a_function(tmp_path):
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "data.py").write_text("def f():\n    from captcha_nb.cli import main\n")
    (tmp_path / "cli.py").write_text("from captcha_nb.sources import data\n")
    assert imports_of(tmp_path, "sources.data") == {"cli"} and imports_of(tmp_path, "cli") == {"sources.data"}
    assert layer_of("cli") > layer_of("sources.data")


# Within the layers, the rooms the house was arranged into: who may import whom. Each entry lists every package module
# the room may import (the rest of its layer included); an import outside it is a room leaning on one it should not.
ROOMS = {
    "sources.geometry": set(),  # ships alone as an exported bundle's captcha_geometry.py
    "sources.input_rules": {"sources.geometry"},
    "core.ctc": set(),  # the alphabet, its CTC targets, the loss and the decoders
    "core.model": {"core.ctc"},
    "core.rundir": {"sources.files"},
    "core.device": set(),
    "core.evaluation": {"core.ctc", "core.metrics", "core.model"},
    "core.teacher": {"core.ctc", "core.evaluation", "core.checkpoint", "core.rundir", "core.model", "sources.data"},
    "core.pseudo": {"core.ctc", "core.evaluation", "sources.data", "sources.files"},
    "core.trust": {"core.pseudo", "sources.data"},  # how far a teacher is trusted, apart from the pool it fills
    # Where a run starts, decided once; the loop (engine) only runs what `begin` hands it.
    "core.start": {"core.checkpoint", "core.config", "core.device", "core.ema", "core.model", "core.prepare",
                   "core.rundir", "core.warmstart", "sources.geometry"},
}


def test_the_rooms_import_only_what_they_stand_on():
    wrong = [f"{room} imports {target}" for room, allowed in ROOMS.items()
             for target in imports_of(PACKAGE, room) if target not in allowed]
    assert not wrong, "\n".join(sorted(wrong))


def test_no_module_but_the_run_folders_own_spells_a_run_file():
    names = ("model.pt", "last.pt", "history.csv", "metrics.json", "split.json", "params.json", "pseudo_labels.csv")
    spelled = [f"{module}: {name}" for module in module_names(PACKAGE) if module != "core.rundir"
               for node in ast.walk(ast.parse((PACKAGE / f"{module.replace('.', '/')}.py").read_text()))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)
               for name in names if node.value == name or node.value.endswith("/" + name)]
    assert not spelled, "ask core.rundir.RunDir for these instead:\n" + "\n".join(sorted(spelled))
