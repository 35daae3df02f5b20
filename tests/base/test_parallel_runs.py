"""Two `pytest` runs at once on one machine both pass: each has a PostgreSQL database and a Redis
index of its own (tests/own_databases.py), so neither's TRUNCATE or FLUSHDB reaches the other."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import OWN_POSTGRES, POSTGRES_SERVER, REDIS_SERVER, need_service

ROOT = Path(__file__).resolve().parents[2]
INNER = "MAZKIRA_INNER_TEST_RUN"  # set in the runs this test starts, which must not start more
# Tests that write, TRUNCATE and FLUSHDB on both servers: the SLA's on PostgreSQL, the jobs' on
# PostgreSQL and on Redis through an arq worker.
SELECTION = ["tests/sla/test_sla.py", "tests/base/test_jobs.py", "-k", "postgres"]


async def run_pytest() -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-n",
        "0",  # one process: the summary's databases are those of the run itself
        *SELECTION,
        cwd=ROOT,
        env={**os.environ, INNER: "1", "CI": "true"},  # CI: a missing server fails, never skips
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return await process.wait(), output.decode()


@pytest.mark.skipif(INNER in os.environ, reason="a run started by this test runs no other")
async def test_two_runs_at_once_both_pass_on_databases_of_their_own() -> None:
    need_service("PostgreSQL", POSTGRES_SERVER, 5432)
    need_service("Redis", REDIS_SERVER, 6379)
    async with asyncio.timeout(90):
        runs = await asyncio.gather(run_pytest(), run_pytest())

    postgres, redis = set(), set()
    for code, output in runs:
        assert code == 0, output
        # all ran and passed: nothing skipped, nothing failed
        summary = re.fullmatch(r"(\d+) passed, \d+ deselected in [\d.]+s", output.splitlines()[-1])
        assert summary and int(summary[1]) >= 10, output
        [used] = re.findall(r"this run's own databases: (.*)", output)
        postgres.update(re.findall(r"PostgreSQL (\w+)", used))
        redis.update(re.findall(r"Redis database (\d+)", used))
    assert len(postgres) == 2 and len(redis) == 2  # one of each per run, none shared
    # each run dropped its database at its end
    assert postgres.isdisjoint(await OWN_POSTGRES.on_server())
