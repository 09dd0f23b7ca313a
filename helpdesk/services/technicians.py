"""Technicians (console users): argon2-hashed passwords, roles, login throttling, session generations.

Login (``authenticate``):
- Unknown, inactive and known accounts take the same path: one argon2 verification (against a
  dummy hash when there is no usable account) and the same "E-mail ou senha incorretos." message.
- Throttling is an exponential backoff, never a lock (``LoginThrottle``): after
  ``CONSOLE_LOGIN_MAX_FAILURES`` failures a client (and an account) must wait 1, 2, 4, ... seconds,
  at most ``CONSOLE_LOGIN_LOCK_MINUTES``, before the next attempt is even checked. A stranger who
  fails on a manager's account cannot keep the manager out: the account's backoff never applies to
  a client the account has logged in from, and applies to another client only once that client
  failed on the account itself (or the account is under a wide attack, see ``LoginThrottle``).

Sessions: ``session_generation`` is bumped by a password reset and a deactivation; the console
compares it (and re-reads role and ``active``) on every rerun through ``session_user``.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..config import get_settings
from ..errors import AccountLocked, AuthenticationFailed, DuplicateCustomer, InvalidInput, PermissionDenied
from ..models import ROLES, Technician
from .customers import normalize_email

_hasher = PasswordHasher()
MIN_PASSWORD = 8
TRUST_SECONDS = 30 * 24 * 3600  # how long a successful login exempts its client from the account's backoff
WIDE_ATTACK_FACTOR = 10  # account failures, in multiples of the free ones, that apply its backoff to every new client
SESSION_ENDED = "Sua sessão foi encerrada porque a senha foi redefinida ou o acesso mudou. Entre novamente."
ACCOUNT_INACTIVE = "Sua conta foi desativada. Fale com um gestor."

_dummy_hash: str | None = None


def _dummy() -> str:
    """A hash with the same parameters as real ones, so unknown accounts cost one real verification."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hash


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


# ---- login throttling ------------------------------------------------------------------------------

@dataclass
class _Count:
    failures: int
    last: float  # clock time of the latest failure


def backoff_seconds(failures: int, free: int, cap_seconds: float) -> float:
    """How long to wait after ``failures`` consecutive failures: 0 for the first ``free - 1``, then
    1, 2, 4, ... seconds, never more than ``cap_seconds``."""
    if failures < max(free, 1):
        return 0.0
    return float(min(2 ** min(failures - max(free, 1), 40), cap_seconds))


class LoginThrottle:
    """Failure counters of one console process, per client, per account and per (account, client).

    An attempt always waits for its client's backoff. It also waits for the account's backoff
    unless the client logged into that account before (within ``TRUST_SECONDS``), and only if the
    client has itself failed on that account or the account has failed ``WIDE_ATTACK_FACTOR`` times
    the free attempts (guessing spread over many addresses). Refused attempts are not counted, so
    waits do not grow while no password is checked, and a correct password after the wait logs in.
    Counters live in memory (bounded, least recently used dropped first), one set per process.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 50_000) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._counts: OrderedDict[tuple[str, ...], _Count] = OrderedDict()
        self._trusted: OrderedDict[tuple[str, str], float] = OrderedDict()

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._trusted.clear()

    @staticmethod
    def _policy() -> tuple[int, float]:
        settings = get_settings()
        return max(1, settings.login_max_failures), max(1, settings.login_lock_minutes) * 60.0

    def _remaining(self, key: tuple[str, ...], now: float, free: int, cap: float) -> float:
        count = self._counts.get(key)
        if count is None:
            return 0.0
        return max(0.0, count.last + backoff_seconds(count.failures, free, cap) - now)

    def _is_trusted(self, account: str, client: str, now: float) -> bool:
        since = self._trusted.get((account, client))
        return since is not None and now - since < TRUST_SECONDS

    def wait_seconds(self, account: str, client: str) -> float:
        """Seconds before this client may try this account again (0: try now)."""
        free, cap = self._policy()
        now = self.clock()
        with self._lock:
            wait = self._remaining(("client", client), now, free, cap)
            if not self._is_trusted(account, client, now):
                per_account = self._counts.get(("account", account))
                wide = per_account is not None and per_account.failures >= WIDE_ATTACK_FACTOR * free
                if wide or ("pair", account, client) in self._counts:
                    wait = max(wait, self._remaining(("account", account), now, free, cap))
            return wait

    def failed(self, account: str, client: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (("client", client), ("account", account), ("pair", account, client)):
                count = self._counts.pop(key, None) or _Count(0, now)
                count.failures += 1
                count.last = now
                self._counts[key] = count
            while len(self._counts) > self.max_keys:
                self._counts.popitem(last=False)

    def succeeded(self, account: str, client: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (("client", client), ("account", account), ("pair", account, client)):
                self._counts.pop(key, None)
            self._trusted.pop((account, client), None)
            self._trusted[(account, client)] = now
            while len(self._trusted) > self.max_keys:
                self._trusted.popitem(last=False)


login_throttle = LoginThrottle()


def _wait_text(seconds: float) -> str:
    whole = max(1, int(seconds + 0.999))
    if whole < 120:
        return f"{whole} segundo{'s' if whole > 1 else ''}"
    return f"{(whole + 59) // 60} minutos"


def authenticate(s: Session, email: str, password: str, *, client: str = "local") -> Technician:
    """Check a login from ``client`` (the caller's address). Raises AuthenticationFailed (unknown
    account, inactive account or wrong password: one message, one argon2 verification) or
    AccountLocked while the backoff of this client or account says to wait; writes nothing on failure."""
    dummy = _dummy()  # made once, on the first login of any kind, so no path pays for it alone
    account = (email or "").strip().lower()[:200]
    client = (client or "local")[:100]
    wait = login_throttle.wait_seconds(account, client)
    if wait > 0:
        raise AccountLocked(f"login backoff for {account!r} from {client}: {wait:.1f} s",
                            f"Muitas tentativas de login. Aguarde {_wait_text(wait)} e tente novamente.")
    tech = s.scalar(select(Technician).where(Technician.email == account)) if account else None
    usable = tech is not None and tech.active
    try:
        _hasher.verify(tech.password_hash if usable else dummy, password or "")  # type: ignore[union-attr]
        ok = usable
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or tech is None:
        login_throttle.failed(account, client)
        raise AuthenticationFailed("bad login")
    login_throttle.succeeded(account, client)
    if _hasher.check_needs_rehash(tech.password_hash):
        tech.password_hash = _hasher.hash(password)
    s.flush()
    return tech


# ---- sessions, roles, accounts ---------------------------------------------------------------------

def session_user(s: Session, technician_id: int, generation: int) -> Technician:
    """The technician behind a console session, read again now: PermissionDenied (with the pt-BR
    reason) if the account is gone or inactive, or the session is older than a password reset or a
    deactivation. The caller takes role and name from the result, never from the session."""
    tech = s.get(Technician, technician_id)
    if tech is None or not tech.active:
        raise PermissionDenied(f"technician {technician_id} inactive", ACCOUNT_INACTIVE)
    if (tech.session_generation or 0) != generation:
        raise PermissionDenied(f"technician {technician_id} session generation changed", SESSION_ENDED)
    return tech


def require_role(tech: Technician, role: str) -> None:
    if role == "manager" and tech.role != "manager":
        raise PermissionDenied(f"{tech.email} is not a manager")


def require_manager(s: Session, technician_id: int) -> Technician:
    """The acting user, read from the database, who must be an active manager."""
    tech = s.get(Technician, technician_id)
    if tech is None or not tech.active:
        raise PermissionDenied("user gone")
    require_role(tech, "manager")
    return tech


def list_all(s: Session, active_only: bool = True) -> list[Technician]:
    stmt = select(Technician).order_by(Technician.name)
    if active_only:
        stmt = stmt.where(Technician.active.is_(True))
    return list(s.scalars(stmt))


def _get(s: Session, technician_id: int) -> Technician:
    tech = s.get(Technician, technician_id)
    if tech is None:
        raise InvalidInput("unknown technician", "Usuário não encontrado.")
    return tech


def _end_sessions(tech: Technician) -> None:
    tech.session_generation = (tech.session_generation or 0) + 1


def set_password(s: Session, technician_id: int, password: str) -> None:
    """A new password; every open console session of the technician ends."""
    tech = _get(s, technician_id)
    tech.password_hash = hash_password(password)
    _end_sessions(tech)
    s.flush()


def _other_active_managers(s: Session, technician_id: int) -> int:
    return int(s.scalar(select(func.count()).select_from(Technician).where(
        Technician.role == "manager", Technician.active.is_(True), Technician.id != technician_id)) or 0)


def set_active(s: Session, technician_id: int, active: bool, *, by: int) -> Technician:
    """Activate or deactivate an account (``by`` is the acting manager). Deactivating ends every
    open session of the account; nobody deactivates their own account or the last active manager."""
    tech = _get(s, technician_id)
    if not active:
        if technician_id == by:
            raise InvalidInput("self deactivation", "Você não pode desativar a sua própria conta.")
        if tech.role == "manager" and tech.active and _other_active_managers(s, technician_id) == 0:
            raise InvalidInput("last manager", "Não é possível desativar o último gestor ativo.")
        if tech.active:
            _end_sessions(tech)
    tech.active = active
    s.flush()
    return tech


def set_role(s: Session, technician_id: int, role: str, *, by: int) -> Technician:
    """Change an account's role; open sessions see the new role at their next rerun."""
    if role not in ROLES:
        raise InvalidInput(f"bad role {role!r}", "Perfil inválido (technician ou manager).")
    tech = _get(s, technician_id)
    if role != "manager" and tech.role == "manager":
        if technician_id == by:
            raise InvalidInput("self demotion", "Você não pode tirar o seu próprio perfil de gestor.")
        if tech.active and _other_active_managers(s, technician_id) == 0:
            raise InvalidInput("last manager", "Não é possível tirar o perfil do último gestor ativo.")
    tech.role = role
    s.flush()
    return tech
