"""Kamailio carries out Mazkira's answers without a browser in the way: a secretary whose phone
is not registered is asked about again, and past the business's wait limit the caller is
refused (480) and the call is a call-back lead; an unknown number is refused 404."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from console.base.db import Database
from models import Interaction
from models.agents import CallSettings
from models.voice import Call
from tests.served import served
from tests.voice.sip_stack import Caller, SipStack
from tests.voice.test_sip_http import CALLER, LINE, shop_with_secretary


async def test_no_registered_phone_then_overflow_and_an_unknown_number(
    db: Database,
    phone_app: Any,
    sip_stack: Callable[[str], SipStack],
    caller: Callable[..., Caller],
) -> None:
    shop, _ = await shop_with_secretary(db)  # available, but no browser of hers is registered
    async with db.transaction() as session:
        session.add(CallSettings(business_id=shop.id, ring_seconds=5, wait_limit_seconds=3))
    async with served(phone_app) as url:
        stack = sip_stack(url)
        carrier = caller(stack, CALLER)
        carrier.call(LINE)
        await _until(lambda: "session closed" in carrier.output())
        assert "480 Temporarily Unavailable" in carrier.output()
        stranger = caller(stack, CALLER)
        stranger.call("+97235550000")
        await _until(lambda: "session closed" in stranger.output())
        assert "404 Not Found" in stranger.output()
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call))
        assert call is not None
        assert (call.state, call.end_reason) == ("missed", "overflow")
        assert call.attempt >= 2  # asked again after finding no phone
        interaction = await session.get_one(Interaction, call.interaction_id)
        assert interaction.outcome == "no_answer"


async def _until(done: Callable[[], bool], seconds: float = 30) -> None:
    for _ in range(int(seconds / 0.1)):
        if done():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("never happened")
