"""Two-factor sign-in: a TOTP authenticator app (RFC 6238, `pyotp`) enrolled by QR code
(`segno`, an inline SVG), single-use recovery codes kept as keyed hashes, the agency's rule that
admins and secretaries must have it, and the signed token that carries a half-done sign-in (the
password checked, the code not yet) from one form to the next.

A code's time step is stored when it is taken, so a code is never taken twice; wrong codes are
counted and throttled with failed passwords (`sign_in_failures`), at sign-in and when turning it
off.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import pyotp
import segno
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.config import Settings, derived_secret
from console.base.errors import Conflict, Invalid, NotFound
from console.people import sign_in_failures as failures
from console.people.accounts import normalise_email
from console.people.audit import Actor, record_action
from models import AgencySettings, RecoveryCode, Role, SecondFactor, User

ISSUER = "Mazkira"
RECOVERY_CODES = 10
# A half-done sign-in (password checked, code not yet) is good for this long.
SECOND_STEP_FOR = timedelta(minutes=10)
# A code is taken from the step before or after this one too, for a phone's clock a little off.
DRIFT_STEPS = 1
MUST_HAVE = frozenset({Role.ADMIN.value, Role.SECRETARY.value})
Used = Literal["totp", "recovery"]


@dataclass(frozen=True)
class Enrolment:
    """What her authenticator app needs: the secret, typed or read from the QR code's URI."""

    secret: str
    uri: str

    @property
    def grouped_secret(self) -> str:
        """The secret in groups of four, easier to type."""
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))

    @property
    def qr_svg(self) -> str:
        """The otpauth URI as an inline SVG QR code (no image service, nothing the CSP blocks)."""
        return str(segno.make(self.uri, error="m").svg_inline(scale=4, dark="#000", light="#fff"))


@dataclass(frozen=True)
class Status:
    enabled: bool
    required: bool
    recovery_codes_left: int


def enrolment_for(user: User, secret: str) -> Enrolment:
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return Enrolment(secret, uri)


# --- the agency's rule -------------------------------------------------------------------------


async def required_by_agency(session: AsyncSession) -> bool:
    found = await session.scalar(select(AgencySettings.two_factor_required))
    return bool(found)


async def set_required(session: AsyncSession, actor: Actor, required: bool) -> None:
    """Require (or stop requiring) two-factor sign-in of admins and secretaries."""
    settings = await session.get(AgencySettings, 1)
    if settings is None:
        settings = AgencySettings(id=1, two_factor_required=required)
        session.add(settings)
    elif settings.two_factor_required == required:
        return
    settings.two_factor_required = required
    await record_action(session, actor, "two_factor.required_set", required=required)


async def required_for(session: AsyncSession, user: User) -> bool:
    return user.role in MUST_HAVE and await required_by_agency(session)


# --- her own factor ----------------------------------------------------------------------------


async def enabled_factor(session: AsyncSession, user_id: uuid.UUID) -> SecondFactor | None:
    factor = await session.get(SecondFactor, user_id)
    return factor if factor is not None and factor.enabled_at is not None else None


async def status_of(session: AsyncSession, user: User) -> Status:
    factor = await enabled_factor(session, user.id)
    left = await session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    return Status(factor is not None, await required_for(session, user), int(left or 0))


async def begin_enrolment(session: AsyncSession, user: User, *, now: datetime) -> Enrolment:
    """A new secret for her app; it counts only once she confirms it with a code."""
    factor = await session.get(SecondFactor, user.id)
    if factor is not None and factor.enabled_at is not None:
        raise Conflict("Two-factor sign-in is already on.")
    secret = pyotp.random_base32()
    if factor is None:
        session.add(SecondFactor(user_id=user.id, secret=secret, created_at=now))
    else:
        factor.secret, factor.created_at, factor.last_step = secret, now, None
    await session.flush()
    return enrolment_for(user, secret)


async def pending_enrolment(session: AsyncSession, user: User) -> Enrolment | None:
    """The secret she is enrolling with (shown again after a wrong code), if any."""
    factor = await session.get(SecondFactor, user.id)
    if factor is None or factor.enabled_at is not None:
        return None
    return enrolment_for(user, factor.secret)


async def confirm_enrolment(
    session: AsyncSession, settings: Settings, actor: Actor, code: str
) -> list[str] | None:
    """Turn two-factor sign-in on once her app's code matches the new secret: her recovery
    codes, to be shown this once; None when the code is wrong (nothing changes)."""
    user = actor.person
    factor = await session.get(SecondFactor, user.id)
    if factor is None or factor.enabled_at is not None:
        raise Conflict("Start setting up two-factor sign-in again.")
    if not await _take_totp(session, factor, _digits(code), actor.now):
        return None
    factor.enabled_at = actor.now
    codes = await _new_recovery_codes(session, settings, user)
    await record_action(session, actor, "two_factor.enrolled", subject=user)
    return codes


async def disable(session: AsyncSession, settings: Settings, actor: Actor, code: str) -> bool:
    """She turns it off, proving it with a code (or a recovery code); not when it is required.

    False when the code is wrong: counted and throttled as at sign-in, and audited, so the
    caller commits as it would a success. Other refusals raise before anything is written.
    """
    user = actor.person
    if await required_for(session, user):
        raise Conflict("The agency requires two-factor sign-in for your role.")
    if await enabled_factor(session, user.id) is None:
        raise Conflict("Two-factor sign-in is already off.")
    if not code.strip():
        raise Invalid("Enter the code from your app.", field="code")
    await failures.refuse_when_throttled(
        session, settings, account=user.email, address=actor.address, now=actor.now
    )
    if await check_code(session, settings, user, code, now=actor.now) is None:
        failures.count_failure(session, account=user.email, address=actor.address, now=actor.now)
        await record_action(session, actor, "two_factor.failed", subject=user)
        return False
    await _forget(session, user.id)
    await record_action(session, actor, "two_factor.disabled", subject=user)
    return True


async def reset_for(session: AsyncSession, actor: Actor, person: User) -> None:
    """An admin turns it off for someone who lost her phone and her recovery codes; she is led
    to enrol again at her next sign-in when the agency requires it."""
    if await enabled_factor(session, person.id) is None:
        raise Conflict("Two-factor sign-in is already off.")
    await _forget(session, person.id)
    await record_action(session, actor, "two_factor.disabled", subject=person, by_admin=True)


async def reset_for_email(session: AsyncSession, actor: Actor, email: str) -> User:
    """`mazkira reset-two-factor`: the way back in for the last admin who lost her phone."""
    person = await session.scalar(select(User).where(User.email == normalise_email(email)))
    if person is None:
        raise NotFound("No such user.")
    await reset_for(session, actor, person)
    return person


async def _forget(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(delete(SecondFactor).where(SecondFactor.user_id == user_id))
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


# --- codes -------------------------------------------------------------------------------------


async def check_code(
    session: AsyncSession, settings: Settings, user: User, code: str, *, now: datetime
) -> Used | None:
    """Take a code from her app (six digits, once) or one of her recovery codes (once): which
    one was used, or None when it is neither (or was taken already)."""
    factor = await enabled_factor(session, user.id)
    if factor is None:
        return None
    digits = _digits(code)
    if re.fullmatch(r"\d{6}", digits):
        return "totp" if await _take_totp(session, factor, digits, now) else None
    used = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == recovery_hash(settings, code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return "recovery" if used.rowcount == 1 else None  # type: ignore[attr-defined]


async def _take_totp(session: AsyncSession, factor: SecondFactor, code: str, now: datetime) -> bool:
    """Whether `code` is her app's for now (give or take a step) and was not taken before;
    taking it records its step in the same statement, so two requests cannot both take it."""
    totp = pyotp.TOTP(factor.secret)
    for drift in (0, -DRIFT_STEPS, DRIFT_STEPS):
        moment = now + timedelta(seconds=totp.interval * drift)
        if hmac.compare_digest(totp.at(moment), code):
            step = totp.timecode(moment)
            taken = await session.execute(
                update(SecondFactor)
                .where(
                    SecondFactor.user_id == factor.user_id,
                    or_(SecondFactor.last_step.is_(None), SecondFactor.last_step < step),
                )
                .values(last_step=step)
            )
            return bool(taken.rowcount == 1)  # type: ignore[attr-defined]
    return False


def _digits(code: str) -> str:
    return re.sub(r"[\s-]", "", code)


def recovery_hash(settings: Settings, code: str) -> str:
    """A recovery code's keyed hash (HMAC-SHA256 under a key made from SECRET_KEY): 50 random
    bits need no slow hash, and a leaked table without the key reveals none of them."""
    key = derived_secret(settings.secret_key, "recovery-codes").encode()
    normal = re.sub(r"[^0-9a-z]", "", code.lower())
    return hmac.new(key, normal.encode(), hashlib.sha256).hexdigest()


async def _new_recovery_codes(session: AsyncSession, settings: Settings, user: User) -> list[str]:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_readable(secrets.token_hex(5)) for _ in range(RECOVERY_CODES)]
    session.add_all(
        RecoveryCode(user_id=user.id, code_hash=recovery_hash(settings, code)) for code in codes
    )
    return codes


def _readable(hex10: str) -> str:
    return f"{hex10[:5]}-{hex10[5:]}"


# --- a sign-in half done -----------------------------------------------------------------------


def second_step_token(settings: Settings, user: User, *, now: datetime) -> str:
    """Signed proof that her password was right just now: the user, when her password last
    changed (a new password voids it) and when it was made (it lasts SECOND_STEP_FOR)."""
    payload = [str(user.id), user.password_changed_at.timestamp(), now.timestamp()]
    return str(_serializer(settings).dumps(payload))


async def second_step_user(
    session: AsyncSession, settings: Settings, token: str, *, now: datetime
) -> User:
    """The active user whose password a second-step token proves, or Invalid."""
    expired = Invalid("Your sign-in took too long. Enter your password again.")
    try:
        user_id, changed, made = _serializer(settings).loads(token)
        user = await session.get(User, uuid.UUID(str(user_id)))
    except (BadSignature, ValueError, TypeError):
        raise expired from None
    made_at = datetime.fromtimestamp(float(made), tz=now.tzinfo)
    if not (made_at <= now < made_at + SECOND_STEP_FOR) or user is None or not user.active:
        raise expired
    if user.password_changed_at.timestamp() != float(changed):
        raise expired
    return user


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt="mazkira.second-step")
