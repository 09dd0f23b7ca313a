"""The website connector's part of the LGPD consent (issue #17 part 1), bot env: only a consent
object that atende_contract.consent accepts goes on to Rasa; the widget learns the configured
policy URL and whether an LLM is enabled from the server.

Run: .venv-bot/bin/pytest -p no:cacheprovider --confcutdir tests/connectors tests/connectors/test_website_consent.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root (bot env)

from atende_contract import consent
from atende_contract.webtoken import TokenPolicy, verify_token
from connectors.website.metadata import forwarded_metadata
from connectors.website.settings import WebsiteSettings
from connectors.website.widget import serve_widget

GOOD = {"version": "web-2026-12", "policy_url": "https://vendor.example/privacidade"}
NO_TOKEN = verify_token(None, TokenPolicy(None))


def _forward(raw: Any, policy_url: str | None = None) -> dict:
    return forwarded_metadata({"consent": raw}, NO_TOKEN, client_id="c1", quick_reply=False,
                              conversation_id="web:abcdefgh12", message_id="m1", attestation_key=None,
                              policy_url=policy_url)


def test_a_good_consent_is_forwarded_under_its_key() -> None:
    assert _forward(GOOD)[consent.METADATA_KEY] == GOOD
    local = "http://localhost:8000/privacidade"
    assert _forward({"version": "web-1", "policy_url": local}, local)[consent.METADATA_KEY]["policy_url"] == local


@pytest.mark.parametrize("raw", [
    "web-2026-12", 7, None, [], {}, {"version": "a" * 41}, {"version": "texto livre"},
    {"version": "v1", "at": 1700000000}, {"version": "v1", "policy_url": "http://vendor.example/p"},
    {"version": "v1", "policy_url": "javascript:alert(1)"}, {"version": ["v1"]}, {"version": "v1", "x": {}},
])
def test_a_forged_consent_is_dropped_and_the_message_goes_on(raw: Any) -> None:
    metadata = _forward(raw)
    assert consent.METADATA_KEY not in metadata
    assert metadata["website"] == {"client_id": "c1", "quick_reply": False}


def test_no_consent_no_key() -> None:
    metadata = forwarded_metadata({}, NO_TOKEN, client_id=None, quick_reply=False, conversation_id="web:abcdefgh12",
                                  message_id="m1", attestation_key=None)
    assert consent.METADATA_KEY not in metadata


def test_settings_read_the_policy_url_and_the_llm_provider() -> None:
    plain = WebsiteSettings.from_sources({}, {})
    assert plain.policy_url is None and plain.llm_provider is None
    env = {"ATENDE_PRIVACY_POLICY_URL": "https://vendor.example/lgpd", "OPENAI_API_KEY": "sk-x"}
    configured = WebsiteSettings.from_sources({}, env)
    assert (configured.policy_url, configured.llm_provider) == ("https://vendor.example/lgpd", "OpenAI")
    assert WebsiteSettings.from_sources({}, {"ATENDE_PRIVACY_POLICY_URL": "javascript:x"}).policy_url is None


def test_widget_script_carries_the_policy_url_and_the_llm_provider(tmp_path: Path) -> None:
    (tmp_path / "widget.js").write_text("/* widget */\n")
    env = {"ATENDE_PRIVACY_POLICY_URL": "https://vendor.example/lgpd", "AZURE_OPENAI_ENDPOINT": "https://r.example",
           "AZURE_OPENAI_API_KEY": "k", "WEBCHAT_WIDGET_DIR": str(tmp_path)}
    body = serve_widget(WebsiteSettings.from_sources({}, env)).body.decode()
    head = body.splitlines()[0]
    assert '"privacyUrl":' not in head  # keys are bare, values JSON literals
    assert 'privacyUrl:"https://vendor.example/lgpd"' in head
    # the server's LLM provider comes last in Object.assign: a page cannot hide it
    assert head.endswith('window.__ATENDE_WEBCHAT__||{},{llmProvider:"Microsoft Azure OpenAI"});')
    body = serve_widget(WebsiteSettings.from_sources({}, {"WEBCHAT_WIDGET_DIR": str(tmp_path)})).body.decode()
    assert "privacyUrl:null" in body and "{llmProvider:null}" in body
