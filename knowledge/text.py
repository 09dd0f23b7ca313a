"""Text normalisation and the BM25 tokenizer (Portuguese stopwords + Snowball stemmer)."""
from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_PORTUGUESE

_WORD = re.compile(r"[0-9a-zà-öø-ÿ]+(?:[-_.][0-9a-zà-öø-ÿ]+)*", re.IGNORECASE)
_stemmer_local = threading.local()


def fold(text: str) -> str:
    """Lowercase and strip accents ("Emissão" -> "emissao")."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_STOP = frozenset(STOPWORDS_PORTUGUESE) | frozenset(fold(w) for w in STOPWORDS_PORTUGUESE)


def _stemmer() -> "Stemmer.Stemmer":
    stemmer = getattr(_stemmer_local, "stemmer", None)
    if stemmer is None:
        stemmer = Stemmer.Stemmer("portuguese")
        _stemmer_local.stemmer = stemmer
    return stemmer


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return fold(_stemmer().stemWord(word))


def tokenize(text: str) -> list[str]:
    """Words -> lowercase -> drop stopwords -> stem -> fold accents.

    Codes such as "TEF-102" or "NF-e" are kept whole and also split into their parts,
    so "tef 102" and "TEF-102" match each other.
    """
    tokens: list[str] = []
    for match in _WORD.finditer(text.lower()):
        word = match.group(0)
        parts = re.split(r"[-_.]", word) if re.search(r"[-_.]", word) else []
        if parts:
            tokens.append(fold(word))
        for w in parts or [word]:
            if not w or w in _STOP or fold(w) in _STOP:
                continue
            tokens.append(w if w.isdigit() else _stem(w))
    return tokens


def normalise_space(text: str) -> str:
    return re.sub(r"[ \t\u00a0]+", " ", re.sub(r"\n{3,}", "\n\n", text)).strip()
