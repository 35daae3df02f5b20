"""Who is on duty, as the wallboard shows it: each secretary's busiest place (on a call, then
viewing a lead, then the console), merged over this process's sockets and the other processes'
reports. Pure functions; the hub keeps the state and carries the reports."""

from __future__ import annotations

from collections.abc import Iterable

Duty = list[tuple[str, str]]  # (user id, "calling" | "viewing" | "console")
RANK = {"calling": 0, "viewing": 1, "console": 2}


def busiest(places: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Each user's busiest place among those given."""
    found: dict[str, str] = {}
    for user_id, where in places:
        if RANK[where] < RANK.get(found.get(user_id, ""), len(RANK)):
            found[user_id] = where
    return found


def place_of(page_lead: str | None, mode: str) -> str:
    """Where a socket is: on a lead page (calling or viewing) or elsewhere in the console."""
    if page_lead is None:
        return "console"
    return "calling" if mode == "calling" else "viewing"
