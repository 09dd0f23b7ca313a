"""LGPD notice and consent recorded on the server (issue #17 part 1).

- The website widget's consent (text version + policy URL, cleaned by
  :func:`atende_contract.consent.clean` in the connector and again here) becomes one
  :class:`~helpdesk.models.PrivacyConsent` row per conversation and text version, stamped with
  the server's clock, with the verified customer if any (:func:`record_consent`).
- The WhatsApp privacy notice (:class:`NoticeSettings`, from ``ATENDE_PRIVACY_NOTICE_*`` and
  ``ATENDE_PRIVACY_POLICY_URL``, read once) is sent once per person and text version:
  :func:`claim_notice` records it under every key the person is known by (the attested phone,
  BSUID or LID and the conversation), and says whether it is due.
- :func:`export_rows` / :func:`erase_rows` / :func:`count_rows` serve helpdesk/privacy.py.

The text version of a notice whose text names the LLM provider ends in ``-ia``
(:data:`atende_contract.consent.LLM_SUFFIX`): switching an LLM on makes a new version, so every
person is told again.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping

from atende_contract import consent as contract
from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import PrivacyConsent, PrivacyNotice, utcnow

DEFAULT_VERSION = "2026-12"
MAX_NOTICE_CHARS = 1000
POLICY_PLACEHOLDER = "{policy_url}"
DEFAULT_TEXT_PT = (
    "Aviso de privacidade: usamos seu número, seu nome e as mensagens desta conversa para prestar o "
    "atendimento (suporte técnico e comercial), abrir e acompanhar chamados, gerar relatórios internos "
    "e melhorar nossa base de conhecimento, conforme a LGPD (Lei 13.709/2018). Você pode pedir acesso, "
    "correção ou exclusão dos seus dados a qualquer momento."
)
LLM_SENTENCE_PT = ("Suas perguntas são enviadas ao provedor de inteligência artificial configurado ({provider}) "
                   "para gerar as respostas.")
POLICY_LINE_PT = "Política de privacidade: {url}"
# Recipient keys: the attested identity kinds (atende_contract.attestation) and the conversation.
CONVERSATION_KEY = "conversation"
WHATSAPP_KEY_KINDS = ("phone", "bsuid", "lid")
_OFF = {"0", "false", "no", "off", "nao", "não"}


class ConsentConfigError(ValueError):
    """A privacy notice setting the action server must not use."""


@dataclass(frozen=True)
class NoticeSettings:
    enabled: bool = True
    text: str = DEFAULT_TEXT_PT
    version: str = DEFAULT_VERSION
    policy_url: str | None = None
    llm_provider: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "NoticeSettings":
        env = dict(os.environ if env is None else env)
        text = (env.get("ATENDE_PRIVACY_NOTICE_TEXT") or "").strip() or DEFAULT_TEXT_PT
        if len(text) > MAX_NOTICE_CHARS:
            raise ConsentConfigError(f"ATENDE_PRIVACY_NOTICE_TEXT has {len(text)} characters; "
                                     f"at most {MAX_NOTICE_CHARS}")
        version = (env.get("ATENDE_PRIVACY_NOTICE_VERSION") or "").strip() or DEFAULT_VERSION
        if not contract.valid_version(version) or len(version) > contract.MAX_VERSION - len(contract.LLM_SUFFIX):
            raise ConsentConfigError("ATENDE_PRIVACY_NOTICE_VERSION must be a short token "
                                     "(letters, digits, '.', '_' or '-', at most 37 characters)")
        raw_url = (env.get(contract.POLICY_URL_ENV) or "").strip()
        url = contract.configured_policy_url(env)
        if raw_url and url is None:
            raise ConsentConfigError(f"{contract.POLICY_URL_ENV} must be an http(s) URL")
        enabled = (env.get("ATENDE_PRIVACY_NOTICE_ENABLED") or "1").strip().lower() not in _OFF
        return cls(enabled=enabled, text=text, version=version, policy_url=url,
                   llm_provider=contract.llm_provider(env))

    @property
    def text_version(self) -> str:
        """The version recorded: the configured one, ``-ia`` when the text names the LLM provider."""
        return self.version + (contract.LLM_SUFFIX if self.llm_provider else "")

    def message(self) -> str:
        """The notice as the customer reads it (pt-BR)."""
        body = self.text
        if POLICY_PLACEHOLDER in body:
            body = body.replace(POLICY_PLACEHOLDER, self.policy_url or "")
        parts = [body]
        if self.llm_provider:
            parts.append(LLM_SENTENCE_PT.format(provider=self.llm_provider))
        if self.policy_url and self.policy_url not in body:
            parts.append(POLICY_LINE_PT.format(url=self.policy_url))
        # one line each, never a blank line: Rasa sends each paragraph as a message of its own
        return "\n".join(parts)


@lru_cache(maxsize=1)
def notice_settings() -> NoticeSettings:
    return NoticeSettings.from_env()


def reset_notice_settings() -> None:
    """Forget the cached settings (tests change the environment and call this)."""
    notice_settings.cache_clear()


# ---- website consent ----------------------------------------------------------------------------

def record_consent(s: Session, *, conversation_id: str, channel: str, raw: Any,
                   customer_id: int | None = None) -> PrivacyConsent | None:
    """Record a consent the connector forwarded; None when it is malformed or already recorded.

    ``raw`` is cleaned again (the contract's rules); the time is the server's.
    """
    cleaned = contract.clean(raw, notice_settings().policy_url)
    if cleaned is None or not conversation_id or len(conversation_id) > 200:
        return None
    existing = s.scalar(select(PrivacyConsent.id).where(PrivacyConsent.conversation_id == conversation_id,
                                                        PrivacyConsent.text_version == cleaned["version"]))
    if existing is not None:
        return None
    row = PrivacyConsent(conversation_id=conversation_id, channel=channel[:20], text_version=cleaned["version"],
                         policy_url=cleaned["policy_url"], received_at=utcnow(), customer_id=customer_id)
    try:
        with s.begin_nested():  # a concurrent turn of the same conversation recorded it first
            s.add(row)
            s.flush()
    except IntegrityError:
        return None
    return row


# ---- WhatsApp notice ----------------------------------------------------------------------------

def notice_keys(conversation_id: str, subjects: Iterable[tuple[str, str]] = ()) -> list[str]:
    """The keys a notice is recorded under: each attested WhatsApp identity, then the conversation."""
    keys = [f"{kind}:{value}" for kind, value in subjects if kind in WHATSAPP_KEY_KINDS and value]
    keys.append(f"{CONVERSATION_KEY}:{conversation_id}")
    return [k[:240] for k in dict.fromkeys(keys)]


def notice_sent(s: Session, keys: list[str], version: str) -> bool:
    return s.scalar(select(PrivacyNotice.id).where(PrivacyNotice.recipient.in_(keys),
                                                   PrivacyNotice.text_version == version).limit(1)) is not None


def claim_notice(s: Session, *, conversation_id: str, channel: str, keys: list[str], version: str) -> bool:
    """True when the notice of ``version`` is due for this person: it is then recorded under every
    key (the caller sends it). False when any key already got it (or a concurrent turn claimed it)."""
    if not keys or notice_sent(s, keys, version):
        return False
    now = utcnow()
    try:
        with s.begin_nested():
            for key in keys:
                s.add(PrivacyNotice(recipient=key, text_version=version, channel=channel[:20],
                                    conversation_id=conversation_id[:200], sent_at=now))
            s.flush()
    except IntegrityError:
        return False
    return True


# ---- export and erasure (helpdesk/privacy.py) ---------------------------------------------------

def _scope_keys(scope: Any) -> list[str]:
    keys = {f"phone:{p}" for p in scope.phones}
    keys |= {f"{kind}:{w}" for w in scope.wa_ids for kind in WHATSAPP_KEY_KINDS}
    keys |= {f"{CONVERSATION_KEY}:{c}" for c in scope.conversations}
    customer = scope.customer
    if customer is not None:
        keys |= {f"{c.kind}:{c.value}" for c in customer.contacts if c.kind in WHATSAPP_KEY_KINDS}
    return sorted(keys)


def _consent_filter(scope: Any) -> list[Any]:
    conds = []
    if scope.conversations:
        conds.append(PrivacyConsent.conversation_id.in_(sorted(scope.conversations)))
    if scope.customer is not None:
        conds.append(PrivacyConsent.customer_id == scope.customer.id)
    return conds


def _notice_filter(scope: Any) -> list[Any]:
    conds = [PrivacyNotice.recipient.in_(_scope_keys(scope))]
    if scope.conversations:
        conds.append(PrivacyNotice.conversation_id.in_(sorted(scope.conversations)))
    return conds


def _consents(s: Session, scope: Any) -> list[PrivacyConsent]:
    conds = _consent_filter(scope)
    return list(s.scalars(select(PrivacyConsent).where(or_(*conds)).order_by(PrivacyConsent.id))) if conds else []


def _notices(s: Session, scope: Any) -> list[PrivacyNotice]:
    return list(s.scalars(select(PrivacyNotice).where(or_(*_notice_filter(scope))).order_by(PrivacyNotice.id)))


def _as_dict(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


def count_rows(s: Session, scope: Any) -> dict[str, int]:
    return {"privacy_consents": len(_consents(s, scope)), "privacy_notices": len(_notices(s, scope))}


def export_rows(s: Session, scope: Any) -> dict[str, list[dict[str, Any]]]:
    return {"privacy_consents": [_as_dict(r) for r in _consents(s, scope)],
            "privacy_notices": [_as_dict(r) for r in _notices(s, scope)]}


def erase_rows(s: Session, scope: Any, pseudo: Any = None) -> None:
    """Delete the person's consents and notices (an ERASE_STEPS step; before the contacts go)."""
    conds = _consent_filter(scope)
    if conds:
        s.execute(delete(PrivacyConsent).where(or_(*conds)).execution_options(synchronize_session=False))
    s.execute(delete(PrivacyNotice).where(or_(*_notice_filter(scope))).execution_options(synchronize_session=False))
    s.flush()
