"""The package's shape: no import cycles, and imports that only flow down the layers.

Imports inside functions count too: hiding an import in a function hides a cycle from Python, not from a reader.
"""

import ast
from pathlib import Path

import captcha_nb

PACKAGE = Path(captcha_nb.__file__).parent

# Lowest layer first. A module may import its own layer and the layers before it, never a later one: data sources
# and core training never import serving, the notebook views or the command line.
LAYERS = {
    "sources": {"__init__", "files", "geometry", "data", "download", "synth"},
    "core": {"config", "model", "ctc", "metrics", "augment", "ema", "runlock", "checkpoint", "engine", "callbacks"},
    "serving": {"inference", "onnx_backend", "export", "predict", "speed"},
    "views": {"explore", "anatomy", "analysis", "plots", "widgets", "workspace", "runs"},
    "cli": {"cli", "__main__"},
}
MODULES = {path.stem for path in PACKAGE.glob("*.py")}


def imports_of(module: str) -> set[str]:
    """The package modules that `module` imports, anywhere in its source."""
    found = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "captcha_nb":
            parts = node.module.split(".")
            if len(parts) > 1:
                found.add(parts[1])
            else:  # `from captcha_nb import plots, DATA_ROOT`: modules by name, everything else lives in __init__
                found.update(a.name if a.name in MODULES else "__init__" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("captcha_nb."))
    return found - {module}


def test_every_module_has_a_layer():
    placed = set().union(*LAYERS.values())
    assert MODULES <= placed, f"place these modules in a layer: {sorted(MODULES - placed)}"


def test_imports_flow_down_the_layers():
    rank = {module: i for i, layer in enumerate(LAYERS.values()) for module in layer}
    wrong = [f"{m} ({n}) imports {i}" for m in MODULES for i in imports_of(m) if rank[i] > rank[m]
             for n in [list(LAYERS)[rank[m]]]]
    assert not wrong, "\n".join(sorted(wrong))


def test_there_are_no_import_cycles():
    graph = {module: imports_of(module) for module in MODULES}
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in graph[module]:
            if state.get(target) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_layer_check_would_catch_a_hidden_import(tmp_path, monkeypatch):
    # The checker itself can fail: an import inside a function is found.
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path)
    (tmp_path / "data.py").write_text("def f():\n    from captcha_nb.cli import main\n")
    assert imports_of("data") == {"cli"}
