"""Query expansion for the BM25 half of retrieval: catalog synonyms and error codes.

A customer writes "nota", "frente de caixa", "GES 14" or "rejeitou 539"; the documentation writes
"NF-e", "PDV", "GES-014" and "Rejeição 539". `expansion_terms` returns the BM25 tokens to add to
such a question, from two sources:

- the catalog `knowledge/query_terms.yml` (data, not code): groups of equivalent terms per product
  and regular-expression rules for codes (see the comments in that file);
- the index itself: a code with a letter prefix and a number ("ges14", "GES 14", "GES-14") is
  looked up among the whole-code tokens the index holds ("ges-014"), zero-padded as the docs wrote it.

Bounded: at most MAX_TERMS tokens are added, only tokens the index knows, never one the question
already has, and the rules only see the first MAX_SCAN_CHARS characters of the question.
`knowledge.retrieve.search` scores added code tokens at CODE_WEIGHT and synonyms at
EXPANSION_WEIGHT of the question's own tokens.
KNOWLEDGE_QUERY_TERMS: another catalog file, or `off` (no expansion at all).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Container, Sequence

import yaml

from .text import fold, tokenize

DEFAULT_CATALOG = Path(__file__).resolve().parent / "query_terms.yml"
GENERAL = "geral"
MAX_TERMS = 12
MAX_SCAN_CHARS = 1000
# the added tokens' BM25 score counts this much of the question's own (bench/knowledge_bench.py sweep):
# a synonym only hints; a code the customer wrote in another form is the customer's own word
EXPANSION_WEIGHT = 0.2
CODE_WEIGHT = 1.0
_CODE = re.compile(r"\b([a-z]{2,5})[\s_.-]?(\d{1,6})\b")


class QueryTermsError(ValueError):
    """The query expansion catalog is malformed (the message names the file and the entry)."""


@dataclass(frozen=True)
class CodeRule:
    pattern: re.Pattern[str]
    add: str


@dataclass(frozen=True)
class Section:
    groups: tuple[tuple[tuple[str, ...], ...], ...]  # each group: its terms as token sequences
    codes: tuple[CodeRule, ...]


@dataclass(frozen=True)
class Catalog:
    sections: dict[str, Section]

    def sections_for(self, products: Sequence[str] | None) -> list[Section]:
        """`geral` plus the asked products' sections; every section when no asked code names one."""
        wanted = {p.strip().lower() for p in products or () if p and p.strip()}
        named = [s for code, s in self.sections.items() if code in wanted and code != GENERAL]
        if not named:
            named = [s for code, s in self.sections.items() if code != GENERAL]
        general = self.sections.get(GENERAL)
        return ([general] if general else []) + named


def _section(path: Path, code: str, raw: object) -> Section:
    where = f"{path}: section {code!r}"
    if not isinstance(raw, dict) or set(raw) - {"synonyms", "codes"}:
        raise QueryTermsError(f"{where}: expected a mapping with `synonyms` and/or `codes`")
    groups = []
    for n, group in enumerate(raw.get("synonyms") or [], 1):
        if not isinstance(group, list) or not all(isinstance(t, str) and t.strip() for t in group):
            raise QueryTermsError(f"{where}: synonyms group {n} must be a list of terms")
        terms = tuple(dict.fromkeys(tuple(tokenize(t)) for t in group if tokenize(t)))
        if len(terms) < 2:
            raise QueryTermsError(f"{where}: synonyms group {n} needs two terms with a content word")
        groups.append(terms)
    rules = []
    for n, rule in enumerate(raw.get("codes") or [], 1):
        if not isinstance(rule, dict) or not isinstance(rule.get("match"), str) or not isinstance(rule.get("add"), str):
            raise QueryTermsError(f"{where}: codes rule {n} needs string fields `match` and `add`")
        try:
            pattern = re.compile(rule["match"])
        except re.error as exc:
            raise QueryTermsError(f"{where}: codes rule {n}: invalid pattern ({exc})") from None
        if "{1}" in rule["add"] and pattern.groups < 1:
            raise QueryTermsError(f"{where}: codes rule {n}: `add` uses {{1}} but `match` has no group")
        rules.append(CodeRule(pattern, rule["add"]))
    return Section(tuple(groups), tuple(rules))


def load_catalog(path: str | os.PathLike[str] = DEFAULT_CATALOG) -> Catalog:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise QueryTermsError(f"{path}: cannot read the query expansion catalog: {exc}") from None
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise QueryTermsError(f"{path}: expected sections by product code (`geral`, `erp`, ...)")
    return Catalog({code.strip().lower(): _section(path, code, body) for code, body in raw.items()})


@lru_cache(maxsize=8)
def _cached_catalog(path: str) -> Catalog:
    return load_catalog(path)


def configured_catalog() -> Catalog | None:
    """KNOWLEDGE_QUERY_TERMS: unset -> the shipped catalog; `off` -> None; else that file."""
    value = (os.environ.get("KNOWLEDGE_QUERY_TERMS") or "").strip()
    if value.lower() in ("off", "0", "none"):
        return None
    return _cached_catalog(value or str(DEFAULT_CATALOG))


def _contains(tokens: list[str], phrase: tuple[str, ...]) -> bool:
    if len(phrase) == 1:
        return phrase[0] in tokens
    n = len(phrase)
    return any(tuple(tokens[i:i + n]) == phrase for i in range(len(tokens) - n + 1))


def code_terms(folded: str, vocab: Container[str]) -> list[str]:
    """Codes written with a prefix and a number, as the index holds them: "ges 14" -> "ges-014"."""
    out = []
    for prefix, number in _CODE.findall(folded):
        digits = number.lstrip("0") or "0"
        for width in range(len(digits), 7):
            token = f"{prefix}-{digits.zfill(width)}"
            if token in vocab:
                out += [token, digits.zfill(width)]
                break
    return out


@dataclass(frozen=True)
class Expansion:
    codes: tuple[str, ...] = ()  # scored at CODE_WEIGHT
    synonyms: tuple[str, ...] = ()  # scored at EXPANSION_WEIGHT

    def __bool__(self) -> bool:
        return bool(self.codes or self.synonyms)

    @property
    def terms(self) -> list[str]:
        return [*self.codes, *self.synonyms]


def expand(query: str, products: Sequence[str] | None = None, vocab: Container[str] | None = None,
           catalog: Catalog | None = None) -> Expansion:
    """BM25 tokens to add to `query`: none it already has, only ones in `vocab` when given, at most
    MAX_TERMS in all (codes first)."""
    text = query[:MAX_SCAN_CHARS]
    tokens = tokenize(text)
    folded = fold(text)
    codes: list[str] = []
    synonyms: list[str] = []
    if catalog is not None:
        for section in catalog.sections_for(products):
            for rule in section.codes:
                for m in rule.pattern.finditer(folded):
                    codes += tokenize(rule.add.replace("{1}", m.group(1) if rule.pattern.groups else ""))
            for group in section.groups:
                if any(_contains(tokens, term) for term in group):
                    synonyms += [t for term in group for t in term]
    if vocab is not None:
        codes = code_terms(folded, vocab) + codes
    have = set(tokens)
    kept: list[list[str]] = [[], []]
    room = MAX_TERMS
    for out, added in zip(kept, (codes, synonyms)):
        for t in added:
            if room and t not in have and (vocab is None or t in vocab):
                have.add(t)
                out.append(t)
                room -= 1
    return Expansion(tuple(kept[0]), tuple(kept[1]))


def equivalents(query: str, products: Sequence[str] | None = None, vocab: Container[str] | None = None,
                catalog: Catalog | None = None) -> dict[str, set[str]]:
    """For the answer gate's term coverage: each token of the question that a synonym group or a code
    rule matched, with the tokens that count as the same word ("maquininha" -> {"pinpad", "tef", ...},
    "14" -> {"014", "ges-014"})."""
    text = query[:MAX_SCAN_CHARS]
    tokens = tokenize(text)
    out: dict[str, set[str]] = {}
    if catalog is not None:
        for section in catalog.sections_for(products):
            for group in section.groups:
                matched = [term for term in group if _contains(tokens, term)]
                others = {t for term in group for t in term}
                for term in matched:
                    for t in term:
                        out.setdefault(t, set()).update(others - {t})
    if vocab is not None:
        folded = fold(text)
        for prefix, number in _CODE.findall(folded):
            found = code_terms(f"{prefix} {number}", vocab)
            for t in tokenize(f"{prefix} {number}") + tokenize(f"{prefix}{number}"):
                if found:
                    out.setdefault(t, set()).update(found)
    return out


def expansion_terms(query: str, products: Sequence[str] | None = None, vocab: Container[str] | None = None,
                    catalog: Catalog | None = None) -> list[str]:
    """The tokens `expand` adds, codes first."""
    return expand(query, products, vocab, catalog).terms
