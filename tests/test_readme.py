"""The README's two commands are the ones CI runs and users type."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/mazkira demo"
TEST = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"


def test_quick_start_commands_are_in_readme_and_ci() -> None:
    readme = (ROOT / "README.md").read_text()
    assert RUN in readme and TEST in readme
    assert TEST in (ROOT / ".ci" / "run").read_text()


def test_every_benchmark_has_its_figures_in_one_place() -> None:
    """README's "How fast" points to docs/benchmarks.md, which has a section per `bench/` module."""
    assert "(docs/benchmarks.md)" in (ROOT / "README.md").read_text()
    benchmarks = (ROOT / "docs" / "benchmarks.md").read_text()
    for module in sorted((ROOT / "bench").glob("*.py")):
        if module.stem != "__init__":
            assert f"## bench.{module.stem}" in benchmarks, module.stem
