"""`python -m bench.intake` is run by hand; this runs every channel for a moment on SQLite so its
own code keeps working: each channel's requests as the console checks them (signed, keyed,
unique), every answer a success, every arrival stored once, and the last line in its shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.intake import CHANNELS, caller, chosen_channels, report, run


def test_the_channels_named_run_in_their_order() -> None:
    assert chosen_channels(None) == CHANNELS
    assert chosen_channels(["email", "web"]) == ("web", "email")
    assert chosen_channels(["api", "all"]) == CHANNELS


def test_one_caller_in_ten_writes_again_to_the_same_business() -> None:
    callers = [caller(n, 10) for n in range(20_000)]
    again = [n for n, who in enumerate(callers) if who != n]
    assert len(again) == 2_000 - 100  # every tenth round, once there are 101 rounds before
    assert all(callers[n] % 10 == n % 10 and callers[callers[n]] == callers[n] for n in again)


async def test_a_short_run_of_every_channel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await run(
        "sqlite", rate=20, seconds=0.5, connections=2, warmup=0.1, work=tmp_path, businesses=2
    )
    report(result)
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert list(last) == [
        "db", "existing", "ceiling_rps", "intake_rps", "ratio", "p50_ms", "p99_ms", "channels",
    ]  # fmt: skip
    assert list(last["channels"]) == list(CHANNELS)
    for figures in last["channels"].values():
        assert {"rps", "ratio", "p50_ms", "p99_ms", "errors"} <= figures.keys()
        assert figures["errors"] == 0 and figures["unsent"] == 0
        assert figures["stored_once"] and figures["stored"] == figures["sent"] > 0
        assert figures["rps"] > 0
    web = last["channels"]["web"]
    assert (last["intake_rps"], last["ratio"], last["p99_ms"]) == (
        web["rps"],
        web["ratio"],
        web["p99_ms"],
    )
    assert result["detail"]["twilio"]["fixed"]["statuses"] == {200: 10}
