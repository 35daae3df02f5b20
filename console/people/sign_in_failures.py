"""Failed sign-ins (wrong passwords and wrong two-factor codes alike), counted per client address:
per account from that address and for the address as a whole, never for an account alone, so
failures delay whoever makes them and never lock out the account's owner elsewhere."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.config import Settings
from console.base.errors import Throttled
from models import LoginFailure

# Failures of one account from one address hold that pair back for this long; the address as a
# whole is held for `settings.login_window_minutes`.
ACCOUNT_WINDOW = timedelta(minutes=5)


async def refuse_when_throttled(
    session: AsyncSession, settings: Settings, *, account: str, address: str, now: datetime
) -> None:
    """Throttled (429, with the seconds until the oldest failure leaves its window) when this
    address made too many failures for this account, or for any accounts."""
    address_window = timedelta(minutes=settings.login_window_minutes)
    checks = (
        (
            (LoginFailure.account == account) & (LoginFailure.address == address),
            ACCOUNT_WINDOW,
            settings.login_attempts_per_account,
        ),
        (LoginFailure.address == address, address_window, settings.login_attempts_per_address),
    )
    for condition, window, limit in checks:
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(LoginFailure.at)).where(
                    condition, LoginFailure.at > now - window
                )
            )
        ).one()
        if count >= limit and oldest is not None:
            retry_after = max(1, math.ceil((oldest + window - now).total_seconds()))
            raise Throttled(
                "Too many failed sign-ins. Try again in a few minutes.", retry_after=retry_after
            )


def count_failure(session: AsyncSession, *, account: str, address: str, now: datetime) -> None:
    session.add(LoginFailure(account=account, address=address, at=now))


async def forgive(session: AsyncSession, *, account: str, address: str) -> None:
    """Her sign-in from this address succeeded: its failures for her account are forgotten."""
    await session.execute(
        delete(LoginFailure).where(LoginFailure.account == account, LoginFailure.address == address)
    )


async def purge(session: AsyncSession, settings: Settings, *, now: datetime) -> None:
    """Forget failures outside every window."""
    oldest = now - max(ACCOUNT_WINDOW, timedelta(minutes=settings.login_window_minutes))
    await session.execute(delete(LoginFailure).where(LoginFailure.at < oldest))
