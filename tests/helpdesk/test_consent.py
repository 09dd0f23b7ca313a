"""LGPD notice and consent recorded on the server (issue #17 part 1), on SQLite and PostgreSQL.

The consent object's rules (atende_contract.consent, shared by the website connector and the
action server), the notice settings and text, the once-per-conversation consent record, the
once-per-person notice, and export / erasure of both tables (the "no trace" test of
tests/helpdesk/test_privacy.py, with a consent and notices of the same person added).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from atende_contract import consent as contract
from helpdesk import consent, privacy
from helpdesk.db import session_scope
from helpdesk.models import PrivacyConsent, PrivacyNotice, utcnow
from knowledge.config import Settings as KnowledgeSettings

from .test_privacy import (  # noqa: F401 - the fixture is used by name
    CARLOS_PHONE,
    JOANA_NEEDLES,
    JOANA_PHONE,
    JOANA_WA,
    _dump,
    _load,
    _rows_of,
    _traces,
    foreign_tables,
)

GOOD = {"version": "web-2026-12-ia", "policy_url": "https://vendor.example/privacidade"}

# Forged, oversized or odd-typed consent objects: each is dropped whole.
BAD_CONSENTS: list[Any] = [
    None, "web-2026-12", 1, True, [], ["web-2026-12"], {},
    {"policy_url": "https://vendor.example/p"},  # no version
    {"version": ""}, {"version": 12}, {"version": True}, {"version": None}, {"version": ["v1"]},
    {"version": {"$ne": 1}},
    {"version": "x" * 41},  # oversized
    {"version": "Li e concordo com tudo"},  # free text
    {"version": "v1\nv2"}, {"version": "-v1"}, {"version": "v1<script>"}, {"version": "versão"},
    {"version": "v1", "accepted_at": "1999-01-01T00:00:00Z"},  # a client clock
    {"version": "v1", "text": "qualquer texto"},  # free text under another key
    {"version": "v1", "policy_url": "http://vendor.example/p"},  # neither https nor the configured one
    {"version": "v1", "policy_url": "javascript:alert(1)"},
    {"version": "v1", "policy_url": "https://"},
    {"version": "v1", "policy_url": "https://user:pw@vendor.example/p"},
    {"version": "v1", "policy_url": "https://vendor.example/a b"},
    {"version": "v1", "policy_url": "https://vendor.example/\"><script>"},
    {"version": "v1", "policy_url": "https://vendor.example/" + "a" * 500},
    {"version": "v1", "policy_url": 42},
    {"version": "v1", "policy_url": {"href": "https://vendor.example/p"}},
]


@pytest.fixture(autouse=True)
def _fresh_notice_settings(monkeypatch: pytest.MonkeyPatch) -> Any:
    for var in ("ATENDE_PRIVACY_NOTICE_TEXT", "ATENDE_PRIVACY_NOTICE_VERSION", "ATENDE_PRIVACY_POLICY_URL",
                "ATENDE_PRIVACY_NOTICE_ENABLED", "OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT",
                "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    consent.reset_notice_settings()
    yield
    consent.reset_notice_settings()


# ---- the consent object (both environments) -----------------------------------------------------

def test_a_well_formed_consent_is_kept_as_is() -> None:
    assert contract.clean(GOOD) == GOOD
    assert contract.clean({"version": "v3.1_b"}) == {"version": "v3.1_b", "policy_url": None}
    assert contract.clean({"version": "v1", "policy_url": ""}) == {"version": "v1", "policy_url": None}
    # the configured policy URL is accepted even on http (a development site)
    local = "http://127.0.0.1:8000/privacidade"
    assert contract.clean({"version": "v1", "policy_url": local}, local) == {"version": "v1", "policy_url": local}


@pytest.mark.parametrize("raw", BAD_CONSENTS, ids=lambda r: repr(r)[:40])
def test_a_forged_or_odd_consent_is_dropped(raw: Any) -> None:
    assert contract.clean(raw, "https://vendor.example/privacidade") is None


@pytest.mark.parametrize("env", [
    {}, {"OPENAI_API_KEY": "sk-x"}, {"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
    {"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com"}, {"AZURE_OPENAI_API_KEY": "k"},
    {"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", "AZURE_OPENAI_API_KEY": "k"},
    {"OPENAI_API_KEY": ""},
])
def test_llm_rule_is_the_knowledge_base_rule(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert (contract.llm_provider(env) is not None) == KnowledgeSettings.from_env().llm_enabled


# ---- notice settings ----------------------------------------------------------------------------

def test_default_notice_names_purposes_and_no_llm_when_none_is_enabled() -> None:
    settings = consent.notice_settings()
    text = settings.message()
    assert settings.enabled and settings.text_version == consent.DEFAULT_VERSION
    assert "atendimento" in text and "chamados" in text and "LGPD" in text
    assert "inteligência artificial" not in text and "Política de privacidade" not in text


def test_notice_with_llm_and_policy_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://llm.vendor.example/v1")
    monkeypatch.setenv("ATENDE_PRIVACY_POLICY_URL", "https://vendor.example/privacidade")
    monkeypatch.setenv("ATENDE_PRIVACY_NOTICE_VERSION", "2027-01")
    consent.reset_notice_settings()
    settings = consent.notice_settings()
    text = settings.message()
    assert settings.text_version == "2027-01-ia"  # the text names the LLM: a version of its own
    assert "Suas perguntas são enviadas ao provedor de inteligência artificial configurado " \
           "(llm.vendor.example)" in text
    assert text.endswith("Política de privacidade: https://vendor.example/privacidade")
    assert "\n\n" not in text  # Rasa would send each paragraph as a message of its own


def test_configured_text_with_the_policy_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATENDE_PRIVACY_NOTICE_TEXT", "Leia {policy_url} antes de continuar.")
    monkeypatch.setenv("ATENDE_PRIVACY_POLICY_URL", "https://vendor.example/lgpd")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "k")
    consent.reset_notice_settings()
    text = consent.notice_settings().message()
    assert text.startswith("Leia https://vendor.example/lgpd antes de continuar.")
    assert "(Microsoft Azure OpenAI)" in text and text.count("https://vendor.example/lgpd") == 1


@pytest.mark.parametrize("var, value", [
    ("ATENDE_PRIVACY_NOTICE_VERSION", "versão 2"), ("ATENDE_PRIVACY_NOTICE_VERSION", "v" * 38),
    ("ATENDE_PRIVACY_POLICY_URL", "javascript:alert(1)"), ("ATENDE_PRIVACY_POLICY_URL", "vendor.example/p"),
    ("ATENDE_PRIVACY_NOTICE_TEXT", "x" * 1001),
])
def test_bad_notice_settings_are_refused_by_name(var: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(consent.ConsentConfigError, match=var):
        consent.NoticeSettings.from_env()


def test_notice_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATENDE_PRIVACY_NOTICE_ENABLED", "0")
    assert not consent.NoticeSettings.from_env().enabled


# ---- website consent ----------------------------------------------------------------------------

def test_consent_recorded_once_per_conversation_and_version_with_the_server_clock(db_url: str) -> None:
    ids = _load(with_foreign=False)
    before = utcnow()
    with session_scope() as s:
        row = consent.record_consent(s, conversation_id="web:sess-joana-1", channel="website", raw=GOOD,
                                     customer_id=ids.joana)
        assert row is not None
    with session_scope() as s:  # the next session of the same conversation: nothing new
        assert consent.record_consent(s, conversation_id="web:sess-joana-1", channel="website", raw=GOOD) is None
        assert consent.record_consent(s, conversation_id="web:sess-joana-1", channel="website",
                                      raw={"version": "web-2027-01"}) is not None
    with session_scope() as s:
        rows = list(s.scalars(sa.select(PrivacyConsent).order_by(PrivacyConsent.id)))
        assert [(r.conversation_id, r.channel, r.text_version, r.policy_url, r.customer_id) for r in rows] == [
            ("web:sess-joana-1", "website", "web-2026-12-ia", "https://vendor.example/privacidade", ids.joana),
            ("web:sess-joana-1", "website", "web-2027-01", None, None)]
        assert all(before - timedelta(seconds=1) <= r.received_at <= utcnow() for r in rows)


@pytest.mark.parametrize("raw", BAD_CONSENTS[:12] + BAD_CONSENTS[-8:], ids=lambda r: repr(r)[:40])
def test_forged_consent_records_nothing(db_url: str, raw: Any) -> None:
    with session_scope() as s:
        assert consent.record_consent(s, conversation_id="web:abc", channel="website", raw=raw) is None
    with session_scope() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(PrivacyConsent)) == 0


def test_an_oversized_conversation_id_records_nothing(db_url: str) -> None:
    with session_scope() as s:
        assert consent.record_consent(s, conversation_id="web:" + "a" * 300, channel="website", raw=GOOD) is None


# ---- WhatsApp notice ----------------------------------------------------------------------------

def _claim(conversation: str, subjects: list[tuple[str, str]], version: str = "v1") -> bool:
    with session_scope() as s:
        return consent.claim_notice(s, conversation_id=conversation, channel="whatsapp",
                                    keys=consent.notice_keys(conversation, subjects), version=version)


def test_notice_once_per_person_and_version(db_url: str) -> None:
    phone = [("phone", JOANA_PHONE), ("bsuid", "BR.joana-1")]
    assert _claim(f"whatsapp:{JOANA_PHONE}", phone)
    assert not _claim(f"whatsapp:{JOANA_PHONE}", phone)  # the next message
    # the same person hiding the phone behind a username later: the BSUID was recorded too
    assert not _claim("whatsapp:BR.joana-1", [("bsuid", "BR.joana-1")])
    assert _claim(f"whatsapp:{JOANA_PHONE}", phone, version="v2")  # a new text version
    # anonymous senders (no attestation): once per conversation
    assert _claim("whatsapp:anon-1", []) and not _claim("whatsapp:anon-1", []) and _claim("whatsapp:anon-2", [])
    assert _claim(f"whatsapp:{CARLOS_PHONE}", [("phone", CARLOS_PHONE)])
    with session_scope() as s:
        keys = sorted(s.scalars(sa.select(PrivacyNotice.recipient).where(PrivacyNotice.text_version == "v1")))
    assert keys == sorted([f"phone:{JOANA_PHONE}", "bsuid:BR.joana-1", f"conversation:whatsapp:{JOANA_PHONE}",
                           "conversation:whatsapp:anon-1", "conversation:whatsapp:anon-2",
                           f"phone:{CARLOS_PHONE}", f"conversation:whatsapp:{CARLOS_PHONE}"])


def test_notice_keys_ignore_unknown_kinds_and_are_bounded() -> None:
    keys = consent.notice_keys("whatsapp:1", [("email", "a@b.c"), ("phone", "1"), ("phone", "1"), ("lid", "")])
    assert keys == ["phone:1", "conversation:whatsapp:1"]
    assert all(len(k) <= 240 for k in consent.notice_keys("whatsapp:" + "9" * 300, [("bsuid", "b" * 300)]))


# ---- export and erasure -------------------------------------------------------------------------

def _load_with_consents() -> Any:
    ids = _load()
    with session_scope() as s:
        consent.record_consent(s, conversation_id="web:sess-joana-1", channel="website", raw=GOOD,
                               customer_id=ids.joana)
        consent.record_consent(s, conversation_id="web:sess-carlos", channel="website", raw=GOOD)
        for conv, subjects in ((f"whatsapp:{JOANA_WA}", [("phone", JOANA_WA), ("bsuid", "BR.joana-1")]),
                               (f"whatsapp:{CARLOS_PHONE}", [("phone", CARLOS_PHONE)])):
            assert consent.claim_notice(s, conversation_id=conv, channel="whatsapp", version="v1",
                                        keys=consent.notice_keys(conv, subjects))
        # the BSUID linked to Joana's record (a username-only conversation of hers)
        from helpdesk.models import Contact
        s.add(Contact(customer_id=ids.joana, kind="bsuid", value="BR.joana-1", name="WhatsApp"))
    return ids


def test_export_lists_consents_and_notices(db_url: str, foreign_tables: None) -> None:
    ids = _load_with_consents()
    with session_scope() as s:
        doc = json.loads(privacy.to_json(privacy.export(s, "customer", str(ids.joana), actor="teste")))
    assert [(c["conversation_id"], c["text_version"], c["policy_url"]) for c in doc["privacy_consents"]] == [
        ("web:sess-joana-1", "web-2026-12-ia", "https://vendor.example/privacidade")]
    assert sorted(n["recipient"] for n in doc["privacy_notices"]) == sorted(
        [f"phone:{JOANA_WA}", "bsuid:BR.joana-1", f"conversation:whatsapp:{JOANA_WA}"])
    sources = {x["store"]: x["rows"] for x in doc["sources"]}
    assert sources["privacy_consents"] == 1 and sources["privacy_notices"] == 3
    assert "carlos" not in json.dumps(doc["privacy_notices"] + doc["privacy_consents"]).lower()


def test_erase_removes_consents_and_notices_and_leaves_no_trace(db_url: str, foreign_tables: None) -> None:
    ids = _load_with_consents()
    carlos_before = (_rows_of("privacy_consents", "conversation_id = 'web:sess-carlos'"),
                     _rows_of("privacy_notices", "conversation_id = :c", c=f"whatsapp:{CARLOS_PHONE}"))
    with session_scope() as s:
        held = privacy.erase(s, "phone", JOANA_PHONE, actor="dpo@empresa")
    assert held["privacy_consents"] == 1 and held["privacy_notices"] == 3
    assert _traces(JOANA_NEEDLES + ["BR.joana-1"]) == []
    assert _rows_of("privacy_consents", "customer_id = :i", i=ids.joana) == []
    assert (_rows_of("privacy_consents", "conversation_id = 'web:sess-carlos'"),
            _rows_of("privacy_notices", "conversation_id = :c", c=f"whatsapp:{CARLOS_PHONE}")) == carlos_before
    # the person writing again is told again
    assert _claim(f"whatsapp:{JOANA_WA}", [("phone", JOANA_WA)], version="v1")


def test_erase_of_consents_is_rolled_back_with_the_rest(db_url: str, foreign_tables: None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _load_with_consents()
    before = _dump()

    def boom(*_a: Any) -> None:
        raise RuntimeError("disk full")

    steps = list(privacy.ERASE_STEPS)
    steps.insert(steps.index(consent.erase_rows) + 1, boom)  # after the consents were deleted
    monkeypatch.setattr(privacy, "ERASE_STEPS", tuple(steps))
    with pytest.raises(RuntimeError), session_scope() as s:
        privacy.erase(s, "customer", str(ids.joana))
    assert _dump() == before


def test_a_conversation_known_only_by_its_consent_is_found(db_url: str) -> None:
    with session_scope() as s:
        consent.record_consent(s, conversation_id="web:visitante-1", channel="website", raw=GOOD)
    with session_scope() as s:
        doc = privacy.export(s, "conversation", "web:visitante-1", actor="teste")
        assert doc["customer"] is None and len(doc["privacy_consents"]) == 1
    with session_scope() as s:
        privacy.erase(s, "conversation", "web:visitante-1", actor="teste")
    assert _rows_of("privacy_consents", "1 = 1") == []


def test_migration_tables_exist(db_url: str) -> None:
    from helpdesk.db import get_engine

    names = set(sa.inspect(get_engine()).get_table_names())
    assert {"privacy_consents", "privacy_notices"} <= names
    # the unique keys are the database's, not only the code's
    with session_scope() as s:
        s.add(PrivacyNotice(recipient="phone:1", text_version="v1", channel="whatsapp", conversation_id="whatsapp:1",
                            sent_at=datetime(2026, 1, 1)))
    with pytest.raises(sa.exc.IntegrityError), session_scope() as s:
        s.add(PrivacyNotice(recipient="phone:1", text_version="v1", channel="whatsapp", conversation_id="whatsapp:2",
                            sent_at=datetime(2026, 1, 1)))
