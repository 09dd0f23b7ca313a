"""Atende knowledge base: documentation sources -> index -> grounded answers with sources.

Public interface (docs/contracts.md): ``answer(question, products=None) -> Answer``.
"""
from .models import Answer, Source
from .runtime import answer
from .answer import NOT_FOUND_ANSWER

__all__ = ["Answer", "Source", "answer", "NOT_FOUND_ANSWER"]
