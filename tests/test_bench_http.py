"""`python -m bench.http` is run by hand; this runs every path for a second on a small SQLite
data set so its own code keeps working: signed in as the real users, every POST valid and
distinct (every answer 2xx or 3xx), and the last line in the issue's shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.http import PATHS, report, run


async def test_a_short_run_of_every_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENCH_DIR", str(tmp_path))
    # enough open leads for a call to wrap up per request: each call ends once
    result = await run("sqlite", leads=2_000, seconds=1, work=tmp_path, businesses=20)
    assert result["failed"] == dict.fromkeys(PATHS, 0)
    assert all(result["requests"][path] > 0 for path in PATHS), result["requests"]
    assert report("sqlite", 2_000, result) == 0
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert list(last) == ["db", "leads", "ceiling", "paths"]
    assert (last["db"], last["leads"]) == ("sqlite", 2_000)
    assert list(last["ceiling"]) == ["page", "json"]
    for figures in last["ceiling"].values():
        assert list(figures) == ["rps", "p50_c1_ms"]
    assert list(last["paths"]) == list(PATHS)
    for figures in last["paths"].values():
        assert list(figures) == ["rps", "p50_ms", "p99_ms", "p50_c1_ms"]  # no timing asserted
