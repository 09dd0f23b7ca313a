"""Shared by the username tests (test_whatsapp_username*.py): Meta's username and BSUID fixtures
(fixtures/whatsapp_username, README names the pages) and the attestation the worker signs for a
parsed item, verified back."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root (bot env)

from atende_contract import attestation  # noqa: E402
from connectors.whatsapp.identity import attest_delivery, conversation_id  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "whatsapp_username"
KEY = b"k" * 32
PHONE = "5511987654321"


def fixture(name: str) -> Dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def verified_identity(item: Any, conversation_address: Optional[str] = None) -> attestation.Identity:
    """What the worker attests for a parsed item (connectors/whatsapp/worker.py calls the same
    attest_delivery) in the conversation of ``conversation_address`` (default: the item's own)."""
    conv_address = conversation_address or item.address
    conv = conversation_id(conv_address)
    proof = attest_delivery(KEY, conv, conv_address, item.address, item.item_id, item.metadata["whatsapp"])
    verdict = attestation.verify(KEY, proof, conversation_id=conv, channel="whatsapp", message_id=item.item_id)
    assert verdict.ok, verdict.reason
    assert verdict.identity is not None
    return verdict.identity
