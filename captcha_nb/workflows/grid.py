"""A sweep's grid: `-p NAME=V1,V2` options, seeds, or a file of explicit sets, and a folder name for each set."""

from __future__ import annotations

import hashlib
import itertools
import re
from pathlib import Path

from captcha_nb.workflows.runs import parse_value

# Longer run names are cut and given a hash, so folder names stay within every file system's limit.
MAX_NAME = 120


def parse_grid(options: list[str]) -> dict[str, list]:
    """`-p NAME=V1,V2` options as {NAME: [typed values]}, typed like papermill's -p."""
    grid: dict[str, list] = {}
    for option in options:
        name, sep, values = option.partition("=")
        if not sep or not name or not values:
            raise ValueError(f"-p {option!r} must look like NAME=VALUE or NAME=V1,V2,...")
        if name in grid:
            raise ValueError(f"-p {name} is given twice; list its values once, separated by commas")
        grid[name] = [parse_value(value) for value in values.split(",")]
    return grid


def parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(seed) for seed in text.split(",")]
    except ValueError:
        raise ValueError(f"--seeds {text!r} must be integers separated by commas, e.g. 0,1,2") from None


def read_grid_file(path: str | Path) -> list[dict]:
    """Explicit parameter sets from a YAML or JSON file: a list of mappings, or {"runs": [...]}."""
    import yaml

    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))  # YAML is a superset of JSON
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"--file {path}: {error}") from None
    sets = content.get("runs") if isinstance(content, dict) else content
    if not isinstance(sets, list) or not sets or not all(isinstance(s, dict) for s in sets):
        raise ValueError(f"--file {path} must hold a non-empty list of parameter mappings (or runs: [...])")
    return [dict(s) for s in sets]


def combinations(grid: dict[str, list], seeds: list[int] | None, explicit: list[dict] | None = None) -> list[dict]:
    """Every parameter set of the sweep: the explicit sets, or the product of the grid; each times every seed."""
    if explicit is not None and grid:
        raise ValueError("give the parameters either with -p or with --file, not both")
    if seeds is not None and "seed" in grid:
        raise ValueError("give seeds either with --seeds or with -p seed=..., not both")
    sets = explicit if explicit is not None else [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    if seeds is not None:
        sets = [{**s, "seed": seed} for s in sets for seed in seeds if "seed" not in s] + \
               [s for s in sets if "seed" in s]
    return sets or [{}]


def run_names(sets: list[dict]) -> list[str]:
    """A readable folder name per set from the values that vary, e.g. `lr=0.003,model=crnn_large,seed=1`."""
    varying = sorted({k for s in sets for k in s if len({repr(t.get(k)) for t in sets}) > 1})
    names: list[str] = []
    for s in sets:
        # A set without any of the varying keys runs on the defaults, and is named so.
        name = ",".join(f"{k}={s.get(k)}" for k in varying if k in s) or "defaults"
        name = re.sub(r"[^\w.,=+-]", "_", name)
        if len(name) > MAX_NAME:
            # A hash of the full name, not a random one: the same command must find the same folders to resume.
            name = name[:MAX_NAME - 9] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
        unique, n = name, 1
        while unique in names:
            unique, n = f"{name}-{n}", n + 1
        names.append(unique)
    return names
