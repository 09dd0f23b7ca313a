"""Atende knowledge base: documentation sources -> index -> grounded answers with sources.

Public interface (docs/contracts.md): ``answer(question, products=None) -> Answer``.
"""
from .answer import NOT_FOUND_ANSWER, render_sources
from .models import Answer, Source
from .runtime import answer  # bound last: `knowledge.answer` is the function, not the submodule

__all__ = ["Answer", "Source", "answer", "render_sources", "NOT_FOUND_ANSWER"]
