"""The soak (`python -m bench.soak`) is run by hand for ten minutes; this runs it for a few
seconds so its own code keeps working: intake, consoles, claims and notes, and every check."""

from __future__ import annotations

from pathlib import Path

from bench.soak import soak


async def test_a_short_soak_passes_every_check(tmp_path: Path) -> None:
    result = await soak(
        seconds=2, rate=25, consoles=4, businesses=2, actions=4, sample_every=1, work=tmp_path
    )
    assert result["leads_sent"] >= 40 and result["leads_stored"] == result["leads_sent"]
    # Each of the two secretaries claims at least once (how many more depends on the machine).
    assert result["claims"] >= 2 and result["notes"] == result["claims"]
    assert result["deliveries_expected"] > 0 and result["deliveries_missing"] == 0
    assert result["errors"] == {} and result["server_errors"] == []
    checks = ("leads_exactly_once", "consoles_complete", "claims_and_notes", "no_errors")
    assert all(result[check] for check in checks), result
    assert len(result["rss_mb"]) >= 3  # sampled; too short a run to judge growth
