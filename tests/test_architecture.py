"""The packages keep their order: each imports only those below it, and nothing imports in a
circle (the contracts are in pyproject.toml, checked by import-linter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_the_packages_keep_their_layers_and_no_cycle() -> None:
    run = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Contracts: 3 kept, 0 broken." in run.stdout


def test_every_package_says_what_it_holds_in_one_line() -> None:
    for init in sorted((ROOT / "console").glob("*/__init__.py")):
        text = init.read_text().strip()
        assert text.startswith('"""') and text.endswith('"""'), init
        assert text.count("\n") == 0, f"{init}: one line"


def test_every_csv_the_product_writes_goes_through_one_writer() -> None:
    """Issue 24, point 11: one helper (`console/base/csv_files.py`) writes every CSV, so every one
    has its byte-order mark (Excel reads the Hebrew) and no cell runs as a formula."""
    writers = [
        str(path.relative_to(ROOT))
        for folder in ("console", "routes", "workers")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "csv_files.py"
        and any(
            word in path.read_text()
            for word in ("csv.writer", "csv.DictWriter", 'encode("utf-8-sig")')
        )
    ]
    assert writers == [], "write CSV files with console.base.csv_files.csv_bytes"
