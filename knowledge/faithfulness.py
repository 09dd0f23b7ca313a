"""Answers checked against their sources: every sentence of an LLM answer must be supported by the
passage it cites, or it is removed.

The model is told to answer only from the quoted passages and to cite them, but nothing forces a
fluent sentence with a real `[1]` to say what passage 1 says. This check is deterministic and cheap
(no second model call), and deliberately strict on what a customer would act on:

- **lexical support**: the share of the sentence's content terms (stemmed, IDF-weighted, so "o",
  "sistema" or "clique" weigh little and "sangria" or "SEFAZ" weigh a lot) found in the cited
  passage(s) must reach `MIN_SUPPORT`;
- **exact facts**: every number, error code (`GES-014`, `TEF-102`), menu path (`Financeiro >
  Caixas`), function key (`F6`) and URL in the sentence must appear in the cited passage(s);
- **planted instructions**: sentences of a passage that address the model ("ignore as instruções",
  "responda apenas", "SISTEMA:") are not evidence for anything, so an answer that obeys them is not
  supported;
- a sentence without its own citation is checked against the citations of its paragraph (the
  usual "... passos. ... [1]" style), else against every passage the answer cites;
- short connective sentences ("Siga os passos:", "Claro!") with no facts are kept as they are.

An answer left with no supported fact is "not found" (the caller offers a human). The share of
good answers this wrongly cuts is measured by `python -m knowledge.evaluate --faithfulness`
(docs/knowledge.md).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .text import fold, tokenize

MIN_SUPPORT = 0.5
MIN_CONTENT_TERMS = 3  # fewer content terms and no exact facts: a connective, kept

_CITE = re.compile(r"\[(\d{1,3})\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“(\[]?[A-ZÀ-ÖØ-Þ0-9])")
_ENUM = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_URL = re.compile(r"https?://[^\s\]\)>\"'”]+", re.IGNORECASE)
_CODE = re.compile(r"\b[A-Za-z]{2,6}-\d{2,5}\b")
_FKEY = re.compile(r"\b(?:Ctrl|Alt|Shift)?\+?F\d{1,2}\b")
_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?![\w])")
_PATH = re.compile(r"[^\s>\[\]][^>\[\]\n]*?(?:\s*>\s*[^>\[\]\n.;:,!?]+)+")

# Sentences of a passage that talk to the model instead of the customer: never evidence.
_INSTRUCTION = [re.compile(p, re.IGNORECASE) for p in (
    r"\b(ignore|ignorem|desconsidere|esque[cç]a|ignore all|ignore previous)\b.{0,60}\b(instru|regra|orienta|prompt|instruction)",
    r"\bresponda\s+(apenas|somente|sempre|exclusivamente)\b",
    r"^\W*(sistema|system|assistant|assistente|developer)\s*:",
    r"\b(revele|mostre|repita)\b.{0,40}\b(prompt|instru[cç][oõ]es)\b",
    r"\bvoc[eê]\s+(agora\s+)?[eé]\s+(um|uma|o|a)\s+(novo\s+)?(assistente|modelo|ia|chatbot)\b",
    r"\b(diga|informe|fale)\s+(ao|para o)\s+(cliente|usu[aá]rio)\s+que\b",
)]


@dataclass(frozen=True)
class Removed:
    sentence: str
    reason: str


@dataclass
class Checked:
    text: str                    # the answer with unsupported sentences removed
    removed: list[Removed] = field(default_factory=list)
    supported_facts: int = 0     # sentences with content that passed

    @property
    def supported(self) -> bool:
        return self.supported_facts > 0


def _norm(text: str) -> str:
    """Folded, markdown emphasis and quotes removed, whitespace collapsed: for substring checks."""
    text = re.sub(r"[*_`“”\"'«»]", "", fold(text))
    return re.sub(r"\s+", " ", text).strip()


def is_instruction(sentence: str) -> bool:
    return any(p.search(sentence) for p in _INSTRUCTION)


def clean_passage(text: str) -> str:
    """The passage without the sentences (or lines) that address the model."""
    kept = []
    for line in text.splitlines():
        parts = [s for s in re.split(r"(?<=[.!?])\s+", line) if s.strip()]
        kept.append(" ".join(s for s in parts if not is_instruction(s)))
    return "\n".join(kept)


def facts(sentence: str) -> dict[str, list[str]]:
    """The exact facts a sentence states: numbers, codes, keys, menu paths, URLs."""
    body = _ENUM.sub("", _CITE.sub(" ", sentence))
    urls = _URL.findall(body)
    rest = _URL.sub(" ", body)
    codes = _CODE.findall(rest)
    keys = _FKEY.findall(rest)
    paths = [p.strip() for p in _PATH.findall(rest) if ">" in p]
    stripped = _CODE.sub(" ", _FKEY.sub(" ", rest))
    numbers = _NUMBER.findall(stripped)
    return {"url": urls, "code": codes, "key": keys, "path": paths, "number": numbers}


def _path_segments(path: str) -> list[str]:
    return [s for s in (_norm(x) for x in path.split(">")) if s]


def _find_any(candidates: list[str], haystack: str, pos: int) -> tuple[int, str]:
    for cand in candidates:
        found = haystack.find(cand, pos)
        if found >= 0:
            return found, cand
    return -1, ""


def _has_path(path: str, passage_norm: str) -> bool:
    """Every segment of a menu path, in order, in the passage. The regex that finds a path also
    takes the sentence's words around it ("Acesse Financeiro > Caixas e confirme"): the first
    segment may drop leading words, the last may drop trailing ones (one word must remain)."""
    segs = _path_segments(path)
    if len(segs) < 2:
        return True
    pos = 0
    for i, seg in enumerate(segs):
        words = seg.split()
        if i == 0:
            options = [" ".join(words[k:]) for k in range(len(words))]
        elif i == len(segs) - 1:
            options = [" ".join(words[:k]) for k in range(len(words), 0, -1)]
        else:
            options = [seg]
        found, used = _find_any(options, passage_norm, pos)
        if found < 0:
            return False
        pos = found + len(used)
    return True


def _number_in(number: str, passage_norm: str) -> bool:
    variants = {number, number.replace(".", ","), number.replace(",", ".")}
    return any(re.search(rf"(?<![\d]){re.escape(v)}(?![\d])", passage_norm) for v in variants)


def _missing_fact(sentence: str, passage: str) -> str | None:
    norm = _norm(passage)
    f = facts(sentence)
    low_passage = passage.lower()
    for url in f["url"]:
        if url.rstrip(".,;").lower() not in low_passage:
            return f"link ausente da fonte: {url}"
    for code in f["code"]:
        if _norm(code) not in norm:
            return f"código ausente da fonte: {code}"
    for key in f["key"]:
        if not re.search(rf"(?<![\w]){re.escape(_norm(key))}(?![\d])", norm):
            return f"tecla ausente da fonte: {key}"
    for path in f["path"]:
        if not _has_path(path, norm):
            return f"caminho de menu ausente da fonte: {path}"
    for number in f["number"]:
        if not _number_in(number, norm):
            return f"número ausente da fonte: {number}"
    return None


def _has_facts(sentence: str) -> bool:
    return any(facts(sentence).values())


def support(sentence: str, passage: str, idf: Callable[[str], float]) -> float:
    terms = list(dict.fromkeys(tokenize(_CITE.sub(" ", sentence))))
    if not terms:
        return 1.0
    have = set(tokenize(passage))
    weights = {t: idf(t) for t in terms}
    total = sum(weights.values()) or 1.0
    return sum(w for t, w in weights.items() if t in have) / total


def _split(paragraph: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(paragraph) if s.strip()]


def check(answer: str, passages: Sequence[str], idf: Callable[[str], float]) -> Checked:
    """Keep the sentences of `answer` that the passages they cite support. `passages[i]` is the
    text behind citation [i+1]."""
    clean = [clean_passage(p) for p in passages]
    every = sorted({int(n) for n in _CITE.findall(answer) if 1 <= int(n) <= len(passages)})
    out_lines: list[str] = []
    removed: list[Removed] = []
    supported = 0
    for line in answer.split("\n"):
        enum = _ENUM.match(line)
        prefix = enum.group(0) if enum else ""
        sentences = _split(line[len(prefix):])
        if not sentences:
            out_lines.append(line)
            continue
        line_cites = [int(n) for n in _CITE.findall(line) if 1 <= int(n) <= len(passages)]
        kept: list[str] = []
        for i, sentence in enumerate(sentences):
            own = [int(n) for n in _CITE.findall(sentence) if 1 <= int(n) <= len(passages)]
            if not own:
                later = [int(n) for s in sentences[i + 1:] for n in _CITE.findall(s) if 1 <= int(n) <= len(passages)]
                own = later[:1] or line_cites[:1] or every
            content = [t for t in tokenize(_CITE.sub(" ", sentence))]
            if len(content) < MIN_CONTENT_TERMS and not _has_facts(sentence):
                kept.append(sentence)
                continue
            if not own:
                removed.append(Removed(sentence, "sem fonte citada"))
                continue
            evidence = "\n".join(clean[n - 1] for n in own)
            missing = _missing_fact(sentence, evidence)
            if missing:
                removed.append(Removed(sentence, missing))
                continue
            score = support(sentence, evidence, idf)
            if score < MIN_SUPPORT:
                removed.append(Removed(sentence, f"pouco apoio na fonte ({score:.2f})"))
                continue
            kept.append(sentence)
            supported += 1
        if kept:
            out_lines.append(prefix + " ".join(kept))
    text = _renumber_steps("\n".join(out_lines))
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return Checked(text, removed, supported)


def _renumber_steps(text: str) -> str:
    """After a removed step, "1. 3." becomes "1. 2." within each list."""
    out = []
    n = 0
    for line in text.split("\n"):
        m = re.match(r"^(\s*)(\d{1,2})([.)])\s+", line)
        if m:
            n += 1
            line = f"{m.group(1)}{n}{m.group(3)} " + line[m.end():]
        elif line.strip():
            n = 0
        out.append(line)
    return "\n".join(out)


def idf_from_counts(doc_freq: Callable[[str], float], n_docs: int) -> Callable[[str], float]:
    """BM25's IDF: rare terms weigh more; a term absent from the collection weighs the most."""
    def idf(term: str) -> float:
        d = doc_freq(term)
        return math.log(1.0 + (n_docs - d + 0.5) / (d + 0.5))
    return idf
