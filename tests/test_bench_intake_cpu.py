"""`python -m bench.intake_cpu` is run by hand; this runs it for a second against each server so
its own code keeps working: every post answered 201, and each server's CPU found per thread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.intake_cpu import run, thread_cpu

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(),
    reason="no /proc on this system: the benchmark reads Linux's per-thread CPU times",
)


def test_the_threads_of_a_process_are_read_from_proc() -> None:
    assert os.getpid() in thread_cpu(os.getpid())  # the first thread's id is the process's


async def test_a_short_run_splits_each_servers_cpu(tmp_path: Path) -> None:
    result = await run("sqlite", seconds=1, connections=4, work=tmp_path, warmup=0.2)
    intake, ceiling = result["detail"]["intake"], result["detail"]["ceiling"]
    assert set(intake["statuses"]) == {201} and set(ceiling["statuses"]) == {201}
    assert result["intake_rps"] > 0 and result["ceiling_rps"] > 0
    assert result["intake_loop_ms"] > 0 and result["ceiling_cpu_ms"] > 0
    # SQLite's statements run on its driver's threads; the ceiling has no other threads busy
    assert result["intake_threads_ms"] > 0 and ceiling["threads_ms"] == 0
