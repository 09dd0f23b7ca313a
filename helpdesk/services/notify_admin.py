"""Notification settings a person changes and what managers see: per-technician channel
preferences, failed notifications and their retry. (Split from notifications.py.)"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..errors import InvalidInput, NotFound
from ..models import Notification, NotificationPreference, Technician, utcnow
from . import notify_channels as ch
from . import technicians
from .notify_channels import NotifySettings

TECH_CHANNELS = ("console", "email")


# ---- preferences ---------------------------------------------------------------------------------

def preferences_many(s: Session, technician_ids: list[int],
                     settings: NotifySettings | None = None) -> dict[int, dict[str, bool]]:
    """Each technician's channels (one query): the stored choice, else the default (console on;
    e-mail on when SMTP is configured, and never without it)."""
    settings = settings or ch.notify_settings()
    prefs = {tid: {"console": True, "email": settings.email_enabled} for tid in technician_ids}
    if technician_ids:
        for p in s.scalars(select(NotificationPreference)
                           .where(NotificationPreference.technician_id.in_(technician_ids))):
            if p.channel in prefs[p.technician_id]:
                prefs[p.technician_id][p.channel] = bool(p.enabled) and (p.channel != "email" or settings.email_enabled)
    return prefs


def preferences(s: Session, technician_id: int, settings: NotifySettings | None = None) -> dict[str, bool]:
    """This technician's channels."""
    return preferences_many(s, [technician_id], settings)[technician_id]


def set_preference(s: Session, technician_id: int, channel: str, enabled: bool) -> None:
    if channel not in TECH_CHANNELS:
        raise InvalidInput(f"bad channel {channel!r}", "Canal de notificação inválido.")
    if s.get(Technician, technician_id) is None:
        raise NotFound(f"technician {technician_id} not found", "Técnico não encontrado.")
    row = s.get(NotificationPreference, (technician_id, channel))
    if row is None:
        s.add(NotificationPreference(technician_id=technician_id, channel=channel, enabled=bool(enabled),
                                     updated_at=utcnow()))
    else:
        row.enabled, row.updated_at = bool(enabled), utcnow()
    s.flush()


# ---- managers ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FailedRow:
    id: int
    ticket_id: int
    kind: str
    channel: str
    recipient: str
    attempts: int
    last_error: str
    created_at: datetime
    recipient_name: str = "equipe (webhook)"


def failed(s: Session, limit: int = 200) -> list[FailedRow]:
    rows = s.execute(select(Notification, Technician.name)
                     .outerjoin(Technician, Technician.id == Notification.technician_id)
                     .where(Notification.state == "failed").order_by(Notification.id.desc()).limit(limit))
    return [FailedRow(n.id, n.ticket_id, n.kind, n.channel, n.recipient, n.attempts, n.last_error, n.created_at,
                      name or "equipe (webhook)") for n, name in rows]


def failed_count(s: Session) -> int:
    return int(s.scalar(select(func.count()).select_from(Notification).where(Notification.state == "failed")) or 0)


def retry(s: Session, notification_id: int, *, by: int) -> bool:
    """Put a failed notification back in the queue (a manager's "Tentar de novo")."""
    technicians.require_manager(s, by)
    result = s.execute(update(Notification).where(Notification.id == notification_id, Notification.state == "failed")
                       .values(state="pending", attempts=0, next_attempt_at=utcnow(), claim_token=None)
                       .execution_options(synchronize_session=False))
    s.flush()
    return result.rowcount == 1
