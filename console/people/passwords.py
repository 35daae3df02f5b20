"""Password hashing with argon2id."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from console.base.errors import Invalid

MIN_LENGTH = 8
MAX_LENGTH = 1024

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


@cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """Verified when the account does not exist, so an unknown e-mail costs the same time; made
    on the first sign-in, not when the module loads (every `mazkira` command would pay for it)."""
    return hasher.hash("mazkira-timing-equaliser")


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise Invalid(
            "The password must be at least %(n)s characters.", field="password", n=MIN_LENGTH
        )
    if len(password) > MAX_LENGTH:
        raise Invalid(
            "The password may be at most %(n)s characters.", field="password", n=MAX_LENGTH
        )


def hash_password(password: str) -> str:
    check_policy(password)
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return (
            _hasher.verify(stored_hash or _dummy_hash(_hasher), password)
            and stored_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
