"""`python -m bench.voice` is run by hand; this runs it for a moment on SQLite so its own code
keeps working: calls ring, wait and overflow without an error, and the last line has its keys
(`ring_to_pop_ms` from one call through the real SIP stack and Chromium)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import ring_to_pop
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent
SHORT = ("--db", "sqlite", "--rate", "20", "--seconds", "1")


def test_a_short_run_on_sqlite() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.voice", *SHORT, "--pop-calls", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    last = json.loads(done.stdout.splitlines()[-1])
    assert {"route_p50_ms", "route_p99_ms", "calls_per_s"} <= set(last)
    # From Kamailio's INVITE to the banner in a browser, with the real stack when it is here.
    assert ("ring_to_pop_ms" in last) is ring_to_pop.available()
    assert not IN_CI or ring_to_pop.available()
    run = last["runs"]["sqlite"]  # each database's figures beside the slower one's
    assert run["errors"] == 0 and run["actions"]["ring"] > 0
    assert sum(run["outcomes"].values()) == 20
    assert {"http_route_p50_ms", "http_route_p99_ms"} <= set(last)  # the question over HTTP
