"""The committed executed notebooks read well: small, no cell that floods, no echoed return value, no table pandas
had to cut."""

import json
from pathlib import Path

import pytest

from captcha_nb import PROJECT_ROOT, REPORTS_DIR

# The report folders .gitignore lets in (a user's own reports are theirs to keep as they like).
KEPT = [line.strip()[len("!reports/"):].strip("/") for line in (PROJECT_ROOT / ".gitignore").read_text().splitlines()
        if line.strip().startswith("!reports/") and line.strip().endswith("/")]
COMMITTED = sorted(path for folder in KEPT for path in (REPORTS_DIR / folder).glob("**/*.ipynb"))
MAX_BYTES = 1_000_000
MAX_OUTPUTS = 50


def texts(output: dict) -> str:
    data = output.get("data", {})
    return "".join(output.get("text", "")) + "".join(data.get("text/plain", "")) + "".join(data.get("text/html", ""))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(REPORTS_DIR)))
def test_a_committed_notebook_reads_well(path: Path):
    assert path.stat().st_size < MAX_BYTES, f"{path}: {path.stat().st_size} bytes"
    problems = []
    for number, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        outputs = cell.get("outputs", [])
        if len(outputs) > MAX_OUTPUTS:
            problems.append(f"cell {number}: {len(outputs)} outputs")
        for output in outputs:
            if "PosixPath(" in texts(output):
                problems.append(f"cell {number}: an echoed path")
            html = "".join(output.get("data", {}).get("text/html", ""))
            if "<td>...</td>" in html or "<th>...</th>" in html:
                problems.append(f"cell {number}: a table cut with '...'")
    assert not problems, f"{path}: " + "; ".join(problems)


def test_the_check_finds_the_committed_notebooks():
    assert len(COMMITTED) >= 6
