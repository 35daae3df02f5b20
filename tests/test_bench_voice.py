"""`python -m bench.voice` is run by hand; this runs it for a moment on SQLite so its own code
keeps working: calls ring, wait and overflow without an error, and the last line has its keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_short_run_on_sqlite() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.voice", "--db", "sqlite", "--rate", "20", "--seconds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    last = json.loads(done.stdout.splitlines()[-1])
    assert {"route_p50_ms", "route_p99_ms", "calls_per_s"} <= set(last)
    assert "ring_to_pop_ms" not in last  # the phone's own stack measures that
    run = last["runs"]["sqlite"]  # each database's figures beside the slower one's
    assert run["errors"] == 0 and run["actions"]["ring"] > 0
    assert sum(run["outcomes"].values()) == 20
    assert {"http_route_p50_ms", "http_route_p99_ms"} <= set(last)  # the question over HTTP
