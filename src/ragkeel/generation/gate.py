"""The answer gate: is retrieval sure enough that the index holds the answer to call a model?

Rule (explicit, configurable): answer when the best **dense cosine** of the query against any
chunk is at least ``dense_threshold``; or, when ``keyword_threshold`` is set, when the best
**BM25** score is at least that. No hits at all always refuses. Otherwise the answer is
"cannot answer", with no model call.

Why dense cosine first: it lives on a fixed scale (-1..1) for a given embedder, unlike BM25,
whose scale grows with query length and corpus statistics, and unlike the fused score, which is
normalised *within* one result list (its top is high even when every hit is poor). BM25 is an
opt-in second door for exact-term questions (error codes, product names) that embed poorly.

``DEFAULT_DENSE_THRESHOLD`` = 0.30 is a documented starting guess for the default embedder
(all-MiniLM-L6-v2: unrelated question/passage pairs mostly score below ~0.2, passages that
answer a question mostly above ~0.4). Smoke check on the bundled examples/ corpus with MiniLM:
six on-topic questions scored 0.36-0.76, six off-topic ones 0.00-0.17 (BM25 overlapped: 2.1-4.1
off-topic vs 5.0-9.8 on-topic). It is to be replaced by the threshold sweep of the gate benchmark
(XQuAD questions against the SciFact index vs SciFact's own questions). The scale depends on the
embedder: the hashing embedder, for one, needs its own value.
"""

from __future__ import annotations

from dataclasses import dataclass

from ragkeel.types import GateDecision, SearchResult

DEFAULT_DENSE_THRESHOLD = 0.34  # chosen from bench/gate_sweep.py: see docs/benchmarks.md


@dataclass(frozen=True, slots=True)
class AnswerGate:
    dense_threshold: float = DEFAULT_DENSE_THRESHOLD
    keyword_threshold: float | None = None  # None: BM25 cannot open the gate on its own

    def decide(self, result: SearchResult) -> GateDecision:
        conf = result.confidence
        dense, keyword = conf.top_dense_score, conf.top_keyword_score
        if not result.hits:
            reason = "no_hits"
        elif dense is not None and dense >= self.dense_threshold:
            reason = "dense"
        elif (
            self.keyword_threshold is not None
            and keyword is not None
            and keyword >= self.keyword_threshold
        ):
            reason = "keyword"
        else:
            reason = "low_confidence"
        return GateDecision(
            passed=reason in ("dense", "keyword"),
            reason=reason,
            top_dense=dense,
            top_keyword=keyword,
            dense_threshold=self.dense_threshold,
            keyword_threshold=self.keyword_threshold,
        )
