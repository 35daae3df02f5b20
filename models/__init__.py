"""SQLAlchemy models, one module per aggregate; importing this package registers them all."""

from models.auth import LoginFailure, UserSession
from models.base import Base
from models.tenancy import Business, OwnerMembership, Role, SecretaryAssignment, User

__all__ = [
    "Base",
    "Business",
    "LoginFailure",
    "OwnerMembership",
    "Role",
    "SecretaryAssignment",
    "User",
    "UserSession",
]
