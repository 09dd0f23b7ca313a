"""Follow-up questions: a short or elliptical question ("e no TEF?") continues the previous one.

Pure functions over text and the module catalog (no Rasa): the action resolves the question before
retrieving, and bench/followup_eval.py measures the resolver on knowledge/eval/followups.jsonl.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from helpdesk.db import session_scope
from helpdesk.services import catalog

logger = logging.getLogger(__name__)

# A short or elliptical question ("e no TEF?") continues the previous one: the retrieval query is
# the previous question, with its module terms replaced by the module the new text names, plus the
# new text when it adds more than connectors and the module. Deterministic: no LLM call.
FOLLOWUP_PREFIXES = ("e ", "mas e ", "e no ", "e na ", "e pra ", "e para ", "e o ", "e a ", "e se ")
SHORT_WORDS = 4
_FILLER = frozenset("e mas no na nos nas o a os as do da dos das de pra pro para em um uma ao com se "
                    "quanto ja tambem entao".split())
# common conjugated forms a short question may carry (infinitives, gerunds and participles are
# recognised by their endings)
_VERBS = frozenset("eh esta estao tem tenho temos faz faco fazer pode posso podemos consigo deu "
                   "aparece apareceu sai saiu abre abro fecha fecho instalo instala configuro configura "
                   "emito emite cancelo cancela atualizo atualiza funciona funcionou travou trava ficou "
                   "fica preciso precisa quero quer vai vou sei sabe existe ha".split())
_VERB_ENDINGS = ("ar", "er", "ir", "ando", "endo", "indo", "ado", "ido", "ada", "ida")
_CODE = re.compile(r"\b[a-z]{2,}-?\d{2,}\b|\d{3,}")
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
CATALOG_FILE = Path(__file__).resolve().parent.parent / "helpdesk" / "demo_data" / "catalog.yml"


def fold(text: str) -> str:
    """Lowercase without accents, one output character per input character."""
    return "".join(_fold_char(c) for c in text or "")


def _fold_char(c: str) -> str:
    base = "".join(x for x in unicodedata.normalize("NFKD", c) if not unicodedata.combining(x)).lower()
    return base if len(base) == 1 else c.lower()[:1] or c


def _has_verb(words: list[str]) -> bool:
    return any(w in _VERBS or (len(w) > 3 and w.endswith(_VERB_ENDINGS)) for w in words)


def is_followup(text: str) -> bool:
    """Elliptical: starts like "e no …", "mas e …", or has at most 4 words, no verb and no code."""
    folded = " ".join(_WORD.findall(fold(text)))
    if not folded:
        return False
    if any((folded + " ").startswith(p) for p in FOLLOWUP_PREFIXES):
        return True
    words = folded.split()
    return len(words) <= SHORT_WORDS and not _has_verb(words) and not _CODE.search(folded)


@dataclass(frozen=True)
class ModuleTerms:
    code: str
    name: str
    terms: tuple[str, ...]  # folded code, name and synonyms, longest first


def _terms(rows: Iterable[tuple[str, str, Iterable[str]]]) -> list[ModuleTerms]:
    out = []
    for code, name, synonyms in rows:
        terms = {fold(t).strip() for t in (code, name, *synonyms) if fold(t).strip()}
        out.append(ModuleTerms(code, name, tuple(sorted(terms, key=len, reverse=True))))
    return out


def file_modules(path: Path = CATALOG_FILE) -> list[ModuleTerms]:
    """Module names and synonyms of a catalog file (the shipped one by default)."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return _terms((m["code"], m.get("name") or m["code"], m.get("synonyms") or [])
                  for p in data.get("products") or [] for m in p.get("modules") or [])


def catalog_modules() -> list[ModuleTerms]:
    """Module names and synonyms from the catalog (database), else helpdesk/demo_data/catalog.yml."""
    rows: list[tuple[str, str, Iterable[str]]] = []
    try:
        with session_scope() as s:
            rows = [(m.code, m.name, list(m.synonyms or [])) for m in catalog.modules(s)]
    except Exception:  # noqa: BLE001 - no database: the shipped catalog file
        logger.warning("catalog unavailable; follow-ups use %s", CATALOG_FILE)
    if rows:
        return _terms(rows)
    try:
        return file_modules()
    except Exception:  # noqa: BLE001
        logger.exception("cannot read %s", CATALOG_FILE)
        return []


def _mentions(folded: str, modules: list[ModuleTerms]) -> list[tuple[int, int, ModuleTerms]]:
    """Non-overlapping module mentions (whole words, longest term first), in text order."""
    found: list[tuple[int, int, ModuleTerms]] = []
    candidates = sorted(((t, m) for m in modules for t in m.terms), key=lambda tm: len(tm[0]), reverse=True)
    for term, module in candidates:
        for match in re.finditer(r"(?<![a-z0-9])" + re.escape(term) + r"(?![a-z0-9])", folded):
            s, e = match.span()
            if all(e <= fs or s >= fe for fs, fe, _ in found):
                found.append((s, e, module))
    return sorted(found, key=lambda f: f[0])


def resolve_followup(question: str, previous: str | None, modules: list[ModuleTerms] | None = None) -> str:
    """The retrieval query for `question` in the conversation (see the comment above)."""
    previous = (previous or "").strip()
    if not previous or not is_followup(question) or fold(previous).strip() == fold(question).strip():
        return question
    modules = catalog_modules() if modules is None else modules
    new_folded = fold(question)
    named = _mentions(new_folded, modules)
    rewritten = previous
    if named:
        target = named[0][2]
        # replace from the end so earlier offsets stay valid (fold keeps one char per char)
        for s, e, module in reversed(_mentions(fold(previous), modules)):
            if module.code != target.code:
                rewritten = rewritten[:s] + target.name + rewritten[e:]
        if not any(m.code == target.code for _, _, m in _mentions(fold(rewritten), modules)):
            base = rewritten.rstrip()
            mark = "?" if base.endswith("?") else ""
            rewritten = f"{base.rstrip('?').rstrip()} {target.name}{mark}"
    rest = new_folded
    for s, e, _ in reversed(named):
        rest = rest[:s] + " " + rest[e:]
    if any(w not in _FILLER for w in _WORD.findall(rest)):
        return f"{rewritten.rstrip()} {question.strip()}"
    return rewritten
