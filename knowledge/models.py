"""Data types shared by the pipeline stages."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    """A cited source of an answer (public interface)."""

    title: str
    url: str
    score: float


@dataclass(frozen=True)
class Answer:
    """Result of knowledge.answer() (public interface)."""

    answer: str
    sources: list[Source]
    grounded: bool
    mode: str  # "llm" | "extractive"
    # cost accounting, not part of the answer's identity: tokens the LLM call used (0 without one,
    # and for an answer served from the repeat-question cache, which sets `cached`)
    llm_tokens: int = field(default=0, compare=False)
    cached: bool = field(default=False, compare=False)

    def to_json(self) -> dict[str, object]:
        return {
            "answer": self.answer,
            "sources": [{"title": s.title, "url": s.url, "score": round(float(s.score), 4)} for s in self.sources],
            "grounded": self.grounded,
            "mode": self.mode,
        }


@dataclass
class Section:
    headings: list[str]
    text: str


@dataclass
class Document:
    url: str
    title: str
    sections: list[Section]
    product: str | None = None
    module: str | None = None


@dataclass
class Chunk:
    id: str
    doc_key: str
    url: str
    title: str
    product: str | None
    module: str | None
    heading: str
    text: str
    extra: dict[str, object] = field(default_factory=dict)

    def embed_text(self) -> str:
        """Text given to the embedding model and to BM25: title, heading trail, body."""
        head = f"{self.title} > {self.heading}" if self.heading else self.title
        return f"{head}\n{self.text}"

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id, "doc_key": self.doc_key, "url": self.url, "title": self.title,
            "product": self.product, "module": self.module, "heading": self.heading, "text": self.text,
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> "Chunk":
        return cls(
            id=str(d["id"]), doc_key=str(d["doc_key"]), url=str(d["url"]), title=str(d["title"]),
            product=d.get("product") or None, module=d.get("module") or None,  # type: ignore[arg-type]
            heading=str(d.get("heading") or ""), text=str(d["text"]),
        )
