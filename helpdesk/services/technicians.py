"""Technicians (console users): argon2-hashed passwords, roles, lock after repeated failures."""
from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import get_settings
from ..errors import AccountLocked, AuthenticationFailed, DuplicateCustomer, InvalidInput, PermissionDenied
from ..models import ROLES, Technician, utcnow
from .customers import normalize_email

_hasher = PasswordHasher()
MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise InvalidInput("password too short", f"A senha precisa ter pelo menos {MIN_PASSWORD} caracteres.")
    return _hasher.hash(password)


def create(s: Session, *, name: str, email: str, password: str, role: str = "technician",
           level: int = 1) -> Technician:
    if role not in ROLES:
        raise InvalidInput(f"bad role {role!r}", "Perfil inválido (technician ou manager).")
    if not (name or "").strip():
        raise InvalidInput("name required", "Informe o nome.")
    addr = normalize_email(email)
    if s.scalar(select(Technician.id).where(Technician.email == addr)) is not None:
        raise DuplicateCustomer(f"technician {addr} exists", "Já existe um usuário com este e-mail.")
    tech = Technician(name=name.strip(), email=addr, password_hash=hash_password(password),
                      role=role, level=level)
    s.add(tech)
    s.flush()
    return tech


def authenticate(s: Session, email: str, password: str) -> Technician:
    """Check a login. Counts failures and locks the account after too many."""
    settings = get_settings()
    tech = s.scalar(select(Technician).where(Technician.email == (email or "").strip().lower()))
    if tech is None or not tech.active:
        raise AuthenticationFailed("unknown user")
    now = utcnow()
    if tech.locked_until and tech.locked_until > now:
        raise AccountLocked(f"{tech.email} locked until {tech.locked_until}")
    try:
        _hasher.verify(tech.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        tech.failed_logins += 1
        if tech.failed_logins >= settings.login_max_failures:
            tech.locked_until = now + timedelta(minutes=settings.login_lock_minutes)
            tech.failed_logins = 0
        # The failure count must survive the error that follows (callers roll back on errors),
        # otherwise the lock could never trigger: this is the one service that commits.
        s.commit()
        raise AuthenticationFailed("bad password")
    tech.failed_logins = 0
    tech.locked_until = None
    if _hasher.check_needs_rehash(tech.password_hash):
        tech.password_hash = _hasher.hash(password)
    s.flush()
    return tech


def require_role(tech: Technician, role: str) -> None:
    if role == "manager" and tech.role != "manager":
        raise PermissionDenied(f"{tech.email} is not a manager")


def list_all(s: Session, active_only: bool = True) -> list[Technician]:
    stmt = select(Technician).order_by(Technician.name)
    if active_only:
        stmt = stmt.where(Technician.active.is_(True))
    return list(s.scalars(stmt))


def set_password(s: Session, technician_id: int, password: str) -> None:
    tech = s.get(Technician, technician_id)
    if tech is None:
        raise InvalidInput("unknown technician", "Usuário não encontrado.")
    tech.password_hash = hash_password(password)
    s.flush()
