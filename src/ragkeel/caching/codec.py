"""An answer as the cache stores it: UTF-8 JSON of the ``Answer`` with the retrieval
``Confidence`` it was made with and when it was made — plain data, never pickles (a shared
Redis must not be a way to run code in the server).

What is kept is what a hit shows: the text, mode, citations, grounding, hits, gate, the model
and template that made it, its usage and cost (the cost the hit saved). What is not: the prompt
(it may be large and is in the original trace), the gateway's attempts (a hit made no call, so
metrics must not count them again), the original latency and the cache outcome.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ragkeel.gateway.base import Usage
from ragkeel.generation.answer import Answer
from ragkeel.types import Chunk, Citation, Confidence, GateDecision, SearchHit

FORMAT = 1


@dataclass(frozen=True, slots=True)
class Stored:
    answer: Answer
    confidence: Confidence
    made_at: float  # Unix seconds
    question: str  # as asked (the semantic cache compares with it)


def encode(answer: Answer, confidence: Confidence, made_at: float) -> bytes:
    a = answer
    data = {
        "format": FORMAT,
        "made_at": made_at,
        "confidence": asdict(confidence),
        "answer": {
            "question": a.question,
            "text": a.text,
            "mode": a.mode,
            "citations": [asdict(c) for c in a.citations],
            "grounded": a.grounded,
            "usage": [a.usage.prompt_tokens, a.usage.completion_tokens],
            "cost": a.cost,
            "template_version": a.template_version,
            "model": a.model,
            "invalid_citations": list(a.invalid_citations),
            "unsupported_sentences": list(a.unsupported_sentences),
            "inferred_citations": list(a.inferred_citations),
            "hits": [_hit(h) for h in a.hits],
            "gate": asdict(a.gate) if a.gate is not None else None,
            "served_by": a.served_by,
            "tenant": a.tenant,
        },
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode(raw: bytes) -> Stored | None:
    """The stored answer, or None for bytes of another format (an entry written by another
    ragkeel version is a miss, never an error)."""
    try:
        data = json.loads(raw)
        if data.get("format") != FORMAT:
            return None
        a = data["answer"]
        answer = Answer(
            question=a["question"],
            text=a["text"],
            mode=a["mode"],
            citations=tuple(Citation(**c) for c in a["citations"]),
            grounded=bool(a["grounded"]),
            usage=Usage(*a["usage"]),
            cost=float(a["cost"]),
            template_version=a["template_version"],
            model=a["model"],
            invalid_citations=tuple(a["invalid_citations"]),
            unsupported_sentences=tuple(a["unsupported_sentences"]),
            inferred_citations=tuple(a["inferred_citations"]),
            hits=tuple(_search_hit(h) for h in a["hits"]),
            gate=GateDecision(**a["gate"]) if a["gate"] is not None else None,
            served_by=a["served_by"],
            tenant=a["tenant"],
        )
        return Stored(
            answer, Confidence(**data["confidence"]), float(data["made_at"]), a["question"]
        )
    except (ValueError, KeyError, TypeError):
        return None


def _hit(hit: SearchHit) -> dict[str, Any]:
    out = asdict(hit)
    out["chunk"]["metadata"] = dict(hit.chunk.metadata)
    return out


def _search_hit(data: Mapping[str, Any]) -> SearchHit:
    c = dict(data["chunk"])
    c["heading_path"] = tuple(c["heading_path"])
    return SearchHit(**{**data, "chunk": Chunk(**c)})
